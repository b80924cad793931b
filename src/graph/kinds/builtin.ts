import type { NodeKindDefinition } from "../../store/nodeKind.js"
import { collectArtifactsKind } from "./collectArtifactsNode.js"
import { fetchBuilderKind } from "./fetchBuilderNode.js"
import { makeImageKind } from "./makeImageNode.js"
import { stageOverlayKind } from "./stageOverlayNode.js"

/** The node kinds owrt builds: one entry per kind module. */
export const builtinNodeKinds: ReadonlyArray<NodeKindDefinition> = [
  fetchBuilderKind,
  stageOverlayKind,
  makeImageKind,
  collectArtifactsKind,
]
