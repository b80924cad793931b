import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { cleanEnv, type ErrorDocument, json, owrt, owrtBin } from "../helpers/cli.js"
import { imageBuilderEntries, type MiniMirror, makeMiniMirror, makeUsignKey } from "../helpers/miniMirror.js"
import { startTestMirror, type TestMirror } from "../helpers/mirrorServer.js"

interface Ensured {
  readonly key: string
  readonly path: string
  readonly release: string
  readonly target: string
  readonly archiveSha256: string
  readonly signedBy: string
}

const scratch = () => mkdtempSync(join(tmpdir(), "owrt-fetch-"))

/** `owrt builders ensure 24.10.2 x86/64 --json` against one mirror, keyring and store. */
const ensureX86 = (store: string, upstream: string, keyring: string, cwd: string) =>
  owrt(
    [
      "builders",
      "ensure",
      "24.10.2",
      "x86/64",
      "--json",
      "--store",
      store,
      "--upstream",
      upstream,
      "--keyring",
      keyring,
    ],
    {
      cwd,
    },
  )

/** The store must hold no builder tree and no leftover work after a failed fetch. */
const expectNothingStored = (store: string) => {
  const entries = existsSync(store) ? readdirSync(store) : []
  expect(entries.filter((e) => /^[0-9a-f]{16}-/.test(e))).toEqual([])
  const work = join(store, ".work")
  expect(existsSync(work) ? readdirSync(work) : []).toEqual([])
}

