import { afterAll, describe, expect, it } from "vitest"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

/**
 * A profile name from outside can be huge (an argument, an MCP or HTTP request). Looking it up must answer
 * like any unknown name — not found, exit 4, a suggestion when one is plausible — at once, and echo the
 * name shortened. (Names of megabytes are checked in-process in tests/text/closestMatch.test.ts: one
 * command-line argument is limited to about 128 KiB.)
 */
describe("huge profile names", () => {
  const device = 'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\n'
  const files: Record<string, string> = {}
  for (let i = 0; i < 40; i++) files[`profiles/site-${i}-access-point.yaml`] = device
  const project = makeProject(files)
  afterAll(() => project.cleanup())

  const huge = "site-1-access-point".padEnd(120 * 1024, "x")

  it.each([
    { command: "profiles show", args: ["profiles", "show", huge] },
    { command: "profiles show <name>@3", args: ["profiles", "show", `${huge}@3`] },
    { command: "profiles history", args: ["profiles", "history", huge] },
    { command: "profiles validate", args: ["profiles", "validate", huge] },
    { command: "realize", args: ["realize", huge] },
  ])("$command <120 KiB name> → profile_not_found with the name shortened", async ({ args }) => {
    const result = await owrt([...args, "--json"], { cwd: project.dir })
    expect(result.code, result.stderr.slice(0, 2000)).toBe(4)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("profile_not_found")
    expect(error.message).toContain("site-1-access-pointxxx")
    expect(error.message).toContain(`(${huge.length} characters)`)
    expect(error.message).not.toContain("did you mean")
    expect(error.message.length).toBeLessThan(4000)
    expect(result.stderr.length).toBeLessThan(8000)
  })

  it("still suggests the profile for a near miss", async () => {
    const result = await owrt(["profiles", "show", "site-1-acess-point", "--json"], { cwd: project.dir })
    expect(result.code).toBe(4)
    expect(json<ErrorDocument>(result).error.message).toContain("did you mean `site-1-access-point`?")
  })

  it("refuses a huge revision quickly, echoing it shortened", async () => {
    const result = await owrt(
      ["profiles", "show", `site-1-access-point@${"f".repeat(120 * 1024)}`, "--json"],
      {
        cwd: project.dir,
      },
    )
    expect(result.code).toBe(4)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("revision_not_found")
    expect(error.message.length).toBeLessThan(4000)
  })
})
