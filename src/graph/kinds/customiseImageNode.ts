import type { Effect } from "effect"
import {
  type CustomiseParams,
  customiseImageInto,
  customiseImageSchema,
} from "../../raspios/customiseImage.js"
import type { NodeKindDefinition } from "../../store/nodeKind.js"
import type { Canonical } from "../../text/canonicalJson.js"
import { makeSpec, type NodeSpec } from "../graph.js"

/*
 * customise-image: a private copy of the base image with the profile's settings applied, rootless (mtools,
 * debugfs) and reproducibly. Its key covers the base image's key, every setting, the files and first-boot
 * scripts, the secrets by keyed fingerprint only, and the profile id and revision the build marker names.
 */
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
      customiseImageInto({
        params: inputs.params,
        key,
        basePath: stored.get(inputs.baseKey)?.path ?? "",
        secrets: inputs.secrets,
        output,
        work,
      }),
  })
