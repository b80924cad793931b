import type { NodeKindDefinition } from "../../store/nodeKind.js"
import { collectArtifactsKind } from "./collectArtifactsNode.js"
import { customiseImageKind } from "./customiseImageNode.js"
import { fetchBaseImageKind } from "./fetchBaseImageNode.js"
import { fetchBuilderKind } from "./fetchBuilderNode.js"
import { makeImageKind } from "./makeImageNode.js"
import { stageOverlayKind } from "./stageOverlayNode.js"

/** The node kinds owrt builds: one entry per kind module. */
export const builtinNodeKinds: ReadonlyArray<NodeKindDefinition> = [
  fetchBuilderKind,
  stageOverlayKind,
  makeImageKind,
  collectArtifactsKind,
  // Raspberry Pi OS (docs/raspberry-pi.md); collect-artifacts is shared.
  fetchBaseImageKind,
  customiseImageKind,
]
