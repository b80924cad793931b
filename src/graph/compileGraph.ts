import { Effect, type Scope } from "effect"
import type { ArtifactsManifest } from "../artifacts/collectArtifacts.js"
import type { BuilderStore } from "../builder/builderStore.js"
import type { BuilderArchive } from "../builder/upstream.js"
import { AppConfig } from "../config/appConfig.js"
import { DeviceProfileUnknownError, type OwrtError, SecretInvalidError } from "../errors.js"
import { type BuilderInfo, canonicalDevice } from "../image/builderInfo.js"
import { suggestDevices } from "../image/deviceSuggestion.js"
import type { MakeImageParams } from "../image/makeImage.js"
import { secretsUsed } from "../overlay/stageOverlay.js"
import { type ProfileView, revisionLabel } from "../profile/profileRepository.js"
import { readSecret, referencedSecrets, secretFingerprint } from "../profile/secrets.js"
import type { Progress } from "../progress/progress.js"
import { storeSealingKey } from "../store/sealingKey.js"
import { type Graph, graphRevision, type NodeSpec, type PendingNode } from "./graph.js"
import { collectArtifactsKind, collectArtifactsNode } from "./kinds/collectArtifactsNode.js"
import { fetchBuilderNode } from "./kinds/fetchBuilderNode.js"
import { makeImageKind, makeImageNode } from "./kinds/makeImageNode.js"
import { stageOverlayNode } from "./kinds/stageOverlayNode.js"

/*
 * compileGraph: a profile revision becomes its task graph.
 *
 *   fetch-builder ─┐
 *   stage-overlay ─┴─▶ make-image ──▶ collect-artifacts
 *
 * One key depends on a dependency's output: make-image names the canonical device profile, and resolving an
 * alias (`tplink,archer-c7-v5`) needs the builder's device list (`make info`). `facts.builderInfo` supplies
 * it: realize realizes the builder node first (through the executor) and reads its list once; plan reads
 * the list cached from an earlier run and, without one, leaves make-image and collect-artifacts pending.
 */

export interface CompileFacts {
  /** The device list of the builder `node` holds, or undefined when it is not known yet. */
  readonly builderInfo: (
    archive: BuilderArchive,
    node: NodeSpec,
  ) => Effect.Effect<BuilderInfo | undefined, OwrtError, Progress | Scope.Scope>
  /** The archive a release/target resolves to. */
  readonly resolveArchive: (release: string, target: string) => Effect.Effect<BuilderArchive, OwrtError>
  /**
   * plan: a node whose key cannot be computed (an unknown device) is left pending with the reason, instead
   * of failing the whole plan. A secret that cannot be read is an error all the same.
   */
  readonly lenient: boolean
  /**
   * Look-ups of what is stored (store path, audit, flash of a realized profile): nothing upstream is asked.
   * A Raspberry Pi OS base named by an OS list entry is then found among the stored base images.
   */
  readonly storedOnly?: boolean | undefined
  /** Where a failed make-image keeps its log (the build record's id names it). */
  readonly failureLog?: string | undefined
  /** That build record (`owrt builds log <id>`). */
  readonly buildId?: number | undefined
  /** The store's sealing key, when the caller reads it once for many profiles (default: read here). */
  readonly sealingKey?: Effect.Effect<Uint8Array> | undefined
}

export interface CompiledProfile {
  readonly entry: ProfileView
  readonly graph: Graph
  /** The Image Builder archive of an OpenWrt profile; null for a Raspberry Pi OS profile. */
  readonly archive: BuilderArchive | null
  readonly keys: {
    readonly builder: string
    readonly overlay: string | null
    readonly image: string | null
    readonly artifacts: string | null
  }
}

/**
 * The values of the secrets a profile uses, and their keyed fingerprints (what enters keys: a key changes
 * with a value without revealing it). A secret that cannot be read fails plans too: without it no key past
 * the builder's can be known.
 */
export const readProfileSecrets = (
  entry: ProfileView,
  used: ReadonlyArray<string>,
  /** The store's sealing key as the caller has it (a plan reads it once); read from the store otherwise. */
  knownSealingKey?: Effect.Effect<Uint8Array> | undefined,
) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const p = entry.revision.profile
    const values = new Map<string, string>()
    const fingerprints: Record<string, string> = {}
    const sealingKey = yield* knownSealingKey ?? storeSealingKey(config.store)
    const feedSecrets = new Set(
      "repositories" in p ? (p.repositories?.feeds ?? []).flatMap((feed) => referencedSecrets(feed.url)) : [],
    )
    if (used.length > 0) {
      const fingerprintKey =
        config.secretsKey === null
          ? sealingKey
          : Buffer.from(
              yield* readSecret({
                profile: "graph.config.ts",
                name: "secretsKey",
                field: "secretsKey",
                reference: config.secretsKey,
                baseDir: config.projectRoot,
                env: process.env,
              }),
              "utf8",
            )
      for (const name of used) {
        const value = yield* readSecret({
          profile: p.id,
          name,
          reference: p.secrets[name] ?? "",
          baseDir: config.profiles,
          env: process.env,
        })
        // A feed URL's secret goes into the builder's repositories file: URL characters only, so that no
        // line, option or other host can be written with it.
        if (feedSecrets.has(name) && !feedCredential.test(value)) {
          return yield* new SecretInvalidError({
            profile: p.id,
            secret: name,
            reference: p.secrets[name] ?? "",
            reason:
              "a secret in a feed URL may hold only the characters of a URL's user information (user:password, percent-encoded)",
          })
        }
        values.set(name, value)
        fingerprints[name] = secretFingerprint(fingerprintKey, name, value)
      }
    }
    return { values, fingerprints, sealingKey }
  })

