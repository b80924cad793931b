import { type ChildProcess, spawn } from "node:child_process"
import { appendFileSync, existsSync, readdirSync } from "node:fs"
import { createRequire } from "node:module"
import { hostname } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { cleanEnv, json, makeProject, owrt, owrtBin } from "../helpers/cli.js"

/*
 * What prune and gc may remove while owrt processes run or after they were killed: builders in use stay,
 * orphans of dead processes go (with their lock rows), and a killed build's scratch space (which may hold
 * secret values) is removed by the next owrt process, without `store gc`.
 */

interface Database {
  prepare(sql: string): { all(...params: ReadonlyArray<unknown>): Array<Record<string, unknown>> }
  close(): void
}
const openDatabase = createRequire(import.meta.url)("better-sqlite3") as new (
  file: string,
  options: { readonly readonly: boolean; readonly fileMustExist: boolean },
) => Database

/** Rows of a query on a store's database, read-only (the WAL lets it read while owrt writes). */
const query = (store: string, sql: string): Array<Record<string, unknown>> => {
  const db = new openDatabase(join(store, "owrt.db"), { readonly: true, fileMustExist: true })
  try {
    return db.prepare(sql).all()
  } finally {
    db.close()
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) =>
    child.exitCode !== null || child.signalCode !== null
      ? resolve(child.exitCode)
      : child.on("exit", resolve),
  )

const ap = (device: string) =>
  `release: "23.05.5"\ntarget: ath79/generic\ndevice: ${device}\npackages: [luci]\n`

