import { randomBytes } from "node:crypto"
import { chmodSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { AppConfig } from "../../src/config/appConfig.js"
import { realizeNode } from "../../src/store/nodeStore.js"
import { verifyStore } from "../../src/store/storeMaintenance.js"
import { scratchStoreLayer } from "../helpers/testLayers.js"

const files = 40

/** Publishes a node of `files` files of 64 KiB, one of them executable. */
const publish = Effect.gen(function* () {
  const config = yield* AppConfig
  return yield* realizeNode({
    store: config.store,
    kind: "fake-files",
    key: "0123456789abcdef",
    name: "many",
    lockTimeoutSeconds: 5,
    build: (output) =>
      Effect.sync(() => {
        for (let i = 0; i < files; i++) writeFileSync(join(output, `f${i}`), randomBytes(64 * 1024))
        chmodSync(join(output, "f0"), 0o755)
      }),
  })
})

describe("store paths: digests and modes", () => {
  it.scopedLive("are published read-only: files 0444 or 0555, the directory 0555", () =>
    Effect.gen(function* () {
      const stored = yield* publish
      expect(statSync(stored.path).mode & 0o7777).toBe(0o555)
      expect(statSync(join(stored.path, "f0")).mode & 0o7777).toBe(0o555)
      expect(statSync(join(stored.path, "f1")).mode & 0o7777).toBe(0o444)
      // Digested as built, verified as published.
      expect((yield* verifyStore((yield* AppConfig).store)).drifted).toEqual([])
      // An executable bit is part of what was stored: losing it is drift.
      chmodSync(join(stored.path, "f0"), 0o444)
      const report = yield* verifyStore((yield* AppConfig).store)
      expect(report.drifted.map((d) => d.files)).toEqual([["f0"]])
    }).pipe(Effect.provide(scratchStoreLayer())),
  )

  // A server (`owrt serve`) verifies, audits and publishes in the process that answers requests.
  it.scopedLive("are digested without holding up the event loop", () =>
    Effect.gen(function* () {
      yield* publish
      let turns = 0
      let running = true
      const tick = () => {
        if (!running) return
        turns += 1
        setImmediate(tick)
      }
      setImmediate(tick)
      const report = yield* verifyStore((yield* AppConfig).store).pipe(
        Effect.ensuring(Effect.sync(() => (running = false))),
      )
      expect(report.drifted).toEqual([])
      expect(turns).toBeGreaterThanOrEqual(files)
    }).pipe(Effect.provide(scratchStoreLayer())),
  )
})
