import { Effect, Schema } from "effect"
import { Progress } from "../progress/progress.js"

/*
 * How far each card write started from the web has got: the write's own `Progress` (provided in its
 * context, so it hears only its own events) keeps the latest step and byte count here, and the flash page
 * polls /api/flash/progress while its write request is open.
 */

export const FlashProgressSchema = Schema.Struct({
  device: Schema.String.annotations({ description: "The device as the request named it" }),
  source: Schema.String.annotations({ description: "The image source as the request named it" }),
  startedAt: Schema.String,
  task: Schema.NullOr(Schema.String).annotations({
    description: "What it is doing now: `write <device>`, `verify <device>`, or a step before writing",
  }),
  bytes: Schema.NullOr(Schema.Int).annotations({ description: "Bytes of the image written (or read back)" }),
  total: Schema.NullOr(Schema.Int).annotations({ description: "Bytes of the image" }),
}).annotations({ identifier: "FlashProgress" })
export type FlashProgress = typeof FlashProgressSchema.Type

export interface FlashProgressBoard {
  /** Runs `write` with its own Progress reporting here, listed until it ends. */
  readonly watch: <A, E, R>(
    who: { readonly device: string; readonly source: string },
    write: Effect.Effect<A, E, R>,
  ) => Effect.Effect<A, E, Exclude<R, Progress>>
  /** The writes running now, oldest first. */
  readonly list: () => ReadonlyArray<FlashProgress>
}

export const makeFlashProgressBoard = (): FlashProgressBoard => {
  const running = new Set<{ current: FlashProgress }>()
  return {
    watch: (who, write) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          const entry = {
            current: {
              device: who.device,
              source: who.source,
              startedAt: new Date().toISOString(),
              task: null,
              bytes: null,
              total: null,
            } as FlashProgress,
          }
          running.add(entry)
          return entry
        }),
        (entry) =>
          Effect.provideService(write, Progress, {
            report: (event) => {
              if (event.kind === "bytes") {
                entry.current = {
                  ...entry.current,
                  task: event.task,
                  bytes: event.bytes,
                  total: event.total ?? null,
                }
              } else if (event.kind === "step") {
                entry.current = { ...entry.current, task: event.message, bytes: null, total: null }
              } else if (event.kind === "node" && event.line === undefined && event.bytes === undefined) {
                // A profile built before its image is written: which node, in which state.
                const task = `${event.task}: ${event.node} ${event.state}`
                entry.current = { ...entry.current, task, bytes: null, total: null }
              }
            },
          }),
        (entry) => Effect.sync(() => running.delete(entry)),
      ),
    list: () => [...running].map((entry) => entry.current),
  }
}
