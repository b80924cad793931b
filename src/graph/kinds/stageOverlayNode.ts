import { Effect } from "effect"
import type { ProfileInvalidError } from "../../errors.js"
import { stageOverlay, stageOverlayKeyInputs, stageOverlaySchema } from "../../overlay/stageOverlay.js"
import type { ProfileRevision } from "../../profile/resolveProfile.js"
import type { NodeKindDefinition } from "../../store/nodeKind.js"
import { makeSpec, type NodeSpec } from "../graph.js"

export const stageOverlayKind: NodeKindDefinition = {
  kind: "stage-overlay",
  schema: stageOverlaySchema,
  description:
    "the tree passed to the Image Builder as FILES= (overlay files, inline files, first-boot scripts)",
  slot: "none",
  digest: "content",
  rebuildable: false,
  audited: false,
}

export interface StageOverlayInputs {
  readonly revision: ProfileRevision
  readonly secretValues: ReadonlyMap<string, string>
  /** Keyed fingerprints of the secrets it uses: the key changes with a value without revealing it. */
  readonly fingerprints: Readonly<Record<string, string>>
  /** Contents are digested under the store's sealing key: a staged tree may hold secret values. */
  readonly sealingKey: Uint8Array
}

export const stageOverlayNode = (inputs: StageOverlayInputs): Effect.Effect<NodeSpec, ProfileInvalidError> =>
  Effect.flatMap(stageOverlayKeyInputs(inputs.revision, inputs.fingerprints), (keyInputs) =>
    makeSpec({
      kind: stageOverlayKind,
      name: "overlay",
      deps: [],
      keyInputs,
      // A tree holding secret values, and every output built from it, is readable by its owner only.
      private: inputs.secretValues.size > 0,
      digestKey: inputs.sealingKey,
      build: ({ output }) => stageOverlay(inputs.revision, inputs.secretValues, output),
    }),
  )
