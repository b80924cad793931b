import { Schema } from "effect"

/*
 * `make info` output (reference §3):
 *   Current Target: "ath79/generic"
 *   Current Architecture: "mips"
 *   Current Revision: "r28739-d9340319c6"
 *   Default Packages: base-files busybox ...
 *   Available Profiles:
 *
 *   tplink_archer-c7-v5:
 *       TP-Link Archer C7 v5
 *       Packages: kmod-ath10k-ct ...
 *       hasImageMetadata: 1
 *       SupportedDevices: tplink,archer-c7-v5
 */

export const DeviceProfileInfoSchema = Schema.Struct({
  id: Schema.String,
  name: Schema.NullOr(Schema.String),
  packages: Schema.Array(Schema.String),
  supportedDevices: Schema.Array(Schema.String),
  hasImageMetadata: Schema.Boolean,
})
export type DeviceProfileInfo = typeof DeviceProfileInfoSchema.Type

/** A builder's parsed `make info`, as kept in the database (`builder_info`). */
export const BuilderInfoSchema = Schema.Struct({
  target: Schema.NullOr(Schema.String),
  architecture: Schema.NullOr(Schema.String),
  revision: Schema.NullOr(Schema.String),
  defaultPackages: Schema.Array(Schema.String),
  profiles: Schema.Array(DeviceProfileInfoSchema),
})
export type BuilderInfo = typeof BuilderInfoSchema.Type

const quoted = (line: string, label: string) => {
  const match = new RegExp(`^${label}: "(.*)"$`).exec(line)
  return match ? (match[1] ?? null) : undefined
}

export const parseMakeInfo = (text: string): BuilderInfo => {
  let target: string | null = null
  let architecture: string | null = null
  let revision: string | null = null
  const defaultPackages: Array<string> = []
  const profiles: Array<DeviceProfileInfo> = []
  let current:
    | { id: string; name: string | null; packages: Array<string>; supported: Array<string>; meta: boolean }
    | undefined
  let inDefaults = false
  const flush = () => {
    if (current) {
      profiles.push({
        id: current.id,
        name: current.name,
        packages: current.packages,
        supportedDevices: current.supported,
        hasImageMetadata: current.meta,
      })
    }
    current = undefined
  }
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "")
    const t = quoted(line, "Current Target")
    if (t !== undefined) {
      target = t
      continue
    }
    const a = quoted(line, "Current Architecture")
    if (a !== undefined) {
      architecture = a
      continue
    }
    const r = quoted(line, "Current Revision")
    if (r !== undefined) {
      revision = r
      continue
    }
    if (line.startsWith("Default Packages:")) {
      inDefaults = true
      defaultPackages.push(...line.slice("Default Packages:".length).trim().split(/\s+/).filter(Boolean))
      continue
    }
    if (line.startsWith("Available Profiles:")) {
      inDefaults = false
      continue
    }
    const header = /^([^\s:][^:]*):$/.exec(line)
    if (header?.[1]) {
      inDefaults = false
      flush()
      current = { id: header[1], name: null, packages: [], supported: [], meta: false }
      continue
    }
    const indented = /^\s+(.*)$/.exec(line)
    if (indented?.[1] !== undefined) {
      const body = indented[1].trimEnd()
      if (inDefaults && !current) {
        defaultPackages.push(...body.split(/\s+/).filter(Boolean))
        continue
      }
      if (!current) continue
      if (body.startsWith("Packages:")) current.packages = body.slice(9).trim().split(/\s+/).filter(Boolean)
      else if (body.startsWith("SupportedDevices:"))
        current.supported = body.slice(17).trim().split(/\s+/).filter(Boolean)
      else if (body.startsWith("hasImageMetadata:")) current.meta = body.slice(17).trim() === "1"
      else if (current.name === null && current.packages.length === 0) current.name = body.trim()
    }
  }
  flush()
  return { target, architecture, revision, defaultPackages, profiles }
}

/**
 * The canonical device profile id for what a profile wrote: the id itself, with or without `DEVICE_`, or
 * a `supported_devices` name (also with `,` written as `_`), as the Image Builder and ASU accept them.
 */
export const canonicalDevice = (info: BuilderInfo, requested: string): string | undefined => {
  const wanted = requested.replace(/^DEVICE_/, "")
  const ids = new Set(info.profiles.map((p) => p.id))
  if (ids.has(wanted)) return wanted
  for (const profile of info.profiles) {
    for (const alias of profile.supportedDevices) {
      if (alias === wanted || alias.replace(/,/g, "_") === wanted) return profile.id
    }
  }
  return undefined
}
