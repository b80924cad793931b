import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import {
  AppConfig,
  localExecutor,
  noCache,
  noOta,
  type ResolvedConfig,
  sqliteDatabase,
} from "../../src/config/appConfig.js"
import { databaseLayer } from "../../src/db/database.js"
import { recordsLayer } from "../../src/db/records.js"

/** A configuration for in-process tests: a store in a fresh temporary directory, no network. */
export const testConfig = (store: string, overrides: Partial<ResolvedConfig> = {}): ResolvedConfig => ({
  projectRoot: join(store, ".."),
  configFile: null,
  store,
  upstream: "http://127.0.0.1:9",
  osList: "http://127.0.0.1:9/raspios/os_list_imagingutility_v4.json",
  keyring: join(store, "..", "keyring"),
  profiles: join(store, "..", "profiles"),
  offline: false,
  jobs: 2,
  downloads: 2,
  timeouts: { download: 60, build: 60, lock: 30, stall: 30 },
  secretsKey: null,
  makeEnv: [],
  flash: { allowDevices: [] },
  cache: noCache,
  executor: localExecutor,
  database: sqliteDatabase,
  ota: noOta,
  sources: {
    store: "default",
    upstream: "default",
    osList: "default",
    keyring: "default",
    offline: "default",
    jobs: "default",
    makeEnv: "default",
    executor: "default",
    database: "default",
  },
  ...overrides,
})

/**
 * AppConfig and a real SQLite database in a temporary store, removed when the layer is released: what
 * in-process tests of the core run against.
 */
export const scratchStoreLayer = (overrides: Partial<ResolvedConfig> = {}) =>
  Layer.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "owrt-unit-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
      ),
      (dir) => {
        const config = Layer.succeed(AppConfig, testConfig(join(dir, "store"), overrides))
        return recordsLayer.pipe(Layer.provideMerge(databaseLayer), Layer.provideMerge(config))
      },
    ),
  )
