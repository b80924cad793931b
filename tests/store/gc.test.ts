import { randomBytes } from "node:crypto"
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { json, makeProject, owrt } from "../helpers/cli.js"

/** Above the kernel's largest pid: a process that cannot be alive. */
const deadPid = 4_194_305

describe("store gc says what each piece of garbage is", () => {
  const project = makeProject({})
  // What a build killed with SIGKILL leaves in memory: its Image Builder instance (see builderInstance.ts).
  const instance = `/dev/shm/owrt-instance.${deadPid}.0.${randomBytes(4).toString("hex")}`
  const work = join(project.dir, "store", ".work", `${deadPid}.0.abcd1234.make-image-0123456789abcdef`)
  mkdirSync(work, { recursive: true })
  // Made again before each run: a `store gc` of any other owrt on this machine removes it.
  const run = (args: Array<string>) => {
    mkdirSync(join(instance, "upper"), { recursive: true })
    writeFileSync(join(instance, "upper", "leftover"), "x")
    return owrt(args, { cwd: project.dir })
  }
  afterAll(() => {
    rmSync(instance, { recursive: true, force: true })
    project.cleanup()
  })

  it("names an abandoned build instance in /dev/shm as such, in a dry run and in --json", async () => {
    const dry = await run(["store", "gc", "--dry-run"])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(`would remove ${instance} (abandoned build instance of a killed process)`)
    expect(dry.stdout).toContain(`would remove ${work} (work directory of a killed process)`)
    expect(existsSync(work)).toBe(true)

    // A dry run here: a real one would also remove other dead processes' instances on this machine.
    const report = json<{ removed: Array<string>; garbage: Array<{ path: string; kind: string }> }>(
      await run(["store", "gc", "--dry-run", "--json"]),
    )
    expect(report.garbage).toContainEqual({ path: instance, kind: "build-instance" })
    expect(report.garbage).toContainEqual({ path: work, kind: "work-directory" })
    expect(report.removed).toEqual(report.garbage.map((g) => g.path))
  })
})
