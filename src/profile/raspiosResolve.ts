import { Effect } from "effect"
import type { ProfileInvalidError } from "../errors.js"
import type { ProfileDocument } from "./profileSchema.js"
import {
  canonicalPortRule,
  type RaspiosUser,
  type ResolvedRaspios,
  raspiosOnlyFields,
} from "./raspiosSchema.js"
import { at, fail, type Layer } from "./resolveProfile.js"

/*
 * `kind: raspios` profiles, resolved (docs/raspberry-pi.md, "Merge rules"): a profile and every parent agree
 * on the kind (a parent that says nothing takes it from the profile); the other kind's fields are refused
 * where they are written; scalars and sections field by field, later layers win; users merged by name.
 */

/** OpenWrt fields a raspios profile cannot use (the image is not made by the Image Builder). */
const openwrtOnlyFields = [
  "release",
  "target",
  "device",
  "rootfs_size",
  "disabled_services",
  "repositories",
  "repositories_mode",
  "repository_keys",
] as const

type Doc = ProfileDocument
type Mutable<T> = { -readonly [K in keyof T]: T[K] }

export const resolveRaspios = (
  layers: ReadonlyArray<Layer>,
  secrets: ReadonlyMap<string, string>,
  abstract: boolean,
): Effect.Effect<ResolvedRaspios | undefined, ProfileInvalidError> =>
  Effect.gen(function* () {
    let kind: { value: "openwrt" | "raspios"; layer: Layer } | undefined
    for (const layer of layers) {
      const value = layer.loaded.document.kind
      if (value === undefined) continue
      if (kind !== undefined && kind.value !== value) {
        return yield* fail(
          "profile_kind_mismatch",
          at(
            layer.loaded.source,
            ["kind"],
            `kind ${value} differs from kind ${kind.value} of ${kind.layer.id}`,
            "a profile extends only profiles of its own kind",
          ),
        )
      }
      kind = { value, layer }
    }
    const isRaspios = kind?.value === "raspios"
    const foreign: ReadonlyArray<keyof Doc> = isRaspios ? openwrtOnlyFields : raspiosOnlyFields
    for (const layer of layers) {
      const doc = layer.loaded.document
      for (const field of foreign) {
        if (doc[field] === undefined) continue
        return yield* fail(
          "profile_kind_mismatch",
          at(
            layer.loaded.source,
            [field],
            isRaspios
              ? `\`${field}\` is an OpenWrt setting; this profile is kind raspios`
              : `\`${field}\` is a Raspberry Pi OS setting; this profile is kind openwrt`,
            isRaspios
              ? "remove it (a Raspberry Pi OS image names its base image under base:)"
              : "set `kind: raspios` to build a Raspberry Pi OS image",
          ),
        )
      }
    }
    if (!isRaspios) return undefined

    const base: Mutable<ResolvedRaspios["base"]> = {
      os_list: null,
      os: null,
      release_date: null,
      url: null,
      sha256: null,
      extract_sha256: null,
    }
    const result = {
      hostname: null as string | null,
      timezone: null as string | null,
      locale: null as string | null,
      keyboard: null as string | null,
    }
    const users = new Map<string, { user: RaspiosUser; layer: Layer; index: number }>()
    const ssh = {
      enabled: undefined as boolean | undefined,
      password_authentication: undefined as boolean | undefined,
      port: 22,
    }
    let wifi: ResolvedRaspios["wifi"] = null
    let wifiAt: Layer | undefined
    let wireguard: ResolvedRaspios["wireguard"] = null
    let wireguardAt: Layer | undefined
    const python = new Set<string>()
    let firewall: boolean | undefined
    const firewallAllow = new Set<string>()
    let compression: ReadonlyArray<string> = ["xz"]
    for (const layer of layers) {
      const doc = layer.loaded.document
      if (doc.base !== undefined) {
        // A base named one way replaces one named the other way.
        if (doc.base.url !== undefined) Object.assign(base, { os: null, release_date: null })
        if (doc.base.os !== undefined) Object.assign(base, { url: null, sha256: null, extract_sha256: null })
        for (const [field, value] of Object.entries(doc.base))
          if (value !== undefined) Object.assign(base, { [field]: value })
      }
      for (const field of ["hostname", "timezone", "locale", "keyboard"] as const) {
        const value = doc[field]
        if (value !== undefined) result[field] = value
      }
      ;(doc.users ?? []).forEach((user, index) => {
        const before = users.get(user.name)?.user
        users.set(user.name, { user: { ...before, ...user }, layer, index })
      })
      if (doc.ssh?.enabled !== undefined) ssh.enabled = doc.ssh.enabled
      if (doc.ssh?.password_authentication !== undefined)
        ssh.password_authentication = doc.ssh.password_authentication
      if (doc.ssh?.port !== undefined) ssh.port = doc.ssh.port
      if (doc.wifi !== undefined) {
        wifi = { ...doc.wifi, hidden: doc.wifi.hidden ?? false }
        wifiAt = layer
      }
      if (doc.wireguard !== undefined) {
        wireguard = { ...doc.wireguard }
        wireguardAt = layer
      }
      if (doc.firewall !== undefined) {
        firewall = doc.firewall.enabled ?? true
        for (const rule of doc.firewall.allow ?? []) {
          const canonical = canonicalPortRule(rule)
          if (canonical !== undefined) firewallAllow.add(canonical)
        }
      }
      const onBoot = (doc.files ?? []).findIndex(
        (f) => f.path === "/boot/firmware" || f.path.startsWith("/boot/firmware/"),
      )
      if (onBoot >= 0) {
        return yield* fail(
          "profile_invalid_value",
          at(
            layer.loaded.source,
            ["files", onBoot, "path"],
            "/boot/firmware is the FAT boot partition's mount point: files are written to the root file system only",
            "write the file elsewhere, or set what it configures with the profile's own fields",
          ),
        )
      }
      for (const name of doc.python_packages ?? []) python.add(name)
      if (doc.compression !== undefined) compression = [...new Set(doc.compression)].sort()
      const removal = (doc.packages ?? []).findIndex((p) => p.startsWith("-"))
      if (removal >= 0) {
        return yield* fail(
          "profile_invalid_package",
          at(
            layer.loaded.source,
            ["packages", removal],
            "a raspios profile installs packages at first boot; removing one (-name) is not supported",
          ),
        )
      }
    }

    const self = layers[layers.length - 1] as Layer
    const missing = (path: string, message: string, hint?: string) =>
      fail("profile_missing_field", {
        file: self.loaded.source.file,
        line: 1,
        column: 1,
        path,
        message,
        hint,
      })
    if (!abstract) {
      const byList = base.os !== null
      const byUrl = base.url !== null
      if (!byList && !byUrl) {
        return yield* missing(
          "base",
          "`base` is required: name the base image (os and release_date from an OS list, or url, sha256 and extract_sha256)",
          "or mark the profile `abstract: true` if it only serves as a parent",
        )
      }
      if (byList && base.release_date === null) {
        return yield* missing(
          "base.release_date",
          "`base.release_date` is required with `base.os`: it pins the base image (the list's newest entry changes)",
        )
      }
      if (byUrl && (base.sha256 === null || base.extract_sha256 === null)) {
        return yield* missing(
          "base",
          "`base.url` needs `sha256` (of the compressed file) and `extract_sha256` (of the .img)",
        )
      }
    }

    const declared = (name: string, layer: Layer, path: ReadonlyArray<string | number>) =>
      secrets.has(name)
        ? Effect.void
        : Effect.fail(
            fail(
              "profile_secret_undefined",
              at(
                layer.loaded.source,
                path,
                `secret \`${name}\` is used but not declared`,
                `declare it under secrets:, e.g. ${name}: env:${name.toUpperCase()}`,
              ),
            ),
          )
    const resolvedUsers: Array<ResolvedRaspios["users"][number]> = []
    for (const [name, { user, layer, index }] of [...users.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (user.password_hash !== undefined && user.password_secret !== undefined) {
        return yield* fail(
          "profile_invalid_value",
          at(
            layer.loaded.source,
            ["users", index],
            `user ${name} has both password_hash and password_secret`,
            "keep one",
          ),
        )
      }
      if (user.password_secret !== undefined)
        yield* declared(user.password_secret, layer, ["users", index, "password_secret"])
      resolvedUsers.push({
        name,
        password_hash: user.password_hash ?? null,
        password_secret: user.password_secret ?? null,
        ssh_authorized_keys: [...(user.ssh_authorized_keys ?? [])],
        sudo: user.sudo ?? true,
      })
    }
    if (resolvedUsers.length > 1) {
      const last = [...users.values()].at(-1) as { layer: Layer; index: number }
      return yield* fail(
        "profile_invalid_value",
        at(
          last.layer.loaded.source,
          ["users", last.index],
          `${resolvedUsers.length} users (${resolvedUsers.map((u) => u.name).join(", ")}): Raspberry Pi OS's first-boot mechanism configures one user (uid 1000)`,
          "keep one user; add further accounts with a first_boot script",
        ),
      )
    }
    if (wifi !== null && wifiAt !== undefined)
      yield* declared(wifi.psk_secret, wifiAt, ["wifi", "psk_secret"])
    if (wireguard !== null && wireguardAt !== undefined)
      yield* declared(wireguard.config_secret, wireguardAt, ["wireguard", "config_secret"])

    const keys = resolvedUsers.some((u) => u.ssh_authorized_keys.length > 0)
    if (ssh.enabled === true) firewallAllow.add(`${ssh.port}/tcp`)
    return {
      base,
      ...result,
      users: resolvedUsers,
      ssh: {
        enabled: ssh.enabled ?? false,
        password_authentication: ssh.password_authentication ?? !keys,
        port: ssh.port,
      },
      wifi,
      wireguard,
      ...(firewall === true ? { firewall: { allow: sortRules([...firewallAllow]) } } : {}),
      python_packages: [...python].sort(),
      compression,
    } satisfies ResolvedRaspios
  })

/** Port rules by protocol, then port. */
const sortRules = (rules: ReadonlyArray<string>) => {
  const parts = (rule: string) => {
    const [ports = "", protocol = ""] = rule.split("/")
    return { protocol, first: Number(ports.split("-")[0]) }
  }
  return [...rules].sort((a, b) => {
    const x = parts(a)
    const y = parts(b)
    return x.protocol < y.protocol ? -1 : x.protocol > y.protocol ? 1 : x.first - y.first || (a < b ? -1 : 1)
  })
}

/** The secrets a raspios profile reads (besides those its files and first-boot scripts use). */
export const raspiosSecrets = (raspios: ResolvedRaspios): ReadonlyArray<string> => [
  ...raspios.users.flatMap((u) => (u.password_secret === null ? [] : [u.password_secret])),
  ...(raspios.wifi === null ? [] : [raspios.wifi.psk_secret]),
  ...(raspios.wireguard === null ? [] : [raspios.wireguard.config_secret]),
]
