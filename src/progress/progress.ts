import { Context, Layer } from "effect"

/** Where a graph node is: queued → checking → cached, or → substituting/building → done, or failed. */
export type NodeState = "queued" | "checking" | "substituting" | "building" | "cached" | "done" | "failed"

export const nodeStates: ReadonlyArray<NodeState> = [
  "queued",
  "checking",
  "substituting",
  "building",
  "cached",
  "done",
  "failed",
]

/** One node of a graph the executor walks: its state, and for a running one bytes or a log line. */
export interface NodeEvent {
  readonly kind: "node"
  /** The graph's label: `home-ap@3`. */
  readonly task: string
  /** The node's kind: `make-image`. */
  readonly node: string
  readonly key: string
  readonly state: NodeState
  readonly bytes?: number | undefined
  readonly total?: number | undefined
  /** A line of the node's build output (secrets redacted). */
  readonly line?: string | undefined
}

/**
 * What long work reports as it goes; frontends render it (a TTY line, a web job, MCP progress
 * notifications). The caller provides the `Progress` service in the context of its own request.
 */
export type ProgressEvent =
  | NodeEvent
  | {
      readonly kind: "bytes"
      readonly task: string
      readonly bytes: number
      readonly total?: number | undefined
    }
  | { readonly kind: "step"; readonly task: string; readonly message: string }
  | { readonly kind: "done"; readonly task: string; readonly message?: string | undefined }

export class Progress extends Context.Tag("owrt/Progress")<
  Progress,
  { readonly report: (event: ProgressEvent) => void }
>() {}

export const silentProgress = Layer.succeed(Progress, { report: () => undefined })
