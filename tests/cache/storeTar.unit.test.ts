import { createHash, randomBytes } from "node:crypto"
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PassThrough } from "node:stream"
import { Effect, Either } from "effect"
import { Header } from "tar"
import { afterEach, describe, expect, it } from "vitest"
import { linkStaysInside, packTree, unpackTree } from "../../src/cache/storeTar.js"
import { treeDigest } from "../../src/store/treeDigest.js"

const scratch: Array<string> = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "owrt-tar-"))
  scratch.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of scratch.splice(0)) {
    rmSync(dir, { recursive: true, force: true })
  }
})

/** A small store-path-like tree: nested dirs, an executable, a long name, a relative link. */
const makeTree = (root: string, order: "ab" | "ba" = "ab") => {
  const files: Array<[string, string, number]> = [
    ["bin/tool", "#!/bin/sh\necho hi\n", 0o755],
    ["etc/config/network", "config interface 'lan'\n", 0o644],
    [`${"deep/".repeat(30)}file-with-a-long-name.txt`, "x".repeat(3000), 0o644],
    ["images/openwrt-sysupgrade.bin", "IMG".repeat(10_000), 0o444],
  ]
  if (order === "ba") files.reverse()
  for (const [path, content, mode] of files) {
    mkdirSync(join(root, path, ".."), { recursive: true })
    writeFileSync(join(root, path), content)
    chmodSync(join(root, path), mode)
    utimesSync(join(root, path), order === "ab" ? 1000 : 2_000_000, order === "ab" ? 1000 : 2_000_000)
  }
  symlinkSync("../bin/tool", join(root, "etc/tool-link"))
}

const packAsync = async (root: string) => {
  const file = join(tempDir(), "tree.tar")
  const packed = await Effect.runPromise(packTree(root, file))
  return { file, packed }
}

const unpack = (file: string) => {
  const dest = join(tempDir(), "out")
  mkdirSync(dest)
  return Effect.runPromise(Effect.either(unpackTree(file, dest, "oci://r/owrt:k"))).then((result) => ({
    dest,
    result,
  }))
}

const code = (result: Either.Either<unknown, { code: string }>) =>
  Either.isLeft(result) ? result.left.code : "ok"

/** A tar with one hand-made entry (then the end blocks), for archives packTree never makes. */
const oneEntryTar = (fields: { path: string; type: string; linkpath?: string; size?: number }) => {
  const header = new Header({
    path: fields.path,
    type: fields.type as "File",
    mode: 0o644,
    size: fields.size ?? 0,
    mtime: new Date(0),
    linkpath: fields.linkpath ?? "",
  })
  header.encode()
  const file = join(tempDir(), "bad.tar")
  const data = fields.size ? Buffer.alloc(Math.ceil(fields.size / 512) * 512, 1) : Buffer.alloc(0)
  writeFileSync(file, Buffer.concat([header.block as Buffer, data, Buffer.alloc(1024)]))
  return file
}

