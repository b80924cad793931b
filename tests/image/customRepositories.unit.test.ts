import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import {
  repositoriesFile,
  repositoryKeyFiles,
  writeCustomRepositories,
} from "../../src/image/customRepositories.js"
import { feedsLeftOut } from "../../src/image/makeImage.js"
import { usignPublicKeyId } from "../../src/text/usignKey.js"

const opkgConf = `## Place your custom repositories here, they must match the architecture and version.
# src/gz %n https://downloads.openwrt.org/releases/24.10.2
src/gz openwrt_core https://downloads.openwrt.org/releases/24.10.2/targets/ath79/generic/packages
src/gz openwrt_base https://downloads.openwrt.org/releases/24.10.2/packages/mips_24kc/base

## This is the local package repository, do not remove!
src imagebuilder file:packages

option check_signature
`
const apkRepositories = `https://downloads.openwrt.org/snapshots/targets/x86/64/packages/packages.adb
https://downloads.openwrt.org/snapshots/packages/x86_64/base/packages.adb
file:packages/packages.adb
`
// A usign public key (the base64 line of a .pub file): "Ed", key id 1a2b3c4d5e6f7081, 32 key bytes.
const usignKey = Buffer.concat([
  Buffer.from("Ed"),
  Buffer.from("1a2b3c4d5e6f7081", "hex"),
  Buffer.alloc(32, 7),
]).toString("base64")
const pemKey =
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqDM0+yparYvbHosRPBhvT5Z3MEXz\nAFYrTnqJrnURywsKpD+ZKCLjPluvoHe/FABIvIuHLvICALA3IMjhm0Z0cA==\n-----END PUBLIC KEY-----"

