import { describe, expect, it } from "vitest"
import { packageChanges } from "../../src/diff/packageChanges.js"

describe("packageChanges", () => {
  it("lists packages added, removed and changed version, sorted by name, and counts the rest", () => {
    const before = [
      { name: "tcpdump", version: "4.99.5-1" },
      { name: "base-files", version: "1519-r1" },
      { name: "busybox", version: "1.36.1-1" },
      { name: "auc", version: "0.3.2-1" },
    ]
    const after = [
      { name: "owut", version: "2025.07.02~e1a3e1f0-1" },
      { name: "busybox", version: "1.36.1-1" },
      { name: "base-files", version: "1600-r2" },
      { name: "libpcap1", version: "1.0-1" },
    ]
    expect(packageChanges(before, after)).toEqual({
      added: [
        { name: "libpcap1", version: "1.0-1" },
        { name: "owut", version: "2025.07.02~e1a3e1f0-1" },
      ],
      removed: [
        { name: "auc", version: "0.3.2-1" },
        { name: "tcpdump", version: "4.99.5-1" },
      ],
      changed: [{ name: "base-files", from: "1519-r1", to: "1600-r2" }],
      unchanged: 1,
    })
  })

  it("finds nothing between a manifest and itself, nor in two empty ones", () => {
    const list = [{ name: "busybox", version: "1.36.1-1" }]
    expect(packageChanges(list, list)).toEqual({ added: [], removed: [], changed: [], unchanged: 1 })
    expect(packageChanges([], [])).toEqual({ added: [], removed: [], changed: [], unchanged: 0 })
  })
})