describe("store holds: prune and gc against running and killed builds", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const project = makeProject({
    "profiles/glinet.yaml": ap("glinet_gl-ar300m16"),
    "profiles/carambola.yaml": ap("8dev_carambola2"),
  })
  const env = (store: string, extra: Record<string, string> = {}) => ({
    OWRT_UPSTREAM: mirror.url,
    OWRT_KEYRING: keyring,
    OWRT_STORE: store,
    ...extra,
  })
  const run = (store: string, args: Array<string>, extra: Record<string, string> = {}) =>
    owrt(args, { cwd: project.dir, env: env(store, extra) })
  const start = (store: string, args: Array<string>, extra: Record<string, string> = {}) =>
    spawn(process.execPath, [owrtBin, ...args], {
      cwd: project.dir,
      env: cleanEnv(env(store, extra)),
      stdio: ["ignore", "pipe", "pipe"],
    })
  const collect = (child: ChildProcess) => {
    let out = ""
    child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")))
    child.stderr?.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")))
    return () => out
  }
  /** Starts a slow realize and kills it (SIGKILL) while `make image` runs. */
  const killMidBuild = async (store: string, profile: string) => {
    const child = start(store, ["realize", profile, "--json"], { OWRT_FAKE_IB_DELAY: "30" })
    const work = join(store, ".work")
    for (let i = 0; i < 600; i++) {
      if (existsSync(work) && readdirSync(work).some((n) => n.includes("make-image"))) break
      await sleep(50)
    }
    // make image is running (in its delay) once its instance exists.
    await sleep(1000)
    child.kill("SIGKILL")
    await exited(child)
    return child.pid as number
  }
  const leftoversOf = (store: string, pid: number) => [
    ...(existsSync(join(store, ".work"))
      ? readdirSync(join(store, ".work"))
          .filter((n) => n.startsWith(`${pid}.`))
          .map((n) => join(store, ".work", n))
      : []),
    ...readdirSync("/dev/shm")
      .filter((n) => n.startsWith(`owrt-instance.${pid}.`))
      .map((n) => join("/dev/shm", n)),
  ]

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
  })

  it("keeps a builder a running realize fetched while prune and gc run again and again; prune removes it afterwards", async () => {
    const store = join(project.dir, "store-prune")
    const child = start(store, ["realize", "glinet", "--json"], { OWRT_FAKE_IB_DELAY: "4" })
    const output = collect(child)
    const done = exited(child)
    // The moment that used to lose the builder: stored and its download's lock released, before make
    // uses it. The realize is paused there (SIGSTOP) while prune runs, so the race is not left to chance.
    let paused = false
    for (let i = 0; i < 2000 && child.exitCode === null; i++) {
      if (existsSync(join(store, "owrt.db"))) {
        try {
          const builders = query(store, "SELECT key FROM builders")
          const locked = query(
            store,
            "SELECT l.name FROM locks l JOIN builders b ON l.name = 'node:' || b.key",
          )
          if (builders.length > 0 && locked.length === 0) {
            child.kill("SIGSTOP")
            paused = true
            break
          }
        } catch {
          // the schema is still being created
        }
      }
      await sleep(5)
    }
    expect(paused, output()).toBe(true)
    const whilePaused = await run(store, ["builders", "prune", "--json"])
    child.kill("SIGCONT")
    expect(whilePaused.code, whilePaused.stdout + whilePaused.stderr).toBe(0)
    const report = json<{
      removed: ReadonlyArray<{ key: string }>
      skipped: ReadonlyArray<{ key: string; reason: string }>
    }>(whilePaused)
    expect(report.removed).toEqual([])
    expect(report.skipped.map((s) => s.reason)).toEqual([`in use by pid ${child.pid} on ${hostname()}`])

    // And while it builds: prune and gc, over and over, through the real CLI.
    const rounds: Array<string> = []
    while (child.exitCode === null) {
      for (const args of [
        ["builders", "prune", "--json"],
        ["store", "gc", "--json"],
      ]) {
        const result = await run(store, args)
        expect(result.code, result.stdout + result.stderr).toBe(0)
        // Only runs that ended while the realize still ran count (afterwards prune may remove it).
        if (child.exitCode === null) rounds.push(result.stdout)
      }
    }
    expect(rounds.length).toBeGreaterThan(0)
    expect(await done, output()).toBe(0)
    const realized = JSON.parse(output().slice(output().indexOf("{"))) as {
      results: ReadonlyArray<{ artifacts: ReadonlyArray<unknown> }>
    }
    expect(realized.results[0]?.artifacts.length).toBeGreaterThan(0)
    // (gc may remove other processes' leftovers in /dev/shm and .work, never a store path.)
    for (const stdout of rounds) {
      const removed = (JSON.parse(stdout) as { removed: ReadonlyArray<string | { key: string }> }).removed
      expect(
        removed.filter(
          (p) => typeof p !== "string" || (p.startsWith(store) && !p.startsWith(join(store, ".work"))),
        ),
      ).toEqual([])
    }
    // The realize is over and its use released: now prune removes it (a round that ended after the
    // realize may already have).
    const builderKey = (
      JSON.parse(rounds[0] ?? "{}") as { skipped?: ReadonlyArray<{ key: string; path: string }> }
    ).skipped?.[0]
    expect(builderKey).toBeDefined()
    const after = json<{ removed: ReadonlyArray<{ key: string }> }>(
      await run(store, ["builders", "prune", "--json"]),
    )
    expect(after.removed.map((b) => b.key).filter((k) => k !== builderKey?.key)).toEqual([])
    expect(existsSync(builderKey?.path ?? "")).toBe(false)
    expect(
      json<{ builders: ReadonlyArray<unknown> }>(await run(store, ["builders", "list", "--json"])).builders,
    ).toEqual([])
    expect(query(store, "SELECT * FROM store_uses")).toEqual([])
  })

  it("removes, in one gc run right after a crash, an orphan whose lock the dead process held, and its lock row", async () => {
    const store = join(project.dir, "store-orphan")
    expect((await run(store, ["realize", "carambola", "--json"])).code).toBe(0)
    // A drifted make-image output: invalid, so the next realize rebuilds it under its lock.
    const imageDir = readdirSync(store).find((n) => n.endsWith("-carambola-image")) as string
    const binDir = join(store, imageDir, "bin")
    const image = readdirSync(binDir).find((n) => n.endsWith(".bin")) as string
    appendFileSync(join(binDir, image), "bit rot")
    expect((await run(store, ["store", "verify", "--json"])).code).toBe(6)

    const dead = await killMidBuild(store, "carambola")
    const held = query(store, "SELECT name, pid FROM locks")
    expect(held).toEqual([{ name: `node:${imageDir.slice(0, 16)}`, pid: dead }])

    const gc = await run(store, ["store", "gc", "--json"])
    expect(gc.code, gc.stdout + gc.stderr).toBe(0)
    const report = json<{ removed: ReadonlyArray<string> }>(gc)
    expect(report.removed, gc.stdout).toContain(join(store, imageDir))
    expect(existsSync(join(store, imageDir))).toBe(false)
    expect(leftoversOf(store, dead)).toEqual([])
    expect(query(store, "SELECT * FROM locks")).toEqual([])
    expect(query(store, "SELECT * FROM store_uses")).toEqual([])
    expect(query(store, `SELECT key FROM store_paths WHERE key = '${imageDir.slice(0, 16)}'`)).toEqual([])
  })

  it("removes a killed build's work directories and in-memory instance at the next realize, without gc", async () => {
    const store = join(project.dir, "store-scratch")
    const dead = await killMidBuild(store, "glinet")
    expect(leftoversOf(store, dead).length).toBeGreaterThan(0)
    const rerun = await run(store, ["realize", "glinet", "--json"])
    expect(rerun.code, rerun.stdout + rerun.stderr).toBe(0)
    expect(leftoversOf(store, dead)).toEqual([])
    expect(query(store, `SELECT name FROM locks WHERE pid = ${dead}`)).toEqual([])
  })
})
