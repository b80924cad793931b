import { afterAll, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { ArtifactRecords } from "../../src/db/artifactRecords.js"
import { BuildRecords, effectiveStatus } from "../../src/db/buildRecords.js"
import { RecordsSql } from "../../src/db/database.js"
import { FlashRecords } from "../../src/db/flashRecords.js"
import { OtaRecords } from "../../src/db/otaRecords.js"
import { RevisionRecords } from "../../src/db/revisionRecords.js"
import { StorePathRecords } from "../../src/db/storePathRecords.js"
import { DatabaseError } from "../../src/errors.js"
import { currentProcess } from "../../src/process/processIdentity.js"
import { recordsBackends, stopTestPostgres } from "../helpers/recordsBackends.js"

// The record services behave the same whether the records are in the store's SQLite file or in PostgreSQL.
afterAll(stopTestPostgres)

describe.each(recordsBackends)("the records in $name", ({ layer }) => {
  it.scopedLive("builds: round-trip, keys, and another machine's running build is taken at its word", () =>
    Effect.gen(function* () {
      const start = (profile: string) =>
        BuildRecords.start({ profile, revisionSeq: 1, revisionHash: "a".repeat(64), requestedBy: "cli" })
      const id = yield* start("home-ap")
      yield* BuildRecords.updateKeys(id, { builder: "b".repeat(32), image: "k".repeat(32) })
      yield* BuildRecords.finish(id, { status: "succeeded", cacheHit: false, startedMs: Date.now() - 5 })
      const row = yield* BuildRecords.find(id)
      expect(row).toMatchObject({
        id,
        profile: "home-ap",
        status: "succeeded",
        builder_key: "b".repeat(32),
        image_key: "k".repeat(32),
        cache_hit: 0,
        host: currentProcess.host,
      })
      expect(row?.duration_ms).toBeGreaterThanOrEqual(0)
      expect(yield* BuildRecords.ofImage("k".repeat(32))).toHaveLength(1)
      expect(yield* BuildRecords.recentKeys("home-ap", "image_key")).toEqual(["k".repeat(32)])
      expect(yield* BuildRecords.latestGood("home-ap")).toMatchObject({ id })
      const other = yield* start("other")
      const hit = yield* start("home-ap")
      yield* BuildRecords.updateKeys(hit, { image: "k".repeat(32) })
      yield* BuildRecords.finish(hit, { status: "succeeded", cacheHit: true, startedMs: Date.now() })
      expect(yield* BuildRecords.reusesOfImage("k".repeat(32))).toBe(1)
      expect((yield* BuildRecords.list({ limit: 10 })).map((b) => b.id)).toEqual([hit, other, id])
      expect((yield* BuildRecords.list({ profile: "home-ap", limit: 1 })).map((b) => b.id)).toEqual([hit])
      // A build another machine is running, with a pid that is not alive here: still running.
      const sql = yield* RecordsSql
      yield* sql`UPDATE builds SET host = 'elsewhere', pid = 999999 WHERE id = ${other}`
      const remote = yield* BuildRecords.find(other)
      expect(remote && effectiveStatus(remote)).toBe("running")
      // The same on this machine: the process is gone, so the build was interrupted.
      yield* sql`UPDATE builds SET host = ${currentProcess.host} WHERE id = ${other}`
      const local = yield* BuildRecords.find(other)
      expect(local && effectiveStatus(local)).toBe("interrupted")
      expect(yield* BuildRecords.find(other + 100)).toBeUndefined()
    }).pipe(Effect.provide(layer())),
  )

  it.scopedLive("revisions: numbered 1, 2, 3… per profile even when recorded at once", () =>
    Effect.gen(function* () {
      const revisions = yield* RevisionRecords
      const hashes = Array.from({ length: 12 }, (_, i) => i.toString(16).padStart(64, "0"))
      const recorded = yield* Effect.forEach(
        hashes,
        (hash) => revisions.record({ profile: "ap", hash, canonical: "{}", source: "profiles/ap.yaml" }),
        { concurrency: "unbounded" },
      )
      expect(recorded.every((r) => r.isNew)).toBe(true)
      expect(recorded.map((r) => r.seq).sort((a, b) => a - b)).toEqual(hashes.map((_, i) => i + 1))
      const again = yield* revisions.record({
        profile: "ap",
        hash: hashes[3] ?? "",
        canonical: "{}",
        source: "profiles/ap.yaml",
      })
      expect(again).toMatchObject({ isNew: false, seq: recorded[3]?.seq })
      const first = yield* revisions.record({
        profile: "gw",
        hash: "f".repeat(64),
        canonical: "{}",
        source: "x",
      })
      expect(first.seq).toBe(1)
      expect(yield* revisions.history("ap")).toHaveLength(12)
      expect(
        (yield* revisions.byHashPrefix(
          "ap",
          "00000000000000000000000000000000000000000000000000000000000000",
        )).length,
      ).toBe(12)
      expect(yield* revisions.bySeq("gw", 1)).toMatchObject({ hash: "f".repeat(64), canonical: "{}" })
      expect((yield* revisions.known()).size).toBe(13)
    }).pipe(Effect.provide(layer())),
  )

  it.scopedLive("artifacts: listed when this store holds their set, with the build that made it", () =>
    Effect.gen(function* () {
      const image = (name: string, sha: string, size: number) => ({
        name,
        type: "sysupgrade",
        filesystem: "squashfs",
        sha256: sha.repeat(64),
        size,
      })
      const held = "1".repeat(32)
      const elsewhere = "2".repeat(32)
      yield* ArtifactRecords.record(held, [image("a.bin", "a", 5 * 2 ** 30), image("b.bin", "b", 7)])
      yield* ArtifactRecords.record(elsewhere, [image("c.bin", "c", 9)])
      // Recording a set again (a cache hit) changes nothing.
      yield* ArtifactRecords.record(held, [image("a.bin", "a", 5 * 2 ** 30), image("b.bin", "b", 7)])
      yield* StorePathRecords.insert({
        key: held,
        kind: "collect-artifacts",
        name: "artifacts",
        digest: "d",
        listing: [],
        files: 2,
        bytes: 1,
      })
      const id = yield* BuildRecords.start({
        profile: "ap",
        revisionSeq: 4,
        revisionHash: "e".repeat(64),
        requestedBy: "cli",
      })
      yield* BuildRecords.updateKeys(id, { artifacts: held })
      yield* BuildRecords.finish(id, { status: "succeeded", cacheHit: false, startedMs: Date.now() })
      const stored = yield* ArtifactRecords.stored({ limit: 10 })
      expect(
        stored.map((a) => [a.artifacts_key, a.name, a.size, a.build_id, a.profile, a.revision_seq]),
      ).toEqual([
        [held, "a.bin", 5 * 2 ** 30, id, "ap", 4],
        [held, "b.bin", 7, id, "ap", 4],
      ])
      expect(stored[0]?.path_name).toBe("artifacts")
      expect(yield* ArtifactRecords.stored({ profile: "gw", limit: 10 })).toEqual([])
      expect(yield* ArtifactRecords.stored({ key: held, limit: 1 })).toHaveLength(1)
      expect((yield* ArtifactRecords.find("cccccccc")).map((a) => a.artifacts_key)).toEqual([elsewhere])
      expect((yield* ArtifactRecords.find(`${held}/b.bin`)).map((a) => a.size)).toEqual([7])
    }).pipe(Effect.provide(layer())),
  )

  it.scopedLive("flashes: images past 4 GiB, outcomes and suspect cards", () =>
    Effect.gen(function* () {
      const id = yield* FlashRecords.start({
        mode: "write",
        source: "file",
        imagePath: "/images/big.img",
        imageBytes: 5 * 2 ** 30,
        compression: "none",
        devicePath: "/dev/sdz",
        deviceRequested: "/dev/sdz",
        deviceSerial: "SER1",
        deviceBytes: 64 * 2 ** 30,
        wipe: false,
        verify: "full",
        requestedBy: "cli",
      })
      yield* FlashRecords.finish(id, { status: "mismatch", firstBadOffset: 4.5 * 2 ** 30, badBytes: 512 })
      yield* FlashRecords.recordSuspect({
        flashId: id,
        serial: "SER1",
        sizeBytes: 64 * 2 ** 30,
        reason: "bad",
      })
      const [row] = yield* FlashRecords.list(5)
      expect(row).toMatchObject({
        id,
        image_bytes: 5 * 2 ** 30,
        first_bad_offset: 4.5 * 2 ** 30,
        status: "mismatch",
        host: currentProcess.host,
      })
      expect(yield* FlashRecords.suspectRecords("SER1")).toMatchObject([{ flash_id: id, reason: "bad" }])
    }).pipe(Effect.provide(layer())),
  )

  it.scopedLive("a row that does not decode is a defect naming the query, not a typed failure", () =>
    Effect.gen(function* () {
      const sql = yield* RecordsSql
      yield* sql`INSERT INTO flashes (mode, source, image_path, image_bytes, compression, device_path,
          device_requested, device_bytes, wipe, verify, status, requested_by, requested_user, started_at, pid)
        VALUES ('write', 'x', '/x', 1, 'none', '/dev/x', 'x', 1, 0, 'full', 'exploded', 'cli', 'me', 'now', 1)`
      const exit = yield* Effect.exit(FlashRecords.list(10))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isSuccess(exit)) return
      expect(Cause.failureOption(exit.cause)._tag).toBe("None")
      const defect = Cause.squash(exit.cause)
      expect(defect).toBeInstanceOf(DatabaseError)
      expect((defect as DatabaseError).message).toMatch(/database list flashes failed: .*exploded/s)
    }).pipe(Effect.provide(layer())),
  )

  it.scopedLive("OTA: a release is recorded once; a device's report updates its row", () =>
    Effect.gen(function* () {
      const release = {
        repository: "local/dev1",
        version: "1.0.0",
        device: "dev1",
        channel: "stable",
        manifest_digest: "sha256:1",
        sha256: "a".repeat(64),
        size: 3 * 2 ** 32,
        image: "x.img",
        profile: "ap",
        revision: "r",
        artifacts_key: "k",
        published_at: "2026-12-05T00:00:00.000Z",
      }
      yield* OtaRecords.recordRelease(release)
      yield* OtaRecords.recordRelease({ ...release, sha256: "b".repeat(64) })
      expect(yield* OtaRecords.releasesOf("local/dev1")).toEqual([release])
      const report = { device: "dev1", version: "0.9", channel: "stable", latest: "1.0.0", address: null }
      yield* OtaRecords.recordDevice({ ...report, upToDate: false })
      yield* OtaRecords.recordDevice({ ...report, version: "1.0.0", upToDate: true })
      expect(yield* OtaRecords.devices()).toMatchObject([{ device: "dev1", version: "1.0.0", up_to_date: 1 }])
    }).pipe(Effect.provide(layer())),
  )
})
