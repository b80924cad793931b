import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { worktreeProfileTree } from "../../src/profile/profileTree.js"
import { makeProfileResolver, normalisePackages } from "../../src/profile/resolveProfile.js"
import { makeProject } from "../helpers/cli.js"

const projects: Array<{ cleanup: () => void }> = []
afterEach(() => {
  for (const p of projects.splice(0)) p.cleanup()
})

const resolveIn = (files: Record<string, string>, id: string) => {
  const project = makeProject(files)
  projects.push(project)
  const resolver = makeProfileResolver(worktreeProfileTree(`${project.dir}/profiles`), "profiles")
  return Effect.runPromise(resolver.resolve(id))
}

describe("package lists", () => {
  it("applies additions and removals in order; the last word on a package wins", () => {
    expect(normalisePackages(["luci", "ppp", "-ppp", "-dnsmasq", "dnsmasq", "-luci"])).toEqual([
      "dnsmasq",
      "-luci",
      "-ppp",
    ])
    expect(normalisePackages(["b", "a", "-c"])).toEqual(["a", "b", "-c"])
    expect(normalisePackages(["a", "a"])).toEqual(["a"])
  })
})

describe("extends", () => {
  const device = 'release: "23.05.5"\ntarget: ath79/generic\ndevice: x\n'

  it("appends package lists parent first, so a child can remove what a parent added", async () => {
    const { profile } = await resolveIn(
      {
        "profiles/base.yaml": "abstract: true\npackages: [luci, ppp]\n",
        "profiles/child.yaml": `extends: base\n${device}packages: [-ppp, wpad]\n`,
      },
      "child",
    )
    expect(profile.packages).toEqual(["luci", "wpad", "-ppp"])
    expect(profile.parents).toEqual(["base"])
  })

  it("lets scalars of the child override the parent's, and later parents override earlier ones", async () => {
    const { profile } = await resolveIn(
      {
        "profiles/a.yaml": 'abstract: true\nrelease: "23.05.5"\nrootfs_size: 100\n',
        "profiles/b.yaml": 'abstract: true\nrelease: "24.10.2"\n',
        "profiles/c.yaml": "extends: [a, b]\ntarget: x86/64\ndevice: generic\nrootfs_size: 200\n",
      },
      "c",
    )
    expect(profile.release).toBe("24.10.2")
    expect(profile.rootfs_size).toBe(200)
  })

  it("applies a shared ancestor once, before everything that extends it (diamond)", async () => {
    const { profile } = await resolveIn(
      {
        "profiles/root.yaml": "abstract: true\npackages: [ppp]\n",
        "profiles/left.yaml": "abstract: true\nextends: root\npackages: [-ppp]\n",
        "profiles/right.yaml": "abstract: true\nextends: root\npackages: [luci]\n",
        "profiles/leaf.yaml": `extends: [left, right]\n${device}`,
      },
      "leaf",
    )
    expect(profile.parents).toEqual(["root", "left", "right"])
    expect(profile.packages).toEqual(["luci", "-ppp"])
  })

  it("merges files by path, first-boot scripts by name, and unions services and tags", async () => {
    const { profile } = await resolveIn(
      {
        "profiles/base.yaml": [
          "abstract: true",
          "files: [{path: /etc/a, content: base}, {path: /etc/b, content: base}]",
          "first_boot: [{name: 10-x, script: base}, {name: 20-y, script: base}]",
          "disabled_services: [odhcpd]",
          "tags: [managed]",
          "secrets: {k: env:BASE_K}",
          "flash: {image: sdcard, wipe: true}",
        ].join("\n"),
        "profiles/child.yaml": [
          "extends: base",
          device.trim(),
          "files: [{path: /etc/b, content: child, mode: '600'}]",
          "first_boot: [{name: 20-y, script: child}]",
          "disabled_services: [dnsmasq, odhcpd]",
          "tags: [ap]",
          "secrets: {k: env:CHILD_K}",
          "flash: {verify: none}",
        ].join("\n"),
      },
      "child",
    )
    expect(profile.files).toEqual([
      { path: "/etc/a", mode: "0644", content: "base", secret: undefined },
      { path: "/etc/b", mode: "0600", content: "child", secret: undefined },
    ])
    expect(profile.first_boot).toEqual([
      { name: "10-x", script: "base" },
      { name: "20-y", script: "child" },
    ])
    expect(profile.disabled_services).toEqual(["dnsmasq", "odhcpd"])
    expect(profile.tags).toEqual(["ap", "managed"])
    expect(profile.secrets).toEqual({ k: "env:CHILD_K" })
    expect(profile.flash).toEqual({ image: "sdcard", verify: "none", wipe: true })
    expect(profile.abstract).toBe(false)
  })

  it("merges package feeds by name (the child's URL wins), unions their keys, and takes the last mode", async () => {
    const key = "RWQa7ThFAn3EARBTcgZIX1VADLJpfu/7kPBlHiI3iHruzMs+HMAnY3K6"
    const { profile } = await resolveIn(
      {
        "profiles/base.yaml":
          "abstract: true\nrepositories_mode: replace\n" +
          "repositories: [{name: a, url: https://feeds.example.org/a}, {name: b, url: https://feeds.example.org/b}]\n" +
          `repository_keys: ["${key}"]\n`,
        "profiles/child.yaml":
          `extends: base\n${device}repositories_mode: append\n` +
          "repositories: [{name: b, url: https://mirror.example.org/b}, {name: c, url: http://feeds.example.org/c}]\n" +
          `repository_keys: ["${key}"]\n`,
      },
      "child",
    )
    expect(profile.repositories).toEqual({
      mode: "append",
      feeds: [
        { name: "a", url: "https://feeds.example.org/a" },
        { name: "b", url: "https://mirror.example.org/b" },
        { name: "c", url: "http://feeds.example.org/c" },
      ],
      keys: [key],
    })
    // A profile without feeds has no `repositories` in its revision: its hash is what it always was.
    const { profile: plain } = await resolveIn({ "profiles/p.yaml": device }, "p")
    expect(Object.keys(plain)).not.toContain("repositories")
    // `..` is no feed name: the package manager names a file after it.
    const dots = resolveIn(
      { "profiles/d.yaml": `${device}repositories: [{name: "..", url: https://feeds.example.org/a}]\n` },
      "d",
    )
    await expect(dots).rejects.toThrow(/is not a feed/)
    // Two different keys with one key id: opkg's keys/ would hold only one of them.
    const bytes = Buffer.from(key, "base64")
    bytes[41] = (bytes[41] ?? 0) ^ 1
    const twin = resolveIn(
      {
        "profiles/t.yaml": `${device}repository_keys: ["${key}", "${bytes.toString("base64")}"]\n`,
      },
      "t",
    )
    await expect(twin).rejects.toThrow(/two different keys with the key id/)
  })

  it("layers overlay directories: a child's file replaces the parent's at the same path", async () => {
    const { profile } = await resolveIn(
      {
        "profiles/base.yaml": "abstract: true\noverlay: files/base\n",
        "profiles/files/base/etc/a": "base a\n",
        "profiles/files/base/etc/b": "base b\n",
        "profiles/child.yaml": `extends: base\n${device}overlay: files/child\n`,
        "profiles/files/child/etc/b": "child b\n",
      },
      "child",
    )
    expect(profile.overlay.map((e) => [e.path, e.size])).toEqual([
      ["etc/a", 7],
      ["etc/b", 8],
    ])
  })

  it("gives the same revision hash for the same content, wherever the project lives", async () => {
    const files = {
      "profiles/p.yaml": `${device}packages: [b, a]\n`,
      "profiles/q.yaml": `${device}packages: [a, b]\n`,
    }
    const first = await resolveIn(files, "p")
    const second = await resolveIn(files, "p")
    expect(first.hash).toBe(second.hash)
    expect(first.canonical).not.toContain("/tmp")
  })
})