/** RFC 3986 user information: unreserved, percent-encoded and sub-delimiter characters, and `:`. */
const feedCredential = /^[A-Za-z0-9._~!$&'()*+,;=:%-]+$/

const pending = (
  kind: PendingNode["kind"],
  name: string,
  deps: ReadonlyArray<string | null>,
  reason: string,
): PendingNode => ({ kind, key: null, name, deps, reason })

export const compileGraph = (
  entry: ProfileView,
  facts: CompileFacts,
): Effect.Effect<CompiledProfile, OwrtError, AppConfig | BuilderStore | Progress | Scope.Scope> =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const { revision } = entry
    const p = revision.profile
    const label = revisionLabel(entry)
    // A Raspberry Pi OS profile: fetch-base-image, customise-image, collect-artifacts.
    // (Loaded only then: an OpenWrt profile's commands do not pay for the Raspberry Pi OS modules.)
    if (p.kind === "raspios") {
      const { compileRaspiosGraph } = yield* Effect.promise(() => import("./compileRaspiosGraph.js"))
      return yield* compileRaspiosGraph(entry, facts)
    }
    // stage-overlay: secrets are read now, and enter the key only as keyed fingerprints.
    const secrets = yield* readProfileSecrets(entry, secretsUsed(revision), facts.sealingKey)
    const overlay = {
      node: yield* stageOverlayNode({
        revision,
        secretValues: secrets.values,
        fingerprints: secrets.fingerprints,
        sealingKey: secrets.sealingKey,
      }),
      values: secrets.values,
    }
    const secretValues = overlay.values

    // After the profile's own inputs: a secret that cannot be read fails before upstream is asked.
    const archive = yield* facts.resolveArchive(p.release ?? "", p.target ?? "")
    const builder = yield* fetchBuilderNode(archive, { stallSeconds: config.timeouts.stall })

    const info = yield* facts.builderInfo(archive, builder)
    const device = info ? canonicalDevice(info, p.device ?? "") : undefined
    if (info && device === undefined && !facts.lenient) {
      return yield* new DeviceProfileUnknownError({
        profile: p.id,
        device: p.device ?? "",
        builder: `${archive.release} ${archive.target}`,
        suggestions: suggestDevices(info, p.device ?? ""),
      })
    }

    const nodes: Array<NodeSpec | PendingNode> = [builder]
    nodes.push(overlay.node)
    if (device === undefined || info === undefined) {
      const reason =
        info === undefined
          ? "the builder's device list is known once it has been fetched"
          : `device ${p.device ?? ""} is not a device profile of ${archive.release} ${archive.target}`
      nodes.push(pending(makeImageKind, `${p.id}-image`, [builder.key, overlay.node.key], reason))
      nodes.push(pending(collectArtifactsKind, `${p.id}-artifacts`, [null], reason))
      return {
        entry,
        archive,
        graph: { label, nodes, root: null },
        keys: { builder: builder.key, overlay: overlay.node.key, image: null, artifacts: null },
      }
    }

    const params: MakeImageParams = {
      builderKey: builder.key,
      overlayKey: overlay.node.key,
      release: p.release ?? "",
      target: p.target ?? "",
      device,
      packages: p.packages,
      disabledServices: p.disabled_services,
      rootfsSize: p.rootfs_size,
      ...(p.filesystem === undefined ? {} : { filesystem: p.filesystem }),
      ...(p.image_name === undefined ? {} : { imageName: p.image_name }),
      ...(p.repositories === undefined ? {} : { repositories: p.repositories }),
      profile: p.id,
      revision: revision.hash,
    }
    const image = yield* makeImageNode({
      params,
      secrets: secretValues,
      builderInfo: info,
      timeoutSeconds: config.timeouts.build,
      makeEnv: config.makeEnv,
      failureLog: facts.failureLog,
      buildId: facts.buildId,
    })
    const manifest = (key: string): Omit<ArtifactsManifest, "images" | "packages" | "sbom"> => ({
      owrt: 1,
      profile: p.id,
      revision: revision.hash,
      inputs: {
        release: params.release,
        target: params.target,
        device,
        packages: params.packages,
        disabledServices: params.disabledServices,
        rootfsSize: params.rootfsSize,
        ...(params.repositories === undefined ? {} : { repositories: params.repositories }),
      },
      builder: {
        key: builder.key,
        archive: archive.name,
        archiveSha256: archive.sha256,
        signedBy: archive.signedBy,
      },
      keys: {
        fetchBuilder: builder.key,
        stageOverlay: overlay.node.key,
        makeImage: image.key,
        collectArtifacts: key,
      },
    })
    const artifacts = yield* collectArtifactsNode({
      imageKey: image.key,
      profile: p.id,
      private: secretValues.size > 0,
      manifest,
    })
    nodes.push(image, artifacts)
    return {
      entry,
      archive,
      graph: { label, nodes, root: artifacts.key, revision: graphRevision(entry) },
      keys: { builder: builder.key, overlay: overlay.node.key, image: image.key, artifacts: artifacts.key },
    }
  })
