import { execFileSync } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

interface Revision {
  readonly seq: number
  readonly hash: string
  readonly source: string
}
interface Shown {
  readonly id: string
  /** `seq` is null while the revision is not recorded; `record` returns recorded ones only. */
  readonly revision: Revision
  readonly profile: {
    readonly packages: ReadonlyArray<string>
    readonly overlay: ReadonlyArray<{ path: string; sha256: string }>
  }
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

describe("revisions and @rev", () => {
  const project = makeProject({
    "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\npackages: [luci]\n',
    "profiles/ap.yaml":
      "extends: base\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\noverlay: files/ap\n",
    "profiles/files/ap/etc/motd": "version one\n",
  })
  const run = (...args: Array<string>) => owrt(args, { cwd: project.dir })
  const show = async (spec: string) => json<Shown>(await run("profiles", "show", spec, "--json"))
  /**
   * Records the revision `spec` names, as using it does: a realize records the revision it uses, also one
   * that cannot fetch its builder offline (its failed build record names that revision). Looking records
   * nothing (tests/profile/readOnlyRevisions.test.ts).
   */
  const record = async (spec: string) => {
    const result = await run("realize", spec, "--offline", "--json")
    expect(json<ErrorDocument>(result).error.code, result.stdout).toBe("offline_not_cached")
    return show(spec)
  }
  let firstCommit = ""
  let rev1: Shown
  let rev2: Shown

  beforeAll(async () => {
    git(project.dir, "init", "-q", "-b", "main")
    git(project.dir, "add", ".")
    git(project.dir, "commit", "-q", "-m", "one")
    firstCommit = git(project.dir, "rev-parse", "HEAD")
    rev1 = await record("ap")
    // A change in an overlay file alone makes a new revision.
    project.write("profiles/files/ap/etc/motd", "version two\n")
    rev2 = await record("ap")
    git(project.dir, "commit", "-qam", "two")
  })
  afterAll(() => project.cleanup())

  it("numbers distinct revisions per profile, and reuses the number of a revision seen before", async () => {
    expect(rev1.revision.seq).toBe(1)
    expect(rev2.revision.seq).toBe(2)
    expect(rev2.revision.hash).not.toBe(rev1.revision.hash)
    const again = await record("ap")
    expect(again.revision).toEqual(rev2.revision)
  })

  it("history lists every revision in order", async () => {
    const result = await run("profiles", "history", "ap", "--json")
    expect(result.code).toBe(0)
    const history = json<{ id: string; revisions: ReadonlyArray<Revision> }>(result)
    expect(history.revisions.map((r) => r.seq)).toEqual([1, 2])
    expect(history.revisions.map((r) => r.hash)).toEqual([rev1.revision.hash, rev2.revision.hash])
  })

  it("@N selects a revision number, with its old overlay content", async () => {
    const old = await show("ap@1")
    expect(old.revision.hash).toBe(rev1.revision.hash)
    expect(old.profile.overlay).toEqual(rev1.profile.overlay)
  })

  it("@<hash prefix> selects a revision by content hash", async () => {
    const byHash = await show(`ap@${rev1.revision.hash.slice(0, 8)}`)
    expect(byHash.revision.seq).toBe(1)
  })

  it("@<git commit> reads the profile and its files as they were at that commit", async () => {
    const atCommit = await show(`ap@${firstCommit.slice(0, 10)}`)
    expect(atCommit.revision.hash).toBe(rev1.revision.hash)
    expect(atCommit.revision.seq).toBe(1)
    const atHeadParent = await show("ap@HEAD~1")
    expect(atHeadParent.revision.hash).toBe(rev1.revision.hash)
    expect((await show("ap@HEAD")).revision.hash).toBe(rev2.revision.hash)
  })

  it("a git commit that changed a parent gives a new revision of the child", async () => {
    project.write("profiles/base.yaml", 'abstract: true\nrelease: "23.05.5"\npackages: [luci, luci-ssl]\n')
    git(project.dir, "commit", "-qam", "three")
    const third = await record("ap@HEAD")
    expect(third.revision.seq).toBe(3)
    expect(third.revision.source).toBe(`git:${git(project.dir, "rev-parse", "HEAD")}`)
    expect(third.profile.packages).toContain("luci-ssl")
    expect((await show("ap")).revision.hash).toBe(third.revision.hash)
  })

  it("takes an all-digit commit prefix for a commit when no such revision number exists", async () => {
    // Make commits until one's short id is all digits (one in ~27 for 7 digits).
    let commit = ""
    for (let i = 0; i < 400 && !/^\d{7}/.test(commit); i++) {
      git(project.dir, "commit", "-q", "--allow-empty", "-m", `digits ${i}`)
      commit = git(project.dir, "rev-parse", "HEAD")
    }
    expect(commit).toMatch(/^\d{7}/)
    const result = await run("profiles", "show", `ap@${commit.slice(0, 7)}`, "--json")
    expect(result.code, result.stdout).toBe(0)
    expect(json<Shown>(result).revision.hash).toBe((await show("ap@HEAD")).revision.hash)
  })

  it("an unknown revision is not found (exit 4)", async () => {
    const result = await run("profiles", "show", "ap@99", "--json")
    expect(result.code).toBe(4)
    expect(json<ErrorDocument>(result).error.code).toBe("revision_not_found")
    const nonsense = await run("profiles", "show", "ap@no-such-branch", "--json")
    expect(nonsense.code).toBe(4)
    expect(json<ErrorDocument>(nonsense).error.code).toBe("revision_not_found")
  })

  it("a commit where the profile did not exist yet is not found", async () => {
    project.write("profiles/late.yaml", "extends: ap\n")
    git(project.dir, "add", ".")
    git(project.dir, "commit", "-qm", "late")
    const result = await run("profiles", "show", `late@${firstCommit}`, "--json")
    expect(result.code).toBe(4)
    expect(json<ErrorDocument>(result).error.message).toContain("did not exist at commit")
  })

  it("an unknown profile is not found, with a suggestion", async () => {
    const result = await run("profiles", "show", "ab", "--json")
    expect(result.code).toBe(4)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("profile_not_found")
    expect(error.message).toContain("did you mean `ap`?")
  })

  it("an empty @ is a usage error", async () => {
    const result = await run("profiles", "show", "ap@", "--json")
    expect(result.code).toBe(2)
    expect(json<ErrorDocument>(result).error.code).toBe("usage")
  })

  it("processes recording the same new revision at once agree on one number", async () => {
    project.write("profiles/files/ap/etc/motd", "version four\n")
    const results = await Promise.all([1, 2, 3, 4].map(() => record("ap")))
    const seqs = new Set(results.map((r) => r.revision.seq))
    expect(seqs.size).toBe(1)
    const history = json<{ revisions: ReadonlyArray<Revision> }>(
      await run("profiles", "history", "ap", "--json"),
    )
    expect(history.revisions.map((r) => r.seq)).toEqual([1, 2, 3, 4])
  })
})
