import { execFileSync } from "node:child_process"
import { mkdirSync, truncateSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

/**
 * Oversized and hostile profiles, made by the test. Each must be refused quickly with exit 3 and
 * `profile_too_large` (never a crash, an out-of-memory abort or minutes of work), pointing at the file and,
 * where the parser gets that far, the line of the problem. Run time is bounded by the test timeout only.
 */
interface Hostile {
  readonly name: string
  readonly id: string
  /** The profile text, or a function writing it (and anything else) into the project. */
  readonly yaml?: string
  readonly setup?: (dir: string) => void
  /** `file:line` the first diagnostic starts with. */
  readonly at: string
  readonly message: RegExp
}

const device = 'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\n'
const MiB = 1024 * 1024

/** A "billion laughs": nine levels of nine aliases of the level before. */
const aliasBomb = () => {
  const lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
  for (let i = 1; i < 9; i++) {
    lines.push(`a${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(",")}]`)
  }
  return `${device}description: x\n${lines.join("\n")}\n`
}

const packagesList = (count: number) =>
  `${device}packages:\n${Array.from({ length: count }, (_, i) => `  - pkg-${i}`).join("\n")}\n`

const filesList = (count: number) =>
  `${device}files:\n${Array.from({ length: count }, (_, i) => `  - {path: /etc/f${i}, content: x}`).join("\n")}\n`

const corpus: ReadonlyArray<Hostile> = [
  {
    name: "YAML alias bomb",
    id: "alias-bomb",
    yaml: aliasBomb(),
    at: "profiles/alias-bomb.yaml:1:1",
    message: /aliases expand too much/,
  },
  {
    name: "50 MB package list (file too large, not read)",
    id: "packages-50mb",
    setup: (dir) => {
      const entry = "  - a-package-name-of-some-length\n"
      const body = entry.repeat(Math.ceil((50 * MiB) / entry.length))
      writeFileSync(join(dir, "profiles", "packages-50mb.yaml"), `${device}packages:\n${body}`)
    },
    at: "profiles/packages-50mb.yaml:1:1",
    message: /profile file of \d+ bytes; the limit is 1048576/,
  },
  {
    name: "package list over the entry limit",
    id: "packages-many",
    yaml: packagesList(5000),
    at: "profiles/packages-many.yaml:5:",
    message: /packages: list of 5000 entries; the limit is 4096/,
  },
  {
    name: "50 MB files: list",
    id: "files-50mb",
    setup: (dir) => {
      const entry = "  - {path: /etc/banner, content: hello}\n"
      const body = entry.repeat(Math.ceil((50 * MiB) / entry.length))
      writeFileSync(join(dir, "profiles", "files-50mb.yaml"), `${device}files:\n${body}`)
    },
    at: "profiles/files-50mb.yaml:1:1",
    message: /the limit is 1048576/,
  },
  {
    name: "files: list over the entry limit",
    id: "files-many",
    yaml: filesList(4100),
    at: "profiles/files-many.yaml:5:",
    message: /files: list of 4100 entries/,
  },
  {
    name: "50 MB description",
    id: "description-50mb",
    setup: (dir) =>
      writeFileSync(
        join(dir, "profiles", "description-50mb.yaml"),
        `${device}description: "${"d".repeat(50 * MiB)}"\n`,
      ),
    at: "profiles/description-50mb.yaml:1:1",
    message: /the limit is 1048576/,
  },
  {
    name: "description over its length limit",
    id: "description-long",
    yaml: `${device}description: ${"word ".repeat(1000)}\n`,
    at: "profiles/description-long.yaml:4:14",
    message: /description: text of \d+ characters; the limit here is 4096/,
  },
  {
    name: "inline file content over the string limit",
    id: "content-long",
    yaml: `${device}files:\n  - path: /etc/big\n    content: "${"c".repeat(70_000)}"\n`,
    at: "profiles/content-long.yaml:6:14",
    message: /files\[0\]\.content: text of 70000 characters; the limit here is 65536/,
  },
  {
    name: "extends chain 2,000 deep",
    id: "chain-0",
    setup: (dir) => {
      for (let i = 0; i < 2000; i++) {
        writeFileSync(
          join(dir, "profiles", `chain-${i}.yaml`),
          i === 1999 ? `abstract: true\n${device}` : `extends: chain-${i + 1}\nabstract: true\n`,
        )
      }
    },
    at: "profiles/chain-32.yaml:1:10",
    message: /extends chain deeper than 32 profiles/,
  },
  {
    name: "flow sequences nested 100,000 deep",
    id: "flow-deep",
    yaml: `${device}packages: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`,
    at: "profiles/flow-deep.yaml:4:",
    message: /nested more than 64 levels/,
  },
  {
    name: "flow mappings nested 200,000 deep",
    id: "flow-map-deep",
    yaml: `${device}flash: ${"{a: ".repeat(200_000)}1${"}".repeat(200_000)}\n`,
    at: "profiles/flow-map-deep.yaml:4:",
    message: /nested more than 64 levels/,
  },
  {
    name: "block sequences nested on one line",
    id: "dash-deep",
    yaml: `${device}packages:\n  ${"- ".repeat(200_000)}x\n`,
    at: "profiles/dash-deep.yaml:5:",
    message: /nested more than 64 levels/,
  },
  {
    name: "mappings nested by indentation",
    id: "indent-deep",
    yaml: `${device}flash:\n${Array.from({ length: 1200 }, (_, i) => `${" ".repeat(i + 1)}k${i}:`).join("\n")} x\n`,
    at: "profiles/indent-deep.yaml:",
    message: /nested/,
  },
  {
    name: "overlay file over 64 MiB",
    id: "overlay-big-file",
    yaml: `${device}overlay: files/big\n`,
    setup: (dir) => {
      mkdirSync(join(dir, "profiles", "files", "big", "etc"), { recursive: true })
      const file = join(dir, "profiles", "files", "big", "etc", "huge.bin")
      writeFileSync(file, "")
      truncateSync(file, 65 * MiB) // sparse: no disk used, the size is what counts
    },
    at: "profiles/overlay-big-file.yaml:4:10",
    message: /overlay directory `files\/big` is too large: etc\/huge\.bin is 65 MiB; the limit is 64 MiB/,
  },
  {
    name: "overlay with more than 10,000 files",
    id: "overlay-many-files",
    yaml: `${device}overlay: files/many\n`,
    setup: (dir) => {
      const root = join(dir, "profiles", "files", "many")
      for (let d = 0; d < 11; d++) {
        mkdirSync(join(root, `d${d}`), { recursive: true })
        for (let f = 0; f < 1000; f++) writeFileSync(join(root, `d${d}`, `f${f}`), "")
      }
    },
    at: "profiles/overlay-many-files.yaml:4:10",
    message: /is too large: more than 10000 files/,
  },
]

describe("hostile and oversized profiles", () => {
  let project: ReturnType<typeof makeProject>

  beforeAll(() => {
    const files: Record<string, string> = {}
    for (const bad of corpus) if (bad.yaml !== undefined) files[`profiles/${bad.id}.yaml`] = bad.yaml
    project = makeProject(files)
    for (const bad of corpus) bad.setup?.(project.dir)
  })
  afterAll(() => project.cleanup())

  it.each(corpus)("$name → profile_too_large", async (bad) => {
    const result = await owrt(["profiles", "validate", bad.id, "--json"], { cwd: project.dir })
    expect(result.code, result.stderr.slice(0, 2000)).toBe(3)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("profile_too_large")
    expect(error.exitCode).toBe(3)
    const first = error.message.split("\n")[0] ?? ""
    expect(first.startsWith(bad.at), `"${first}" should start with ${bad.at}`).toBe(true)
    expect(error.message).toMatch(bad.message)
    // The message never echoes the oversized content.
    expect(error.message.length).toBeLessThan(2000)
  })

  it("refuses a profile too large at a git revision without reading it", async () => {
    const git = (...args: Array<string>) =>
      execFileSync("git", args, {
        cwd: project.dir,
        stdio: "pipe",
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: "t",
          GIT_AUTHOR_EMAIL: "t@example.org",
          GIT_COMMITTER_NAME: "t",
          GIT_COMMITTER_EMAIL: "t@example.org",
        },
      })
    git("init", "-q")
    git("add", "profiles/description-50mb.yaml")
    git("commit", "-q", "-m", "big")
    const result = await owrt(["profiles", "show", "description-50mb@HEAD", "--json"], { cwd: project.dir })
    expect(result.code, result.stderr.slice(0, 2000)).toBe(3)
    expect(json<ErrorDocument>(result).error.code).toBe("profile_too_large")
  })
})
