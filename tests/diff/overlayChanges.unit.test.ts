import { describe, expect, it } from "vitest"
import { octalMode, overlayChanges } from "../../src/diff/overlayChanges.js"
import type { TreeFile } from "../../src/store/treeDigest.js"

const file = (path: string, sha256: string, size: number, mode = 0o644): TreeFile => ({
  path,
  kind: "file",
  mode,
  size,
  sha256,
})
const dir = (path: string, mode = 0o755): TreeFile => ({ path, kind: "dir", mode, size: 0 })
const link = (path: string, linkTarget: string): TreeFile => ({
  path,
  kind: "symlink",
  mode: 0o777,
  size: 0,
  linkTarget,
})

describe("overlayChanges", () => {
  it("reports entries added, removed and changed, saying what changed, with octal modes", () => {
    const before = [
      dir("etc"),
      file("etc/motd", "aa", 12),
      file("etc/gone", "bb", 3),
      file("etc/secret", "cc", 5, 0o644),
      link("etc/localtime", "/usr/share/zoneinfo/UTC"),
      file("etc/was-a-file", "dd", 1),
    ]
    const after = [
      dir("etc"),
      file("etc/motd", "ee", 26),
      file("etc/secret", "cc", 5, 0o600),
      link("etc/localtime", "/usr/share/zoneinfo/Europe/Berlin"),
      link("etc/was-a-file", "/tmp/x"),
      file("usr/bin/hello", "ff", 20, 0o755),
    ]
    const changes = overlayChanges(before, after)
    expect(changes.added).toEqual([
      { path: "usr/bin/hello", kind: "file", mode: "0755", size: 20, linkTarget: null },
    ])
    expect(changes.removed).toEqual([
      { path: "etc/gone", kind: "file", mode: "0644", size: 3, linkTarget: null },
    ])
    expect(changes.changed.map((c) => [c.path, c.changes])).toEqual([
      ["etc/localtime", ["target"]],
      ["etc/motd", ["content"]],
      ["etc/secret", ["mode"]],
      ["etc/was-a-file", ["kind"]],
    ])
    expect(changes.changed[0]?.to).toEqual({
      path: "etc/localtime",
      kind: "symlink",
      mode: null,
      size: 0,
      linkTarget: "/usr/share/zoneinfo/Europe/Berlin",
    })
    expect(changes.changed[2]?.from.mode).toBe("0644")
    expect(changes.changed[2]?.to.mode).toBe("0600")
    expect(changes.unchanged).toBe(1)
  })

  it("sees a change of content of the same size by its digest", () => {
    const changes = overlayChanges([file("etc/motd", "aa", 4)], [file("etc/motd", "bb", 4)])
    expect(changes.changed.map((c) => c.changes)).toEqual([["content"]])
  })

  it("finds nothing between a listing and itself", () => {
    const listing = [dir("etc"), file("etc/motd", "aa", 4), link("etc/x", "y")]
    expect(overlayChanges(listing, listing)).toEqual({ added: [], removed: [], changed: [], unchanged: 3 })
  })

  it("writes modes as four octal digits", () => {
    expect(octalMode(0o644)).toBe("0644")
    expect(octalMode(0o4755)).toBe("4755")
    expect(octalMode(0o100600)).toBe("0600")
  })
})
