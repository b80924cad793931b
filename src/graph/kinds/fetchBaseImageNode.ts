import { Effect } from "effect"
import type { BaseImage } from "../../raspios/baseImage.js"
import type { NodeKindDefinition } from "../../store/nodeKind.js"
import { makeSpec, type NodeSpec } from "../graph.js"

/*
 * fetch-base-image: a Raspberry Pi OS base image, downloaded, verified against the SHA-256 of the download
 * and of the decompressed image (from the OS list or the profile), decompressed. A fixed-output node keyed
 * by the decompressed image's SHA-256 alone: the same image is stored once, whichever URL or compression it
 * came by, and it is never modified (customise-image works on a copy).
 */
/** The download and decompression, loaded when a Raspberry Pi OS profile is built. */
const baseImageModule = Effect.promise(() => import("../../raspios/baseImage.js"))

export const fetchBaseImageKind: NodeKindDefinition = {
  kind: "fetch-base-image",
  schema: 1,
  description: "a verified, decompressed Raspberry Pi OS base image",
  slot: "download",
  digest: "listing",
  rebuildable: false,
  audited: false,
}

export const fetchBaseImageNode = (
  base: BaseImage,
  options: { readonly stallSeconds: number },
): Effect.Effect<NodeSpec> =>
  makeSpec({
    kind: fetchBaseImageKind,
    name: `raspios-base-${base.releaseDate ?? base.extractSha256.slice(0, 12)}`,
    deps: [],
    keyInputs: { extractSha256: base.extractSha256 },
    private: false,
    build: ({ output, work }) =>
      Effect.flatMap(baseImageModule, ({ fetchBaseImageInto }) =>
        fetchBaseImageInto({ base, output, work, stallSeconds: options.stallSeconds }),
      ),
  })
