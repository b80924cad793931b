import { Schema } from "effect"
import type { Requester } from "../../db/buildRecords.js"
import type { ErrorReport } from "../../errors.js"
import { ErrorReportSchema } from "../../operations/errorReport.js"
import { realize } from "../../operations/index.js"
import type { NodeState as ExecutorNodeState, ProgressEvent } from "../../progress/progress.js"

/*
 * A realize job: one profile revision being built (or reused) on behalf of every HTTP client that asked
 * for it while it ran. Everything that happens to it is an event in one ordered log; its status is what
 * those events add up to, so a client that polls and one that streams see the same thing.
 */

export const nodeKinds = ["fetch-builder", "stage-overlay", "make-image", "collect-artifacts"] as const
export type NodeKind = (typeof nodeKinds)[number]

export const NodeStateSchema = Schema.Literal("pending", "running", "done", "cached", "failed")
export type NodeState = typeof NodeStateSchema.Type

export const JobStateSchema = Schema.Literal("queued", "running", "succeeded", "failed", "interrupted")
export type JobState = typeof JobStateSchema.Type

const RealizeResultSchema = realize.result

const DownloadSchema = Schema.Struct({ bytes: Schema.Int, total: Schema.NullOr(Schema.Int) })

export const JobEventSchema = Schema.Union(
  Schema.Struct({ seq: Schema.Int, type: Schema.Literal("state"), state: JobStateSchema, at: Schema.String }),
  Schema.Struct({
    seq: Schema.Int,
    type: Schema.Literal("node"),
    kind: Schema.Literal(...nodeKinds),
    state: NodeStateSchema,
  }),
  Schema.Struct({ seq: Schema.Int, type: Schema.Literal("log"), line: Schema.String }),
  Schema.Struct({
    seq: Schema.Int,
    type: Schema.Literal("download"),
    bytes: Schema.Int,
    total: Schema.NullOr(Schema.Int),
  }),
  Schema.Struct({ seq: Schema.Int, type: Schema.Literal("result"), result: RealizeResultSchema }),
  // Not "error": EventSource reserves that name for its own connection errors.
  Schema.Struct({ seq: Schema.Int, type: Schema.Literal("failure"), error: ErrorReportSchema }),
  Schema.Struct({ seq: Schema.Int, type: Schema.Literal("end"), state: JobStateSchema }),
).annotations({
  identifier: "JobEvent",
  description: "One event of a job; `seq` counts from 0 and is the SSE event id",
})
export type JobEvent = typeof JobEventSchema.Type
type NewEvent = JobEvent extends infer E ? (E extends JobEvent ? Omit<E, "seq"> : never) : never

export const JobSchema = Schema.Struct({
  id: Schema.String,
  profile: Schema.String,
  rev: Schema.Int,
  revision: Schema.String.annotations({
    description: "The resolved revision's hash: what identical requests share",
  }),
  rebuild: Schema.Boolean,
  state: JobStateSchema,
  requests: Schema.Int.annotations({
    description: "How many requests this job answers (1 + those that joined)",
  }),
  requestedBy: Schema.String,
  createdAt: Schema.String,
  startedAt: Schema.NullOr(Schema.String),
  finishedAt: Schema.NullOr(Schema.String),
  nodes: Schema.Array(Schema.Struct({ kind: Schema.Literal(...nodeKinds), state: NodeStateSchema })),
  download: Schema.NullOr(DownloadSchema),
  logLines: Schema.Int.annotations({ description: "Lines in the whole log; `log` holds those from `since`" }),
  log: Schema.Array(Schema.String),
  events: Schema.Int.annotations({ description: "Events so far (the next SSE id)" }),
  result: Schema.NullOr(RealizeResultSchema),
  error: Schema.NullOr(ErrorReportSchema),
}).annotations({ identifier: "Job" })
export type JobJson = typeof JobSchema.Type

/** How the executor's node states show in a job: waiting, running, or how it ended. */
const jobNodeState: Partial<Record<ExecutorNodeState, NodeState>> = {
  substituting: "running",
  building: "running",
  cached: "cached",
  done: "done",
  failed: "failed",
}

/** Live log lines kept per job: a runaway build must not grow the server without bound. */
const maxLogLines = 5000
/** Download progress is an event at most this often, so a fast download does not flood the log. */
const downloadEventMs = 250

export class Job {
  readonly createdAt = new Date().toISOString()
  state: JobState = "queued"
  requests = 1
  startedAt: string | null = null
  finishedAt: string | null = null
  download: { bytes: number; total: number | null } | null = null
  result: typeof RealizeResultSchema.Type | null = null
  error: ErrorReport | null = null
  private readonly nodes = new Map<NodeKind, NodeState>(nodeKinds.map((kind) => [kind, "pending"]))
  private readonly log: Array<string> = []
  private readonly events: Array<JobEvent> = []
  private readonly listeners = new Set<(event: JobEvent) => void>()
  private lastDownloadEvent = 0