describe("deterministic tar of a store path", () => {
  it("the same tree gives the same bytes, whatever the creation order, times or owner", async () => {
    const a = tempDir()
    const b = tempDir()
    makeTree(a, "ab")
    makeTree(b, "ba")
    const one = await packAsync(a)
    const two = await packAsync(b)
    expect(one.packed.digest).toBe(two.packed.digest)
    expect(readFileSync(one.file)).toEqual(readFileSync(two.file))
    expect(one.packed.digest).toBe(
      `sha256:${createHash("sha256").update(readFileSync(one.file)).digest("hex")}`,
    )
    // No owner names, no times in any header.
    expect(readFileSync(one.file).includes(Buffer.from("mtime="))).toBe(false)
  })

  it("an empty store path (an overlay with no files) packs to the end blocks alone and unpacks to nothing", async () => {
    const empty = tempDir()
    const { file, packed } = await packAsync(empty)
    expect(packed.size).toBe(1024)
    const { dest, result } = await unpack(file)
    expect(code(result)).toBe("ok")
    expect(Either.isRight(result) && result.right.entries).toBe(0)
    expect((await Effect.runPromise(treeDigest(dest))).digest).toBe(
      (await Effect.runPromise(treeDigest(empty))).digest,
    )
    // Zeros that are not exactly the end blocks are not the empty tree.
    const longer = join(tempDir(), "zeros.tar")
    writeFileSync(longer, Buffer.alloc(1536))
    expect(code((await unpack(longer)).result)).toBe("cache_entry_malformed")
    const junk = join(tempDir(), "junk.tar")
    writeFileSync(junk, Buffer.concat([Buffer.alloc(512), Buffer.alloc(512, 7)]))
    expect(code((await unpack(junk)).result)).toBe("cache_entry_malformed")
  })

  it("unpacks to the same tree (content, modes, links) and the same tree digest", async () => {
    const a = tempDir()
    makeTree(a)
    const { file } = await packAsync(a)
    const { dest, result } = await unpack(file)
    expect(code(result)).toBe("ok")
    const before = await Effect.runPromise(treeDigest(a))
    const after = await Effect.runPromise(treeDigest(dest))
    expect(after.digest).toBe(before.digest)
    expect(lstatSync(join(dest, "bin/tool")).mode & 0o777).toBe(0o755)
    expect(lstatSync(join(dest, "images/openwrt-sysupgrade.bin")).mode & 0o777).toBe(0o444)
    expect(readlinkSync(join(dest, "etc/tool-link"))).toBe("../bin/tool")
  })

  it("hashes each file as it writes it: the digest taken with those hashes is the one read back", async () => {
    const a = tempDir()
    makeTree(a)
    // A large file (streamed, with holes) beside the small ones.
    writeFileSync(join(a, "images/big.img"), Buffer.concat([randomBytes(70_000), Buffer.alloc(3 << 20)]))
    const { file } = await packAsync(a)
    const { dest, result } = await unpack(file)
    if (Either.isLeft(result)) throw result.left
    const contents = result.right.contents
    expect([...contents.keys()].sort()).toEqual([
      "bin/tool",
      `${"deep/".repeat(30)}file-with-a-long-name.txt`,
      "etc/config/network",
      "images/big.img",
      "images/openwrt-sysupgrade.bin",
    ])
    for (const [path, content] of contents) {
      expect(content.sha256, path).toBe(
        createHash("sha256")
          .update(readFileSync(join(dest, path)))
          .digest("hex"),
      )
    }
    const readBack = await Effect.runPromise(treeDigest(dest))
    const known = await Effect.runPromise(treeDigest(dest, { known: contents }))
    expect(known.digest).toBe(readBack.digest)
  })

  it("uses a known content digest only for a file of that size, and never under a key", async () => {
    const a = tempDir()
    makeTree(a)
    const path = "etc/config/network"
    const real = createHash("sha256")
      .update(readFileSync(join(a, path)))
      .digest("hex")
    const size = lstatSync(join(a, path)).size
    const entry = async (options: Parameters<typeof treeDigest>[1]) =>
      (await Effect.runPromise(treeDigest(a, options))).entries.find((e) => e.path === path)?.sha256
    expect(await entry({ known: new Map([[path, { size, sha256: "f".repeat(64) }]]) })).toBe("f".repeat(64))
    expect(await entry({ known: new Map([[path, { size: size + 1, sha256: "f".repeat(64) }]]) })).toBe(real)
    const keyed = await entry({
      key: new Uint8Array(32),
      known: new Map([[path, { size, sha256: "f".repeat(64) }]]),
    })
    expect(keyed).not.toBe("f".repeat(64))
    expect(keyed).toBe(await entry({ key: new Uint8Array(32) }))
  })

  it("refuses a tree holding a fifo or device when packing", async () => {
    const a = tempDir()
    makeTree(a)
    const { execFileSync } = await import("node:child_process")
    execFileSync("mkfifo", [join(a, "pipe")])
    const result = await Effect.runPromise(Effect.either(packTree(a, join(tempDir(), "t.tar"))))
    expect(Either.isLeft(result)).toBe(true)
  })

  it("refuses paths escaping the tree, links out of it, devices and hard links", async () => {
    const cases = [
      oneEntryTar({ path: "../evil", type: "File", size: 3 }),
      oneEntryTar({ path: "/etc/passwd", type: "File", size: 3 }),
      oneEntryTar({ path: "link", type: "SymbolicLink", linkpath: "/etc/shadow" }),
      oneEntryTar({ path: "link", type: "SymbolicLink", linkpath: "../../outside" }),
      oneEntryTar({ path: "hard", type: "Link", linkpath: "etc/passwd" }),
      oneEntryTar({ path: "dev", type: "CharacterDevice" }),
      oneEntryTar({ path: "fifo", type: "FIFO" }),
    ]
    for (const file of cases) {
      const { result } = await unpack(file)
      expect(code(result), file).toBe("cache_entry_unsafe")
    }
  })

  it("refuses a truncated archive", async () => {
    const a = tempDir()
    makeTree(a)
    const { file, packed } = await packAsync(a)
    truncateSync(file, Math.floor(packed.size / 2))
    const { result } = await unpack(file)
    expect(["cache_entry_truncated", "cache_entry_malformed"]).toContain(code(result))
  })

  it("unpacks files of many chunks intact while other unpacks run at once", async () => {
    const a = tempDir()
    for (let d = 0; d < 10; d++) {
      mkdirSync(join(a, `d${d}`))
      for (let f = 0; f < 20; f++)
        writeFileSync(join(a, `d${d}`, `f${f}`), randomBytes(((d * 20 + f) * 7919) % 300_000))
    }
    const { file } = await packAsync(a)
    const want = (await Effect.runPromise(treeDigest(a))).digest
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map(() => unpack(file)))
    for (const { dest, result } of results) {
      expect(code(result)).toBe("ok")
      expect((await Effect.runPromise(treeDigest(dest))).digest).toBe(want)
    }
  })

  it("unpacks an image with empty space into the same bytes, its blocks of zeros left as holes", async () => {
    const a = tempDir()
    const size = 8 * 1024 * 1024 + 1234
    const image = Buffer.alloc(size)
    // Data at the start, at unaligned places, straddling block and chunk boundaries, and zeros at the end.
    randomBytes(5000).copy(image, 0)
    randomBytes(100).copy(image, 4096 * 100 + 17)
    randomBytes(70_000).copy(image, 1024 * 1024 - 3000)
    image.fill(0xff, 3 * 1024 * 1024, 3 * 1024 * 1024 + 4096)
    writeFileSync(join(a, "sdcard.img"), image)
    // and a file that is zeros only, and one of data only
    writeFileSync(join(a, "zeros.img"), Buffer.alloc(2 * 1024 * 1024 + 5))
    writeFileSync(join(a, "data.img"), randomBytes(2 * 1024 * 1024 + 7))
    const { file } = await packAsync(a)
    const { dest, result } = await unpack(file)
    expect(code(result)).toBe("ok")
    for (const name of ["sdcard.img", "zeros.img", "data.img"])
      expect(readFileSync(join(dest, name)).equals(readFileSync(join(a, name))), name).toBe(true)
    expect((await Effect.runPromise(treeDigest(dest))).digest).toBe(
      (await Effect.runPromise(treeDigest(a))).digest,
    )
    // Most of the image is holes: far fewer blocks allocated than its size.
    expect(lstatSync(join(dest, "sdcard.img")).blocks * 512).toBeLessThan(size / 8)
    expect(lstatSync(join(dest, "zeros.img")).size).toBe(2 * 1024 * 1024 + 5)
  })

  it("links stay inside", () => {
    expect(linkStaysInside("a/b", "../c")).toBe(true)
    expect(linkStaysInside("a/b", "../../c")).toBe(false)
    expect(linkStaysInside("a", "/abs")).toBe(false)
  })
})

