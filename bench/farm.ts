// bench/farm: the build farm (executor postgres, `owrt worker`) against a real PostgreSQL and registry.
// 1. Scheduling overhead per node, for no-op nodes: the coordinator's protocol (insert the node row and its
//    graphile-worker job keyed by the node key, wait for the NOTIFY of its result) against a graphile worker
//    whose task does what `owrt worker` does around a build (claim the row, record the result, notify) but
//    builds nothing: enqueue → claimed → result seen. Target: ≤ 50 ms median per node.
// 2. 8 profiles of the stand-in Image Builder: `owrt realize` with the local executor on a fresh store,
//    against the same with `--executor postgres://…` and two workers (fresh stores, shared registry) on this
//    machine. The ratio shows the farm's overhead (here both "machines" share the same CPUs).
import { join } from "node:path"
import { Logger, run } from "graphile-worker"
import pg from "pg"
import { generateKeyPair } from "../src/cache/signing.js"
import { owrt } from "../tests/helpers/cli.js"
import { farmQuery, startWorker } from "../tests/helpers/farm.js"
import { startPostgres } from "../tests/helpers/postgres.js"
import { startRegistry } from "../tests/helpers/registry.js"
import { median } from "./lib/measure.js"
import { makeBenchProject, owrtOk, scratchDir, seconds, startMirror, time } from "./lib/project.js"

const nodes = Number(process.argv[2] ?? 200)
const database = await startPostgres()
const registry = await startRegistry()
const mirror = await startMirror()
try {
  // The farm's tables, made as a coordinator makes them (a no-op realize would need a project): once here.
  await farmQuery(database.url, "select 1")
  const { runMigrations } = await import("graphile-worker")
  await runMigrations({ connectionString: database.url, logger: new Logger(() => () => undefined) })
  const { connectFarm } = await import("../src/farm/farmDatabase.js")
  const { Effect } = await import("effect")
  await Effect.runPromise(Effect.scoped(Effect.asVoid(connectFarm(database.url))))

  // 1. No-op nodes through the queue.
  const noop = await run({
    connectionString: database.url,
    concurrency: 2,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: new Logger(() => () => undefined),
    taskList: {
      owrt_node_bench: async (payload, helpers) => {
        const key = (payload as { key: string }).key
        await helpers.query(
          "update owrt_farm.nodes set status = 'running', worker = 'noop', started_at = now() where key = $1 returning pg_notify('owrt_farm', key)",
          [key],
        )
        await helpers.query(
          "update owrt_farm.nodes set status = 'done', finished_at = now() where key = $1 returning pg_notify('owrt_farm', key)",
          [key],
        )
      },
    },
  })
  const listener = new pg.Client({ connectionString: database.url })
  await listener.connect()
  const pool = new pg.Pool({ connectionString: database.url, max: 4 })
  const waiting = new Map<string, () => void>()
  listener.on("notification", async (message) => {
    const key = message.payload ?? ""
    const done = waiting.get(key)
    if (!done) return
    const row = await pool.query("select status from owrt_farm.nodes where key = $1", [key])
    if (row.rows[0]?.status === "done") done()
  })
  await listener.query("listen owrt_farm")
  const latencies: Array<number> = []
  for (let i = 0; i < nodes; i++) {
    const key = `bench-${Date.now()}-${i}`
    const started = performance.now()
    const seen = new Promise<void>((resolve) => waiting.set(key, resolve))
    await pool.query(
      `with claimed as (insert into owrt_farm.nodes (key, kind, graph, queue, status) values ($1, 'noop', 'bench', 'bench', 'queued') returning key)
       select graphile_worker.add_job('owrt_node_bench', json_build_object('key', key), job_key => key) from claimed`,
      [key],
    )
    await seen
    latencies.push(performance.now() - started)
    waiting.delete(key)
  }
  await noop.stop()
  await listener.end()
  await pool.end()
  const sorted = [...latencies].sort((a, b) => a - b)
  console.log(
    `farm scheduling overhead, ${nodes} no-op nodes one after another: median ${median(latencies).toFixed(1)} ms, p90 ${(sorted[Math.floor(nodes * 0.9)] ?? 0).toFixed(1)} ms (target ≤ 50 ms)`,
  )

  // 2. 8 profiles: local vs two workers.
  const keys = generateKeyPair("bench-farm")
  const files: Record<string, string> = {}
  for (let i = 1; i <= 8; i++) {
    files[`profiles/p${i}.yaml`] =
      `release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [luci]\noverlay: files/p${i}\n`
    files[`profiles/files/p${i}/etc/motd`] = `bench ${i}\n`
  }
  const project = makeBenchProject("farm", files)
  const profiles = Array.from({ length: 8 }, (_, i) => `p${i + 1}`)
  const base = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: mirror.keyring }
  const local = scratchDir("farm-local")
  const localMs = time(() =>
    owrtOk(["realize", ...profiles, "--store", join(local, "store")], project.dir, base),
  )
  const cache = {
    ...base,
    OWRT_SUBSTITUTERS: `oci://${registry.host}/owrt/bench`,
    OWRT_TRUSTED_KEYS: keys.public,
  }
  await import("node:fs").then(({ writeFileSync }) =>
    writeFileSync(join(project.dir, "bench.sec"), `${keys.secret}\n`),
  )
  const farmDir = scratchDir("farm-workers")
  const workers = await Promise.all(
    ["wa", "wb"].map((name) =>
      startWorker({
        name,
        cwd: project.dir,
        database: database.url,
        env: {
          ...cache,
          OWRT_CACHE_PUSH: "1",
          OWRT_SIGNING_KEY: `file:${join(project.dir, "bench.sec")}`,
          OWRT_STORE: join(farmDir, name),
        },
      }),
    ),
  )
  // Asynchronously: this process reads the workers' and the registry's output meanwhile.
  const farmStarted = performance.now()
  const farmed = await owrt(
    [
      "realize",
      ...profiles,
      "--jobs",
      "8",
      "--executor",
      database.url,
      "--store",
      join(farmDir, "coordinator"),
    ],
    { cwd: project.dir, env: cache },
  )
  const farmMs = performance.now() - farmStarted
  if (farmed.code !== 0) throw new Error(`farm realize failed:\n${farmed.stderr}`)
  await Promise.all(workers.map((w) => w.stop("SIGTERM")))
  console.log(
    `8 profiles: local ${seconds(localMs)}, 2 workers on this machine ${seconds(farmMs)} (farm/local ${(farmMs / localMs).toFixed(2)}×)`,
  )
} finally {
  await mirror.close()
  await registry.stop()
  await database.stop()
}
