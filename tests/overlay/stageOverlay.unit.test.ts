import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { findLinkProblem } from "../../src/overlay/overlayLinks.js"
import { stageOverlay, stageOverlayKeyInputs } from "../../src/overlay/stageOverlay.js"
import type { OverlayEntry, ProfileRevision, ResolvedProfile } from "../../src/profile/resolveProfile.js"
import { sha256Hex } from "../../src/text/digest.js"

const dirs: Array<string> = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), "owrt-stage-"))
  dirs.push(dir)
  return dir
}

const revisionWith = (
  overlay: Record<string, string | { link: string }>,
  rest: Partial<ResolvedProfile> = {},
): ProfileRevision => {
  const entries: Array<OverlayEntry> = Object.entries(overlay).map(([path, value]) =>
    typeof value === "string"
      ? { path, kind: "file", mode: 0o644, sha256: sha256Hex(value), size: value.length }
      : {
          path,
          kind: "symlink",
          mode: 0o777,
          sha256: sha256Hex(value.link),
          size: value.link.length,
          linkTarget: value.link,
        },
  )
  const profile = {
    schema: 1,
    id: "p",
    description: null,
    abstract: false,
    parents: [],
    release: "23.05.5",
    target: "ath79/generic",
    device: "x",
    packages: [],
    overlay: entries,
    files: [],
    first_boot: [],
    disabled_services: [],
    rootfs_size: null,
    tags: [],
    secrets: {},
    flash: { image: "auto", verify: "full", wipe: false },
    ...rest,
  } satisfies ResolvedProfile
  return {
    profile,
    canonical: "",
    hash: "",
    source: "worktree",
    readOverlay: (path) => {
      const value = overlay[path]
      return Effect.succeed(typeof value === "string" ? Buffer.from(value) : undefined)
    },
  }
}

const stage = (revision: ProfileRevision, secrets: Record<string, string> = {}) => {
  const output = scratch()
  const result = Effect.runSync(
    Effect.either(stageOverlay(revision, new Map(Object.entries(secrets)), output)),
  )
  return { output, result }
}

