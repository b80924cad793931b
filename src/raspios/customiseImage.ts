import { createHash, pbkdf2Sync } from "node:crypto"
import { chmodSync, renameSync, writeFileSync } from "node:fs"
import { join, posix } from "node:path"
import { Effect } from "effect"
import { BaseImageInvalidError, InternalError, SecretInvalidError } from "../errors.js"
import { childProcess } from "../process/lazyBuiltin.js"
import type { ResolvedRaspios } from "../profile/raspiosSchema.js"
import type { ResolvedProfile } from "../profile/resolveProfile.js"
import { secretPlaceholder } from "../profile/secrets.js"
import { baseImageFile, readLayout } from "./baseImage.js"
import {
  debugfs,
  type Ext4Partition,
  ext4Check,
  fatRead,
  fatWrite,
  imageEpoch,
  quotePath,
  sessionOutputs,
} from "./partitionTools.js"

/*
 * customise-image: a private copy of the stored base image (never the stored file itself), edited without
 * root and without loop devices — the FAT boot partition through mtools, the ext4 root through debugfs, at
 * the offsets the partition table gives — with every id and time fixed, so the same inputs give the same
 * bytes. What can be done offline is (reference/raspberry-pi.md §4); what needs the device (packages, pip,
 * locale-gen, the Wi-Fi country, the profile's first-boot scripts) runs once at first boot from a unit.
 */

export const customisedImageFile = "image.img"

/** Everything a customisation depends on besides the base image and the secret values. */
export interface CustomiseParams {
  readonly profile: string
  readonly revision: string
  readonly raspios: ResolvedRaspios
  readonly files: ResolvedProfile["files"]
  /** The profile's overlay directory, by content; absent when it has none (earlier keys stay as they were). */
  readonly overlay?: ResolvedProfile["overlay"] | undefined
  readonly firstBoot: ResolvedProfile["first_boot"]
  readonly packages: ReadonlyArray<string>
  /** The base image's init_format (rpi-imager): how the image applies a user at first boot. */
  readonly initFormat: string | null
}

export const raspiosMarkerPath = "/etc/owrt-build"

export const raspiosMarker = (params: CustomiseParams, key: string): string =>
  `${JSON.stringify({ owrt: 1, profile: params.profile, revision: params.revision, key })}\n`

interface Edit {
  readonly kind: "file" | "dir" | "symlink" | "remove"
  readonly path: string
  readonly content?: string | Uint8Array
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  readonly target?: string
}

/** `cp`/`mkdir` as a promise (child_process is loaded on first use: see process/lazyBuiltin.ts). */
const copy = (command: string, args: ReadonlyArray<string>) =>
  new Promise<void>((resolve, reject) =>
    childProcess().execFile(command, [...args], (error) => (error ? reject(error) : resolve())),
  )

