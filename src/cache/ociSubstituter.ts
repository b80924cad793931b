import { join } from "node:path"
import { Effect, Either, Layer, Schema, type Scope } from "effect"
import { AppConfig, type ResolvedConfig } from "../config/appConfig.js"
import { CacheEntryError, InternalError, type OwrtError } from "../errors.js"
import type { NodeReport, NodeSpec } from "../graph/graph.js"
import {
  noSubstituterService,
  type SubstituteLookup,
  Substituter,
  type SubstituterService,
} from "../graph/substituter.js"
import { readSecret } from "../profile/secrets.js"
import type { OutputCheck } from "../store/nodeStore.js"
import { type TreeDigest, treeDigest } from "../store/treeDigest.js"
import { makeWorkDirectory } from "../store/workDirectory.js"
import { canonicalJson } from "../text/canonicalJson.js"
import { sha256Hex } from "../text/digest.js"
import {
  fingerprintOf,
  makeManifest,
  NodeManifest,
  type NodeManifest as NodeManifestType,
  NodeMetadata,
} from "./manifest.js"
import { type Credentials, makeRegistryClient, type RegistryClient } from "./registryClient.js"
import { parseRegistryUrl } from "./registryLocation.js"
import { type PublicKey, parsePublicKey, parseSecretKey, signEntry, verifyEntry } from "./signing.js"
import { packTree, unpackTree } from "./storeTar.js"

/*
 * The shared cache as a substituter (docs/cache.md). Asking is one request per node and registry, all at
 * once: for a realize a GET of the manifest (small; the fetch that follows a hit then starts with its blobs,
 * one round trip fewer per node), for a plan a HEAD (registries count a GET as a pull). A registry that
 * fails one question is not asked again in that round. A hit is checked in this order: the manifest decodes
 * and names this node's key and kind; its signature verifies against `cache.trustedKeys`. Then its two
 * blobs download side by side: the metadata layer must agree with the manifest (or the tree's download
 * stops), and the tree blob have the signed digest and size and unpack safely (as it downloads, into the
 * private output); the unpacked tree has the signed tree digest. Pushing packs the stored path, signs and uploads it, then the manifest tagged with the key.
 */

/** How many questions go to one registry at once. */
const concurrency = 16

/** How long a manifest fetched by a question stays good for the fetch that follows it. */
const manifestKeptMs = 60_000
/** At most this many kept manifests, each at most `manifestKeptBytes` (an owrt manifest is ~1 KB). */
const manifestsKept = 1024
const manifestKeptBytes = 64 * 1024

const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(NodeManifest))
const decodeMetadata = Schema.decodeUnknownEither(Schema.parseJson(NodeMetadata))

/** The credentials `cache.credentials` holds for a registry host (the password read from its reference). */
export const registryCredentials = (
  config: ResolvedConfig,
  host: string,
): Effect.Effect<Credentials | undefined, OwrtError> =>
  Effect.gen(function* () {
    const credential = config.cache.credentials[host]
    if (credential === undefined) return undefined
    const password = yield* readSecret({
      profile: "graph.config.ts",
      name: `cache.credentials.${host}`,
      reference: credential.password,
      baseDir: config.projectRoot,
      env: process.env,
    })
    return password === undefined ? undefined : { username: credential.username, password }
  })

export interface CacheClients {
  readonly clients: ReadonlyArray<RegistryClient>
  readonly client: (source: string) => Effect.Effect<RegistryClient, InternalError>
  readonly trusted: Effect.Effect<ReadonlyArray<PublicKey>, OwrtError>
}

