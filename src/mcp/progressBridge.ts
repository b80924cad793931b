import type { Context } from "effect"
import type { Progress, ProgressEvent } from "../progress/progress.js"
import { formatBytes } from "../progress/terminalProgress.js"

/** What a tool call's progress notifications carry: a rising count and what is happening now. */
export interface ProgressUpdate {
  readonly progress: number
  readonly message: string
}

const describe = (event: ProgressEvent): string => {
  switch (event.kind) {
    case "node":
      return event.bytes !== undefined
        ? `${event.task}: ${event.node} ${formatBytes(event.bytes)}${event.total ? ` of ${formatBytes(event.total)}` : ""}`
        : `${event.task}: ${event.node} ${event.line !== undefined ? event.line : event.state}`
    case "bytes":
      return `${event.task}: ${formatBytes(event.bytes)}${event.total ? ` of ${formatBytes(event.total)}` : ""}`
    case "step":
      return `${event.task}: ${event.message}`
    case "done":
      return `${event.task}: ${event.message ?? "done"}`
  }
}

/** Byte counts and build output lines reach a client at most this often (node states always do). */
const throttleMs = 200

/**
 * The `Progress` of one tool call: it is provided in that call's context, so the call hears its own
 * events and no other's. Byte counts and log lines are thinned to one per 200 ms; node state changes and
 * the end of a task are always sent.
 */
export const toolCallProgress = (send: (update: ProgressUpdate) => void): Context.Tag.Service<Progress> => {
  let count = 0
  let lastFrequent = 0
  return {
    report: (event) => {
      const frequent =
        event.kind === "bytes" ||
        (event.kind === "node" && (event.bytes !== undefined || event.line !== undefined))
      if (frequent) {
        const now = Date.now()
        if (now - lastFrequent < throttleMs) return
        lastFrequent = now
      }
      count += 1
      send({ progress: count, message: describe(event) })
    },
  }
}