/** UUIDv5 (RFC 4122, SHA-1) of `name` in the URL namespace: a NetworkManager uuid that is the same every build. */
const uuidV5 = (name: string): string => {
  const namespace = Buffer.from("6ba7b8119dad11d180b400c04fd430c8", "hex")
  const hash = createHash("sha1").update(namespace).update(name).digest()
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80
  const hex = hash.subarray(0, 16).toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** The WPA-PSK NetworkManager stores: PBKDF2-HMAC-SHA1(passphrase, ssid, 4096, 32), or 64 hex digits as given. */
const wpaPsk = (passphrase: string, ssid: string): string | undefined => {
  if (/^[0-9a-fA-F]{64}$/.test(passphrase)) return passphrase.toLowerCase()
  if (!/^[\x20-\x7e]{8,63}$/.test(passphrase)) return undefined
  return pbkdf2Sync(passphrase, ssid, 4096, 32, "sha1").toString("hex")
}

const substitute = (text: string, values: ReadonlyMap<string, string>) =>
  text.replace(secretPlaceholder, (_, name: string) => values.get(name) ?? "")

const shellQuote = (word: string) => `'${word.replace(/'/g, "'\\''")}'`

/** The edits of the root file system, in a fixed order (the same inputs, the same sequence of writes). */
const planEdits = (
  params: CustomiseParams,
  key: string,
  secrets: ReadonlyMap<string, string>,
  image: {
    readonly user: {
      readonly name: string
      readonly home: string
      readonly uid: number
      readonly gid: number
    }
    readonly read: (path: string) => string | undefined
  },
  overlay: ReadonlyMap<string, Uint8Array>,
): Effect.Effect<ReadonlyArray<Edit>, SecretInvalidError> =>
  Effect.gen(function* () {
    const r = params.raspios
    const edits: Array<Edit> = []
    const file = (path: string, content: string, mode = 0o644, uid = 0, gid = 0) =>
      edits.push({ kind: "file", path, content, mode, uid, gid })
    const link = (path: string, target: string) => edits.push({ kind: "symlink", path, target })
    const firstBootLines: Array<string> = []
    const aptPackages = new Set(params.packages)

    if (r.hostname !== null) {
      file("/etc/hostname", `${r.hostname}\n`)
      const hosts = (image.read("/etc/hosts") ?? "127.0.0.1\tlocalhost\n")
        .split("\n")
        .filter((l, i, all) => i < all.length - 1 || l !== "")
      const line = `127.0.1.1\t${r.hostname}`
      const at = hosts.findIndex((l) => /^127\.0\.1\.1\s/.test(l))
      if (at >= 0) hosts[at] = line
      else hosts.push(line)
      file("/etc/hosts", `${hosts.join("\n")}\n`)
    }
    if (r.timezone !== null) {
      file("/etc/timezone", `${r.timezone}\n`)
      link("/etc/localtime", `/usr/share/zoneinfo/${r.timezone}`)
    }
    if (r.locale !== null) {
      file("/etc/default/locale", `LANG=${r.locale}\n`)
      if (r.locale !== "C.UTF-8") {
        const wanted = `${r.locale} UTF-8`
        const lines = (image.read("/etc/locale.gen") ?? "").split("\n").filter((l) => l !== "")
        const at = lines.findIndex((l) => l.replace(/^#\s*/, "") === wanted)
        if (at >= 0) lines[at] = wanted
        else lines.push(wanted)
        file("/etc/locale.gen", `${lines.join("\n")}\n`)
        firstBootLines.push("locale-gen")
      }
    }
    if (r.keyboard !== null) {
      const current = image.read("/etc/default/keyboard") ?? 'XKBMODEL="pc105"\nXKBLAYOUT="us"\n'
      const replaced = /^XKBLAYOUT=.*$/m.test(current)
        ? current.replace(/^XKBLAYOUT=.*$/m, `XKBLAYOUT="${r.keyboard}"`)
        : `${current}XKBLAYOUT="${r.keyboard}"\n`
      file("/etc/default/keyboard", replaced)
    }

    // The first user: authorized keys in uid 1000's home as the image has it (the rename moves the home).
    // On a cloud-init image cloud-init creates the user from user-data, keys and sudo included.
    const user = isCloudInit(params.initFormat) ? undefined : r.users[0]
    if (user !== undefined) {
      if (user.ssh_authorized_keys.length > 0) {
        const ssh = posix.join(image.user.home, ".ssh")
        edits.push({ kind: "dir", path: ssh, mode: 0o700, uid: image.user.uid, gid: image.user.gid })
        file(
          posix.join(ssh, "authorized_keys"),
          `${user.ssh_authorized_keys.join("\n")}\n`,
          0o600,
          image.user.uid,
          image.user.gid,
        )
      }
      if (!user.sudo) {
        for (const path of ["/etc/group", "/etc/gshadow"]) {
          const text = image.read(path)
          if (text === undefined) continue
          const edited = text.replace(
            /^(sudo:[^:]*:[^:]*:)(.*)$/m,
            (_, head: string, members: string) =>
              `${head}${members
                .split(",")
                .filter((m) => m !== "" && m !== image.user.name)
                .join(",")}`,
          )
          file(path, edited, path === "/etc/group" ? 0o644 : 0o640)
        }
      }
    }

    // SSH: enabled by its .wants link and the sshd alias (what `systemctl enable ssh` makes).
    const wants = "/etc/systemd/system/multi-user.target.wants"
    if (r.ssh.enabled) {
      link(`${wants}/ssh.service`, "/lib/systemd/system/ssh.service")
      link("/etc/systemd/system/sshd.service", "/lib/systemd/system/ssh.service")
      file(
        "/etc/ssh/sshd_config.d/10-owrt.conf",
        `# owrt: profile ${params.profile}\nPasswordAuthentication ${r.ssh.password_authentication ? "yes" : "no"}\nPort ${r.ssh.port}\n`,
      )
    } else {
      edits.push({ kind: "remove", path: `${wants}/ssh.service` })
      edits.push({ kind: "remove", path: "/etc/systemd/system/sshd.service" })
    }

    if (r.wifi !== null) {
      const passphrase = secrets.get(r.wifi.psk_secret) ?? ""
      const psk = wpaPsk(passphrase, r.wifi.ssid)
      if (psk === undefined) {
        return yield* new SecretInvalidError({
          profile: params.profile,
          secret: r.wifi.psk_secret,
          reference: "wifi.psk_secret",
          reason: "a WPA passphrase has 8 to 63 printable ASCII characters (or is 64 hex digits)",
        })
      }
      file(
        "/etc/NetworkManager/system-connections/owrt-wifi.nmconnection",
        [
          "[connection]",
          `id=${r.wifi.ssid}`,
          `uuid=${uuidV5(`owrt-wifi:${r.wifi.ssid}`)}`,
          "type=wifi",
          "",
          "[wifi]",
          "mode=infrastructure",
          `ssid=${r.wifi.ssid}`,
          ...(r.wifi.hidden ? ["hidden=true"] : []),
          "",
          "[wifi-security]",
          "key-mgmt=wpa-psk",
          `psk=${psk}`,
          "",
          "[ipv4]",
          "method=auto",
          "",
          "[ipv6]",
          "addr-gen-mode=default",
          "method=auto",
          "",
        ].join("\n"),
        0o600,
      )
      firstBootLines.push(`raspi-config nonint do_wifi_country ${r.wifi.country} || true`)
    }

    if (r.wireguard !== null) {
      edits.push({ kind: "dir", path: "/etc/wireguard", mode: 0o700, uid: 0, gid: 0 })
      file("/etc/wireguard/wg0.conf", secrets.get(r.wireguard.config_secret) ?? "", 0o600)
      link(`${wants}/wg-quick@wg0.service`, "/lib/systemd/system/wg-quick@.service")
      aptPackages.add("wireguard-tools")
      firstBootLines.push("systemctl enable --now wg-quick@wg0")
    }

    if (r.firewall !== undefined) {
      file("/etc/nftables.conf", nftablesConf(params.profile, r.firewall.allow), 0o755)
      const sysinit = "/etc/systemd/system/sysinit.target.wants"
      edits.push({ kind: "dir", path: sysinit, mode: 0o755, uid: 0, gid: 0 })
      link(`${sysinit}/nftables.service`, "/lib/systemd/system/nftables.service")
      // Installed at first boot when the base image lacks it; the rules then apply at once.
      aptPackages.add("nftables")
      firstBootLines.push("systemctl enable --now nftables")
    }

    // The overlay directory first, then `files:` (a file named by both is the `files:` one), as for OpenWrt.
    for (const entry of params.overlay ?? []) {
      const path = `/${entry.path}`
      if (entry.kind === "symlink") link(path, entry.linkTarget ?? "")
      else
        edits.push({
          kind: "file",
          path,
          content: overlay.get(entry.path) ?? new Uint8Array(),
          mode: entry.mode & 0o7777,
          uid: 0,
          gid: 0,
        })
    }

    for (const f of params.files) {
      const content =
        f.secret !== undefined ? (secrets.get(f.secret) ?? "") : substitute(f.content ?? "", secrets)
      file(f.path, content, Number.parseInt(f.mode, 8))
    }

    // First boot: one unit, enabled by its .wants link, that runs once (until its stamp exists).
    const scripts = params.firstBoot
    if (r.python_packages.length > 0) aptPackages.add("python3-pip")
    const needsFirstBoot = aptPackages.size > 0 || scripts.length > 0 || firstBootLines.length > 0
    if (needsFirstBoot) {
      const lib = "/usr/local/lib/owrt"
      edits.push({ kind: "dir", path: `${lib}/firstboot.d`, mode: 0o755, uid: 0, gid: 0 })
      for (const script of scripts)
        file(`${lib}/firstboot.d/${script.name}`, substitute(script.script, secrets), 0o700)
      const packages = [...aptPackages].sort()
      file(
        `${lib}/firstboot.sh`,
        [
          "#!/bin/sh",
          `# owrt first boot of profile ${params.profile}: runs once, then leaves /var/lib/owrt/firstboot-done`,
          "set -e",
          "export DEBIAN_FRONTEND=noninteractive",
          ...(packages.length > 0
            ? [
                // No RTC on a Pi: the clock may be wrong until time-sync; apt must not refuse the lists.
                "apt-get -o Acquire::Check-Date=false update",
                `apt-get install -y --no-install-recommends ${packages.map(shellQuote).join(" ")}`,
              ]
            : []),
          ...(r.python_packages.length > 0
            ? [`pip3 install --break-system-packages ${r.python_packages.map(shellQuote).join(" ")}`]
            : []),
          ...firstBootLines,
          `for script in ${lib}/firstboot.d/*; do [ -f "$script" ] && sh "$script"; done`,
          "mkdir -p /var/lib/owrt",
          "touch /var/lib/owrt/firstboot-done",
          "",
        ].join("\n"),
        0o755,
      )
      file(
        "/etc/systemd/system/owrt-firstboot.service",
        [
          "[Unit]",
          `Description=owrt first boot of profile ${params.profile}: packages and scripts`,
          "Wants=network-online.target time-sync.target",
          "After=network-online.target time-sync.target",
          "ConditionPathExists=!/var/lib/owrt/firstboot-done",
          "",
          "[Service]",
          "Type=oneshot",
          `ExecStart=${lib}/firstboot.sh`,
          "RemainAfterExit=yes",
          "",
          "[Install]",
          "WantedBy=multi-user.target",
          "",
        ].join("\n"),
      )
      link(`${wants}/owrt-firstboot.service`, "/etc/systemd/system/owrt-firstboot.service")
    }

    file(raspiosMarkerPath, raspiosMarker(params, key))
    return edits
  })

const ancestors = (path: string): Array<string> => {
  const out: Array<string> = []
  for (let dir = posix.dirname(path); dir !== "/"; dir = posix.dirname(dir)) out.unshift(dir)
  return out
}

/** Reads files and which paths exist, in one read-only debugfs session. */
const inspectRoot = (
  ext4: Ext4Partition,
  reads: ReadonlyArray<string>,
  stats: ReadonlyArray<string>,
  work: string,
) =>
  Effect.map(
    debugfs(ext4, [...reads.map((p) => `cat ${quotePath(p)}`), ...stats.map((p) => `stat ${quotePath(p)}`)], {
      write: false,
      work,
    }),
    ({ stdout }) => {
      const outputs = sessionOutputs(stdout)
      const files = new Map<string, string>()
      reads.forEach((path, i) => {
        const text = outputs[i] ?? ""
        if (text !== "") files.set(path, `${text}${text.endsWith("\n") ? "" : "\n"}`)
      })
      const existing = new Set<string>()
      stats.forEach((path, i) => {
        if ((outputs[reads.length + i] ?? "").includes("Inode:")) existing.add(path)
      })
      return { files, existing }
    },
  )

const timeFixes = (path: string) =>
  ["atime", "mtime", "ctime", "crtime"].map((field) => `sif ${quotePath(path)} ${field} @${imageEpoch}`)

/**
 * Builds `output/image.img`: copies the base (sparse; a reflink where the file system has them) into
 * `work`, edits the copy, checks it (e2fsck -fn) and moves it into `output`.
 */
export const customiseImageInto = (options: {
  readonly params: CustomiseParams
  readonly key: string
  readonly basePath: string
  readonly secrets: ReadonlyMap<string, string>
  /** The bytes of the profile's overlay files, by path (read and checked against their digests). */
  readonly overlay?: ReadonlyMap<string, Uint8Array> | undefined
  readonly output: string
  readonly work: string
}): Effect.Effect<void, InternalError | BaseImageInvalidError | SecretInvalidError> =>
  Effect.gen(function* () {
    const { params, work } = options
    const image = join(work, customisedImageFile)
    const staging = join(work, "staging")
    yield* Effect.tryPromise({
      try: async () => {
        await copy("cp", ["--reflink=auto", "--sparse=always", join(options.basePath, baseImageFile), image])
        chmodSync(image, 0o600)
        await copy("mkdir", ["-m", "0700", "-p", staging])
      },
      catch: (cause) => new InternalError({ cause }),
    })
    const layout = yield* readLayout(image)
    const fat = { image, offset: layout.boot.offset }
    const ext4 = { image, offset: layout.root.offset }
    const r = params.raspios

    // What the base image has: uid 1000 (whose home gets the keys), and the files edits start from.
    const first = yield* inspectRoot(ext4, ["/etc/passwd"], [], staging)
    const passwd = first.files.get("/etc/passwd") ?? ""
    const entry = passwd
      .split("\n")
      .map((line) => line.split(":"))
      .find((fields) => fields[2] === "1000")
    if (entry === undefined && !isCloudInit(params.initFormat)) {
      return yield* new BaseImageInvalidError({
        image: options.basePath,
        detail: "its /etc/passwd has no user with uid 1000 (Raspberry Pi OS's first user)",
      })
    }
    // A cloud-init image may have no uid 1000 yet: cloud-init makes the first user.
    const user = {
      name: entry?.[0] ?? "",
      uid: 1000,
      gid: Number(entry?.[3] ?? 1000),
      home: entry?.[5] ?? "/home/pi",
    }
    const readable = ["/etc/hosts", "/etc/locale.gen", "/etc/default/keyboard", "/etc/group", "/etc/gshadow"]
    const probes = [
      "/usr/lib/userconf-pi/userconf",
      ...(r.timezone === null ? [] : [`/usr/share/zoneinfo/${r.timezone}`]),
    ]
    const overlay = options.overlay ?? new Map<string, Uint8Array>()
    const edits = yield* planEdits(
      params,
      options.key,
      options.secrets,
      {
        user,
        read: () => undefined,
      },
      overlay,
    )
    const paths = [...new Set([...edits.flatMap((e) => [...ancestors(e.path), e.path]), ...probes])].sort()
    const found = yield* inspectRoot(ext4, readable, paths, staging)
    if (r.timezone !== null && !found.existing.has(`/usr/share/zoneinfo/${r.timezone}`)) {
      return yield* new BaseImageInvalidError({
        image: options.basePath,
        detail: `it has no time zone ${r.timezone} (/usr/share/zoneinfo/${r.timezone})`,
      })
    }
    // Edits again, now from the image's own files (hosts, locale.gen, keyboard, group).
    const planned = yield* planEdits(
      params,
      options.key,
      options.secrets,
      {
        user,
        read: (path) => found.files.get(path),
      },
      overlay,
    )

    // The boot partition: the first user (userconf-pi, systemd images), the Wi-Fi country on the command line.
    const bootFiles: Array<{ name: string; content: string }> = []
    const cmdlineWords: Array<string> = []
    const cloudInit = isCloudInit(params.initFormat)
    const account = r.users[0]
    if (account !== undefined && !cloudInit) {
      if (!found.existing.has("/usr/lib/userconf-pi/userconf")) {
        return yield* new BaseImageInvalidError({
          image: options.basePath,
          detail: "it has no userconf-pi (/usr/lib/userconf-pi/userconf), which applies the first user",
        })
      }
      // Without a password the account stays locked (`!`).
      const hash = (yield* passwordHashOf(account, options.secrets, params.profile)) ?? "!"
      bootFiles.push({ name: "userconf.txt", content: `${account.name}:${hash}\n` })
    }
    if (cloudInit) {
      // cloud-init's NoCloud seed on the boot partition; its instance id is a hash of the seed, not a time.
      const hash =
        account === undefined ? undefined : yield* passwordHashOf(account, options.secrets, params.profile)
      const userData = cloudInitUserData(params, hash)
      const instance = `owrt-${createHash("sha256").update(userData).digest("hex").slice(0, 16)}`
      bootFiles.push(
        { name: "user-data", content: userData },
        { name: "meta-data", content: `instance-id: ${instance}\n` },
      )
      cmdlineWords.push(`ds=nocloud;i=${instance}`)
    }
    if (r.wifi !== null) cmdlineWords.push(`cfg80211.ieee80211_regdom=${r.wifi.country}`)
    if (cmdlineWords.length > 0) {
      const cmdline = yield* fatRead(fat, "cmdline.txt")
      if (cmdline === undefined) {
        return yield* new BaseImageInvalidError({
          image: options.basePath,
          detail: "its boot partition has no cmdline.txt",
        })
      }
      // One line: owrt's words replaced or appended, nothing else touched.
      const ours = (word: string) =>
        word.startsWith("cfg80211.ieee80211_regdom=") || word.startsWith("ds=nocloud")
      const words = cmdline
        .trim()
        .split(/\s+/)
        .filter((w) => !ours(w))
      bootFiles.push({ name: "cmdline.txt", content: `${[...words, ...cmdlineWords].join(" ")}\n` })
    }
    yield* fatWrite(fat, bootFiles, staging)

    // The root partition: one debugfs session, directories first, then each edit with mode, owner and times.
    const commands: Array<string> = []
    const exists = new Set(found.existing)
    let n = 0
    const stage = (content: string | Uint8Array) =>
      Effect.try({
        try: () => {
          const source = join(staging, `f${n++}`)
          writeFileSync(source, content, { mode: 0o600 })
          return source
        },
        catch: (cause) => new InternalError({ cause }),
      })
    const mkdir = (path: string, mode: number, uid: number, gid: number) => {
      if (exists.has(path)) return
      commands.push(
        `mkdir ${quotePath(path)}`,
        `sif ${quotePath(path)} mode 0${(0o40000 | mode).toString(8)}`,
        `sif ${quotePath(path)} uid ${uid}`,
        `sif ${quotePath(path)} gid ${gid}`,
        ...timeFixes(path),
      )
      exists.add(path)
    }
    for (const edit of planned) {
      if (edit.kind === "remove") {
        if (exists.has(edit.path)) commands.push(`rm ${quotePath(edit.path)}`)
        exists.delete(edit.path)
        continue
      }
      for (const dir of ancestors(edit.path)) mkdir(dir, 0o755, 0, 0)
      if (edit.kind === "dir") {
        if (exists.has(edit.path)) {
          commands.push(
            `sif ${quotePath(edit.path)} mode 0${(0o40000 | (edit.mode ?? 0o755)).toString(8)}`,
            `sif ${quotePath(edit.path)} uid ${edit.uid ?? 0}`,
            `sif ${quotePath(edit.path)} gid ${edit.gid ?? 0}`,
          )
        } else mkdir(edit.path, edit.mode ?? 0o755, edit.uid ?? 0, edit.gid ?? 0)
        continue
      }
      if (exists.has(edit.path)) commands.push(`rm ${quotePath(edit.path)}`)
      if (edit.kind === "symlink") {
        commands.push(
          `symlink ${quotePath(edit.path)} ${quotePath(edit.target ?? "")}`,
          ...timeFixes(edit.path),
        )
      } else {
        const source = yield* stage(edit.content ?? "")
        commands.push(
          `write ${quotePath(source)} ${quotePath(edit.path)}`,
          `sif ${quotePath(edit.path)} mode 0${(0o100000 | (edit.mode ?? 0o644)).toString(8)}`,
          `sif ${quotePath(edit.path)} uid ${edit.uid ?? 0}`,
          `sif ${quotePath(edit.path)} gid ${edit.gid ?? 0}`,
          ...timeFixes(edit.path),
        )
      }
      exists.add(edit.path)
    }
    yield* debugfs(ext4, commands, { write: true, work: staging })
    yield* ext4Check(ext4)
    yield* Effect.try({
      try: () => renameSync(image, join(options.output, customisedImageFile)),
      catch: (cause) => new InternalError({ cause }),
    })
  })

/**
 * The nftables rules of a profile's firewall: incoming traffic is dropped except on loopback, replies to
 * what the device sent, ICMP (IPv6 needs it to work at all), DHCP replies and the ports allowed; forwarding is
 * dropped; outgoing traffic is not filtered.
 */
export const nftablesConf = (profile: string, allow: ReadonlyArray<string>): string => {
  const ports = (protocol: string) =>
    allow.filter((rule) => rule.endsWith(`/${protocol}`)).map((rule) => rule.slice(0, -`/${protocol}`.length))
  const accept = (protocol: string) => {
    const list = ports(protocol)
    return list.length === 0 ? [] : [`    ${protocol} dport { ${list.join(", ")} } accept`]
  }
  return [
    "#!/usr/sbin/nft -f",
    `# owrt: the firewall of profile ${profile}. Incoming traffic is dropped except what is accepted below.`,
    "flush ruleset",
    "",
    "table inet filter {",
    "  chain input {",
    "    type filter hook input priority filter; policy drop;",
    '    iif "lo" accept',
    "    ct state established,related accept",
    "    ct state invalid drop",
    "    meta l4proto { icmp, ipv6-icmp } accept",
    "    udp sport 67 udp dport 68 accept",
    "    udp sport 547 udp dport 546 accept",
    ...accept("tcp"),
    ...accept("udp"),
    "  }",
    "  chain forward {",
    "    type filter hook forward priority filter; policy drop;",
    "  }",
    "  chain output {",
    "    type filter hook output priority filter; policy accept;",
    "  }",
    "}",
    "",
  ].join("\n")
}

/** rpi-imager's `cloudinit` and `cloudinit-rpi` formats: the first user comes from cloud-init's user-data. */
export const isCloudInit = (initFormat: string | null): boolean =>
  initFormat?.startsWith("cloudinit") === true

const cryptHash = /^\$(?:5|6|y|gy|2[aby]|7)\$[./A-Za-z0-9$=,+-]{8,}$/

/**
 * The first user's password as a crypt(3) hash — given in the profile, or the value of its secret, which must
 * be one (clear-text passwords are refused) — or undefined when the user has none.
 */
const passwordHashOf = (
  account: ResolvedRaspios["users"][number],
  secrets: ReadonlyMap<string, string>,
  profile: string,
): Effect.Effect<string | undefined, SecretInvalidError> => {
  if (account.password_hash !== null) return Effect.succeed(account.password_hash)
  if (account.password_secret === null) return Effect.succeed(undefined)
  const value = secrets.get(account.password_secret) ?? ""
  return cryptHash.test(value)
    ? Effect.succeed(value)
    : Effect.fail(
        new SecretInvalidError({
          profile,
          secret: account.password_secret,
          reference: `users[${account.name}].password_secret`,
          reason:
            "its value is not a crypt(3) hash (make one with `openssl passwd -6`); clear-text passwords are refused",
        }),
      )
}

/** A YAML scalar, written as a JSON string (YAML reads JSON strings as they are). */
const yamlString = (value: string) => JSON.stringify(value)

/**
 * cloud-init's user-data for a profile (raspberry-pi.md §3): what the image also has offline (host name,
 * time zone, keyboard), and the first user — which cloud-init creates — with its password hash, keys and
 * sudo; sshd is enabled by a runcmd (cloud-init does not enable it on Raspberry Pi OS).
 */
export const cloudInitUserData = (params: CustomiseParams, passwordHash: string | undefined): string => {
  const r = params.raspios
  const user = r.users[0]
  const lines = [
    "#cloud-config",
    `# owrt: profile ${params.profile}, revision ${params.revision.slice(0, 12)}`,
  ]
  if (r.hostname !== null) lines.push(`hostname: ${yamlString(r.hostname)}`, "manage_etc_hosts: true")
  if (r.timezone !== null) lines.push(`timezone: ${yamlString(r.timezone)}`)
  if (r.keyboard !== null) lines.push("keyboard:", "  model: pc105", `  layout: ${yamlString(r.keyboard)}`)
  if (user !== undefined) {
    lines.push("user:", `  name: ${yamlString(user.name)}`)
    if (passwordHash !== undefined)
      lines.push("  lock_passwd: false", `  passwd: ${yamlString(passwordHash)}`)
    else lines.push("  lock_passwd: true")
    if (user.ssh_authorized_keys.length > 0)
      lines.push("  ssh_authorized_keys:", ...user.ssh_authorized_keys.map((k) => `    - ${yamlString(k)}`))
    if (user.sudo) lines.push(`  sudo: ${yamlString("ALL=(ALL) NOPASSWD:ALL")}`)
  }
  lines.push(`ssh_pwauth: ${r.ssh.password_authentication}`)
  if (r.ssh.enabled) lines.push("runcmd:", "  - [systemctl, enable, --now, ssh]")
  return `${lines.join("\n")}\n`
}