describe("builders ensure", () => {
  let dir: string
  let mini: MiniMirror
  let server: TestMirror
  const runIn = (store: string, args: Array<string>, extra: Record<string, string> = {}) =>
    owrt([...args, "--store", store, "--upstream", server.url, "--keyring", mini.keyring], {
      cwd: dir,
      env: extra,
    })

  beforeAll(async () => {
    dir = scratch()
    mini = makeMiniMirror(dir, { payloadBytes: 3_000_000 })
    server = await startTestMirror(mini.root)
    writeFileSync(join(dir, "graph.config.ts"), "export default { timeouts: { stall: 1 } }\n")
  })
  afterAll(async () => {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  })
  afterEach(() => {
    server.fault(mini.archivePath, undefined)
    server.requests.length = 0
  })

  it("fetches, verifies and stores a builder, then reuses it without downloading again", async () => {
    const store = join(dir, "store-ok")
    const first = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"])
    expect(first.code, first.stderr).toBe(0)
    const ensured = json<Ensured>(first)
    expect(Object.keys(ensured).sort()).toEqual([
      "archiveSha256",
      "key",
      "path",
      "release",
      "signedBy",
      "target",
    ])
    expect(ensured).toMatchObject({
      release: "24.10.2",
      target: "x86/64",
      archiveSha256: mini.archiveSha256,
      signedBy: mini.key.keyId,
    })
    expect(ensured.key).toMatch(/^[0-9a-f]{16}$/)
    expect(ensured.path).toBe(join(store, `${ensured.key}-openwrt-imagebuilder-24.10.2-x86-64.Linux-x86_64`))
    expect(readFileSync(join(ensured.path, "Makefile"), "utf8")).toContain("stand-in")
    expect(readdirSync(join(ensured.path, "scripts")).sort()).toEqual(["link", "run.sh"])
    expect(server.requests.filter((p) => p === mini.archivePath)).toHaveLength(1)

    server.requests.length = 0
    const second = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"])
    expect(json<Ensured>(second)).toEqual(ensured)
    expect(server.requests).toEqual([])

    const human = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64"])
    expect(human.stdout.trim()).toBe(ensured.path)

    const offline = await owrt(
      ["builders", "ensure", "24.10.2", "x86/64", "--json", "--offline", "--store", store],
      {
        cwd: dir,
        env: { OWRT_UPSTREAM: "http://127.0.0.1:9" },
      },
    )
    expect(offline.code, offline.stderr).toBe(0)

    const listed = json<{ builders: ReadonlyArray<{ key: string; references: number }> }>(
      await runIn(store, ["builders", "list", "--json"]),
    )
    expect(listed.builders.map((b) => b.key)).toEqual([ensured.key])

    const dry = json<{ removed: ReadonlyArray<{ key: string }> }>(
      await runIn(store, ["builders", "prune", "--dry-run", "--json"]),
    )
    expect(dry.removed.map((b) => b.key)).toEqual([ensured.key])
    expect(existsSync(ensured.path)).toBe(true)
    const young = json<{ removed: ReadonlyArray<unknown> }>(
      await runIn(store, ["builders", "prune", "--older-than", "30", "--json"]),
    )
    expect(young.removed).toEqual([])
    const pruned = json<{ removed: ReadonlyArray<{ key: string }> }>(
      await runIn(store, ["builders", "prune", "--json"]),
    )
    expect(pruned.removed.map((b) => b.key)).toEqual([ensured.key])
    expect(existsSync(ensured.path)).toBe(false)
  })

  it("says offline when nothing is cached (exit 5)", async () => {
    const store = join(dir, "store-offline")
    const result = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json", "--offline"])
    expect(result.code).toBe(5)
    expect(json<ErrorDocument>(result).error.code).toBe("offline_not_cached")
    expect(server.requests).toEqual([])
  })

  it.each([
    ["99.99.0", "x86/64", "release_not_published"],
    ["24.10.2", "mediatek/filogic", "target_not_published"],
  ])("reports %s %s as not published (exit 5)", async (release, target, code) => {
    const store = join(dir, `store-${code}`)
    const result = await runIn(store, ["builders", "ensure", release, target, "--json"])
    expect(result.code).toBe(5)
    expect(json<ErrorDocument>(result).error.code).toBe(code)
    expectNothingStored(store)
  })

  it("refuses a tampered archive (exit 6) and stores nothing", async () => {
    const store = join(dir, "store-tampered")
    const original = readFileSync(join(mini.root, mini.archivePath))
    const tampered = Buffer.from(original)
    tampered[tampered.length - 100] = (tampered[tampered.length - 100] ?? 0) ^ 0xff
    server.fault(mini.archivePath, { kind: "replace", body: tampered })
    const result = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"])
    expect(result.code).toBe(6)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("checksum_mismatch")
    expect(error.message).toContain(mini.archiveSha256)
    expectNothingStored(store)
  })

  it("refuses a signature by a key not in the keyring (exit 6), unless told to skip the check", async () => {
    const store = join(dir, "store-unknown-key")
    const otherKeyring = join(dir, "other-keyring")
    const other = makeUsignKey()
    rmSync(otherKeyring, { recursive: true, force: true })
    mkdirSync(otherKeyring)
    writeFileSync(join(otherKeyring, other.keyId), other.publicFile)
    const args = [
      "builders",
      "ensure",
      "24.10.2",
      "x86/64",
      "--json",
      "--store",
      store,
      "--upstream",
      server.url,
    ]
    const refused = await owrt([...args, "--keyring", otherKeyring], { cwd: dir })
    expect(refused.code).toBe(6)
    const { error } = json<ErrorDocument>(refused)
    expect(error.code).toBe("signature_unknown_key")
    expect(error.message).toContain(mini.key.keyId)
    expectNothingStored(store)

    const skipped = await owrt([...args, "--keyring", otherKeyring, "--insecure-skip-signature"], {
      cwd: dir,
    })
    expect(skipped.code, skipped.stderr).toBe(0)
    expect(json<Ensured>(skipped).signedBy).toBe("unverified")
  })

  it("says when the keyring file named by the signing key holds another key, or the key is misnamed", async () => {
    const other = makeUsignKey()
    const signer = mini.key.keyId
    const ensureWith = async (name: string, keyring: Record<string, string>) => {
      const dir2 = join(dir, name)
      rmSync(dir2, { recursive: true, force: true })
      mkdirSync(dir2)
      for (const [file, content] of Object.entries(keyring)) writeFileSync(join(dir2, file), content)
      const result = await ensureX86(join(dir, `store-${name}`), server.url, dir2, dir)
      expect(result.code, result.stdout + result.stderr).toBe(6)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe("signature_unknown_key")
      return { error, keyring: dir2 }
    }
    // The file is named by the signer's id, but someone saved another key in it.
    const swapped = await ensureWith("keyring-swapped", { [signer]: other.publicFile })
    expect(swapped.error.message).toContain(
      `the keyring file ${swapped.keyring}/${signer} holds another key, ${other.keyId}`,
    )
    expect(swapped.error.message).not.toContain("add the key")
    // The signer's key is there, under a name that is not its id.
    const misnamed = await ensureWith("keyring-misnamed", { "openwrt-24.10.pub": mini.key.publicFile })
    expect(misnamed.error.message).toContain(`in a file named openwrt-24.10.pub`)
    expect(misnamed.error.message).toContain(`rename that file to ${signer}`)
  })

  it("refuses a sha256sums altered after signing (exit 6)", async () => {
    const store = join(dir, "store-bad-sig")
    const sumsPath = mini.archivePath.replace(/[^/]+$/, "sha256sums")
    const forged = Buffer.from(`${"0".repeat(64)} *${mini.archivePath.split("/").pop()}\n`)
    server.fault(sumsPath, { kind: "replace", body: forged })
    try {
      const result = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"])
      expect(result.code).toBe(6)
      expect(json<ErrorDocument>(result).error.code).toBe("signature_invalid")
      expectNothingStored(store)
    } finally {
      server.fault(sumsPath, undefined)
    }
  })

  it("reports an archive listed but missing upstream as a download failure (exit 6)", async () => {
    const store = join(dir, "store-404")
    server.fault(mini.archivePath, { kind: "status", status: 404 })
    const result = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"])
    expect(result.code).toBe(6)
    expect(json<ErrorDocument>(result).error.code).toBe("download_failed")
    expectNothingStored(store)
  })

  it("retries server errors with backoff and succeeds", async () => {
    const store = join(dir, "store-retry")
    server.fault(mini.archivePath, { kind: "status", status: 503, times: 2 })
    const result = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"])
    expect(result.code, result.stderr).toBe(0)
    expect(server.requests.filter((p) => p === mini.archivePath)).toHaveLength(3)
  })

  it("retries a truncated body, then fails (exit 6) with nothing stored", async () => {
    const store = join(dir, "store-truncated")
    server.fault(mini.archivePath, { kind: "truncate", afterBytes: 200_000 })
    const result = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"])
    expect(result.code).toBe(6)
    expect(json<ErrorDocument>(result).error.code).toBe("download_failed")
    expect(server.requests.filter((p) => p === mini.archivePath).length).toBeGreaterThan(1)
    expectNothingStored(store)
  })

  it("gives up on a server that stalls (exit 6)", async () => {
    const store = join(dir, "store-stall")
    server.fault(mini.archivePath, { kind: "stall", afterBytes: 100_000 })
    const result = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"])
    expect(result.code).toBe(6)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("download_failed")
    expect(error.message).toContain("stalled")
    expectNothingStored(store)
  })

  it("downloads once when two processes ask for the same builder", async () => {
    const store = join(dir, "store-concurrent")
    server.fault(mini.archivePath, { kind: "delay", ms: 500 })
    const [a, b] = await Promise.all([
      runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"]),
      runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"]),
    ])
    expect(a?.code, a?.stderr).toBe(0)
    expect(b?.code, b?.stderr).toBe(0)
    expect(json<Ensured>(a as never).path).toBe(json<Ensured>(b as never).path)
    expect(server.requests.filter((p) => p === mini.archivePath)).toHaveLength(1)
  })

  it("leaves no visible path when killed with SIGKILL mid-download, and the next run succeeds at once", async () => {
    const store = join(dir, "store-killed")
    server.fault(mini.archivePath, { kind: "stall", afterBytes: 1_000_000, times: 1 })
    const child = spawn(
      process.execPath,
      [
        owrtBin,
        "builders",
        "ensure",
        "24.10.2",
        "x86/64",
        "--json",
        "--store",
        store,
        "--upstream",
        server.url,
        "--keyring",
        mini.keyring,
      ],
      { cwd: dir, env: cleanEnv(), stdio: "ignore" },
    )
    // Wait until the archive download has begun and bytes are flowing.
    for (let i = 0; i < 100 && !server.requests.includes(mini.archivePath); i++)
      await new Promise((r) => setTimeout(r, 50))
    await new Promise((r) => setTimeout(r, 300))
    child.kill("SIGKILL")
    await new Promise((r) => child.on("exit", r))
    expect(readdirSync(store).filter((e) => /^[0-9a-f]{16}-/.test(e))).toEqual([])

    const started = Date.now()
    const rerun = await runIn(store, ["builders", "ensure", "24.10.2", "x86/64", "--json"])
    expect(rerun.code, rerun.stderr).toBe(0)
    // The dead process's lock did not make the rerun wait for the lock timeout.
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(existsSync(join(json<Ensured>(rerun).path, "Makefile"))).toBe(true)
  })
})

