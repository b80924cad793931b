import { posix } from "node:path"
import { Data, Effect, Either, Schema } from "effect"
import {
  type Diagnostic,
  type GitError,
  type InternalError,
  type ProfileErrorCode,
  ProfileInvalidError,
} from "../errors.js"
import { canonicalJson } from "../text/canonicalJson.js"
import { closestMatch } from "../text/closestMatch.js"
import { sha256Hex } from "../text/digest.js"
import { usignPublicKeyId } from "../text/usignKey.js"
import { cachedDocument, decodeProfileDocument, type LoadedDocument } from "./profileDocument.js"
import {
  type FlashPolicy,
  type ProfileDocument,
  profileIdPattern,
  profileLimits,
  ResolvedRepositories,
} from "./profileSchema.js"
import type { ProfileTree, TreeEntry } from "./profileTree.js"
import { resolveRaspios } from "./raspiosResolve.js"
import { ResolvedRaspios } from "./raspiosSchema.js"
import { referencedSecrets } from "./secrets.js"
import type { PathSegment, YamlSource } from "./yamlSource.js"

export const profileSchemaVersion = 1

/** Whole numbers, with a plain inline JSON Schema (`Schema.Int` would be a `$ref` into `$defs`). */
const Integer = Schema.Number.pipe(Schema.int())

/** An overlay file after layering: the last overlay directory that has a path wins. */
export const OverlayEntry = Schema.Struct({
  path: Schema.String,
  kind: Schema.Literal("file", "symlink"),
  mode: Integer,
  sha256: Schema.String,
  size: Integer,
  linkTarget: Schema.optional(Schema.String),
})
export type OverlayEntry = typeof OverlayEntry.Type

/**
 * The canonical resolved profile: `extends:` applied, lists normalised, overlay files by content. Its
 * canonical JSON is the revision's content; nothing in it depends on where or when it was resolved.
 * (`owrt profiles show --json` prints it as `profile`; the database keeps it as a revision's content.)
 */
export const ResolvedProfile = Schema.Struct({
  schema: Integer,
  id: Schema.String,
  description: Schema.NullOr(Schema.String),
  abstract: Schema.Boolean,
  parents: Schema.Array(Schema.String).annotations({ description: "extends, linearised" }),
  release: Schema.NullOr(Schema.String),
  target: Schema.NullOr(Schema.String),
  device: Schema.NullOr(Schema.String),
  packages: Schema.Array(Schema.String),
  overlay: Schema.Array(OverlayEntry),
  files: Schema.Array(
    Schema.Struct({
      path: Schema.String,
      mode: Schema.String,
      content: Schema.optional(Schema.String),
      secret: Schema.optional(Schema.String),
    }),
  ),
  first_boot: Schema.Array(Schema.Struct({ name: Schema.String, script: Schema.String })),
  disabled_services: Schema.Array(Schema.String),
  rootfs_size: Schema.NullOr(Schema.Number).annotations({
    description: "MB, or null for the builder default",
  }),
  filesystem: Schema.optional(Schema.String).annotations({
    description: "ROOTFS_FILESYSTEM; absent when not set (so existing revisions keep their hash)",
  }),
  image_name: Schema.optional(Schema.String).annotations({
    description: "EXTRA_IMAGE_NAME; absent when not set (so existing revisions keep their hash)",
  }),
  repositories: Schema.optional(ResolvedRepositories).annotations({
    description:
      "Package feeds added to the builder's, and their keys; absent when none (existing revisions keep their hash)",
  }),
  tags: Schema.Array(Schema.String),
  secrets: Schema.Record({ key: Schema.String, value: Schema.String }).annotations({
    description: "Secret name → reference (env:NAME or file:PATH); never a value",
  }),
  flash: Schema.Struct({ image: Schema.String, verify: Schema.String, wipe: Schema.Boolean }),
  /** Absent for OpenWrt profiles (so their revisions keep the content, and the hash, they always had). */
  kind: Schema.optional(Schema.Literal("raspios")),
  raspios: Schema.optional(ResolvedRaspios),
})
export type ResolvedProfile = typeof ResolvedProfile.Type