/** A registry client for each configured substituter, with its credentials read from their references. */
export const cacheClients = (config: ResolvedConfig): Effect.Effect<CacheClients, OwrtError> =>
  Effect.gen(function* () {
    const clients: Array<RegistryClient> = []
    for (const url of config.cache.substituters) {
      const location = yield* parseRegistryUrl(url, "cache.substituters")
      clients.push(
        makeRegistryClient({
          location,
          credentials: yield* registryCredentials(config, location.host),
          timeoutSeconds: config.cache.timeout,
        }),
      )
    }
    const trusted = Effect.forEach(config.cache.trustedKeys, (text, i) =>
      parsePublicKey(text, `cache.trustedKeys[${i}]`),
    )
    return {
      clients,
      client: (source: string) => {
        const found = clients.find((c) => c.location.url === source)
        return found
          ? Effect.succeed(found)
          : Effect.fail(new InternalError({ cause: `no substituter ${source}` }))
      },
      trusted,
    }
  })

/** The signing key of `cache.signingKey`. */
export const readSigningKey = (config: ResolvedConfig) =>
  Effect.gen(function* () {
    const reference = config.cache.signingKey
    if (reference === null)
      return yield* new InternalError({ cause: "cache.signingKey is not set (owrt cache keygen NAME)" })
    const text = yield* readSecret({
      profile: "graph.config.ts",
      name: "cache.signingKey",
      reference,
      baseDir: config.projectRoot,
      env: process.env,
    })
    return yield* parseSecretKey(text, reference)
  })

/** Downloads, verifies and unpacks `key` from `client` into the empty directory `output`. */
export const fetchEntry = (options: {
  readonly client: RegistryClient
  readonly key: string
  readonly kind: string
  readonly listingOnly: boolean
  readonly trusted: ReadonlyArray<PublicKey>
  readonly output: string
  readonly report?: ((report: NodeReport) => void) | undefined
  /** The manifest's bytes when a question just fetched them (they are checked all the same). */
  readonly manifest?: Uint8Array | undefined
}): Effect.Effect<
  { readonly manifest: NodeManifestType; readonly check: OutputCheck<OwrtError> },
  OwrtError
> =>
  Effect.gen(function* () {
    const { client, key } = options
    const subject = `${client.location.url}:${key}`
    const refuse = (kind: CacheEntryError["kind"], detail: string) =>
      Effect.fail(new CacheEntryError({ kind, subject, detail }))
    const bytes = options.manifest ?? (yield* client.getManifest(key))
    if (bytes === undefined) return yield* refuse("truncated", "the manifest is gone")
    const decoded = decodeManifest(Buffer.from(bytes).toString("utf8"))
    if (decoded._tag === "Left")
      return yield* refuse("malformed", "the manifest is not an owrt node manifest")
    const manifest = decoded.right
    if (manifest.annotations["org.owrt.node.key"] !== key)
      return yield* refuse("malformed", "the manifest names another key")
    if (manifest.annotations["org.owrt.node.kind"] !== options.kind)
      return yield* refuse(
        "malformed",
        `the manifest is of kind ${manifest.annotations["org.owrt.node.kind"]}`,
      )
    yield* verifyEntry(
      fingerprintOf(manifest),
      manifest.annotations["org.owrt.node.signature"],
      options.trusted,
      subject,
    )
    const [tree, metadataLayer] = manifest.layers
    if (tree === undefined || metadataLayer === undefined) return yield* refuse("malformed", "missing layers")
    const treeDigestSigned = manifest.annotations["org.owrt.node.tree-digest"]
    const checkMetadata = Effect.gen(function* () {
      const metadataBytes = yield* client.getBlob(metadataLayer)
      const metadata = decodeMetadata(Buffer.from(metadataBytes).toString("utf8"))
      if (
        metadata._tag === "Left" ||
        metadata.right.key !== key ||
        metadata.right.kind !== options.kind ||
        metadata.right.treeDigest !== treeDigestSigned
      )
        return yield* refuse("malformed", "the metadata layer does not agree with the signed manifest")
    })
    // The tree is unpacked as it downloads (into the private output, which the caller removes when this
    // fails), beside the metadata's check; metadata that is refused stops the tree's download. Both run to
    // their end, so the unpack is done writing when this fails; the metadata's verdict comes first.
    const stopTree = new AbortController()
    const [metadataChecked, streamed] = yield* Effect.all(
      [
        checkMetadata.pipe(Effect.tapError(() => Effect.sync(() => stopTree.abort()))),
        client.streamBlob(
          tree,
          (input) => unpackTree(input, options.output, subject, { hashFiles: !options.listingOnly }),
          (bytes) => options.report?.({ bytes, total: tree.size }),
          stopTree.signal,
        ),
      ],
      { concurrency: 2, mode: "either" },
    )
    if (Either.isLeft(metadataChecked)) return yield* Effect.fail(metadataChecked.left)
    if (Either.isLeft(streamed)) return yield* Effect.fail(streamed.left)
    const unpacked = streamed.right
    // The unpacked tree must have the signed digest: checked on the digest the store takes before it
    // publishes (or by `checkTree` for an output that is not published).
    // Its files were hashed as they were written: the digest need not read them back.
    const check: OutputCheck<OwrtError> = {
      check: (digest: TreeDigest) =>
        digest.digest === treeDigestSigned
          ? Effect.void
          : refuse(
              "tree_mismatch",
              `the unpacked tree has digest ${digest.digest}, signed ${treeDigestSigned}`,
            ),
      contents: unpacked.contents,
    }
    return { manifest, check }
  })

