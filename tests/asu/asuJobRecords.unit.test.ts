import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { AsuJobRecords } from "../../src/db/asuJobRecords.js"
import { scratchStoreLayer } from "../helpers/testLayers.js"

const job = (hash: string, ttl = { result: 3600, failure: 3600 }) =>
  AsuJobRecords.enqueue({
    requestHash: hash,
    request: JSON.stringify({ hash }),
    binDir: `bin-${hash}`,
    resultTtlSeconds: ttl.result,
    failureTtlSeconds: ttl.failure,
  })

describe("the ASU job queue's table", () => {
  it.scopedLive("keeps jobs in order, with 0-based positions, and hands each out once", () =>
    Effect.gen(function* () {
      yield* job("a")
      yield* job("b")
      yield* job("c")
      const c = yield* AsuJobRecords.find("c")
      expect(c?.status).toBe("queued")
      expect(yield* AsuJobRecords.position(c?.id ?? 0)).toBe(2)
      expect(yield* AsuJobRecords.queued()).toBe(3)
      expect((yield* AsuJobRecords.claimNext())?.request_hash).toBe("a")
      expect(yield* AsuJobRecords.position(c?.id ?? 0)).toBe(1)
      expect((yield* AsuJobRecords.claimNext())?.request_hash).toBe("b")
      expect((yield* AsuJobRecords.find("a"))?.attempts).toBe(1)
      yield* AsuJobRecords.stage("a", "building_image")
      expect((yield* AsuJobRecords.find("a"))?.imagebuilder_status).toBe("building_image")
      yield* AsuJobRecords.finish("a", { body: "{}", stdout: "log", stderr: "" })
      expect(yield* AsuJobRecords.find("a")).toMatchObject({
        status: "finished",
        imagebuilder_status: "done",
      })
      expect((yield* AsuJobRecords.findByBinDir("bin-a"))?.request_hash).toBe("a")
    }).pipe(Effect.provide(scratchStoreLayer())),
  )

  it.scopedLive("retries a job that was running at a crash once, then fails it", () =>
    Effect.gen(function* () {
      yield* job("x")
      yield* AsuJobRecords.claimNext()
      // The server died here: on start, the job goes back to the queue.
      expect(yield* AsuJobRecords.recover()).toBe(1)
      expect(yield* AsuJobRecords.find("x")).toMatchObject({ status: "queued", attempts: 1 })
      yield* AsuJobRecords.claimNext()
      // And died again.
      expect(yield* AsuJobRecords.recover()).toBe(0)
      expect(yield* AsuJobRecords.find("x")).toMatchObject({
        status: "failed",
        detail: "Error: the build was interrupted twice (server restarts)",
      })
    }).pipe(Effect.provide(scratchStoreLayer())),
  )

  it.scopedLive("does not count a clean shutdown's interruption as an attempt", () =>
    Effect.gen(function* () {
      yield* job("y")
      yield* AsuJobRecords.claimNext()
      yield* AsuJobRecords.requeue("y")
      expect(yield* AsuJobRecords.find("y")).toMatchObject({ status: "queued", attempts: 0 })
    }).pipe(Effect.provide(scratchStoreLayer())),
  )

  it.scopedLive("forgets a job once its time-to-live has passed, and on request", () =>
    Effect.gen(function* () {
      yield* job("old", { result: 3600, failure: 0 })
      yield* AsuJobRecords.claimNext()
      yield* AsuJobRecords.fail("old", { detail: "Error: x", stdout: "", stderr: "" })
      // A failure kept for 0 s has expired: the same request builds again.
      expect(yield* AsuJobRecords.find("old")).toBeUndefined()
      yield* AsuJobRecords.purgeExpired()
      const sql = yield* SqlClient.SqlClient
      expect(yield* sql`SELECT request_hash FROM asu_jobs`).toEqual([])
      yield* job("kept")
      yield* AsuJobRecords.claimNext()
      yield* AsuJobRecords.fail("kept", { detail: "Error: y", stdout: "", stderr: "" })
      expect((yield* AsuJobRecords.find("kept"))?.status).toBe("failed")
      expect(yield* AsuJobRecords.forget("kept")).toBe(true)
      expect(yield* AsuJobRecords.find("kept")).toBeUndefined()
    }).pipe(Effect.provide(scratchStoreLayer())),
  )
})
