import { describe, expect, it } from "vitest"
import { judgeEntry, TarSafetyScanner } from "../../src/builder/tarSafety.js"
import { type TarEntry, tarArchive } from "../helpers/tarWriter.js"

const scan = (entries: ReadonlyArray<TarEntry>, chunkSize = 7919) => {
  const archive = tarArchive(entries)
  const scanner = new TarSafetyScanner()
  for (let offset = 0; offset < archive.length; offset += chunkSize)
    scanner.feed(archive.subarray(offset, offset + chunkSize))
  return scanner.finish()
}

const builder = (name: string) => [
  { name: `${name}/`, type: "dir" as const },
  { name: `${name}/Makefile`, content: "all:\n" },
  { name: `${name}/staging_dir/host/bin/tool`, content: "x".repeat(3000), mode: 0o755 },
  { name: `${name}/bin/link`, type: "symlink" as const, linkTarget: "../staging_dir/host/bin/tool" },
]

describe("tar safety", () => {
  it("accepts an archive with one top-level directory, whatever the chunking", () => {
    for (const size of [1, 511, 512, 513, 100_000]) {
      const result = scan(builder("openwrt-imagebuilder-x"), size)
      expect(result).toEqual({
        ok: true,
        summary: { topLevel: "openwrt-imagebuilder-x", entries: 4, files: 2 },
      })
    }
  })

  it("reads long names from pax headers", () => {
    const deep = `top/${"d/".repeat(80)}file`
    expect(
      scan([
        { name: "top/", type: "dir" },
        { name: deep, content: "x" },
      ]),
    ).toMatchObject({ ok: true })
    expect(
      scan([{ name: "top/", type: "dir" }, { name: `top/${"d/".repeat(80)}../../${"../".repeat(80)}etc/x` }]),
    ).toMatchObject({
      ok: false,
      problem: { reason: "parent directory reference" },
    })
  })

  it.each([
    [[{ name: "top/", type: "dir" }, { name: "top/../../etc/passwd" }], "parent directory reference"],
    [[{ name: "/etc/cron.d/evil" }], "absolute path"],
    [
      [
        { name: "top/", type: "dir" },
        { name: "top/link", type: "symlink", linkTarget: "/etc" },
      ],
      "link pointing outside",
    ],
    [
      [
        { name: "top/", type: "dir" },
        { name: "top/a/link", type: "symlink", linkTarget: "../../../etc" },
      ],
      "link pointing outside",
    ],
    [
      [
        { name: "top/", type: "dir" },
        { name: "top/h", type: "hardlink", linkTarget: "../outside" },
      ],
      "link pointing outside",
    ],
    [
      [
        { name: "top/", type: "dir" },
        { name: "top/sda", type: "block" },
      ],
      "device or fifo",
    ],
    [
      [
        { name: "top/", type: "dir" },
        { name: "top/null", type: "char" },
      ],
      "device or fifo",
    ],
    [
      [
        { name: "top/", type: "dir" },
        { name: "other/", type: "dir" },
      ],
      "more than one top-level entry",
    ],
    [[{ name: "README" }], "top-level entry is not a directory"],
    [
      [
        { name: "top/", type: "dir" },
        { name: "top/up", type: "symlink", linkTarget: ".." },
      ],
      "link pointing outside",
    ],
  ] as ReadonlyArray<[ReadonlyArray<TarEntry>, string]>)("refuses %j (%s)", (entries, reason) => {
    expect(scan(entries)).toMatchObject({ ok: false, problem: { reason } })
  })

  it("refuses a truncated archive", () => {
    const archive = tarArchive(builder("top"))
    const scanner = new TarSafetyScanner()
    scanner.feed(archive.subarray(0, 1200))
    expect(scanner.finish()).toMatchObject({ ok: false, problem: { reason: "malformed archive" } })
  })

  it("judges links relative to their own directory", () => {
    expect(judgeEntry("top/a/b/link", "2", "../../c")).toBeUndefined()
    expect(judgeEntry("top/link", "2", "../../c")?.reason).toBe("link pointing outside")
  })
})

describe("GNU tar listing", () => {
  it("parses members, links and C-quoted names", async () => {
    const { parseListingLine } = await import("../../src/builder/tarListing.js")
    expect(parseListingLine('drwxr-xr-x 0/0               0 2026-11-22 02:21 "top/"')).toEqual({
      type: "5",
      path: "top/",
      linkTarget: "",
    })
    expect(parseListingLine('lrwxrwxrwx 0/0               0 2026-11-22 02:21 "top/d/lnk" -> "../d"')).toEqual(
      {
        type: "2",
        path: "top/d/lnk",
        linkTarget: "../d",
      },
    )
    expect(
      parseListingLine(
        'hrw-r--r-- 0/0               0 2026-11-22 02:21 "top/d/my \\"file\\"" link to "top/hard"',
      ),
    ).toEqual({
      type: "1",
      path: 'top/d/my "file"',
      linkTarget: "top/hard",
    })
    expect(parseListingLine('brw-r--r-- 0/0             8,0 2026-11-22 02:21 "top/sda"')?.type).toBe("4")
    expect(
      parseListingLine('-rw-r--r-- 0/0               3 2026-11-22 02:21 "top/caf\\303\\251 -> x"')?.path,
    ).toBe("top/café -> x")
    expect(parseListingLine("tar: Removing leading `/' from member names")).toBeUndefined()
  })
})