/** A resolved profile together with its content hash and where each overlay file is read from. */
export interface ProfileRevision {
  readonly profile: ResolvedProfile
  readonly hash: string
  readonly canonical: string
  readonly source: string
  /** Reads the bytes of an overlay file of this revision (working tree, git commit or blob store). */
  readonly readOverlay: (path: string) => Effect.Effect<Uint8Array | undefined, GitError | InternalError>
}

export const fail = (code: ProfileErrorCode, diagnostic: Diagnostic) =>
  new ProfileInvalidError({ code, diagnostics: [diagnostic] })

export const at = (
  source: YamlSource,
  path: ReadonlyArray<PathSegment>,
  message: string,
  hint?: string,
): Diagnostic => {
  const position = source.valueAt(path)
  return {
    file: source.file,
    line: position.line,
    column: position.column,
    path: path
      .map((p) => (typeof p === "number" ? `[${p}]` : p))
      .join(".")
      .replace(/\.\[/g, "["),
    message,
    hint,
  }
}

/**
 * Normalises a package list applied in order: `x` adds x (and cancels an earlier `-x`), `-x` removes x
 * and is kept so the Image Builder also drops x from its defaults. Result: adds sorted, then removals
 * sorted — the same set always gives the same list.
 */
export const normalisePackages = (entries: ReadonlyArray<string>): ReadonlyArray<string> => {
  const state = new Map<string, "add" | "remove">()
  for (const entry of entries) {
    if (entry.startsWith("-")) state.set(entry.slice(1), "remove")
    else state.set(entry, "add")
  }
  const sorted = [...state.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return [
    ...sorted.filter(([, s]) => s === "add").map(([name]) => name),
    ...sorted.filter(([, s]) => s === "remove").map(([name]) => `-${name}`),
  ]
}

export interface Layer {
  readonly id: string
  readonly loaded: LoadedDocument
  /** Directory of the profile file, relative to the profiles directory ("" at top level). */
  readonly dir: string
}

export interface ProfileResolver {
  readonly ids: () => Effect.Effect<ReadonlyArray<string>, GitError>
  readonly resolve: (
    id: string,
  ) => Effect.Effect<ProfileRevision, ProfileInvalidError | GitError | ProfileMissing>
}

/** A profile id with no file: reported by callers as not-found (exit 4), not as invalid. */
export class ProfileMissing extends Data.TaggedError("ProfileMissing")<{
  readonly id: string
  readonly known: ReadonlyArray<string>
}> {}

/**
 * Loads and resolves profiles from one tree (working tree or a git commit). Documents are parsed once
 * per resolver, so resolving many profiles that share parents stays cheap.
 */
/**
 * Documents that decoded before, by digest of their text: parsing YAML is most of resolving a valid
 * profile, and a plan over hundreds of unchanged profiles need not do it again.
 */
export interface DocumentCache {
  readonly get: (digest: string) => Effect.Effect<ProfileDocument | undefined>
  readonly put: (digest: string, document: ProfileDocument) => Effect.Effect<void>
}

export const makeProfileResolver = (
  tree: ProfileTree,
  displayDir: string,
  cache?: DocumentCache,
): ProfileResolver => {
  const documents = new Map<string, Either.Either<LoadedDocument, ProfileInvalidError>>()
  let fileList: ReadonlyArray<string> | undefined
  /** The file of each id (the first of `<id>.yaml`, `<id>.yml` listed), made once: a plan looks up hundreds. */
  let fileById: ReadonlyMap<string, string> | undefined

  const files = () =>
    fileList !== undefined
      ? Effect.succeed(fileList)
      : tree.listProfileFiles().pipe(Effect.tap((list) => Effect.sync(() => (fileList = list))))

  const fileOf = (id: string) =>
    Effect.map(files(), (list) => {
      if (fileById === undefined) {
        const byId = new Map<string, string>()
        for (const file of list) {
          const named = /^(.*)\.ya?ml$/.exec(file)?.[1]
          if (named !== undefined && !byId.has(named)) byId.set(named, file)
        }
        fileById = byId
      }
      return fileById.get(id)
    })

  const ids = () => files().pipe(Effect.map((list) => list.map((f) => f.replace(/\.ya?ml$/, ""))))

  const load = (id: string): Effect.Effect<LoadedDocument | undefined, ProfileInvalidError | GitError> =>
    Effect.gen(function* () {
      const cached = documents.get(id)
      if (cached) return yield* cached
      const file = yield* fileOf(id)
      if (!file) return undefined
      const read = yield* tree.readText(file, profileLimits.fileBytes)
      const display = tree.displayPath?.(file) ?? (displayDir === "" ? file : `${displayDir}/${file}`)
      if (read?._tag === "tooLarge") {
        const error = fail("profile_too_large", {
          file: display,
          line: 1,
          column: 1,
          path: "",
          message: `profile file of ${read.size} bytes; the limit is ${profileLimits.fileBytes}`,
        })
        documents.set(id, Either.left(error))
        return yield* error
      }
      const text = read?.text ?? ""
      if (!profileIdPattern.test(id)) {
        const error = fail("profile_invalid_id", {
          file: display,
          line: 1,
          column: 1,
          path: "",
          message: `\`${id}\` is not a valid profile id (file name): use lower-case letters, digits, '.', '_' and '-'`,
        })
        documents.set(id, Either.left(error))
        return yield* error
      }
      // `limits-1`: documents cached before limits were checked are decoded (and checked) again.
      const digest = sha256Hex(`profile-document-v${profileSchemaVersion}-limits-1\0${text}`)
      const known = cache ? yield* cache.get(digest) : undefined
      const decoded = known
        ? Either.right(cachedDocument(display, text, known))
        : decodeProfileDocument(display, text)
      if (!known && cache && Either.isRight(decoded)) yield* cache.put(digest, decoded.right.document)
      documents.set(id, decoded)
      return yield* decoded
    })

  /** Depth-first, left to right, each ancestor once and before its children. */
  const linearise = (
    id: string,
  ): Effect.Effect<ReadonlyArray<Layer>, ProfileInvalidError | GitError | ProfileMissing> =>
    Effect.gen(function* () {
      const order: Array<Layer> = []
      const done = new Set<string>()
      const visit = (
        current: string,
        stack: ReadonlyArray<string>,
        from: { source: YamlSource; path: ReadonlyArray<PathSegment> } | undefined,
      ): Effect.Effect<void, ProfileInvalidError | GitError | ProfileMissing> =>
        Effect.gen(function* () {
          if (stack.includes(current)) {
            const cycle = [...stack.slice(stack.indexOf(current)), current].join(" → ")
            // The profile being resolved is never on its own stack, so `from` is always set here.
            const site = from as { source: YamlSource; path: ReadonlyArray<PathSegment> }
            return yield* fail(
              "profile_extends_cycle",
              at(site.source, site.path, `extends cycle: ${cycle}`, "remove one of these extends entries"),
            )
          }
          if (done.has(current)) return
          if (stack.length > profileLimits.extendsDepth) {
            // Only a parent can be this deep, so `from` is set.
            const site = from as { source: YamlSource; path: ReadonlyArray<PathSegment> }
            return yield* fail(
              "profile_too_large",
              at(
                site.source,
                site.path,
                `extends chain deeper than ${profileLimits.extendsDepth} profiles (from ${stack[0]} through ${stack[stack.length - 1]})`,
                "flatten the chain: a profile rarely needs more than a few ancestors",
              ),
            )
          }
          const loaded = yield* load(current)
          if (!loaded) {
            if (!from) return yield* new ProfileMissing({ id: current, known: yield* ids() })
            const known = yield* ids()
            const guess = known.filter((k) => k !== stack[stack.length - 1])
            const suggestion = closestMatch(current, guess)
            return yield* fail(
              "profile_parent_missing",
              at(
                from.source,
                from.path,
                `parent profile \`${current}\` does not exist`,
                suggestion ? `did you mean \`${suggestion}\`?` : `known profiles: ${known.join(", ")}`,
              ),
            )
          }
          const parents = loaded.document.extends
          const list = parents === undefined ? [] : typeof parents === "string" ? [parents] : parents
          for (let i = 0; i < list.length; i++) {
            const parent = list[i] as string
            const path: ReadonlyArray<PathSegment> =
              typeof parents === "string" ? ["extends"] : ["extends", i]
            yield* visit(parent, [...stack, current], { source: loaded.source, path })
          }
          done.add(current)
          order.push({ id: current, loaded, dir: "" })
        })
      yield* visit(id, [], undefined)
      return order
    })

  const resolve = (id: string) =>
    Effect.gen(function* () {
      const layers = yield* linearise(id)
      const self = layers[layers.length - 1] as Layer
      let description: string | undefined
      let release: string | undefined
      let target: string | undefined
      let device: string | undefined
      let rootfsSize: number | undefined
      let filesystem: string | undefined
      let imageName: string | undefined
      let repositoriesMode: "append" | "replace" | undefined
      const feeds = new Map<string, string>()
      const feedSources = new Map<string, { source: YamlSource; index: number }>()
      const repositoryKeys = new Set<string>()
      const keysById = new Map<string, string>()
      const packageSequence: Array<string> = []
      const overlayDirs: Array<{ dir: string; layer: Layer }> = []
      const files = new Map<
        string,
        { entry: NonNullable<ProfileDocument["files"]>[number]; layer: Layer; index: number }
      >()
      const firstBoot = new Map<string, { script: string; layer: Layer; index: number }>()
      const disabled = new Set<string>()
      const tags = new Set<string>()
      const secrets = new Map<string, string>()
      const flash: { -readonly [K in keyof FlashPolicy]: FlashPolicy[K] } = {}

      for (const layer of layers) {
        const doc = layer.loaded.document
        const source = layer.loaded.source
        if (doc.description !== undefined) description = doc.description
        if (doc.release !== undefined) {
          if (typeof doc.release === "number") {
            return yield* fail("profile_invalid_value", at(source, ["release"], `release must be a string`))
          }
          release = doc.release
        }
        if (doc.target !== undefined) target = doc.target
        if (doc.device !== undefined) device = doc.device
        if (doc.rootfs_size !== undefined) rootfsSize = doc.rootfs_size
        if (doc.filesystem !== undefined) filesystem = doc.filesystem
        if (doc.image_name !== undefined) imageName = doc.image_name
        for (const [index, feed] of (doc.repositories ?? []).entries()) {
          feeds.set(feed.name, feed.url)
          feedSources.set(feed.name, { source, index })
        }
        for (const [index, raw] of (doc.repository_keys ?? []).entries()) {
          const key = raw.trim()
          // opkg keeps one file per key id in keys/: two keys of one id would leave one of them out.
          const id = usignPublicKeyId(key)
          const other = id === undefined ? undefined : keysById.get(id)
          if (id !== undefined && other !== undefined && other !== key) {
            return yield* fail(
              "profile_invalid_value",
              at(
                source,
                ["repository_keys", index],
                `repository_keys holds two different keys with the key id ${id}: opkg keeps one key per id`,
              ),
            )
          }
          if (id !== undefined) keysById.set(id, key)
          repositoryKeys.add(key)
        }
        if (doc.repositories_mode !== undefined) repositoriesMode = doc.repositories_mode
        packageSequence.push(...(doc.packages ?? []))
        if (doc.overlay !== undefined) {
          const joined = posix.normalize(posix.join(layer.dir, doc.overlay))
          if (posix.isAbsolute(doc.overlay) || joined === ".." || joined.startsWith("../")) {
            return yield* fail(
              "profile_path_escape",
              at(
                source,
                ["overlay"],
                `overlay \`${doc.overlay}\` points outside the profiles directory`,
                "keep overlay directories inside profiles/, e.g. overlay: files/home-ap",
              ),
            )
          }
          if (!tree.staysInside(joined)) {
            return yield* fail(
              "profile_path_escape",
              at(
                source,
                ["overlay"],
                `overlay \`${doc.overlay}\` is a link that leads outside the profiles directory`,
              ),
            )
          }
          overlayDirs.push({ dir: joined, layer })
        }
        ;(doc.files ?? []).forEach((entry, index) => {
          files.set(entry.path, { entry, layer, index })
        })
        ;(doc.first_boot ?? []).forEach((entry, index) => {
          firstBoot.set(entry.name, { script: entry.script, layer, index })
        })
        for (const service of doc.disabled_services ?? []) disabled.add(service)
        for (const tag of doc.tags ?? []) tags.add(tag)
        for (const [name, reference] of Object.entries(doc.secrets ?? {})) secrets.set(name, reference)
        if (doc.flash?.image !== undefined) flash.image = doc.flash.image
        if (doc.flash?.verify !== undefined) flash.verify = doc.flash.verify
        if (doc.flash?.wipe !== undefined) flash.wipe = doc.flash.wipe
      }

      const abstract = self.loaded.document.abstract === true
      const raspios = yield* resolveRaspios(layers, secrets, abstract)
      if (!abstract && raspios === undefined) {
        for (const [field, value] of [
          ["release", release],
          ["target", target],
          ["device", device],
        ] as const) {
          if (value === undefined) {
            return yield* fail("profile_missing_field", {
              file: self.loaded.source.file,
              line: 1,
              column: 1,
              path: field,
              message: `\`${field}\` is required: set it in this profile or in a parent it extends`,
              hint: "or mark the profile `abstract: true` if it only serves as a parent",
            })
          }
        }
      }

      // Inline files: exactly one of content/secret; referenced secrets must be declared.
      for (const [, { entry, layer, index }] of files) {
        const source = layer.loaded.source
        if ((entry.content === undefined) === (entry.secret === undefined)) {
          return yield* fail(
            "profile_invalid_value",
            at(source, ["files", index], `file ${entry.path} needs exactly one of \`content\` or \`secret\``),
          )
        }
        const names = entry.secret !== undefined ? [entry.secret] : referencedSecrets(entry.content ?? "")
        for (const name of names) {
          if (!secrets.has(name)) {
            return yield* fail(
              "profile_secret_undefined",
              at(
                source,
                ["files", index, entry.secret !== undefined ? "secret" : "content"],
                `secret \`${name}\` is used but not declared`,
                `declare it under secrets:, e.g. ${name}: env:${name.toUpperCase()}`,
              ),
            )
          }
        }
      }
      for (const [name, { script, layer, index }] of firstBoot) {
        for (const secret of referencedSecrets(script)) {
          if (!secrets.has(secret)) {
            return yield* fail(
              "profile_secret_undefined",
              at(
                layer.loaded.source,
                ["first_boot", index, "script"],
                `first-boot script ${name} uses secret \`${secret}\`, which is not declared`,
                `declare it under secrets:, e.g. ${secret}: env:${secret.toUpperCase()}`,
              ),
            )
          }
        }
      }

      for (const [name, url] of feeds) {
        for (const secret of referencedSecrets(url)) {
          const where = feedSources.get(name)
          if (!secrets.has(secret) && where !== undefined) {
            return yield* fail(
              "profile_secret_undefined",
              at(
                where.source,
                ["repositories", where.index, "url"],
                `feed ${name} uses secret \`${secret}\`, which is not declared`,
                `declare it under secrets:, e.g. ${secret}: env:${secret.toUpperCase()}`,
              ),
            )
          }
        }
      }

      // Overlays, layered: later directories win per path.
      const overlay = new Map<string, OverlayEntry>()
      const overlaySources = new Map<string, string>()
      const overlayLimits = {
        files: profileLimits.overlayFiles,
        fileBytes: profileLimits.overlayFileBytes,
        totalBytes: profileLimits.overlayBytes,
      }
      for (const { dir, layer } of overlayDirs) {
        const walked = yield* tree.walk(dir, overlayLimits)
        const overlayTooLarge = (reason: string) =>
          fail(
            "profile_too_large",
            at(
              layer.loaded.source,
              ["overlay"],
              `overlay directory \`${dir}\` is too large: ${reason}`,
              `overlays are limited to ${profileLimits.overlayFiles} files, ${profileLimits.overlayFileBytes / (1024 * 1024)} MiB per file and ${profileLimits.overlayBytes / (1024 * 1024)} MiB in all`,
            ),
          )
        if (walked !== undefined && "_tag" in walked) return yield* overlayTooLarge(walked.reason)
        const entries: ReadonlyArray<TreeEntry> | undefined = walked
        if (entries === undefined) {
          return yield* fail(
            "profile_overlay_missing",
            at(
              layer.loaded.source,
              ["overlay"],
              `overlay directory \`${dir}\` does not exist in the profiles directory${tree.source === "worktree" ? "" : ` at ${tree.source}`}`,
            ),
          )
        }
        for (const entry of entries) {
          if (entry.kind === "symlink" && entry.linkTarget !== undefined) {
            // The Image Builder copies FILES with `cp -L`: an absolute or escaping link would copy a file of
            // the build machine into the image. Chains and dangling links are judged on the staged tree
            // (overlay/overlayLinks.ts); these two are caught here, where the overlay entry is known.
            const absolute = entry.linkTarget.startsWith("/")
            const resolved = posix.normalize(posix.join(posix.dirname(entry.path), entry.linkTarget))
            if (absolute || resolved === ".." || resolved.startsWith("../")) {
              return yield* fail(
                "profile_path_escape",
                at(
                  layer.loaded.source,
                  ["overlay"],
                  absolute
                    ? `overlay link ${dir}/${entry.path} -> ${entry.linkTarget} has an absolute target: the Image Builder copies FILES dereferencing links (cp -L), so it would copy the build machine's ${entry.linkTarget} into the image`
                    : `overlay link ${dir}/${entry.path} -> ${entry.linkTarget} points outside the overlay`,
                  "put the file itself in the overlay, or make the link relative to a file the overlay holds",
                ),
              )
            }
          }
          overlay.set(entry.path, entry)
          overlaySources.set(entry.path, `${dir}/${entry.path}`)
        }
        // Layered directories together are held to the same limits as one.
        if (overlay.size > profileLimits.overlayFiles)
          return yield* overlayTooLarge(
            `with the overlays before it, more than ${profileLimits.overlayFiles} files`,
          )
        let total = 0
        for (const entry of overlay.values()) total += entry.size
        if (total > profileLimits.overlayBytes)
          return yield* overlayTooLarge(
            `with the overlays before it, more than ${profileLimits.overlayBytes / (1024 * 1024)} MiB`,
          )
      }

      const byKey = <A>(map: Map<string, A>) => [...map.keys()].sort()
      const profile: ResolvedProfile = {
        schema: profileSchemaVersion,
        id,
        description: description ?? null,
        abstract,
        parents: layers.slice(0, -1).map((l) => l.id),
        release: release ?? null,
        target: target ?? null,
        device: device ?? null,
        packages: normalisePackages(packageSequence),
        overlay: byKey(overlay).map((path) => overlay.get(path) as OverlayEntry),
        files: byKey(files).map((path) => {
          const { entry } = files.get(path) as { entry: NonNullable<ProfileDocument["files"]>[number] }
          const mode = entry.mode ?? (entry.secret !== undefined ? "0600" : "0644")
          return {
            path,
            mode: mode.length === 3 ? `0${mode}` : mode,
            content: entry.content,
            secret: entry.secret,
          }
        }),
        first_boot: byKey(firstBoot).map((name) => ({
          name,
          script: (firstBoot.get(name) as { script: string }).script,
        })),
        disabled_services: [...disabled].sort(),
        rootfs_size: rootfsSize ?? null,
        ...(filesystem === undefined ? {} : { filesystem }),
        ...(imageName === undefined ? {} : { image_name: imageName }),
        ...(feeds.size === 0 && repositoryKeys.size === 0
          ? {}
          : {
              repositories: {
                mode: repositoriesMode ?? "append",
                feeds: [...feeds].map(([name, url]) => ({ name, url })),
                keys: [...repositoryKeys],
              },
            }),
        tags: [...tags].sort(),
        secrets: Object.fromEntries([...secrets.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
        flash: { image: flash.image ?? "auto", verify: flash.verify ?? "full", wipe: flash.wipe ?? false },
        ...(raspios === undefined ? {} : { kind: "raspios" as const, raspios }),
      }
      const canonical = canonicalJson(profile as unknown as Parameters<typeof canonicalJson>[0])
      const readOverlay = (path: string) => {
        const from = overlaySources.get(path)
        return from === undefined ? Effect.succeed(undefined) : tree.readBytes(from)
      }
      return {
        profile,
        canonical,
        hash: sha256Hex(canonical),
        source: tree.source,
        readOverlay,
      } satisfies ProfileRevision
    })

  return { ids, resolve }
}
