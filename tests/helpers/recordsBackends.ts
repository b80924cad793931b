import { Effect, Layer } from "effect"
import pg from "pg"
import type { ResolvedConfig } from "../../src/config/appConfig.js"
import { startPostgres, type TestPostgres } from "./postgres.js"
import { scratchStoreLayer } from "./testLayers.js"

/*
 * The two databases the records can live in, for tests that must hold for both: the store's SQLite file
 * (the default), and a real PostgreSQL (Debian's, started once per test file by the first test that asks;
 * every layer gets a database of its own). Call `stopTestPostgres` in the file's `afterAll`.
 */

let server: Promise<TestPostgres> | undefined
let databases = 0

export const stopTestPostgres = async () => {
  const started = server
  server = undefined
  if (started) await (await started).stop()
}

/** A new, empty database on the file's PostgreSQL; its URL. */
export const freshPostgresDatabase = async (): Promise<string> => {
  server ??= startPostgres()
  const { url } = await server
  const name = `owrt_test_${process.pid}_${++databases}`
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  return url.replace(/\/postgres$/, `/${name}`)
}

export interface RecordsBackend {
  readonly name: "sqlite" | "postgresql"
  /** A scratch store whose records are in this backend (AppConfig, the database and the record services). */
  readonly layer: (overrides?: Partial<ResolvedConfig>) => ReturnType<typeof scratchStoreLayer>
}

export const recordsBackends: ReadonlyArray<RecordsBackend> = [
  { name: "sqlite", layer: (overrides) => scratchStoreLayer(overrides) },
  {
    name: "postgresql",
    layer: (overrides) =>
      Layer.unwrapEffect(
        Effect.map(Effect.promise(freshPostgresDatabase), (url) =>
          scratchStoreLayer({ ...overrides, database: { kind: "postgres", url } }),
        ),
      ),
  },
]
