import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { worktreeProfileTree } from "../../src/profile/profileTree.js"

/*
 * readText reads a profile file whole, or reports its size when it is over the limit asked for. The read
 * takes room for the file's size (not for the limit), so these pin the edges: empty, exactly at the limit,
 * one byte over, multi-byte text, and a name that is not a file.
 */
const dir = mkdtempSync(join(tmpdir(), "owrt-profile-tree-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const tree = worktreeProfileTree(dir)
const read = (name: string, content: string | undefined, maxBytes: number) => {
  if (content !== undefined) writeFileSync(join(dir, name), content)
  return Effect.runSync(tree.readText(name, maxBytes))
}

describe("worktreeProfileTree.readText", () => {
  it("reads an empty file", () => {
    expect(read("empty.yaml", "", 10)).toEqual({ _tag: "text", text: "" })
  })

  it("reads a file of exactly the limit, and reports one a byte over as too large", () => {
    expect(read("at.yaml", "x".repeat(10), 10)).toEqual({ _tag: "text", text: "x".repeat(10) })
    expect(read("over.yaml", "x".repeat(11), 10)).toEqual({ _tag: "tooLarge", size: 11 })
  })

  it("reads multi-byte UTF-8 whole, whatever the limit", () => {
    const text = "description: Wi-Fi für alle → ✓\n".repeat(50)
    expect(read("utf8.yaml", text, 1024 * 1024)).toEqual({ _tag: "text", text })
    expect(read("utf8.yaml", undefined, Buffer.byteLength(text))).toEqual({ _tag: "text", text })
  })

  it("says nothing of a missing file or a directory", () => {
    mkdirSync(join(dir, "sub.yaml"))
    expect(read("missing.yaml", undefined, 10)).toBeUndefined()
    expect(read("sub.yaml", undefined, 10)).toBeUndefined()
  })
})
