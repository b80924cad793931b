import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { owrt } from "../helpers/cli.js"
import { ap, servedProject, startServe } from "./serveProcess.js"

describe("owrt serve: an empty token is never a token", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  beforeAll(async () => {
    project = await servedProject({ "profiles/ap.yaml": ap("tplink_archer-c7-v5") })
  })
  afterAll(async () => {
    await project?.cleanup()
  })

  it.each([
    ["beyond loopback", ["--host", "0.0.0.0"]],
    ["on loopback", []],
  ])('refuses `--token ""` %s with a usage error, and never listens', async (_, host) => {
    const result = await owrt(["serve", ...host, "--port", "0", "--token", ""], {
      cwd: project.dir,
      env: project.env,
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("error[usage]")
    expect(result.stderr).toContain("--token is empty")
    expect(result.stdout).not.toContain("listening")
  })

  it("an empty OWRT_SERVE_TOKEN beyond loopback is no token: refused", async () => {
    const result = await owrt(["serve", "--host", "0.0.0.0", "--port", "0"], {
      cwd: project.dir,
      env: { ...project.env, OWRT_SERVE_TOKEN: "" },
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("serve_token_required")
  })

  it("a server with a token refuses an empty presented token, in the query and as a bearer", async () => {
    const server = await startServe(["--host", "0.0.0.0"], {
      cwd: project.dir,
      env: { ...project.env, OWRT_SERVE_TOKEN: "s3cret-token" },
    })
    try {
      const base = server.url.replace("0.0.0.0", "127.0.0.1")
      expect((await fetch(`${base}/api/profiles?token=`)).status).toBe(401)
      expect((await fetch(`${base}/api/profiles?token=s3cret-token`)).status).toBe(200)
      const download = await fetch(`${base}/api/artifacts?token=`)
      expect(download.status).toBe(401)
      expect((await fetch(`${base}/api/profiles`, { headers: { authorization: "Bearer " } })).status).toBe(
        401,
      )
    } finally {
      await server.stop()
    }
  })
})
