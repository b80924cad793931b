import { execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror } from "../fixtures/mirror/index.js"
import { raspiosListName } from "../fixtures/mirror/raspios.js"
import { cleanEnv, type ErrorDocument, json, makeProject, owrt, owrtBin } from "../helpers/cli.js"
import { attachLoop, loopDevicesUnavailable } from "../helpers/loopDevice.js"
import { startTestMirror, type TestMirror } from "../helpers/mirrorServer.js"
import { readImage } from "../helpers/raspiImage.js"

/**
 * Raspberry Pi OS profiles realized against the stand-in base image on the test mirror, read back without
 * mounting (mtools, debugfs): what the profile asks for is in the image, with the modes and owners
 * Raspberry Pi OS needs; the stored base image is never modified; two stores give the same bytes; bad base
 * images and clear-text passwords are refused.
 */

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const wgConf =
  "[Interface]\nPrivateKey = aW5zZWN1cmUta2V5LWZvci10ZXN0cy1vbmx5LTAxMjM=\nAddress = 10.9.0.17/32\n"
const wifiPassphrase = "correct-horse-battery"
const secretEnv: Record<string, string> = {
  OWRT_TEST_WG_CONF: wgConf,
  OWRT_TEST_WIFI_PSK: wifiPassphrase,
  OWRT_TEST_SECRETS_KEY: "a-shared-fingerprint-key-for-both-stores",
}
const authorizedKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0YW5kLWluLWtleS1mb3ItdGVzdHM hive@example"
const passwordHash = "$6$owrtsalt$9yNnKp1mQ2b3s4t5u6v7w8x9y0zAbCdEfGhIjKlMnOpQrStUvWxYz"

const profiles = (listUrl: string): Record<string, string> => ({
  "graph.config.ts":
    'import { defineConfig } from "owrt/config"\nexport default defineConfig({ secretsKey: "env:OWRT_TEST_SECRETS_KEY" })\n',
  "profiles/base-pi.yaml": `kind: raspios
abstract: true
base:
  os_list: ${listUrl}
  os: Raspberry Pi OS Lite (64-bit)
  release_date: "2025-05-13"
timezone: Europe/Berlin
ssh:
  enabled: true
users:
  - name: hive
    password_hash: "${passwordHash}"
    ssh_authorized_keys:
      - ${authorizedKey}
secrets:
  wg: env:OWRT_TEST_WG_CONF
  wifi_psk: env:OWRT_TEST_WIFI_PSK
`,
  "profiles/sensor-hive-17.yaml": `extends: base-pi
hostname: sensor-hive-17
wifi:
  country: DE
  ssid: hive-net
  psk_secret: wifi_psk
wireguard:
  config_secret: wg
packages: [mosquitto-clients]
first_boot:
  - name: 10-hello
    script: echo hello from sensor 17
`,
  // The zstd-compressed publication of the same image: the same base node, stored once. No os_list: the
  // osList setting's (OWRT_OS_LIST).
  "profiles/quiet-pi.yaml": `kind: raspios
base:
  os: Raspberry Pi OS Lite (64-bit, zstd)
  release_date: "2025-05-13"
hostname: quiet-pi
ssh:
  enabled: false
compression: [zst, xz]
`,
})