describe("unsafe archives", () => {
  const top = "openwrt-imagebuilder-24.10.2-x86-64.Linux-x86_64"
  it.each([
    ["a ../ entry", [{ name: `${top}/../../escaped`, content: "x" }], "parent directory reference"],
    ["an absolute path", [{ name: "/tmp/owrt-escaped", content: "x" }], "absolute path"],
    [
      "a symlink leading out",
      [{ name: `${top}/etc`, type: "symlink", linkTarget: "/etc" }],
      "link pointing outside",
    ],
    [
      "a relative symlink leading out",
      [{ name: `${top}/up`, type: "symlink", linkTarget: "../../.." }],
      "link pointing outside",
    ],
    ["a device file", [{ name: `${top}/sda`, type: "block" }], "device or fifo"],
  ] as const)("refuses %s (exit 6), leaving nothing in the store", async (_label, extra, reason) => {
    const dir = scratch()
    const mini = makeMiniMirror(dir, { entries: imageBuilderEntries(top, extra as never), compression: "xz" })
    const server = await startTestMirror(mini.root)
    try {
      const store = join(dir, "store")
      const result = await ensureX86(store, server.url, mini.keyring, dir)
      expect(result.code, result.stderr).toBe(6)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe("archive_unsafe")
      expect(error.message).toContain(reason)
      expectNothingStored(store)
      expect(existsSync("/tmp/owrt-escaped")).toBe(false)
    } finally {
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("archive formats", () => {
  it.each(["xz", "gzip"] as const)(
    "detects %s by content, whatever the file name says",
    async (compression) => {
      const dir = scratch()
      // The archive is named .tar.zst (as 24.10 names it) but compressed otherwise.
      const mini = makeMiniMirror(dir, { compression })
      const server = await startTestMirror(mini.root)
      try {
        expect(mini.archivePath.endsWith(".tar.zst")).toBe(true)
        const result = await ensureX86(join(dir, "store"), server.url, mini.keyring, dir)
        expect(result.code, result.stderr).toBe(0)
        expect(existsSync(join(json<Ensured>(result).path, "scripts", "run.sh"))).toBe(true)
      } finally {
        await server.close()
        rmSync(dir, { recursive: true, force: true })
      }
    },
  )

  it("fails after retries when the server keeps failing (exit 6)", async () => {
    const dir = scratch()
    const mini = makeMiniMirror(dir)
    const server = await startTestMirror(mini.root)
    server.fault(mini.archivePath, { kind: "status", status: 502 })
    try {
      const result = await ensureX86(join(dir, "store"), server.url, mini.keyring, dir)
      expect(result.code).toBe(6)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe("download_failed")
      expect(error.message).toContain("HTTP 502")
      expect(server.requests.filter((p) => p === mini.archivePath)).toHaveLength(4)
    } finally {
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("corrupt archives", () => {
  it("reports an archive that does not unpack as archive_corrupt (exit 6), quickly and without retrying", async () => {
    const dir = scratch()
    const mini = makeMiniMirror(dir, { payloadBytes: 2_000_000 })
    // Re-sign a truncated-in-the-middle archive, so the checksum matches and only unpacking can fail.
    const archiveFile = join(mini.root, mini.archivePath)
    const broken = readFileSync(archiveFile).subarray(0, 1_000_000)
    writeFileSync(archiveFile, Buffer.concat([broken, Buffer.alloc(500_000, 7)]))
    const sha = createHash("sha256").update(readFileSync(archiveFile)).digest("hex")
    const sumsFile = archiveFile.replace(/[^/]+$/, "sha256sums")
    const sums = Buffer.from(`${sha} *${mini.archivePath.split("/").pop()}\n`)
    writeFileSync(sumsFile, sums)
    writeFileSync(`${sumsFile}.sig`, mini.key.sign(sums))
    const server = await startTestMirror(mini.root)
    try {
      const started = Date.now()
      const result = await ensureX86(join(dir, "store"), server.url, mini.keyring, dir)
      expect(result.code, result.stderr).toBe(6)
      expect(json<ErrorDocument>(result).error.code).toBe("archive_corrupt")
      expect(Date.now() - started).toBeLessThan(20_000)
      expect(server.requests.filter((p) => p === mini.archivePath)).toHaveLength(1)
      expectNothingStored(join(dir, "store"))
    } finally {
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