  constructor(
    readonly id: string,
    /** What identical requests share: the resolved revision, and whether it is a rebuild. */
    readonly key: string,
    readonly profile: string,
    readonly rev: number,
    readonly revision: string,
    readonly rebuild: boolean,
    readonly requestedBy: Requester,
  ) {
    this.emit({ type: "state", state: "queued", at: this.createdAt })
  }

  /** The realizer's progress task name for this job's profile revision. */
  get task(): string {
    return `${this.profile}@${this.rev}`
  }

  get finished(): boolean {
    return this.state !== "queued" && this.state !== "running"
  }

  get fetching(): boolean {
    return this.nodes.get("fetch-builder") === "running"
  }

  eventsFrom(from: number): ReadonlyArray<JobEvent> {
    return this.events.slice(Math.max(0, from))
  }

  /** Calls `listener` with every later event; returns the unsubscribe. */
  listen(listener: (event: JobEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  start(): void {
    this.startedAt = new Date().toISOString()
    this.setState("running", this.startedAt)
  }

  /** This job's own progress: its request's `Progress` reports here, nothing else does. */
  progress(event: ProgressEvent): void {
    if (this.finished) return
    if (event.kind === "done") {
      this.appendLog(`✓ ${event.message ?? event.task}`)
      return
    }
    if (event.kind !== "node") return
    const kind = nodeKinds.find((k) => k === event.node)
    if (kind === undefined) return
    if (event.bytes !== undefined) {
      this.download = { bytes: event.bytes, total: event.total ?? null }
      const now = Date.now()
      if (now - this.lastDownloadEvent >= downloadEventMs || event.bytes === event.total) {
        this.lastDownloadEvent = now
        this.emit({ type: "download", bytes: event.bytes, total: event.total ?? null })
      }
      return
    }
    if (event.line !== undefined) {
      this.appendLog(event.line)
      return
    }
    const state = jobNodeState[event.state]
    const current = this.nodes.get(kind)
    // The builder is realized first (its device list names the image's key) and found again with the
    // whole graph: what this job built stays "done".
    if (state === undefined || current === state || (current === "done" && state === "cached")) return
    if (state === "running") this.appendLog(`▸ ${kind}`)
    this.setNode(kind, state)
  }

  succeed(result: typeof RealizeResultSchema.Type): void {
    // Nodes that never ran were already in the store.
    for (const [kind, state] of this.nodes) {
      if (state === "running") this.setNode(kind, "done")
      else if (state === "pending") this.setNode(kind, "cached")
    }
    this.result = result
    this.emit({ type: "result", result })
    this.finish("succeeded")
  }

  fail(error: ErrorReport): void {
    for (const [kind, state] of this.nodes) if (state === "running") this.setNode(kind, "failed")
    this.error = error
    this.emit({ type: "failure", error })
    this.finish("failed")
  }

  interrupt(): void {
    for (const [kind, state] of this.nodes) if (state === "running") this.setNode(kind, "failed")
    this.finish("interrupted")
  }

  toJson(since = 0): JobJson {
    return {
      id: this.id,
      profile: this.profile,
      rev: this.rev,
      revision: this.revision,
      rebuild: this.rebuild,
      state: this.state,
      requests: this.requests,
      requestedBy: this.requestedBy,
      createdAt: this.createdAt,
      startedAt: this.startedAt,
      finishedAt: this.finishedAt,
      nodes: nodeKinds.map((kind) => ({ kind, state: this.nodes.get(kind) ?? "pending" })),
      download: this.download,
      logLines: this.log.length,
      log: this.log.slice(Math.max(0, since)),
      events: this.events.length,
      result: this.result,
      error: this.error,
    }
  }

  private finish(state: "succeeded" | "failed" | "interrupted"): void {
    if (this.finished) return
    this.finishedAt = new Date().toISOString()
    this.setState(state, this.finishedAt)
    this.emit({ type: "end", state })
    this.listeners.clear()
  }

  private setState(state: JobState, at: string): void {
    this.state = state
    this.emit({ type: "state", state, at })
  }

  private setNode(kind: NodeKind, state: NodeState): void {
    this.nodes.set(kind, state)
    this.emit({ type: "node", kind, state })
  }

  private appendLog(line: string): void {
    if (this.log.length >= maxLogLines) return
    const text = this.log.length === maxLogLines - 1 ? "… (log truncated; see the build's log)" : line
    this.log.push(text)
    this.emit({ type: "log", line: text })
  }

  private emit(event: NewEvent): void {
    const full = { ...event, seq: this.events.length } as JobEvent
    this.events.push(full)
    for (const listener of this.listeners) listener(full)
  }
}
