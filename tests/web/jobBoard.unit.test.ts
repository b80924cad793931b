import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { makeJobBoard } from "../../src/web/jobs/jobBoard.js"
import { mirrorProjectLayer } from "../helpers/mirrorProject.js"

/*
 * (scopedLive: the real clock, since store locks are polled.)
 *
 * The web job board in-process: the real core over a temporary store, against the stand-in mirror on
 * 127.0.0.1. No CLI, no bundle, no HTTP server: jobs are submitted and followed as the routes do.
 */

const ap = (device: string) =>
  `release: "23.05.5"\ntarget: ath79/generic\ndevice: ${device}\npackages: [luci]\nfiles: [{path: /etc/banner, content: board}]\n`

const api = { requestedBy: "api" } as const

describe("job board", () => {
  it.scopedLive(
    "runs a job to its end with its own node states and log; an identical request joins it",
    () =>
      Effect.gen(function* () {
        const board = yield* makeJobBoard(1)
        yield* Effect.addFinalizer(() => board.shutdown)
        const first = yield* board.submit({ profile: "ap" }, api)
        const again = yield* board.submit({ profile: "ap" }, api)
        expect(first.joined).toBe(false)
        expect(again.joined).toBe(true)
        expect(again.job.id).toBe(first.job.id)
        const events = Chunk.toReadonlyArray(yield* Stream.runCollect(board.follow(first.job, 0)))
        const json = first.job.toJson()
        expect(json.state, JSON.stringify(json.error)).toBe("succeeded")
        expect(json.nodes.map((n) => n.state)).toEqual(["done", "done", "done", "done"])
        expect(
          events.filter((e) => e.type === "node").map((e) => (e.type === "node" ? e.kind : "")),
        ).toContain("make-image")
        // Every line of make's output, as the stored log has it.
        expect(json.log.some((line) => line.startsWith("$ make image"))).toBe(true)
        expect(json.logLines).toBeGreaterThan(20)
        expect(events.at(-1)).toMatchObject({ type: "end", state: "succeeded" })
        expect(json.result?.artifacts.length).toBeGreaterThan(0)
      }).pipe(Effect.provide(mirrorProjectLayer({ ap: ap("tplink_archer-c7-v5") }))),
    120_000,
  )

  it.scopedLive(
    "reports a failing job with its typed error, and another job's progress never reaches it",
    () =>
      Effect.gen(function* () {
        const board = yield* makeJobBoard(2)
        yield* Effect.addFinalizer(() => board.shutdown)
        const bad = yield* board.submit({ profile: "bad" }, api)
        const good = yield* board.submit({ profile: "ap" }, api)
        yield* Stream.runDrain(board.follow(bad.job, 0))
        yield* Stream.runDrain(board.follow(good.job, 0))
        expect(bad.job.toJson().state).toBe("failed")
        expect(bad.job.toJson().error?.code).toBe("device_profile_unknown")
        expect(good.job.toJson().state).toBe("succeeded")
        // The failing job never saw the other's make output.
        expect(bad.job.toJson().log.some((line) => line.startsWith("$ make image"))).toBe(false)
      }).pipe(
        Effect.provide(mirrorProjectLayer({ ap: ap("tplink_archer-c7-v5"), bad: ap("tplink_archer-c7-v9") })),
      ),
    120_000,
  )
})
