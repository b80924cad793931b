import { mkdirSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

/**
 * A corpus of broken profiles. Each must be refused with exit 3, its own error code, and a message that
 * names the file, line and field, so a person can jump straight to the mistake.
 */
interface BadProfile {
  readonly name: string
  readonly id: string
  readonly yaml: string
  readonly code: string
  /** `file:line` (and column when given) the first diagnostic must point at. */
  readonly at: string
  readonly field?: string
  readonly message: RegExp
}

const device = 'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\n'

const corpus: ReadonlyArray<BadProfile> = [
  {
    name: "YAML: inconsistent indentation",
    id: "syntax-indent",
    yaml: 'release: "23.05.5"\ntarget: ath79/generic\n  device: x\n',
    code: "profile_yaml_syntax",
    at: "profiles/syntax-indent.yaml:2",
    message: /YAML syntax error/,
  },
  {
    name: "YAML: unclosed flow sequence",
    id: "syntax-unclosed",
    yaml: `${device}packages: [luci, wpad\n`,
    code: "profile_yaml_syntax",
    at: "profiles/syntax-unclosed.yaml:",
    message: /YAML syntax error/,
  },
  {
    name: "YAML: duplicate key",
    id: "syntax-duplicate",
    yaml: `${device}packages: [luci]\npackages: [wpad]\n`,
    code: "profile_yaml_syntax",
    at: "profiles/syntax-duplicate.yaml:5",
    message: /unique/i,
  },
  {
    name: "YAML: tab indentation",
    id: "syntax-tab",
    yaml: `${device}flash:\n\timage: combined\n`,
    code: "profile_yaml_syntax",
    at: "profiles/syntax-tab.yaml:5",
    message: /YAML syntax error/,
  },
  {
    name: "document is a list, not a mapping",
    id: "not-a-mapping",
    yaml: "- release: 23.05.5\n",
    code: "profile_invalid_value",
    at: "profiles/not-a-mapping.yaml:1:1",
    message: /YAML mapping/,
  },
  {
    name: "misspelt top-level key",
    id: "typo-packages",
    yaml: `${device}pacakges: [luci]\n`,
    code: "profile_unknown_key",
    at: "profiles/typo-packages.yaml:4:1",
    field: "pacakges",
    message: /unknown key `pacakges` — did you mean `packages`\?/,
  },
  {
    name: "misspelt key in an inline file",
    id: "typo-mode",
    yaml: `${device}files:\n  - path: /etc/banner\n    content: hi\n    mdoe: "0644"\n`,
    code: "profile_unknown_key",
    at: "profiles/typo-mode.yaml:7:5",
    field: "files[0].mdoe",
    message: /did you mean `mode`\?/,
  },
  {
    name: "misspelt key in the flash policy",
    id: "typo-flash",
    yaml: `${device}flash:\n  verfy: full\n`,
    code: "profile_unknown_key",
    at: "profiles/typo-flash.yaml:5:3",
    field: "flash.verfy",
    message: /did you mean `verify`\?/,
  },
  {
    name: "misspelt key in a first-boot script",
    id: "typo-script",
    yaml: `${device}first_boot:\n  - name: 90-x\n    scirpt: "true"\n`,
    code: "profile_unknown_key",
    at: "profiles/typo-script.yaml:6:5",
    field: "first_boot[0].scirpt",
    message: /did you mean `script`\?/,
  },
  {
    name: "release read as a number",
    id: "release-number",
    yaml: "release: 24.10\ntarget: ath79/generic\ndevice: x\n",
    code: "profile_invalid_value",
    at: "profiles/release-number.yaml:1:10",
    field: "release",
    message: /quotes/,
  },
  {
    name: "release that is not a version",
    id: "release-word",
    yaml: "release: latest\ntarget: ath79/generic\ndevice: x\n",
    code: "profile_invalid_value",
    at: "profiles/release-word.yaml:1:10",
    field: "release",
    message: /not an OpenWrt release/,
  },
  {
    name: "target without subtarget",
    id: "target-short",
    yaml: 'release: "23.05.5"\ntarget: ath79\ndevice: x\n',
    code: "profile_invalid_value",
    at: "profiles/target-short.yaml:2:9",
    field: "target",
    message: /<target>\/<subtarget>/,
  },
  {
    name: "packages given as a string",
    id: "packages-string",
    yaml: `${device}packages: luci\n`,
    code: "profile_invalid_package",
    at: "profiles/packages-string.yaml:4:11",
    field: "packages",
    message: /Expected/,
  },
  {
    name: "upper-case package name",
    id: "package-case",
    yaml: `${device}packages:\n  - luci\n  - LuCI-Theme\n`,
    code: "profile_invalid_package",
    at: "profiles/package-case.yaml:6:5",
    field: "packages[1]",
    message: /invalid package name `LuCI-Theme`/,
  },
  {
    name: "package name with a space",
    id: "package-space",
    yaml: `${device}packages: ["luci ssl"]\n`,
    code: "profile_invalid_package",
    at: "profiles/package-space.yaml:4:12",
    field: "packages[0]",
    message: /invalid package name `luci ssl`/,
  },
  {
    name: "double removal prefix",
    id: "package-dash",
    yaml: `${device}packages: [--ppp]\n`,
    code: "profile_invalid_package",
    at: "profiles/package-dash.yaml:4:12",
    field: "packages[0]",
    message: /invalid package name `--ppp`/,
  },
  {
    name: "rootfs size below the minimum",
    id: "rootfs-small",
    yaml: `${device}rootfs_size: 8\n`,
    code: "profile_invalid_value",
    at: "profiles/rootfs-small.yaml:4:14",
    field: "rootfs_size",
    message: /16 to 65536/,
  },
  {
    name: "file mode that is not octal",
    id: "mode-octal",
    yaml: `${device}files:\n  - path: /etc/x\n    content: x\n    mode: "0999"\n`,
    code: "profile_invalid_value",
    at: "profiles/mode-octal.yaml:7:11",
    field: "files[0].mode",
    message: /octal file mode/,
  },
  {
    name: "inline file with a relative path",
    id: "file-relative",
    yaml: `${device}files:\n  - path: etc/banner\n    content: x\n`,
    code: "profile_invalid_value",
    at: "profiles/file-relative.yaml:5:11",
    field: "files[0].path",
    message: /absolute file path inside the image/,
  },
  {
    name: "inline file path with ..",
    id: "file-dotdot",
    yaml: `${device}files:\n  - path: /etc/../../root/x\n    content: x\n`,
    code: "profile_invalid_value",
    at: "profiles/file-dotdot.yaml:5:11",
    field: "files[0].path",
    message: /no \. or \.\. parts/,
  },
  {
    name: "inline file with both content and secret",
    id: "file-both",
    yaml: `${device}secrets:\n  k: env:K\nfiles:\n  - path: /etc/x\n    content: x\n    secret: k\n`,
    code: "profile_invalid_value",
    at: "profiles/file-both.yaml:7:5",
    field: "files[0]",
    message: /exactly one of `content` or `secret`/,
  },
  {
    name: "missing parent",
    id: "parent-missing",
    yaml: "extends: bsae\ntarget: ath79/generic\ndevice: x\n",
    code: "profile_parent_missing",
    at: "profiles/parent-missing.yaml:1:10",
    field: "extends",
    message: /parent profile `bsae` does not exist — did you mean `base`\?/,
  },
  {
    name: "missing parent in a list",
    id: "parent-missing-list",
    yaml: "extends: [base, nowhere]\ntarget: ath79/generic\ndevice: x\n",
    code: "profile_parent_missing",
    at: "profiles/parent-missing-list.yaml:1:17",
    field: "extends[1]",
    message: /`nowhere` does not exist/,
  },
  {
    name: "cyclic extends",
    id: "cycle-a",
    yaml: `extends: cycle-b\n${device}`,
    code: "profile_extends_cycle",
    at: "profiles/cycle-b.yaml:1:10",
    field: "extends",
    message: /extends cycle: cycle-a → cycle-b → cycle-a/,
  },
  {
    name: "profile extending itself",
    id: "self-parent",
    yaml: `extends: self-parent\n${device}`,
    code: "profile_extends_cycle",
    at: "profiles/self-parent.yaml:1:10",
    message: /extends cycle: self-parent → self-parent/,
  },
  {
    name: "unknown secret reference form",
    id: "secret-vault",
    yaml: `${device}secrets:\n  wifi_key: vault:kv/wifi\n`,
    code: "profile_secret_reference_invalid",
    at: "profiles/secret-vault.yaml:5:13",
    field: "secrets.wifi_key",
    message: /not a secret reference: write env:VARIABLE or file:/,
  },
  {
    name: "secret value written inline",
    id: "secret-inline",
    yaml: `${device}secrets:\n  wifi_key: hunter22\n`,
    code: "profile_secret_reference_invalid",
    at: "profiles/secret-inline.yaml:5:13",
    field: "secrets.wifi_key",
    message: /secret values never go in a profile/,
  },
  {
    name: "secret used but not declared",
    id: "secret-undeclared",
    yaml: `${device}first_boot:\n  - name: 90-wifi\n    script: "uci set wireless.w.key='\${secret:wifi_key}'"\n`,
    code: "profile_secret_undefined",
    at: "profiles/secret-undeclared.yaml:6:13",
    field: "first_boot[0].script",
    message: /uses secret `wifi_key`, which is not declared/,
  },
  {
    name: "overlay escaping the profiles directory",
    id: "overlay-escape",
    yaml: `${device}overlay: ../../etc\n`,
    code: "profile_path_escape",
    at: "profiles/overlay-escape.yaml:4:10",
    field: "overlay",
    message: /points outside the profiles directory/,
  },
  {
    name: "absolute overlay path",
    id: "overlay-absolute",
    yaml: `${device}overlay: /etc\n`,
    code: "profile_path_escape",
    at: "profiles/overlay-absolute.yaml:4:10",
    field: "overlay",
    message: /points outside the profiles directory/,
  },
  {
    name: "overlay through a symlink that leads outside",
    id: "overlay-link",
    yaml: `${device}overlay: files/sneaky\n`,
    code: "profile_path_escape",
    at: "profiles/overlay-link.yaml:4:10",
    field: "overlay",
    message: /link that leads outside/,
  },
  {
    name: "overlay with a relative symlink escaping it",
    id: "overlay-inner-link",
    yaml: `${device}overlay: files/inner\n`,
    code: "profile_path_escape",
    at: "profiles/overlay-inner-link.yaml:4:10",
    field: "overlay",
    message: /points outside the overlay/,
  },
  {
    name: "overlay directory that does not exist",
    id: "overlay-missing",
    yaml: `${device}overlay: files/nothing-here\n`,
    code: "profile_overlay_missing",
    at: "profiles/overlay-missing.yaml:4:10",
    field: "overlay",
    message: /does not exist/,
  },
  {
    name: "concrete profile without a device",
    id: "no-device",
    yaml: 'release: "23.05.5"\ntarget: ath79/generic\n',
    code: "profile_missing_field",
    at: "profiles/no-device.yaml:1:1",
    field: "device",
    message: /`device` is required/,
  },
  {
    name: "service name with a slash",
    id: "service-bad",
    yaml: `${device}disabled_services: [odhcpd, ../../bin/sh]\n`,
    code: "profile_invalid_value",
    at: "profiles/service-bad.yaml:4:29",
    field: "disabled_services[1]",
    message: /not an \/etc\/init\.d service name/,
  },
  {
    name: "tag with spaces",
    id: "tag-bad",
    yaml: `${device}tags: ["Home AP"]\n`,
    code: "profile_invalid_value",
    at: "profiles/tag-bad.yaml:4:8",
    field: "tags[0]",
    message: /not a tag/,
  },
  {
    name: "flash image type a card cannot take",
    id: "flash-sysupgrade",
    yaml: `${device}flash:\n  image: sysupgrade\n`,
    code: "profile_invalid_value",
    at: "profiles/flash-sysupgrade.yaml:5:10",
    field: "flash.image",
    message: /Expected "auto" \| "sdcard"/,
  },
  {
    name: "extends given as a number",
    id: "extends-number",
    yaml: `extends: 42\n${device}`,
    code: "profile_invalid_id",
    at: "profiles/extends-number.yaml:1:10",
    field: "extends",
    message: /Expected/,
  },
  {
    name: "file name that is not a profile id",
    id: "Bad_Name",
    yaml: device,
    code: "profile_invalid_id",
    at: "profiles/Bad_Name.yaml:1:1",
    message: /not a valid profile id/,
  },
]

describe("bad profiles", () => {
  let project: ReturnType<typeof makeProject>

  beforeAll(() => {
    const files: Record<string, string> = {
      "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\n',
      "profiles/cycle-b.yaml": `extends: cycle-a\n${device}`,
      "profiles/files/inner/etc/ok": "fine\n",
    }
    for (const bad of corpus) files[`profiles/${bad.id}.yaml`] = bad.yaml
    project = makeProject(files)
    mkdirSync(join(project.dir, "outside"))
    symlinkSync(join(project.dir, "outside"), join(project.dir, "profiles", "files", "sneaky"))
    symlinkSync("../../../../outside/passwd", join(project.dir, "profiles", "files", "inner", "etc", "leak"))
  })
  afterAll(() => project.cleanup())

  it("has at least 25 cases", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(25)
  })

  it.each(corpus)("$name → $code", async (bad) => {
    const result = await owrt(["profiles", "validate", bad.id, "--json"], { cwd: project.dir })
    expect(result.code, result.stderr).toBe(3)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe(bad.code)
    expect(error.exitCode).toBe(3)
    const first = error.message.split("\n")[0] ?? ""
    expect(first.startsWith(bad.at), `"${first}" should start with ${bad.at}`).toBe(true)
    if (bad.field) expect(first).toContain(` ${bad.field}: `)
    expect(error.message).toMatch(bad.message)
  })

  it("prints the same diagnostics for people, on stderr, with nothing on stdout", async () => {
    const result = await owrt(["profiles", "validate", "typo-packages"], { cwd: project.dir })
    expect(result.code).toBe(3)
    expect(result.stderr).toContain(
      "profiles/typo-packages.yaml:4:1: pacakges: unknown key `pacakges` — did you mean `packages`?",
    )
    expect(result.stdout).toContain("✗ typo-packages")
  })

  it("reports every problem of a file, not only the first", async () => {
    project.write("profiles/many.yaml", `${device}pacakges: [luci]\nrootfs_size: 1\ntags: ["A B"]\n`)
    const { error } = json<ErrorDocument>(
      await owrt(["profiles", "validate", "many", "--json"], { cwd: project.dir }),
    )
    expect(error.message.split("\n")).toHaveLength(3)
  })
})
