import { Effect } from "effect"
import { type GitError, InternalError } from "../../errors.js"
import type { CustomiseParams } from "../../raspios/customiseImage.js"
import type { NodeKindDefinition } from "../../store/nodeKind.js"
import type { Canonical } from "../../text/canonicalJson.js"
import { sha256Hex } from "../../text/digest.js"
import { makeSpec, type NodeSpec } from "../graph.js"

/*
 * customise-image: a private copy of the base image with the profile's settings applied, rootless (mtools,
 * debugfs) and reproducibly. Its key covers the base image's key, every setting, the files and first-boot
 * scripts, the secrets by keyed fingerprint only, and the profile id and revision the build marker names.
 */
/** The version of customise-image's key inputs and output (part of its key). */
export const customiseImageSchema = 1

/** The customisation itself (mtools, debugfs, …), loaded when a Raspberry Pi OS image is built. */
const customiseModule = Effect.promise(() => import("../../raspios/customiseImage.js"))

export const customiseImageKind: NodeKindDefinition = {
  kind: "customise-image",
  schema: customiseImageSchema,
  description: "the base image customised for a profile (a raw .img)",
  slot: "build",
  digest: "content",
  rebuildable: true,
  audited: true,
}

export const customiseImageNode = (inputs: {
  readonly baseKey: string
  readonly params: CustomiseParams
  readonly secrets: ReadonlyMap<string, string>
  readonly fingerprints: Readonly<Record<string, string>>
  /** Reads an overlay file of the profile's revision. */
  readonly readOverlay: (path: string) => Effect.Effect<Uint8Array | undefined, GitError | InternalError>
}): Effect.Effect<NodeSpec> =>
  makeSpec({
    kind: customiseImageKind,
    name: `${inputs.params.profile}-image`,
    deps: [inputs.baseKey],
    keyInputs: {
      base: inputs.baseKey,
      params: inputs.params as unknown as Canonical,
      secrets: inputs.fingerprints,
    },
    private: inputs.secrets.size > 0,
    build: ({ key, output, work, inputs: stored }) =>
      Effect.gen(function* () {
        // The overlay's bytes, each checked against the digest its key was made with.
        const overlay = new Map<string, Uint8Array>()
        for (const entry of inputs.params.overlay ?? []) {
          if (entry.kind !== "file") continue
          const bytes = yield* inputs.readOverlay(entry.path)
          if (bytes === undefined || sha256Hex(bytes) !== entry.sha256) {
            return yield* new InternalError({
              cause: `overlay file ${entry.path} of ${inputs.params.profile} changed while building; run again`,
            })
          }
          overlay.set(entry.path, bytes)
        }
        const { customiseImageInto } = yield* customiseModule
        yield* customiseImageInto({
          params: inputs.params,
          key,
          basePath: stored.get(inputs.baseKey)?.path ?? "",
          secrets: inputs.secrets,
          overlay,
          output,
          work,
        })
      }),
  })
