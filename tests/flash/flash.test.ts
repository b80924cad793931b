import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { closeSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { Effect } from "effect"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { createBmap } from "../../src/raspios/bmap.js"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { cleanEnv, type ErrorDocument, json, makeProject, owrt, owrtBin } from "../helpers/cli.js"
import { attachLoop, type LoopDevice, loopDevicesUnavailable, readDirect } from "../helpers/loopDevice.js"
import { pseudoRandom } from "../helpers/miniMirror.js"

interface FlashReport {
  readonly id: number
  readonly mode: string
  readonly status: string
  readonly image: {
    readonly path: string
    readonly bytes: number
    readonly compression: string
    readonly profile?: string
    readonly artifact?: { readonly name: string; readonly type: string; readonly sha256: string }
    readonly choice?: string
  }
  readonly device: { readonly path: string }
  readonly steps: ReadonlyArray<string>
  readonly writtenSha256?: string
}

interface FlashList {
  readonly flashes: ReadonlyArray<{
    readonly id: number
    readonly mode: string
    readonly status: string
    readonly wipe: boolean
    readonly verify: string
    readonly device: { readonly path: string }
    readonly image: { readonly bytes: number; readonly sha256: string | null }
    readonly error: { readonly code: string } | null
    readonly firstBadOffset: number | null
    readonly badBytes: number | null
    readonly requestedBy: string
    readonly requestedUser: string
    readonly writeMs: number | null
    readonly verifyMs: number | null
  }>
  readonly suspectCards: ReadonlyArray<{ readonly flashId: number; readonly sizeBytes: number }>
}

const MiB = 1024 * 1024
const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex")

describe.skipIf(loopDevicesUnavailable !== undefined)("owrt flash on real loop devices", () => {
  const project = makeProject({})
  const attached: Array<LoopDevice> = []
  const helpers: Array<ChildProcess> = []
  const mounts: Array<string> = []
  const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
    owrt(args, { cwd: project.dir, env })
  const card = (
    name: string,
    sizeBytes: number,
    options: { readOnly?: boolean; partitions?: boolean } = {},
  ) => {
    const loop = attachLoop(join(project.dir, `${name}.card`), { sizeBytes, ...options })
    attached.push(loop)
    return loop
  }
  const image = (name: string, bytes: number, seed: number) => {
    const data = pseudoRandom(bytes, seed)
    writeFileSync(join(project.dir, name), data)
    return { path: join(project.dir, name), data }
  }
  const flashList = async () => json<FlashList>(await run(["flash", "list", "--json"]))

  afterEach(() => {
    for (const child of helpers.splice(0)) child.kill("SIGKILL")
    for (const dir of mounts.splice(0)) execFileSync("umount", [dir], { stdio: "ignore" })
    for (const loop of attached.splice(0)) loop.detach()
  })
  afterAll(() => project.cleanup())

  it("writes a raw image, reads it back past the page cache, and records who asked", async () => {
    const target = card("clean", 64 * MiB)
    // An image whose size is not a multiple of the block size: the last block is padded.
    const { path, data } = image("raw.img", 10 * MiB + 1234, 1)
    const result = await run(["flash", path, target.device, "--allow-loop", "--force", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const report = json<FlashReport>(result)
    expect(report).toMatchObject({ mode: "write", status: "succeeded", device: { path: target.device } })
    expect(report.writtenSha256).toBe(sha256(data))
    expect(readDirect(target.device, 0, data.length).equals(data)).toBe(true)

    const [record] = (await flashList()).flashes
    expect(record).toMatchObject({
      id: report.id,
      mode: "write",
      status: "succeeded",
      verify: "full",
      wipe: false,
      requestedBy: "cli",
      requestedUser: "root",
      image: { bytes: data.length, sha256: sha256(data) },
    })
    expect(record?.writeMs).toBeGreaterThanOrEqual(0)
    expect(record?.verifyMs).toBeGreaterThanOrEqual(0)
  })

  it("decompresses a gzip image as it writes, even with metadata after the gzip stream", async () => {
    const target = card("gzip", 64 * MiB)
    const data = pseudoRandom(6 * MiB, 2)
    // OpenWrt appends signature metadata after the gzip stream of x86 images.
    const gz = Buffer.concat([gzipSync(data), Buffer.from("\0\0fwtool metadata that is not gzip")])
    const path = join(project.dir, "image.img.gz")
    writeFileSync(path, gz)
    const result = await run(["flash", path, target.device, "--allow-loop", "--force", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const report = json<FlashReport>(result)
    expect(report.image).toMatchObject({ compression: "gzip", bytes: data.length })
    expect(report.writtenSha256).toBe(sha256(data))
    expect(readDirect(target.device, 0, data.length).equals(data)).toBe(true)
  })

  it("decompresses xz and zstd images as it writes (Raspberry Pi OS images), and refuses a truncated one", async () => {
    const target = card("xz", 64 * MiB)
    const data = pseudoRandom(3 * MiB, 21)
    for (const [tool, compression] of [
      ["xz", "xz"],
      ["zstd", "zstd"],
    ] as const) {
      const path = join(project.dir, `image.img.${tool === "xz" ? "xz" : "zst"}`)
      writeFileSync(path, execFileSync(tool, ["-c", "-q"], { input: data, maxBuffer: 64 * MiB }))
      const result = await run(["flash", path, target.device, "--allow-loop", "--force", "--json"])
      expect(result.code, result.stderr).toBe(0)
      const report = json<FlashReport>(result)
      expect(report.image).toMatchObject({ compression, bytes: data.length })
      expect(report.writtenSha256).toBe(sha256(data))
      expect(readDirect(target.device, 0, data.length).equals(data)).toBe(true)
    }
    const whole = execFileSync("xz", ["-c", "-q"], { input: data, maxBuffer: 64 * MiB })
    const truncated = join(project.dir, "truncated.img.xz")
    writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)))
    const refused = await run(["flash", truncated, target.device, "--allow-loop", "--force", "--json"])
    expect(refused.code).toBe(3)
    const { error } = json<ErrorDocument>(refused)
    expect(error.code).toBe("flash_image_invalid")
    expect(error.message).toMatch(/corrupt xz image/)
  })

  it("ignores whatever follows the first gzip member, and refuses a truncated or corrupt one", async () => {
    const target = card("gzip-trailer", 64 * MiB)
    const data = pseudoRandom(5 * MiB, 12)
    const member = gzipSync(data)
    // fwtool metadata as sysupgrade writes it: JSON and a trailer, no leading zero bytes. Node's gunzip
    // would read it as a second gzip member and fail with "incorrect header check".
    const metadata = Buffer.from(
      '{"metadata_version":"1.1","supported_devices":["generic"]}FWx0\x00\x00\x00\x4a',
    )
    const path = join(project.dir, "trailer.img.gz")
    writeFileSync(path, Buffer.concat([member, metadata]))
    const result = await run(["flash", path, target.device, "--allow-loop", "--force", "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(0)
    const report = json<FlashReport>(result)
    expect(report.image).toMatchObject({ compression: "gzip", bytes: data.length })
    expect(report.writtenSha256).toBe(sha256(data))
    expect(readDirect(target.device, 0, data.length).equals(data)).toBe(true)

    const refusedImage = async (name: string, content: Buffer, says: string) => {
      const file = join(project.dir, name)
      writeFileSync(file, content)
      const refused = await run(["flash", file, target.device, "--allow-loop", "--force", "--json"])
      expect(refused.code, refused.stdout + refused.stderr).toBe(3)
      const { error } = json<ErrorDocument>(refused)
      expect(error.code).toBe("flash_image_invalid")
      expect(error.message).toContain(says)
    }
    // Cut inside the deflate data, and cut inside the trailer.
    await refusedImage("cut.img.gz", member.subarray(0, member.length - 4096), "truncated")
    await refusedImage("cut-trailer.img.gz", member.subarray(0, member.length - 3), "truncated")
    // The trailer's CRC-32 no longer matches what the data decompresses to.
    const badCrc = Buffer.from(member)
    badCrc.writeUInt32LE((badCrc.readUInt32LE(member.length - 8) ^ 1) >>> 0, member.length - 8)
    await refusedImage("crc.img.gz", Buffer.concat([badCrc, metadata]), "CRC-32")
    // Nothing was written by the refusals: the card still holds the first image.
    expect(readDirect(target.device, 0, data.length).equals(data)).toBe(true)
  })

  it("with a block map beside the image, writes and reads back only the mapped blocks; --no-bmap writes all", async () => {
    // A card that held something else: 0xAA everywhere.
    writeFileSync(join(project.dir, "bmap.card"), Buffer.alloc(32 * MiB, 0xaa))
    const target = card("bmap", 32 * MiB)
    // 24 MiB of image, 2.5 MiB (and a little) of data; the rest zeros.
    const data = Buffer.alloc(24 * MiB)
    pseudoRandom(MiB, 31).copy(data, 0)
    pseudoRandom(1.5 * MiB, 32).copy(data, 9 * MiB)
    pseudoRandom(100, 33).copy(data, 20 * MiB + 3 * 4096 + 7)
    const raw = join(project.dir, "sparse.img")
    writeFileSync(raw, data)
    const bmapText = await Effect.runPromise(createBmap(raw))
    writeFileSync(join(project.dir, "sparse.bmap"), bmapText)
    const xz = join(project.dir, "sparse.img.xz")
    writeFileSync(xz, execFileSync("xz", ["-c", "-q", "-T1"], { input: data, maxBuffer: 64 * MiB }))

    const result = await run(["flash", xz, target.device, "--allow-loop", "--force", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const report = json<FlashReport & { image: { bmap?: { path: string; mappedBytes: number } } }>(result)
    const mapped = MiB + 1.5 * MiB + 4096
    expect(report.image.bmap).toEqual({ path: join(project.dir, "sparse.bmap"), mappedBytes: mapped })
    expect(report.writtenSha256).toBe(sha256(data))
    expect(report.steps.join("\n")).toContain(`only the ${mapped} bytes of data its block map`)
    const onCard = readDirect(target.device, 0, data.length)
    for (const [start, length] of [
      [0, MiB],
      [9 * MiB, 1.5 * MiB],
      [20 * MiB + 3 * 4096, 4096],
    ] as const) {
      expect(onCard.subarray(start, start + length).equals(data.subarray(start, start + length))).toBe(true)
    }
    // What the map leaves out was not written: the card's old bytes are still there.
    expect(onCard.subarray(5 * MiB, 6 * MiB).every((b) => b === 0xaa)).toBe(true)
    // Checking the card later reads back only the mapped blocks too.
    const checked = await run(["flash", xz, target.device, "--allow-loop", "--verify-only", "--json"])
    expect(checked.code, checked.stderr).toBe(0)

    const full = await run(["flash", xz, target.device, "--allow-loop", "--force", "--no-bmap", "--json"])
    expect(full.code, full.stderr).toBe(0)
    expect(json<{ image: { bmap?: unknown } }>(full).image.bmap).toBeUndefined()
    expect(readDirect(target.device, 0, data.length).equals(data)).toBe(true)
  })

  it("with a block map, still catches a ghost card that forgets mapped blocks behind the page cache", async () => {
    const target = card("ghostmap", 32 * MiB)
    const data = Buffer.alloc(16 * MiB)
    pseudoRandom(4 * MiB, 51).copy(data, 2 * MiB)
    const path = join(project.dir, "ghostmap.img")
    writeFileSync(path, data)
    writeFileSync(join(project.dir, "ghostmap.bmap"), await Effect.runPromise(createBmap(path)))
    const written = await run(["flash", path, target.device, "--allow-loop", "--force", "--verify", "none"])
    expect(written.code, written.stderr).toBe(0)
    // A second process keeps the page cache of the device alive; a buffered read fills it...
    const fd = openSync(target.device, "r")
    const holder = spawn("sleep", ["600"], { stdio: [fd, "ignore", "ignore"] })
    closeSync(fd)
    helpers.push(holder)
    execFileSync("dd", [`if=${target.device}`, "bs=1M", "count=16", "of=/dev/null", "status=none"])
    // ...then the card forgets 1 MiB of the mapped data, from 3 MiB on.
    execFileSync("dd", [
      "if=/dev/zero",
      `of=${target.backingFile}`,
      "bs=1M",
      "seek=3",
      "count=1",
      "oflag=direct",
      "conv=notrunc",
      "status=none",
    ])
    const result = await run(["flash", path, target.device, "--allow-loop", "--verify-only", "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(9)
    expect(json<ErrorDocument>(result).error.code).toBe("flash_verify_mismatch")
    const [record] = (await flashList()).flashes
    expect(record).toMatchObject({
      status: "mismatch",
      firstBadOffset: 3 * MiB + data.subarray(3 * MiB).findIndex((b) => b !== 0),
      badBytes: data.subarray(3 * MiB, 4 * MiB).filter((b) => b !== 0).length,
    })
  })

  it("refuses a block map that is damaged, or is of another image, without leaving data off the card", async () => {
    const target = card("badmap", 32 * MiB)
    const data = Buffer.alloc(8 * MiB)
    pseudoRandom(2 * MiB, 41).copy(data, 0)
    const path = join(project.dir, "mapped.img")
    writeFileSync(path, data)
    const good = await Effect.runPromise(createBmap(path))
    const code = async () => {
      const result = await run(["flash", path, target.device, "--allow-loop", "--force", "--json"])
      return { exit: result.code, error: json<ErrorDocument>(result).error }
    }
    // Edited by hand: its own checksum no longer matches.
    writeFileSync(join(project.dir, "mapped.bmap"), good.replace(/> 0-511 </, "> 0-100 <"))
    const damaged = await code()
    expect(damaged.exit).toBe(3)
    expect(damaged.error.code).toBe("flash_image_invalid")
    expect(damaged.error.message).toContain("its checksum does not match")
    expect(damaged.error.message).toContain("--no-bmap")
    // A valid map of another image of the same size: data where it names none, and other bytes where it does.
    const other = Buffer.alloc(8 * MiB)
    pseudoRandom(MiB, 42).copy(other, 0)
    const otherPath = join(project.dir, "other.img")
    writeFileSync(otherPath, other)
    writeFileSync(join(project.dir, "mapped.bmap"), await Effect.runPromise(createBmap(otherPath)))
    const mismatch = await code()
    expect(mismatch.exit).toBe(3)
    expect(mismatch.error.message).toMatch(/do not have the map's SHA-256|in blocks the map leaves out/)
    expect(mismatch.error.message).toContain("is not of this image")
    const records = (await flashList()).flashes
    expect(records[0]?.error?.code).toBe("flash_image_invalid")
  })

  it("without --force only explains: nothing is written, and the dry run is recorded", async () => {
    const target = card("dry", 32 * MiB)
    const before = readDirect(target.device, 0, 4 * MiB)
    const { path } = image("dry.img", 4 * MiB, 3)
    const result = await run(["flash", path, target.device, "--allow-loop", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const report = json<FlashReport>(result)
    expect(report).toMatchObject({ mode: "dry-run", status: "planned" })
    expect(report.steps.join("\n")).toContain(target.device)
    expect(readDirect(target.device, 0, 4 * MiB).equals(before)).toBe(true)
    const human = await run(["flash", path, target.device, "--allow-loop"])
    expect(human.stdout).toContain("nothing was written")
    expect((await flashList()).flashes[0]).toMatchObject({ mode: "dry-run", status: "planned" })
  })

  it("on a terminal, writes only once the device path is typed at the prompt", async () => {
    const target = card("prompt", 32 * MiB)
    const { path, data } = image("prompt.img", 3 * MiB, 9)
    // `script` gives owrt a real terminal; the answer is typed when the prompt shows.
    const answer = (typed: string) =>
      new Promise<string>((resolve) => {
        const child = spawn(
          "script",
          ["-qec", `${process.execPath} ${owrtBin} flash ${path} ${target.device} --allow-loop`, "/dev/null"],
          { cwd: project.dir, env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] },
        )
        let output = ""
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString("utf8")
          if (output.includes("to go on:") && !child.stdin.writableEnded) child.stdin.end(`${typed}\n`)
        })
        child.on("close", () => resolve(output))
      })
    const declined = await answer("/dev/sda")
    expect(declined).toContain("nothing was written")
    expect(readDirect(target.device, 0, MiB).equals(Buffer.alloc(MiB))).toBe(true)
    const accepted = await answer(target.device)
    expect(accepted).toContain("the card holds the image")
    expect(readDirect(target.device, 0, data.length).equals(data)).toBe(true)
  })

  describe("refuses, with exit 8 and its own code, and writes nothing", () => {
    const expectRefusal = async (
      args: ReadonlyArray<string>,
      code: string,
      untouched?: { device: string; bytes: Buffer },
    ) => {
      const result = await run(["flash", ...args, "--force", "--json"])
      expect(result.code, result.stdout + result.stderr).toBe(8)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe(code)
      expect(error.message.length).toBeGreaterThan(20)
      if (untouched) {
        expect(readDirect(untouched.device, 0, untouched.bytes.length).equals(untouched.bytes)).toBe(true)
      }
      return error
    }

    it("a loop device unless --allow-loop is given", async () => {
      const target = card("loop", 16 * MiB)
      const { path } = image("small.img", MiB, 4)
      const error = await expectRefusal([path, target.device], "flash_loop_not_allowed", {
        device: target.device,
        bytes: Buffer.alloc(MiB),
      })
      expect(error.message).toContain("--allow-loop")
      expect((await flashList()).flashes[0]).toMatchObject({
        status: "refused",
        error: { code: "flash_loop_not_allowed" },
      })
    })

    it("a partition, also through a symlink; a mounted partition's disk; a device held exclusively", async () => {
      const target = card("parted", 64 * MiB, { partitions: true })
      execFileSync("sfdisk", ["-q", target.device], { input: ",16M,L\n,,L\n" })
      execFileSync("partx", ["-u", target.device], { stdio: "ignore" })
      const partition = `${target.device}p1`
      const { path } = image("p.img", MiB, 5)
      await expectRefusal([path, partition, "--allow-loop"], "flash_partition")
      const link = join(project.dir, "by-id-link")
      symlinkSync(partition, link)
      const viaLink = await expectRefusal([path, link, "--allow-loop"], "flash_partition")
      expect(viaLink.message).toContain(partition)

      execFileSync("mkfs.ext4", ["-q", "-F", `${target.device}p2`])
      const mountPoint = join(project.dir, "mnt")
      mkdirSync(mountPoint, { recursive: true })
      execFileSync("mount", [`${target.device}p2`, mountPoint])
      mounts.push(mountPoint)
      const table = readDirect(target.device, 0, 4096)
      const mounted = await expectRefusal([path, target.device, "--allow-loop"], "flash_mounted", {
        device: target.device,
        bytes: table,
      })
      expect(mounted.message).toContain(mountPoint)
      execFileSync("umount", [mountPoint])
      mounts.splice(0)

      // The last gate: another program has claimed the device (O_EXCL), so the kernel says EBUSY. The
      // claim is retried for a moment: the unmount above may still be letting go of the device.
      const claim = [
        "import os, sys, time",
        "for attempt in range(100):",
        "    try:",
        "        os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL)",
        "        break",
        "    except OSError as error:",
        "        if attempt == 99: sys.exit(f'cannot claim {sys.argv[1]}: {error}')",
        "        time.sleep(0.1)",
        "print('held', flush=True)",
        "time.sleep(600)",
      ].join("\n")
      const holder = spawn("python3", ["-c", claim, target.device], { stdio: ["ignore", "pipe", "pipe"] })
      helpers.push(holder)
      let holderError = ""
      holder.stderr?.on("data", (chunk: Buffer) => {
        holderError += chunk.toString("utf8")
      })
      await new Promise<void>((resolve, reject) => {
        holder.stdout?.once("data", () => resolve())
        holder.once("exit", (code) => reject(new Error(`the O_EXCL holder exited ${code}: ${holderError}`)))
      })
      await expectRefusal([path, target.device, "--allow-loop"], "flash_busy", {
        device: target.device,
        bytes: table,
      })
    })

    it("a file named like the card: the path must lead to the device node sysfs names", async () => {
      const target = card("namesake", 16 * MiB)
      const { path } = image("namesake.img", MiB, 10)
      const name = target.device.replace("/dev/", "")
      mkdirSync(join(project.dir, "sub"), { recursive: true })
      const impostor = join(project.dir, "sub", name)
      writeFileSync(impostor, Buffer.alloc(MiB))
      // Relative to the working directory, as a person means it.
      const error = await expectRefusal([path, `sub/${name}`, "--allow-loop"], "flash_not_block_device")
      expect(error.message).toContain("device node")
      expect(readFileSync(impostor).equals(Buffer.alloc(MiB))).toBe(true)
    })

    it("a read-only device, one too small for the image, and a path that is not a block device", async () => {
      const { path } = image("ten.img", 10 * MiB, 6)
      const readOnly = card("ro", 32 * MiB, { readOnly: true })
      await expectRefusal([path, readOnly.device, "--allow-loop"], "flash_read_only")
      const small = card("small", 8 * MiB)
      const tooSmall = await expectRefusal([path, small.device, "--allow-loop"], "flash_too_small", {
        device: small.device,
        bytes: Buffer.alloc(MiB),
      })
      expect(tooSmall.message).toContain("larger card")
      await expectRefusal([path, "/dev/null"], "flash_not_block_device")
      await expectRefusal([path, join(project.dir, "ten.img")], "flash_not_block_device")
    })
  })

  it("--verify-only of a card holding another image: different data (exit 9), and the card is not suspect", async () => {
    const target = card("other", 32 * MiB)
    const a = image("a.img", 4 * MiB, 20)
    const b = image("b.img", 4 * MiB, 21)
    expect((await run(["flash", a.path, target.device, "--allow-loop", "--force"])).code).toBe(0)

    // The image that is on the card: it checks out, and the report says nothing was written.
    const good = await run(["flash", a.path, target.device, "--allow-loop", "--verify-only"])
    expect(good.code, good.stdout + good.stderr).toBe(0)
    expect(good.stdout).toContain("the card holds the image")
    expect(good.stdout).not.toMatch(/wrote|sha256 \?/)
    expect((await flashList()).flashes[0]).toMatchObject({
      mode: "verify-only",
      status: "succeeded",
      image: { sha256: sha256(a.data) },
    })

    const other = await run(["flash", b.path, target.device, "--allow-loop", "--verify-only", "--json"])
    expect(other.code, other.stdout + other.stderr).toBe(9)
    const { error } = json<ErrorDocument>(other)
    expect(error.code).toBe("flash_card_differs")
    expect(error.message).toContain(`the card ${target.device} holds different data than ${b.path}`)
    expect(error.message).toContain("of another image")
    expect(error.message).not.toContain("suspect —")
    const list = await flashList()
    expect(list.flashes[0]).toMatchObject({
      mode: "verify-only",
      status: "mismatch",
      error: { code: "flash_card_differs" },
    })
    expect(list.suspectCards.filter((s) => s.flashId === list.flashes[0]?.id)).toEqual([])
    const human = await run(["flash", b.path, target.device, "--allow-loop", "--verify-only"])
    expect(human.code).toBe(9)
    expect(human.stderr).toContain("owrt: error[flash_card_differs]: the card")
    expect(human.stdout).not.toMatch(/wrote|sha256 \?/)

    // A card nothing was ever written to (in this store's records): not suspect either.
    const blank = card("never-written", 16 * MiB)
    const fresh = await run(["flash", b.path, blank.device, "--allow-loop", "--verify-only", "--json"])
    expect(fresh.code).toBe(9)
    expect(json<ErrorDocument>(fresh).error.message).toContain("no write to this card is recorded")
    expect((await flashList()).suspectCards.filter((s) => s.sizeBytes === 16 * MiB)).toEqual([])
  })

  it("catches a ghost card that the page cache would hide, names the first bad byte, and records it as suspect", async () => {
    const target = card("ghost", 32 * MiB)
    const { path, data } = image("ghost.img", 12 * MiB, 7)
    const written = await run([
      "flash",
      path,
      target.device,
      "--allow-loop",
      "--force",
      "--verify",
      "none",
      "--json",
    ])
    expect(written.code, written.stderr).toBe(0)

    // A second process holds the device open, so its page cache outlives each owrt process.
    const fd = openSync(target.device, "r")
    const holder = spawn("sleep", ["600"], { stdio: [fd, "ignore", "ignore"] })
    closeSync(fd)
    helpers.push(holder)
    // A buffered read fills the page cache with what was written...
    execFileSync("dd", [`if=${target.device}`, "bs=1M", "count=12", "of=/dev/null", "status=none"])
    // ...then the card "forgets" 3 MiB from 5 MiB on: the backing file is reverted behind the cache.
    execFileSync("dd", [
      "if=/dev/zero",
      `of=${target.backingFile}`,
      "bs=1M",
      "seek=5",
      "count=3",
      "oflag=direct",
      "conv=notrunc",
      "status=none",
    ])
    // A check through the page cache is fooled.
    const cached = execFileSync("dd", [`if=${target.device}`, "bs=1M", "count=12", "status=none"], {
      maxBuffer: 64 * MiB,
    })
    expect(cached.equals(data)).toBe(true)

    const result = await run(["flash", path, target.device, "--allow-loop", "--verify-only", "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(9)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("flash_verify_mismatch")
    const zeroBytes = data.subarray(5 * MiB, 8 * MiB).filter((b) => b === 0).length
    const list = await flashList()
    expect(list.flashes[0]).toMatchObject({
      mode: "verify-only",
      status: "mismatch",
      firstBadOffset: 5 * MiB + data.subarray(5 * MiB).findIndex((b) => b !== 0),
      badBytes: 3 * MiB - zeroBytes,
    })
    expect(error.message).toContain(`first difference at byte ${list.flashes[0]?.firstBadOffset}`)
    // This image was the last one written to the card: it did not keep it.
    expect(error.message).toContain("holds different data")
    expect(error.message).toContain("was of this image")
    expect(list.suspectCards[0]).toMatchObject({ flashId: list.flashes[0]?.id, sizeBytes: 32 * MiB })
  })

  it("reports a card that fails reads during verification as suspect (exit 9), without crashing", async () => {
    const target = card("failing", 64 * MiB)
    const { path } = image("failing.img", 16 * MiB, 11)
    expect(
      (await run(["flash", path, target.device, "--allow-loop", "--force", "--verify", "none"])).code,
    ).toBe(0)
    // The card "loses" everything past 6 MiB: reads there come back short, while earlier reads are in flight.
    execFileSync("truncate", ["-s", `${6 * MiB}`, target.backingFile])
    const result = await run(["flash", path, target.device, "--allow-loop", "--verify-only", "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(9)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("flash_io_error")
    const list = await flashList()
    expect(list.flashes[0]).toMatchObject({
      mode: "verify-only",
      status: "mismatch",
      error: { code: "flash_io_error" },
    })
    expect(list.suspectCards[0]).toMatchObject({ flashId: list.flashes[0]?.id })
  })

  it("records a flash stopped by Ctrl+C as interrupted, and exits 130", async () => {
    const target = card("interrupted", 1100 * MiB)
    const path = join(project.dir, "big.img")
    execFileSync("truncate", ["-s", `${1024 * MiB}`, path])
    const child = spawn(
      process.execPath,
      [owrtBin, "flash", path, target.device, "--allow-loop", "--force"],
      {
        cwd: project.dir,
        env: cleanEnv(),
        stdio: ["ignore", "ignore", "pipe"],
      },
    )
    helpers.push(child)
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    // Interrupt once the flash is under way (its record says running).
    for (let i = 0; i < 100; i++) {
      const [latest] = (await flashList()).flashes
      if (latest?.status === "running" && latest.device.path === target.device) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    child.kill("SIGINT")
    expect(await exited).toBe(130)
    const [record] = (await flashList()).flashes
    expect(record).toMatchObject({ status: "interrupted", error: { code: "interrupted" } })
  })

  it("--wipe leaves no old partition table or signature at either end", async () => {
    const size = 64 * MiB
    const wiped = card("wipe", size)
    const kept = card("nowipe", size)
    for (const target of [wiped, kept]) {
      execFileSync("sfdisk", ["-q", "--label", "gpt", target.device], {
        input: ",,L\n",
        stdio: ["pipe", "ignore", "ignore"],
      })
      expect(readDirect(target.device, size - 512, 8).toString("latin1")).toBe("EFI PART")
    }
    const { path } = image("w.img", 2 * MiB, 8)
    expect((await run(["flash", path, wiped.device, "--allow-loop", "--force", "--wipe"])).code).toBe(0)
    expect((await run(["flash", path, kept.device, "--allow-loop", "--force"])).code).toBe(0)
    // Without --wipe the backup GPT header survives at the end of the card.
    expect(readDirect(kept.device, size - 512, 8).toString("latin1")).toBe("EFI PART")
    expect(readDirect(wiped.device, size - MiB, MiB).every((b) => b === 0)).toBe(true)
    expect(readDirect(wiped.device, 2 * MiB, MiB).every((b) => b === 0)).toBe(true)
    const signatures = execFileSync("wipefs", ["--no-act", "--noheadings", wiped.device], {
      encoding: "utf8",
    })
    expect(signatures.trim()).toBe("")
    expect((await flashList()).flashes.find((f) => f.device.path === wiped.device)).toMatchObject({
      wipe: true,
    })
  })

  describe("from the store", () => {
    let mirror: { url: string; close: () => Promise<void> }
    let keyring: string
    beforeAll(async () => {
      const built = await buildMirror()
      keyring = built.keyring
      mirror = await serveMirror(built.root)
      project.write(
        "profiles/router.yaml",
        'release: "24.10.2"\ntarget: x86/64\ndevice: generic\npackages: [luci-ssl]\nrootfs_size: 64\n',
      )
    })
    afterAll(() => mirror.close())

    it("builds a profile, picks its card image, writes it, and identifies the card by its build marker", async () => {
      const env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring }
      const target = card("router", 256 * MiB)
      const result = await run(["flash", "router", target.device, "--allow-loop", "--force", "--json"], env)
      expect(result.code, result.stdout + result.stderr).toBe(0)
      const report = json<FlashReport>(result)
      expect(report.image.profile).toBe("router")
      expect(report.image.artifact?.type).toMatch(/^combined/)
      expect(report.image.artifact?.name).not.toContain("sysupgrade")
      expect(report.image.choice).toContain("chose")

      // Dry runs of the profile reuse the stored image: each is a build record, none made the image.
      for (let i = 0; i < 2; i++) {
        const dry = await run(["flash", "router", target.device, "--allow-loop", "--dry-run"], env)
        expect(dry.code, dry.stdout + dry.stderr).toBe(0)
      }
      const identified = await run(["flash", "--identify", target.device, "--json"], env)
      expect(identified.code, identified.stdout + identified.stderr).toBe(0)
      const marker = json<{
        marker: { profile: string; key: string; revision: string }
        builds: ReadonlyArray<{ id: number; profile: string }>
        reuses: number
      }>(identified)
      expect(marker.marker.profile).toBe("router")
      // Only the build that made the image is named; the reuses are counted.
      expect(marker.builds.map((b) => b.profile)).toEqual(["router"])
      expect(marker.reuses).toBe(2)
      const humanIdentify = (await run(["flash", "--identify", target.device], env)).stdout
      expect(humanIdentify.match(/made by build #/g)).toHaveLength(1)
      expect(humanIdentify).toContain(`made by build #${marker.builds[0]?.id} router@1`)
      expect(humanIdentify).toContain("reused by 2 builds")
      const plan = json<{ profiles: ReadonlyArray<{ nodes: ReadonlyArray<{ kind: string; key: string }> }> }>(
        await run(["plan", "router", "--json"], env),
      )
      const imageKey = plan.profiles[0]?.nodes.find((n) => n.kind === "make-image")?.key
      expect(marker.marker.key).toBe(imageKey)

      // The same image by artifact id (a sha256 prefix), checked against the store before writing.
      const sha = report.image.artifact?.sha256 ?? ""
      const byId = await run(["flash", sha.slice(0, 12), target.device, "--allow-loop", "--json"], env)
      expect(byId.code, byId.stderr).toBe(0)
      expect(json<FlashReport>(byId).image.artifact?.sha256).toBe(sha)

      const blank = card("blank", 16 * MiB)
      const none = await run(["flash", "--identify", blank.device, "--json"], env)
      expect(none.code).toBe(4)
      expect(json<{ marker: null }>(none).marker).toBeNull()
      expect(readFileSync(report.image.path).length).toBeGreaterThan(0)
    })
  })
})

if (loopDevicesUnavailable !== undefined) {
  describe("owrt flash on real loop devices", () => {
    it.skip(`skipped: ${loopDevicesUnavailable}`, () => undefined)
  })
}