describe("custom package feeds in a build's builder instance", () => {
  const dirs: Array<string> = []
  const builder = (files: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), "owrt-feeds-"))
    dirs.push(dir)
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true })
      writeFileSync(join(dir, name), text)
    }
    return dir
  }
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })
  const feeds = [
    { name: "extra", url: "https://feed.example.org/extra" },
    { name: "more", url: "https://feed.example.org/more/packages.adb" },
  ]

  it("appends opkg feeds after the builder's own lines, comments and options kept", () => {
    const file = repositoriesFile(builder({ "repositories.conf": opkgConf }), {
      mode: "append",
      feeds,
      keys: [],
    })
    expect(file.name).toBe("repositories.conf")
    const lines = file.content.trimEnd().split("\n")
    expect(lines.slice(-2)).toEqual([
      "src/gz extra https://feed.example.org/extra",
      "src/gz more https://feed.example.org/more/packages.adb",
    ])
    expect(lines).toContain(
      "src/gz openwrt_core https://downloads.openwrt.org/releases/24.10.2/targets/ath79/generic/packages",
    )
    expect(lines).toContain("option check_signature")
  })

  it("replaces the builder's remote opkg feeds, keeping its local feed and checking signatures", () => {
    const file = repositoriesFile(builder({ "repositories.conf": opkgConf }), {
      mode: "replace",
      feeds,
      keys: [],
    })
    expect(file.content).toBe(
      "src/gz extra https://feed.example.org/extra\nsrc/gz more https://feed.example.org/more/packages.adb\nsrc imagebuilder file:packages\noption check_signature\n",
    )
  })

  it("lets a feed replace the builder's feed of the same name, and keys alone change no feed", () => {
    const dir = builder({ "repositories.conf": opkgConf })
    const named = repositoriesFile(dir, {
      mode: "append",
      feeds: [{ name: "openwrt_base", url: "https://mirror.example.org/base" }],
      keys: [],
    }).content
    expect(named).not.toContain("src/gz openwrt_base https://downloads.openwrt.org")
    expect(named).toContain("src/gz openwrt_base https://mirror.example.org/base\n")
    expect(repositoriesFile(dir, { mode: "replace", feeds: [], keys: [usignKey] }).content).toBe(
      `${opkgConf
        .split("\n")
        .filter((line) => line.trim() !== "")
        .join("\n")}\n`,
    )
  })

  it("writes apk feeds as URLs into `repositories`", () => {
    const dir = builder({ repositories: apkRepositories })
    expect(repositoriesFile(dir, { mode: "append", feeds, keys: [] }).content).toBe(
      `${apkRepositories}https://feed.example.org/extra\nhttps://feed.example.org/more/packages.adb\n`,
    )
    expect(repositoriesFile(dir, { mode: "replace", feeds, keys: [] })).toEqual({
      name: "repositories",
      content:
        "https://feed.example.org/extra\nhttps://feed.example.org/more/packages.adb\nfile:packages/packages.adb\n",
    })
  })

  it("names a usign key by its key id (as opkg and upstream ASU do) and a PEM key by its digest", () => {
    expect(usignPublicKeyId(usignKey)).toBe("1a2b3c4d5e6f7081")
    const [usign, pem] = repositoryKeyFiles([` ${usignKey}\n`, pemKey])
    expect(usign).toEqual({
      name: "1a2b3c4d5e6f7081",
      content: `untrusted comment: 1a2b3c4d5e6f7081\n${usignKey}\n`,
    })
    expect(pem?.name).toMatch(/^[0-9a-f]{16}\.pem$/)
    expect(pem?.content).toBe(`${pemKey}\n`)
  })

  it("writes the file and keys into the instance's tree, never into the stored builder", () => {
    const stored = builder({ "repositories.conf": opkgConf })
    const tree = builder({})
    writeCustomRepositories(stored, tree, { mode: "append", feeds: feeds.slice(0, 1), keys: [usignKey] })
    expect(readFileSync(join(stored, "repositories.conf"), "utf8")).toBe(opkgConf)
    expect(readFileSync(join(tree, "repositories.conf"), "utf8")).toContain(
      "src/gz extra https://feed.example.org/extra\n",
    )
    expect(readdirSync(join(tree, "keys"))).toEqual(["1a2b3c4d5e6f7081"])
  })

  it("never replaces a key the builder ships under the same id", () => {
    const other = Buffer.from(usignKey, "base64")
    other[41] = (other[41] ?? 0) ^ 1
    const stored = builder({
      "repositories.conf": opkgConf,
      "keys/1a2b3c4d5e6f7081": `untrusted comment: the builder's\n${other.toString("base64")}\n`,
    })
    const tree = builder({})
    expect(writeCustomRepositories(stored, tree, { mode: "append", feeds, keys: [usignKey] })).toEqual({
      keysLeftOut: ["1a2b3c4d5e6f7081"],
    })
    expect(readdirSync(join(tree, "keys"))).toEqual([])
    // The same key as the builder's: nothing to write, nothing left out.
    const same = builder({ "keys/1a2b3c4d5e6f7081": `untrusted comment: x\n${usignKey}\n` })
    expect(writeCustomRepositories(same, builder({}), { mode: "append", feeds, keys: [usignKey] })).toEqual({
      keysLeftOut: [],
    })
  })

  it("names the feeds opkg left out", () => {
    const output = [
      "Downloading https://feed.example.org/extra/Packages.gz",
      "Signature check failed.",
      "Remove wrong Signature file.",
      "Failed to download https://feed.example.org/more/Packages.gz, wget returned 8.",
      "Unknown package 'owrt-hello'.",
    ].join("\n")
    expect(feedsLeftOut(output)).toEqual([
      "a feed's signature did not verify with the builder's keys (is its key in repository_keys?)",
      "could not download https://feed.example.org/more/Packages.gz",
    ])
    expect(feedsLeftOut("Installing luci\n")).toEqual([])
    // A build without feeds of its own: no hint about repository_keys.
    expect(feedsLeftOut("Signature check failed.\n", false)).toEqual([
      "a feed's signature did not verify with the builder's keys",
    ])
  })
})