describe("unpacking a stream that fails", () => {
  /** Every path under `root`. */
  const countEntries = (root: string): number => readdirSync(root, { recursive: true }).length

  it("ends only when nothing more is written: no write starts after the input failed", async () => {
    // Many directories and small files, and a large file (streamed) in the middle of the cut.
    const root = tempDir()
    for (let d = 0; d < 300; d++) {
      mkdirSync(join(root, `d${String(d).padStart(3, "0")}`, "sub"), { recursive: true })
      for (let f = 0; f < 5; f++)
        writeFileSync(join(root, `d${String(d).padStart(3, "0")}`, "sub", `f${f}`), `${d}/${f}`)
    }
    writeFileSync(join(root, "d150", "large.bin"), randomBytes(3 * 1024 * 1024))
    const { file } = await packAsync(root)
    const tar = readFileSync(file)
    const dest = join(tempDir(), "out")
    mkdirSync(dest)
    const input = new PassThrough()
    const unpacking = Effect.runPromise(Effect.either(unpackTree(input, dest, "test")))
    // Half the archive (the cut falls inside the large file), then the download fails.
    input.write(tar.subarray(0, Math.floor(tar.length / 2)))
    await new Promise((resolve) => setTimeout(resolve, 20))
    input.destroy(new Error("connection reset"))
    const result = await unpacking
    expect(Either.isLeft(result)).toBe(true)
    const atEnd = countEntries(dest)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(countEntries(dest)).toBe(atEnd)
    expect(atEnd).toBeLessThan(300 * 7)
  })
})
