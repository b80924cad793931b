import { execFileSync } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { json, makeProject, owrt } from "../helpers/cli.js"

/*
 * Read-only commands compute revisions without recording them: one `plan --since HEAD` over an experiment
 * used to give it a revision number for good. `plan` and `profiles list|show|validate|history` record
 * nothing (a revision not recorded has `rev`/`seq` null); realize records the revision it uses.
 */

interface SeenRevision {
  readonly seq: number | null
  readonly hash: string
  readonly firstSeen: string | null
}

const git = (cwd: string, ...args: Array<string>) =>
  execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.invalid",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.invalid",
    },
  }).trim()

const ap = (packages: string) =>
  `release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [${packages}]\n`

describe("read-only commands record no revision", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let env: Record<string, string>
  const project = makeProject({
    "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\n',
    "profiles/ap.yaml": ap("luci"),
  })
  const run = (...args: ReadonlyArray<string>) => owrt(args, { cwd: project.dir, env })
  const ok = async (...args: ReadonlyArray<string>) => {
    const result = await run(...args)
    expect(result.code, `${args.join(" ")}: ${result.stdout}${result.stderr}`).toBe(0)
    return result
  }
  const history = async (id: string) =>
    json<{ revisions: ReadonlyArray<{ seq: number; hash: string }> }>(
      await ok("profiles", "history", id, "--json"),
    ).revisions

  /** Every read-only command that resolves profiles (human output runs the same operations). */
  const lookEverywhere = () =>
    Promise.all(
      [
        ["plan", "--since", "HEAD"],
        ["plan", "ap"],
        ["plan", "--all"],
        ["profiles", "list"],
        ["profiles", "show", "ap"],
        ["profiles", "show", "ap@HEAD"],
        ["profiles", "validate"],
        ["profiles", "history", "ap"],
      ].map((args) => ok(...args, "--json")),
    )

  beforeAll(async () => {
    const built = await buildMirror()
    mirror = await serveMirror(built.root)
    env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: built.keyring }
    git(project.dir, "init", "-q", "-b", "main")
    git(project.dir, "add", ".")
    git(project.dir, "commit", "-qm", "one")
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
  })

  it("planning and looking at profiles gives no revision a number", async () => {
    await lookEverywhere()
    // A diff of what is not realized fails, and records what it resolved no more than a plan does.
    expect((await run("diff", "ap@HEAD", "ap", "--json")).code).toBe(4)
    expect(await history("ap")).toEqual([])
    expect(await history("base")).toEqual([])
  }, 120_000)

  it("shows a revision not recorded without a number, in --json and in words", async () => {
    const plan = json<{ profiles: ReadonlyArray<{ profile: string; rev: number | null; revision: string }> }>(
      await ok("plan", "ap", "--json"),
    )
    expect(plan.profiles[0]).toMatchObject({ profile: "ap", rev: null })
    const shown = json<{ revision: SeenRevision & { source: string } }>(
      await ok("profiles", "show", "ap", "--json"),
    )
    expect(shown.revision).toMatchObject({ seq: null, firstSeen: null, source: "worktree" })
    expect(shown.revision.hash).toBe(plan.profiles[0]?.revision)
    const listed = json<{ profiles: ReadonlyArray<{ id: string; revision: SeenRevision }> }>(
      await ok("profiles", "list", "--json"),
    )
    expect(listed.profiles.map((p) => [p.id, p.revision.seq])).toEqual([
      ["ap", null],
      ["base", null],
    ])
    const validated = json<{ profiles: ReadonlyArray<{ id: string; revision: SeenRevision }> }>(
      await ok("profiles", "validate", "--json"),
    )
    expect(validated.profiles.map((p) => p.revision.seq)).toEqual([null, null])

    expect((await ok("plan", "ap")).stdout).toMatch(/^ap \(not recorded\) +to build /m)
    expect((await ok("profiles", "show", "ap")).stdout).toMatch(/^ap \(not recorded\) +[0-9a-f]{64}$/m)
    expect((await ok("profiles", "list")).stdout).toMatch(/^ap +- [0-9a-f]{12} /m)
    expect((await ok("profiles", "history", "ap")).stdout).toContain("no revision of ap recorded yet")
  }, 120_000)

  it("realize records the revision it uses; looking at an experiment afterwards records nothing more", async () => {
    const realized = await ok("realize", "ap", "--json")
    expect(json<{ results: ReadonlyArray<{ rev: number }> }>(realized).results[0]?.rev).toBe(1)
    const recorded = await history("ap")
    expect(recorded.map((r) => r.seq)).toEqual([1])
    const shown = json<{ revision: SeenRevision }>(await ok("profiles", "show", "ap", "--json"))
    expect(shown.revision.seq).toBe(1)
    expect(shown.revision.firstSeen).not.toBeNull()
    expect((await ok("plan", "ap")).stdout).toMatch(/^ap@1 +cached /m)

    // An experiment, looked at every way there is: still one revision, and ap@1 is the realized one.
    project.write("profiles/ap.yaml", ap("luci, tcpdump"))
    await lookEverywhere()
    const plan = json<{ profiles: ReadonlyArray<{ profile: string; rev: number | null }> }>(
      await ok("plan", "--since", "HEAD", "--json"),
    )
    expect(plan.profiles).toMatchObject([{ profile: "ap", rev: null }])
    expect(await history("ap")).toEqual(recorded)
    expect(
      json<{ revision: SeenRevision }>(await ok("profiles", "show", "ap@1", "--json")).revision,
    ).toMatchObject({ seq: 1, hash: recorded[0]?.hash })

    // Realizing the experiment gives it the next number.
    const second = await ok("realize", "ap", "--json")
    expect(json<{ results: ReadonlyArray<{ rev: number }> }>(second).results[0]?.rev).toBe(2)
    expect((await history("ap")).map((r) => r.seq)).toEqual([1, 2])
  }, 180_000)
})
