import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { AsuJobRecords } from "../../src/db/asuJobRecords.js"
import { RecordsSql } from "../../src/db/database.js"
import { recordsBackends, stopTestPostgres } from "../helpers/recordsBackends.js"

const job = (hash: string, ttl = { result: 3600, failure: 3600 }) =>
  AsuJobRecords.enqueue({
    requestHash: hash,
    request: JSON.stringify({ hash }),
    binDir: `bin-${hash}`,
    resultTtlSeconds: ttl.result,
    failureTtlSeconds: ttl.failure,
  })

afterAll(stopTestPostgres)

describe.each(recordsBackends)("the ASU job queue's table ($name)", ({ name, layer: scratchStoreLayer }) => {
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

  it.scopedLive("hands every job to exactly one of many servers claiming at once", () =>
    Effect.gen(function* () {
      const hashes = Array.from({ length: 16 }, (_, i) => `j${i}`)
      yield* Effect.forEach(hashes, (hash) => job(hash), { discard: true })
      const claimed = yield* Effect.forEach(Array.from({ length: 24 }), () => AsuJobRecords.claimNext(), {
        concurrency: "unbounded",
      })
      const taken = claimed.flatMap((row) => (row ? [row.request_hash] : []))
      expect(taken.sort()).toEqual([...hashes].sort())
      expect(yield* AsuJobRecords.queued()).toBe(0)
    }).pipe(Effect.provide(scratchStoreLayer())),
  )

  it.scopedLive("retries a job that was running at a crash once, then fails it", () =>
    Effect.gen(function* () {
      const sql = yield* RecordsSql
      // The server that claimed it died (its pid is gone): on start, the job goes back to the queue.
      const died = sql`UPDATE asu_jobs SET claimed_pid = 999999 WHERE status = 'started'`
      yield* job("x")
      yield* AsuJobRecords.claimNext()
      // Not while the server that claimed it runs.
      expect(yield* AsuJobRecords.recover()).toBe(0)
      yield* died
      expect(yield* AsuJobRecords.recover()).toBe(1)
      expect(yield* AsuJobRecords.find("x")).toMatchObject({ status: "queued", attempts: 1 })
      yield* AsuJobRecords.claimNext()
      // And died again.
      yield* died
      expect(yield* AsuJobRecords.recover()).toBe(0)
      expect(yield* AsuJobRecords.find("x")).toMatchObject({
        status: "failed",
        detail: "Error: the build was interrupted twice (server restarts)",
      })
    }).pipe(Effect.provide(scratchStoreLayer())),
  )

  it.scopedLive(
    "a job claimed under another host name: the same store moved (SQLite), or another machine's (PostgreSQL)",
    () =>
      Effect.gen(function* () {
        const sql = yield* RecordsSql
        yield* job("remote")
        yield* job("legacy")
        yield* AsuJobRecords.claimNext()
        yield* AsuJobRecords.claimNext()
        yield* sql`UPDATE asu_jobs SET claimed_host = 'elsewhere', claimed_pid = 999999 WHERE request_hash = 'remote'`
        // Claimed before owrt kept who claimed it: by a server that was here, recovered as before.
        yield* sql`UPDATE asu_jobs SET claimed_host = NULL, claimed_pid = NULL WHERE request_hash = 'legacy'`
        // In the store's own file the claim under another name was this store's server's, gone (a container
        // back under a new name); in a shared PostgreSQL it is another machine's, left to it.
        expect(yield* AsuJobRecords.recover()).toBe(name === "sqlite" ? 2 : 1)
        expect((yield* AsuJobRecords.find("remote"))?.status).toBe(name === "sqlite" ? "queued" : "started")
        expect((yield* AsuJobRecords.find("legacy"))?.status).toBe("queued")
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
      const sql = yield* RecordsSql
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
