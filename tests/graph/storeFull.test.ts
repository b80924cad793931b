import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdirSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

/*
 * A full disk under the store is `store_full` (exit 5) naming the path and the space left — not a corrupt
 * archive, a failed build or an internal error — and leaves no lock held: once there is room, the same
 * store works. The store is a small tmpfs (needs root and mount; skipped otherwise).
 */

interface Database {
  prepare(sql: string): { all(): Array<Record<string, unknown>> }
  close(): void
}
const openDatabase = createRequire(import.meta.url)("better-sqlite3") as new (
  file: string,
  options: { readonly readonly: boolean; readonly fileMustExist: boolean },
) => Database
const query = (store: string, sql: string) => {
  const db = new openDatabase(join(store, "owrt.db"), { readonly: true, fileMustExist: true })
  try {
    return db.prepare(sql).all()
  } finally {
    db.close()
  }
}

const glinet = 'release: "23.05.5"\ntarget: ath79/generic\ndevice: glinet_gl-ar300m16\npackages: [luci]\n'
const project = makeProject({
  "profiles/glinet.yaml": glinet,
  // Incompressible bytes in the overlay: the two images need more room than the staged overlay.
  "profiles/bulky.yaml": `${glinet}overlay: files/bulky\n`,
})
mkdirSync(join(project.dir, "profiles/files/bulky"), { recursive: true })
writeFileSync(join(project.dir, "profiles/files/bulky/blob"), randomBytes(2 * 1024 * 1024))

const mounted: Array<string> = []
/** A tmpfs of `size` at a fresh directory, or why that is impossible here. */
const smallStore = (name: string, size: string): string | Error => {
  const dir = join(project.dir, name)
  mkdirSync(dir, { recursive: true })
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" })
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error))
  }
  mounted.push(dir)
  return dir
}
const grow = (dir: string, size: string) =>
  execFileSync("mount", ["-o", `remount,size=${size}`, dir], { stdio: "pipe" })

const probe = smallStore("probe", "1m")
const cannotMount = probe instanceof Error ? probe.message.trim() : undefined

describe.skipIf(cannotMount !== undefined)(
  `a full store${cannotMount ? ` (skipped: cannot mount a tmpfs: ${cannotMount})` : ""}`,
  () => {
    let mirror: { url: string; close: () => Promise<void> }
    let keyring: string
    const run = (store: string, args: Array<string>) =>
      owrt(args, {
        cwd: project.dir,
        env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring, OWRT_STORE: store },
      })

    beforeAll(async () => {
      const built = await buildMirror()
      keyring = built.keyring
      mirror = await serveMirror(built.root)
    })
    afterAll(async () => {
      await mirror?.close()
    })

    const expectStoreFull = (
      result: { code: number | null; stdout: string; stderr: string },
      store: string,
    ) => {
      expect(result.code, result.stdout + result.stderr).toBe(5)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe("store_full")
      expect(error.exitCode).toBe(5)
      expect(error.message).toContain(store)
      expect(error.message).toMatch(/\d+\.\d (MiB|GiB) free/)
      expect(query(store, "SELECT * FROM locks")).toEqual([])
      expect(query(store, "SELECT * FROM store_uses")).toEqual([])
      return error
    }

    it("unpacking the Image Builder into a store too small for it", async () => {
      const store = smallStore("store-fetch", "2m") as string
      const result = await run(store, ["realize", "glinet", "--json"])
      const error = expectStoreFull(result, store)
      expect(error.message).toContain("unpacking")
      const builds = json<{ builds: ReadonlyArray<{ status: string; error?: { code: string } | null }> }>(
        await run(store, ["builds", "list", "--json"]),
      )
      expect(JSON.stringify(builds.builds[0])).toContain("store_full")

      grow(store, "64m")
      const again = await run(store, ["realize", "glinet", "--json"])
      expect(again.code, again.stdout + again.stderr).toBe(0)
    })

    it("making the image in a store with room for the builder but not for the images", async () => {
      // Room for the builder, the staged overlay and the copy of it make reads as FILES (its modes restored
      // from the read-only store path), not for the images.
      const store = smallStore("store-make", "11m") as string
      const result = await run(store, ["realize", "bulky", "--json"])
      const error = expectStoreFull(result, store)
      expect(error.message).toContain("make image")

      grow(store, "64m")
      const again = await run(store, ["realize", "bulky", "--json"])
      expect(again.code, again.stdout + again.stderr).toBe(0)
    })
  },
)

afterAll(() => {
  for (const dir of mounted.reverse()) {
    try {
      execFileSync("umount", ["-l", dir], { stdio: "pipe" })
    } catch {
      // already gone
    }
  }
  project.cleanup()
})
