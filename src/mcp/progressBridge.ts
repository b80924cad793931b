import { Layer } from "effect"
import { Progress, type ProgressEvent } from "../progress/progress.js"
import { formatBytes } from "../progress/terminalProgress.js"

/** What a progress listener receives: a monotonically rising count and what is happening now. */
export interface ProgressUpdate {
  readonly progress: number
  readonly message: string
}

export interface ProgressBridge {
  /** The core's Progress service, built once with the app layer, forwarding to whoever listens now. */
  readonly layer: Layer.Layer<Progress>
  /** Listens until the returned function is called. */
  readonly subscribe: (listener: (update: ProgressUpdate) => void) => () => void
}

const describe = (event: ProgressEvent): string =>
  event.kind === "bytes"
    ? `${event.task}: ${formatBytes(event.bytes)}${event.total ? ` of ${formatBytes(event.total)}` : ""}`
    : event.kind === "step"
      ? `${event.task}: ${event.message}`
      : `${event.task}: ${event.message ?? "done"}`

/**
 * Fans the core's progress events out to the tool calls that asked for progress. The core's events are
 * not tied to a request, so every listening call hears every event; the message names the task
 * (`profile@rev`, or the download) it is about. Byte counts are sent at most five times a second.
 */
export const makeProgressBridge = (): ProgressBridge => {
  const listeners = new Set<{
    readonly send: (update: ProgressUpdate) => void
    count: number
    lastBytes: number
  }>()
  const report = (event: ProgressEvent) => {
    const now = Date.now()
    for (const listener of listeners) {
      if (event.kind === "bytes") {
        if (now - listener.lastBytes < 200) continue
        listener.lastBytes = now
      }
      listener.count += 1
      listener.send({ progress: listener.count, message: describe(event) })
    }
  }
  return {
    layer: Layer.succeed(Progress, { report }),
    subscribe: (send) => {
      const listener = { send, count: 0, lastBytes: 0 }
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
  }
}