/** `fetchEntry`'s tree check made here, on a digest of its own: for outputs that are not published. */
export const checkTree = (
  output: string,
  listingOnly: boolean,
  check: OutputCheck<OwrtError>,
): Effect.Effect<void, OwrtError> =>
  Effect.flatMap(treeDigest(output, { listingOnly, known: check.contents }), check.check)

/** Packs, signs and uploads a stored node; nothing happens when the registry has it already. */
export const pushEntry = (options: {
  readonly client: RegistryClient
  readonly config: ResolvedConfig
  readonly key: string
  readonly kind: string
  readonly keyInputs: unknown
  readonly listingOnly: boolean
  readonly path: string
  readonly force?: boolean | undefined
  /** Follows the tree's upload: bytes sent of its total. */
  readonly onBytes?: ((bytes: number, total: number) => void) | undefined
}): Effect.Effect<"pushed" | "present", OwrtError, Scope.Scope> =>
  Effect.gen(function* () {
    const { client, key } = options
    if (!options.force && (yield* client.hasManifest(key))) return "present" as const
    const secret = yield* readSigningKey(options.config)
    const work = yield* makeWorkDirectory(options.config.store, `push-${key}`)
    const tarFile = join(work, "tree.tar")
    const packed = yield* packTree(options.path, tarFile)
    const digest = yield* treeDigest(options.path, { listingOnly: options.listingOnly })
    const metadata = new TextEncoder().encode(
      canonicalJson({
        version: 1,
        key,
        kind: options.kind,
        keyInputs: (options.keyInputs ?? null) as never,
        treeDigest: digest.digest,
        artifacts: digest.entries.flatMap((e) =>
          e.kind === "file" && e.sha256 !== undefined
            ? [{ path: e.path, sha256: e.sha256, size: e.size }]
            : [],
        ),
      }),
    )
    const metadataDigest = `sha256:${sha256Hex(metadata)}`
    const unsigned = {
      key,
      kind: options.kind,
      treeDigest: digest.digest,
      tree: { digest: packed.digest, size: packed.size },
      metadata: { digest: metadataDigest, size: metadata.length },
    }
    const signature = signEntry(secret, fingerprintOf(makeManifest(unsigned)))
    const manifest = new TextEncoder().encode(JSON.stringify(makeManifest({ ...unsigned, signature })))
    yield* client.ensureEmptyConfig
    yield* client.uploadBlob(packed.digest, packed.size, { file: tarFile }, (bytes) =>
      options.onBytes?.(bytes, packed.size),
    )
    yield* client.uploadBlob(metadataDigest, metadata.length, metadata)
    yield* client.putManifest(key, manifest)
    return "pushed" as const
  })