describe("stage-overlay", () => {
  it("stages overlay files, inline files with secrets substituted, and first-boot scripts", () => {
    const { output, result } = stage(
      revisionWith(
        { "etc/motd": "hi\n", "etc/link": { link: "motd" } },
        {
          // owrt's own placeholder syntax, not a template string
          files: [{ path: "/etc/wifi", mode: "0600", content: `key=${"$"}{secret:k}\n` }],
          first_boot: [{ name: "90-x", script: `echo ${"$"}{secret:k}` }],
        },
      ),
      { k: "s3cret" },
    )
    expect(Either.isRight(result)).toBe(true)
    expect(readFileSync(join(output, "etc/motd"), "utf8")).toBe("hi\n")
    expect(readlinkSync(join(output, "etc/link"))).toBe("motd")
    expect(readFileSync(join(output, "etc/wifi"), "utf8")).toBe("key=s3cret\n")
    expect(lstatSync(join(output, "etc/wifi")).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(output, "etc/uci-defaults/90-x"), "utf8")).toBe("echo s3cret")
    expect(lstatSync(join(output, "etc/uci-defaults/90-x")).mode & 0o777).toBe(0o755)
    expect(lstatSync(join(output, "etc/motd")).mtimeMs).toBe(0)
  })

  it("replaces an overlay link with an inline file, never writing through it to the host", () => {
    const victim = join(scratch(), "resolv.conf")
    writeFileSync(victim, "host file\n")
    const { output, result } = stage(
      revisionWith(
        { "etc/resolv.conf": { link: victim } },
        { files: [{ path: "/etc/resolv.conf", mode: "0644", content: "nameserver 1.1.1.1\n" }] },
      ),
    )
    expect(Either.isRight(result)).toBe(true)
    expect(readFileSync(victim, "utf8")).toBe("host file\n")
    expect(lstatSync(join(output, "etc/resolv.conf")).isFile()).toBe(true)
  })

  it("refuses a file below a directory the overlay made a link", () => {
    const target = scratch()
    const { result } = stage(
      revisionWith(
        { "etc/config": { link: target } },
        { files: [{ path: "/etc/config/wireless", mode: "0644", content: "x" }] },
      ),
    )
    expect(result).toMatchObject({ _tag: "Left", left: { code: "profile_path_escape" } })
    expect(existsSync(join(target, "wireless"))).toBe(false)
  })

  it("refuses an overlay file that changed after its digest was taken", () => {
    const revision = revisionWith({ "etc/motd": "original\n" })
    const changed: ProfileRevision = {
      ...revision,
      readOverlay: () => Effect.succeed(Buffer.from("edited\n")),
    }
    const { result } = stage(changed)
    expect(Either.isLeft(result)).toBe(true)
    expect(JSON.stringify(Either.isLeft(result) ? result.left.message : "")).toContain(
      "changed while building",
    )
  })

  describe("links: the Image Builder dereferences them (cp -L), so only links into the staged tree stay", () => {
    const problem = (overlay: Parameters<typeof revisionWith>[0], rest: Partial<ResolvedProfile> = {}) => {
      const { output, result } = stage(revisionWith(overlay, rest))
      return { output, result, found: findLinkProblem(revisionWith(overlay, rest).profile) }
    }

    it.each([
      ["an absolute target", { "etc/leak": { link: "/etc/shadow" } }, "absolute"],
      ["a target leaving the overlay", { "etc/leak": { link: "../../etc/shadow" } }, "escape"],
      [
        "a chain ending in an absolute link",
        { "etc/a": { link: "b" }, "etc/b": { link: "/root/.ssh/id_ed25519" } },
        "absolute",
      ],
      [
        "a link through a directory link that leaves",
        { "etc/a": { link: "up/../shadow" }, "etc/up": { link: ".." }, x: "y" },
        "escape",
      ],
      ["a link to its own directory", { "etc/self": { link: "." }, "etc/motd": "x" }, "loop"],
      ["a loop", { "etc/a": { link: "b" }, "etc/b": { link: "a" } }, "loop"],
    ])("refuses %s with profile_path_escape, staging nothing", (_, overlay, kind) => {
      const { output, result, found } = problem(overlay)
      expect(found?.kind).toBe(kind)
      expect(result).toMatchObject({ _tag: "Left", left: { code: "profile_path_escape" } })
      expect(existsSync(join(output, "etc"))).toBe(false)
    })

    it("refuses a link to something the staged tree does not hold (cp -L would fail the build)", () => {
      const { result, found } = problem({ "etc/rc.d/S10x": { link: "../init.d/x" } })
      expect(found).toMatchObject({ kind: "dangling", missing: "etc/init.d/x" })
      expect(result).toMatchObject({ _tag: "Left", left: { code: "profile_link_dangling" } })
    })

    it("keeps links to overlay files and directories, inline files, scripts and the build marker", () => {
      const { output, result, found } = problem(
        {
          "etc/motd": "hi\n",
          "etc/a": { link: "b" },
          "etc/b": { link: "motd" },
          "etc/cfg/one": "1",
          "etc/config": { link: "cfg" },
          "etc/banner.link": { link: "./banner" },
          "etc/first": { link: "uci-defaults/90-x" },
          "usr/share/build": { link: "../../etc/owrt-build" },
          "etc/deep": { link: "config/one" },
        },
        {
          files: [{ path: "/etc/banner", mode: "0644", content: "b" }],
          first_boot: [{ name: "90-x", script: "true" }],
        },
      )
      expect(found).toBeUndefined()
      expect(Either.isRight(result)).toBe(true)
      expect(readlinkSync(join(output, "etc/config"))).toBe("cfg")
    })

    it("accepts a link that an inline file replaces: the image gets the file", () => {
      const { result, found } = problem(
        { "etc/resolv.conf": { link: "/etc/host-resolv.conf" } },
        { files: [{ path: "/etc/resolv.conf", mode: "0644", content: "nameserver 1.1.1.1\n" }] },
      )
      expect(found).toBeUndefined()
      expect(Either.isRight(result)).toBe(true)
    })

    it("has no stage-overlay key for a profile with an escaping link, so plan refuses it too", () => {
      const result = Effect.runSync(
        Effect.either(stageOverlayKeyInputs(revisionWith({ "etc/leak": { link: "/etc/shadow" } }), {})),
      )
      expect(result).toMatchObject({ _tag: "Left", left: { code: "profile_path_escape" } })
    })
  })
})