describe("Raspberry Pi OS profiles", () => {
  let mirror: TestMirror
  let root: string
  let listUrl: string
  let extractSha256: string
  let project: ReturnType<typeof makeProject>
  let other: ReturnType<typeof makeProject>

  beforeAll(async () => {
    root = (await buildMirror()).root
    mirror = await startTestMirror(root)
    listUrl = `${mirror.url}/raspios/${raspiosListName}`
    secretEnv.OWRT_OS_LIST = listUrl
    const list = JSON.parse(readFileSync(join(root, "raspios", raspiosListName), "utf8")) as {
      os_list: Array<{ subitems: Array<{ extract_sha256: string }> }>
    }
    extractSha256 = list.os_list[0]?.subitems[0]?.extract_sha256 ?? ""
    project = makeProject(profiles(listUrl))
    other = makeProject(profiles(listUrl))
  })
  afterAll(async () => {
    project?.cleanup()
    other?.cleanup()
    await mirror?.close()
  })

  const realize = async (dir: string, profile: string) => {
    const result = await owrt(["realize", profile, "--json"], { cwd: dir, env: secretEnv })
    expect(result.code, result.stderr).toBe(0)
    const document = json<{
      results: Array<{ artifacts: Array<{ name: string; path: string; sha256: string }> }>
    }>(result)
    const artifact = document.results[0]?.artifacts[0]
    if (!artifact) throw new Error(`no artifact:\n${result.stdout}`)
    return { artifact, result }
  }

  const baseImages = (dir: string) =>
    existsSync(join(dir, "store"))
      ? readdirSync(join(dir, "store")).filter((name) => /-raspios-base-/.test(name))
      : []

  it("realizes a profile that extends another, and the image holds what it asks for", async () => {
    const { artifact, result } = await realize(project.dir, "sensor-hive-17")
    expect(artifact.name).toBe("sensor-hive-17.img.xz")
    const image = readImage(artifact.path)
    try {
      expect(image.cat("/etc/hostname")).toBe("sensor-hive-17\n")
      expect(image.cat("/etc/hosts")).toContain("127.0.1.1\tsensor-hive-17\n")
      // The first user by userconf-pi, the mechanism this (systemd, Bookworm) release uses.
      expect(image.boot("userconf.txt")).toBe(`hive:${passwordHash}\n`)
      // Keys in uid 1000's home as the image has it (/home/pi): 0600, owned by uid 1000.
      expect(image.cat("/home/pi/.ssh/authorized_keys")).toBe(`${authorizedKey}\n`)
      expect(image.stat("/home/pi/.ssh/authorized_keys")).toMatchObject({
        mode: "100600",
        uid: 1000,
        gid: 1000,
      })
      expect(image.stat("/home/pi/.ssh")).toMatchObject({ mode: "40700", uid: 1000 })
      expect(image.cat("/etc/wireguard/wg0.conf")).toBe(wgConf)
      expect(image.stat("/etc/wireguard/wg0.conf")).toMatchObject({ mode: "100600", uid: 0, gid: 0 })
      expect(image.stat("/etc/wireguard")).toMatchObject({ mode: "40700", uid: 0 })
      expect(image.stat("/etc/systemd/system/multi-user.target.wants/wg-quick@wg0.service")?.link).toBe(
        "/lib/systemd/system/wg-quick@.service",
      )
      // SSH enabled as systemctl would, by its .wants link.
      expect(image.stat("/etc/systemd/system/multi-user.target.wants/ssh.service")?.link).toBe(
        "/lib/systemd/system/ssh.service",
      )
      expect(image.cat("/etc/ssh/sshd_config.d/10-owrt.conf")).toContain("PasswordAuthentication no\n")
      // Wi-Fi: a root-only NetworkManager profile holding the derived PSK, never the passphrase.
      const wifi = image.cat("/etc/NetworkManager/system-connections/owrt-wifi.nmconnection") ?? ""
      expect(wifi).toContain("ssid=hive-net\n")
      expect(wifi).toMatch(/^psk=[0-9a-f]{64}$/m)
      expect(wifi).not.toContain(wifiPassphrase)
      expect(image.stat("/etc/NetworkManager/system-connections/owrt-wifi.nmconnection")).toMatchObject({
        mode: "100600",
        uid: 0,
      })
      expect(image.boot("cmdline.txt")).toMatch(/ rootwait quiet init=\S+ cfg80211\.ieee80211_regdom=DE\n$/)
      expect(image.stat("/etc/localtime")?.link).toBe("/usr/share/zoneinfo/Europe/Berlin")
      // The first-boot unit, enabled, installing the packages and running the script once.
      expect(image.stat("/etc/systemd/system/multi-user.target.wants/owrt-firstboot.service")?.link).toBe(
        "/etc/systemd/system/owrt-firstboot.service",
      )
      const firstBoot = image.cat("/usr/local/lib/owrt/firstboot.sh") ?? ""
      expect(firstBoot).toContain("'mosquitto-clients'")
      expect(firstBoot).toContain("'wireguard-tools'")
      expect(image.cat("/usr/local/lib/owrt/firstboot.d/10-hello")).toBe("echo hello from sensor 17")
      const marker = JSON.parse(image.cat("/etc/owrt-build") ?? "{}") as Record<string, unknown>
      expect(marker).toMatchObject({ owrt: 1, profile: "sensor-hive-17" })
      expect(image.fsck()).toBe(0)
    } finally {
      image.close()
    }
    // The block map: bmaptool itself (its checksum of the bmap file and of every range) restores the image
    // whose SHA-256 SHA256SUMS gives, writing only the mapped blocks.
    const dir = dirname(dirname(artifact.path))
    const sums = readFileSync(join(dir, "SHA256SUMS"), "utf8")
    const imageSha = /^([0-9a-f]{64}) {2}sensor-hive-17\.img$/m.exec(sums)?.[1]
    const bmap = readFileSync(join(dir, "images", "sensor-hive-17.bmap"), "utf8")
    const mapped = Number(/<MappedBlocksCount> (\d+) /.exec(bmap)?.[1])
    const blocks = Number(/<BlocksCount> (\d+) /.exec(bmap)?.[1])
    expect(mapped).toBeGreaterThan(0)
    expect(mapped).toBeLessThan(blocks / 4)
    const restored = join(project.dir, "restored.img")
    execFileSync("bmaptool", [
      "-q",
      "copy",
      "--bmap",
      join(dir, "images", "sensor-hive-17.bmap"),
      artifact.path,
      restored,
    ])
    expect(sha256(readFileSync(restored))).toBe(imageSha)
    rmSync(restored)
    // No secret value in the output, the logs or the database.
    const db = readFileSync(join(project.dir, "store", "owrt.db"))
    for (const secret of [wgConf.split("\n")[1] ?? "", wifiPassphrase]) {
      expect(result.stdout + result.stderr).not.toContain(secret)
      expect(db.includes(Buffer.from(secret))).toBe(false)
    }
  })

  it("writes an nftables firewall that opens the ports asked for (and SSH's), merged across extends", async () => {
    project.write(
      "profiles/gateway-pi.yaml",
      'extends: base-pi\nhostname: gateway-pi\nfirewall:\n  allow: [1883, "60000-60010/udp", 1883/tcp]\n',
    )
    const shown = await owrt(["profiles", "show", "gateway-pi", "--json"], {
      cwd: project.dir,
      env: secretEnv,
    })
    expect(shown.code, shown.stderr).toBe(0)
    const resolved = json<{ profile: { raspios: { firewall?: { allow: Array<string> } } } }>(shown)
    expect(resolved.profile.raspios.firewall).toEqual({ allow: ["22/tcp", "1883/tcp", "60000-60010/udp"] })
    // Profiles without a firewall section have none (their keys are as before).
    const plain = json<{ profile: { raspios: { firewall?: unknown } } }>(
      await owrt(["profiles", "show", "sensor-hive-17", "--json"], { cwd: project.dir, env: secretEnv }),
    )
    expect(plain.profile.raspios.firewall).toBeUndefined()

    const { artifact } = await realize(project.dir, "gateway-pi")
    const image = readImage(artifact.path)
    try {
      const rules = image.cat("/etc/nftables.conf") ?? ""
      expect(rules).toContain("policy drop;")
      expect(rules).toContain("    tcp dport { 22, 1883 } accept\n")
      expect(rules).toContain("    udp dport { 60000-60010 } accept\n")
      expect(image.stat("/etc/systemd/system/sysinit.target.wants/nftables.service")?.link).toBe(
        "/lib/systemd/system/nftables.service",
      )
      const firstBoot = image.cat("/usr/local/lib/owrt/firstboot.sh") ?? ""
      expect(firstBoot).toContain("'nftables'")
      expect(firstBoot).toContain("systemctl enable --now nftables")
      // nft itself accepts the rules.
      const file = join(project.dir, "nftables.conf")
      writeFileSync(file, rules)
      execFileSync("nft", ["-c", "-f", file])
    } finally {
      image.close()
    }
  })

  it("seeds cloud-init on an image whose release uses it: the first user in user-data, no userconf.txt", async () => {
    project.write(
      "profiles/cloudy-pi.yaml",
      [
        "kind: raspios",
        "base:",
        "  os: Raspberry Pi OS Lite (64-bit, cloud-init)",
        '  release_date: "2025-05-13"',
        "hostname: cloudy-pi",
        "timezone: Europe/Berlin",
        "ssh:",
        "  enabled: true",
        "users:",
        "  - name: hive",
        `    password_hash: "${passwordHash}"`,
        "    ssh_authorized_keys:",
        `      - ${authorizedKey}`,
        "wifi:",
        "  country: DE",
        "  ssid: hive-net",
        "  psk_secret: wifi_psk",
        "secrets:",
        "  wifi_psk: env:OWRT_TEST_WIFI_PSK",
        "",
      ].join("\n"),
    )
    const { artifact } = await realize(project.dir, "cloudy-pi")
    const image = readImage(artifact.path)
    try {
      expect(image.boot("userconf.txt")).toBeUndefined()
      const userData = image.boot("user-data") ?? ""
      expect(userData.split("\n").slice(0, 1)).toEqual(["#cloud-config"])
      expect(userData).toContain('hostname: "cloudy-pi"\nmanage_etc_hosts: true\n')
      expect(userData).toContain(
        `user:\n  name: "hive"\n  lock_passwd: false\n  passwd: "${passwordHash}"\n  ssh_authorized_keys:\n    - "${authorizedKey}"\n  sudo: "ALL=(ALL) NOPASSWD:ALL"\n`,
      )
      expect(userData).toContain("ssh_pwauth: false\nruncmd:\n  - [systemctl, enable, --now, ssh]\n")
      const instance = /^instance-id: (owrt-[0-9a-f]{16})\n$/.exec(image.boot("meta-data") ?? "")?.[1]
      expect(instance).toBeDefined()
      // The NoCloud seed named on the command line, beside the Wi-Fi country; nothing else of it touched.
      expect(image.boot("cmdline.txt")).toMatch(
        new RegExp(` rootwait quiet init=\\S+ ds=nocloud;i=${instance} cfg80211\\.ieee80211_regdom=DE\n$`),
      )
      // The Wi-Fi passphrase stays off the FAT partition (it is world-readable): only on ext4, 0600.
      expect(userData).not.toContain(wifiPassphrase)
      expect(image.stat("/etc/NetworkManager/system-connections/owrt-wifi.nmconnection")).toMatchObject({
        mode: "100600",
      })
      expect(image.cat("/etc/hostname")).toBe("cloudy-pi\n")
      expect(image.fsck()).toBe(0)
    } finally {
      image.close()
    }
  })

  it("copies an overlay directory into the root file system, modes and links kept, files: winning", async () => {
    project.write("profiles/pi-overlay/etc/motd", "welcome to the hive\n")
    project.write("profiles/pi-overlay/etc/issue.net", "from the overlay\n")
    project.write("profiles/pi-overlay/usr/local/bin/hive-report", "#!/bin/sh\necho report\n")
    chmodSync(join(project.dir, "profiles/pi-overlay/usr/local/bin/hive-report"), 0o755)
    symlinkSync("hive-report", join(project.dir, "profiles/pi-overlay/usr/local/bin/report"))
    project.write(
      "profiles/overlay-pi.yaml",
      'extends: base-pi\nhostname: overlay-pi\noverlay: pi-overlay\nfiles:\n  - path: /etc/issue.net\n    content: "from files\\n"\n',
    )
    const { artifact } = await realize(project.dir, "overlay-pi")
    const image = readImage(artifact.path)
    try {
      expect(image.cat("/etc/motd")).toBe("welcome to the hive\n")
      expect(image.stat("/etc/motd")).toMatchObject({ mode: "100644", uid: 0, gid: 0 })
      expect(image.cat("/usr/local/bin/hive-report")).toBe("#!/bin/sh\necho report\n")
      expect(image.stat("/usr/local/bin/hive-report")).toMatchObject({ mode: "100755", uid: 0 })
      expect(image.stat("/usr/local/bin/report")?.link).toBe("hive-report")
      expect(image.cat("/etc/issue.net")).toBe("from files\n")
      expect(image.fsck()).toBe(0)
    } finally {
      image.close()
    }
    // An edit of an overlay file makes a new image.
    project.write("profiles/pi-overlay/etc/motd", "welcome back\n")
    const again = await realize(project.dir, "overlay-pi")
    expect(again.artifact.sha256).not.toBe(artifact.sha256)
    // `owrt diff` names a Raspberry Pi OS image's own nodes.
    const diff = await owrt(["diff", "overlay-pi@1", "overlay-pi@2", "--json"], {
      cwd: project.dir,
      env: secretEnv,
    })
    expect(diff.code, diff.stderr).toBe(0)
    const keys = json<{ keys: Array<{ node: string; changed: boolean }> }>(diff).keys
    expect(keys.map((k) => [k.node, k.changed])).toEqual([
      ["fetch-base-image", false],
      ["customise-image", true],
      ["collect-artifacts", true],
    ])
    const human = await owrt(["diff", "overlay-pi@1", "overlay-pi@2"], { cwd: project.dir, env: secretEnv })
    expect(human.stdout).toContain("files: not compared (a Raspberry Pi OS image is customised in place")
  })

  it("never modifies the stored base image, and stores it once for both of its publications", async () => {
    await realize(project.dir, "sensor-hive-17")
    const { artifact } = await realize(project.dir, "quiet-pi")
    const bases = baseImages(project.dir)
    expect(bases).toHaveLength(1)
    const stored = readFileSync(join(project.dir, "store", bases[0] ?? "", "base.img"))
    expect(sha256(stored)).toBe(extractSha256)
    // Both compressions asked for, the same image in each.
    const listed = json<{ results: Array<{ artifacts: Array<{ name: string; path: string }> }> }>(
      await owrt(["realize", "quiet-pi", "--json"], { cwd: project.dir, env: secretEnv }),
    ).results[0]?.artifacts.map((a) => a.name)
    expect(listed).toEqual(["quiet-pi.img.xz", "quiet-pi.img.zst"])
    const fromZstd = execFileSync("zstd", ["-dc", artifact.path.replace(/\.xz$/, ".zst")], {
      maxBuffer: 1 << 30,
    })
    const fromXz = execFileSync("xz", ["-dc", artifact.path], { maxBuffer: 1 << 30 })
    expect(sha256(fromZstd)).toBe(sha256(fromXz))
    const image = readImage(artifact.path)
    try {
      expect(image.cat("/etc/hostname")).toBe("quiet-pi\n")
      expect(image.stat("/etc/systemd/system/multi-user.target.wants/ssh.service")).toBeUndefined()
      expect(image.boot("userconf.txt")).toBeUndefined()
    } finally {
      image.close()
    }
  })

  it("keeps the stored base image intact when a customisation is killed midway", async () => {
    project.write("profiles/killed-pi.yaml", "extends: sensor-hive-17\nhostname: killed-pi\n")
    const child = spawn(process.execPath, [owrtBin, "realize", "killed-pi"], {
      cwd: project.dir,
      env: cleanEnv(secretEnv),
      stdio: "ignore",
    })
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    const work = join(project.dir, "store", ".work")
    // SIGKILL once the private copy of the base image exists (customise-image is under way).
    const killedMidway = await new Promise<boolean>((resolve) => {
      const poll = setInterval(() => {
        const copies = existsSync(work)
          ? readdirSync(work, { recursive: true }).filter((p) => String(p).endsWith("image.img"))
          : []
        if (copies.length > 0) {
          clearInterval(poll)
          child.kill("SIGKILL")
          resolve(true)
        }
      }, 10)
      void exited.then(() => {
        clearInterval(poll)
        resolve(false)
      })
    })
    expect(killedMidway).toBe(true)
    await exited
    const bases = baseImages(project.dir)
    expect(bases).toHaveLength(1)
    expect(sha256(readFileSync(join(project.dir, "store", bases[0] ?? "", "base.img")))).toBe(extractSha256)
    // And the next realize builds it.
    const { artifact } = await realize(project.dir, "killed-pi")
    const image = readImage(artifact.path)
    try {
      expect(image.cat("/etc/hostname")).toBe("killed-pi\n")
    } finally {
      image.close()
    }
  })

  it("passes an audit: customise-image and collect-artifacts rebuilt give the same bytes", async () => {
    const result = await owrt(["audit", "sensor-hive-17", "--json"], { cwd: project.dir, env: secretEnv })
    expect(result.code, result.stderr).toBe(0)
    expect(json<{ identical: boolean }>(result).identical).toBe(true)
  })

  it("answers from the store alone when the OS list cannot be reached", async () => {
    const unreachable = { ...secretEnv, OWRT_OS_LIST: "http://127.0.0.1:9/os_list.json" }
    const offline = await owrt(["realize", "sensor-hive-17", "--offline", "--json"], {
      cwd: project.dir,
      env: unreachable,
    })
    expect(offline.code, offline.stderr).toBe(0)
    expect(json<{ results: Array<{ cacheHit: boolean }> }>(offline).results[0]?.cacheHit).toBe(true)
    const path = await owrt(["store", "path", "sensor-hive-17", "--json"], {
      cwd: project.dir,
      env: unreachable,
    })
    expect(path.code, path.stderr).toBe(0)
    expect(path.stdout).toContain("-sensor-hive-17-artifacts")
    // A release never fetched here is not in the store: offline says so.
    project.write("profiles/never.yaml", 'extends: sensor-hive-17\nbase:\n  release_date: "2024-11-19"\n')
    const never = await owrt(["realize", "never", "--offline", "--json"], {
      cwd: project.dir,
      env: unreachable,
    })
    expect(never.code).toBe(5)
    expect(json<ErrorDocument>(never).error.code).toBe("offline_not_cached")
  })

  it.skipIf(loopDevicesUnavailable !== undefined)(
    "flashes the image to a card (a loop device) and identifies the card by its marker",
    async () => {
      const loop = attachLoop(join(project.dir, "pi.card"), { sizeBytes: 128 * 1024 * 1024 })
      try {
        const flashed = await owrt(
          ["flash", "sensor-hive-17", loop.device, "--allow-loop", "--force", "--json"],
          {
            cwd: project.dir,
            env: secretEnv,
          },
        )
        expect(flashed.code, flashed.stderr).toBe(0)
        expect(json<{ image: { compression: string } }>(flashed).image.compression).toBe("xz")
        const identified = await owrt(["flash", "--identify", loop.device, "--json"], { cwd: project.dir })
        expect(identified.code, identified.stderr).toBe(0)
        const found = json<{ marker: { profile: string; key: string }; foundAt: { filesystem: string } }>(
          identified,
        )
        expect(found.marker.profile).toBe("sensor-hive-17")
        expect(found.foundAt.filesystem).toBe("ext4")
        const plan = json<{ profiles: Array<{ nodes: Array<{ kind: string; key: string }> }> }>(
          await owrt(["plan", "sensor-hive-17", "--json"], { cwd: project.dir, env: secretEnv }),
        )
        expect(found.marker.key).toBe(plan.profiles[0]?.nodes.find((n) => n.kind === "customise-image")?.key)
      } finally {
        loop.detach()
      }
    },
  )

  it("gives byte-identical images in two stores", async () => {
    const first = await realize(project.dir, "sensor-hive-17")
    const second = await realize(other.dir, "sensor-hive-17")
    expect(second.artifact.sha256).toBe(first.artifact.sha256)
    expect(sha256(readFileSync(second.artifact.path))).toBe(sha256(readFileSync(first.artifact.path)))
    const bmapOf = (path: string) => readFileSync(path.replace(/\.img\.xz$/, ".bmap"))
    expect(sha256(bmapOf(second.artifact.path))).toBe(sha256(bmapOf(first.artifact.path)))
  })

  describe("refuses bad base images and stores nothing", () => {
    // A store of its own: a base image of the same extracted digest stored before would be reused (it is
    // a fixed-output node), not downloaded again.
    let fresh: ReturnType<typeof makeProject>
    beforeAll(() => {
      fresh = makeProject({})
    })
    afterAll(() => fresh?.cleanup())
    const published = () =>
      readFileSync(
        join(
          root,
          "raspios",
          "images",
          "raspios_lite_arm64-2025-05-13",
          "2025-05-13-raspios-bookworm-arm64-lite.img.xz",
        ),
      )
    const byUrl = (id: string, path: string, sha: string, extract: string) =>
      fresh.write(
        `profiles/${id}.yaml`,
        `kind: raspios\nbase:\n  url: ${mirror.url}${path}\n  sha256: "${sha}"\n  extract_sha256: "${extract}"\nhostname: bad\n`,
      )

    const refused = async (id: string) => {
      const dir = fresh.dir
      const before = baseImages(dir).length
      const result = await owrt(["realize", id, "--json"], { cwd: dir, env: secretEnv })
      expect(baseImages(dir)).toHaveLength(before)
      return { result, error: json<ErrorDocument>(result).error }
    }

    it("a download whose SHA-256 does not match", async () => {
      const real = published()
      mirror.fault("/raspios/tampered.img.xz", {
        kind: "replace",
        body: Buffer.concat([real, Buffer.from("x")]),
      })
      byUrl("tampered", "/raspios/tampered.img.xz", sha256(real), extractSha256)
      const { result, error } = await refused("tampered")
      expect(result.code).toBe(6)
      expect(error.code).toBe("checksum_mismatch")
      expect(error.message).toContain("nothing was stored")
    })

    it("an image whose extracted SHA-256 does not match", async () => {
      const real = published()
      byUrl(
        "wrong-extract",
        "/raspios/images/raspios_lite_arm64-2025-05-13/2025-05-13-raspios-bookworm-arm64-lite.img.xz",
        sha256(real),
        "0".repeat(64),
      )
      const { result, error } = await refused("wrong-extract")
      expect(result.code).toBe(6)
      expect(error.code).toBe("checksum_mismatch")
      expect(error.message).toContain("extract_sha256")
    })

    it("a truncated xz", async () => {
      const real = published()
      const truncated = real.subarray(0, Math.floor(real.length / 2))
      mirror.fault("/raspios/truncated.img.xz", { kind: "replace", body: truncated })
      byUrl("truncated", "/raspios/truncated.img.xz", sha256(truncated), extractSha256)
      const { result, error } = await refused("truncated")
      expect(result.code).toBe(6)
      expect(error.code).toBe("base_image_invalid")
      expect(error.message).toMatch(/cannot decompress/)
    })

    it("an image without the boot and root partitions", async () => {
      const blank = Buffer.alloc(1 << 20)
      const compressed = execFileSync("xz", ["-c"], { input: blank })
      mirror.fault("/raspios/blank.img.xz", { kind: "replace", body: compressed })
      byUrl("blank", "/raspios/blank.img.xz", sha256(compressed), sha256(blank))
      const { result, error } = await refused("blank")
      expect(result.code).toBe(6)
      expect(error.code).toBe("base_image_invalid")
      expect(error.message).toMatch(/no MBR partition table/)
    })

    it("a missing image (HTTP 404), at once; a server error is retried (this one last: it stores the base)", async () => {
      const real = published()
      byUrl("missing", "/raspios/missing.img.xz", sha256(real), extractSha256)
      const { result, error } = await refused("missing")
      expect(result.code).toBe(6)
      expect(error.code).toBe("download_failed")
      expect(error.message).toMatch(/HTTP 404/)
      const path =
        "/raspios/images/raspios_lite_arm64-2025-05-13/2025-05-13-raspios-bookworm-arm64-lite.img.xz"
      mirror.fault(path, { kind: "status", status: 503, times: 2 })
      byUrl("flaky", path, sha256(real), extractSha256)
      const flaky = await owrt(["realize", "flaky", "--json"], { cwd: fresh.dir, env: secretEnv })
      mirror.fault(path, undefined)
      expect(flaky.code, flaky.stderr).toBe(0)
      expect(baseImages(fresh.dir)).toHaveLength(1)
    })
  })

  it("shows a raspios profile by its own settings", async () => {
    const shown = await owrt(["profiles", "show", "sensor-hive-17"], { cwd: project.dir })
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain("  kind:     raspios\n")
    expect(shown.stdout).toContain("  base:     Raspberry Pi OS Lite (64-bit) of 2025-05-13 from ")
    expect(shown.stdout).toContain("  hostname: sensor-hive-17\n")
    expect(shown.stdout).toContain("  users:    hive (password hash, 1 SSH key(s), sudo)\n")
    expect(shown.stdout).toContain("  wifi:     hive-net (DE, passphrase secret wifi_psk)\n")
    expect(shown.stdout).not.toContain("release:")
  })

  describe("refuses bad profiles where they are written", () => {
    it("a clear-text password", async () => {
      project.write(
        "profiles/clear-text.yaml",
        "kind: raspios\nextends: base-pi\nhostname: leaky\nusers:\n  - name: hive\n    password: hunter2hunter2\n",
      )
      const result = await owrt(["profiles", "validate", "clear-text", "--json"], { cwd: project.dir })
      expect(result.code).toBe(3)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe("profile_secret_inline")
      expect(error.message).toMatch(
        /^profiles\/clear-text\.yaml:6:\d+: users\[0\]\.password: clear-text passwords are refused/,
      )
      expect(result.stdout + result.stderr).not.toContain("hunter2hunter2")
    })

    it("a host name that is not one", async () => {
      project.write("profiles/bad-host.yaml", "extends: base-pi\nhostname: Hive_17.local\n")
      const { error } = json<ErrorDocument>(
        await owrt(["profiles", "validate", "bad-host", "--json"], { cwd: project.dir }),
      )
      expect(error.code).toBe("profile_invalid_value")
      expect(error.message).toMatch(
        /^profiles\/bad-host\.yaml:2:\d+: hostname: `Hive_17\.local` is not a valid host name/,
      )
    })

    it("a file for the boot partition's mount point", async () => {
      project.write(
        "profiles/boot-file.yaml",
        'extends: base-pi\nhostname: boot-file\nfiles:\n  - path: /boot/firmware/config.txt\n    content: "x"\n',
      )
      const { error } = json<ErrorDocument>(
        await owrt(["profiles", "validate", "boot-file", "--json"], { cwd: project.dir }),
      )
      expect(error.code).toBe("profile_invalid_value")
      expect(error.message).toMatch(
        /^profiles\/boot-file\.yaml:4:\d+: files\[0\]\.path: \/boot\/firmware is the FAT/,
      )
    })

    it("a port rule that is not one", async () => {
      project.write(
        "profiles/bad-port.yaml",
        "extends: base-pi\nhostname: bad-port\nfirewall:\n  allow: [22, 70000/tcp]\n",
      )
      const { error } = json<ErrorDocument>(
        await owrt(["profiles", "validate", "bad-port", "--json"], { cwd: project.dir }),
      )
      expect(error.code).toBe("profile_invalid_value")
      expect(error.message).toMatch(
        /^profiles\/bad-port\.yaml:4:\d+: firewall\.allow\[1\]: `70000\/tcp` is not a port rule/,
      )
    })

    it("an OpenWrt setting in a raspios profile", async () => {
      project.write("profiles/mixed.yaml", 'extends: base-pi\nhostname: mixed\nrelease: "24.10.0"\n')
      const { error } = json<ErrorDocument>(
        await owrt(["profiles", "validate", "mixed", "--json"], { cwd: project.dir }),
      )
      expect(error.code).toBe("profile_kind_mismatch")
      expect(error.message).toMatch(/^profiles\/mixed\.yaml:3:\d+: release: `release` is an OpenWrt setting/)
    })
  })

  it("keeps no base image when the OS list has no such release", async () => {
    project.write(
      "profiles/old.yaml",
      `kind: raspios\nbase:\n  os_list: ${listUrl}\n  os: Raspberry Pi OS Lite (64-bit)\n  release_date: "2020-01-01"\n`,
    )
    const result = await owrt(["realize", "old", "--json"], { cwd: project.dir })
    expect(result.code).toBe(4)
    expect(json<ErrorDocument>(result).error.message).toContain("2025-05-13")
    expect(existsSync(join(project.dir, "store"))).toBe(true)
  })
})