export const ociSubstituterLayer = Layer.effect(
  Substituter,
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (config.cache.substituters.length === 0) return noSubstituterService
    // Credentials and keys are read when first needed, so a command that never substitutes never fails on them.
    const clients = yield* Effect.cached(cacheClients(config))
    const trusted = yield* Effect.cached(Effect.flatMap(clients, (c) => c.trusted))
    const listingOnly = (node: NodeSpec) => node.kind.digest !== "content"
    /**
     * Manifests a realize's questions fetched, by registry and key, each taken by the fetch that follows
     * (in insertion order, so the oldest come first: expired ones are swept, and the oldest make room).
     */
    const fetched = new Map<string, { readonly bytes: Uint8Array; readonly at: number }>()
    const keep = (source: string, key: string, bytes: Uint8Array) => {
      if (bytes.length > manifestKeptBytes) return
      const now = Date.now()
      const id = `${source} ${key}`
      fetched.delete(id)
      for (const [oldId, kept] of fetched) {
        if (now - kept.at < manifestKeptMs && fetched.size < manifestsKept) break
        fetched.delete(oldId)
      }
      fetched.set(id, { bytes, at: now })
    }
    const take = (source: string, key: string) => {
      const kept = fetched.get(`${source} ${key}`)
      fetched.delete(`${source} ${key}`)
      return kept !== undefined && Date.now() - kept.at < manifestKeptMs ? kept.bytes : undefined
    }

    const query = (nodes: ReadonlyArray<NodeSpec>, options?: { readonly toFetch?: boolean }) =>
      Effect.gen(function* () {
        const answers = new Map<string, SubstituteLookup>(nodes.map((n) => [n.key, { _tag: "miss" }]))
        const all = yield* Effect.either(clients)
        if (all._tag === "Left") {
          for (const n of nodes) answers.set(n.key, { _tag: "error", error: all.left })
          return answers
        }
        for (const client of all.right.clients) {
          const open = nodes.filter((n) => answers.get(n.key)?._tag !== "hit")
          let failed: OwrtError | undefined
          yield* Effect.forEach(
            open,
            (node) =>
              failed !== undefined
                ? Effect.void
                : options?.toFetch
                  ? Effect.either(client.getManifest(node.key)).pipe(
                      Effect.tap((answer) => {
                        if (answer._tag === "Left") failed ??= answer.left
                        else if (answer.right !== undefined) {
                          answers.set(node.key, { _tag: "hit", source: client.location.url })
                          keep(client.location.url, node.key, answer.right)
                        }
                      }),
                    )
                  : // A plan only asks: a HEAD, which registries do not count as a pull.
                    Effect.either(client.hasManifest(node.key)).pipe(
                      Effect.tap((answer) => {
                        if (answer._tag === "Left") failed ??= answer.left
                        else if (answer.right)
                          answers.set(node.key, { _tag: "hit", source: client.location.url })
                      }),
                    ),
            { concurrency, discard: true },
          )
          if (failed !== undefined)
            for (const node of open)
              if (answers.get(node.key)?._tag === "miss")
                answers.set(node.key, { _tag: "error", error: failed })
        }
        return answers as ReadonlyMap<string, SubstituteLookup>
      })

    const fetch = (node: NodeSpec, source: string, output: string, report: (report: NodeReport) => void) =>
      Effect.gen(function* () {
        const client = yield* Effect.flatMap(clients, (c) => c.client(source))
        const entry = yield* fetchEntry({
          client,
          key: node.key,
          kind: node.kind.kind,
          listingOnly: listingOnly(node),
          trusted: yield* trusted,
          output,
          report,
          manifest: take(source, node.key),
        })
        return entry.check
      })

    const offer = (node: NodeSpec, path: string) =>
      config.cache.push
        ? Effect.gen(function* () {
            const [client] = (yield* clients).clients
            if (client === undefined) return
            yield* pushEntry({
              client,
              config,
              key: node.key,
              kind: node.kind.kind,
              keyInputs: node.keyInputs,
              listingOnly: listingOnly(node),
              path,
            })
          }).pipe(Effect.scoped)
        : Effect.void

    return {
      sources: config.cache.substituters,
      query,
      fetch,
      offer,
    } satisfies SubstituterService
  }),
)
