import { Context } from "effect"
import type { RequestLimits } from "./buildRequest.js"

/**
 * The ASU server's settings (asu-api.md §9), with upstream's defaults. `owrt serve` provides its own
 * (from its `--asu-*` options) in each request's context; anything else sees these defaults.
 */
export interface AsuSettings extends RequestLimits {
  /** Accept `defaults` (a first-boot script): off by default, as upstream. */
  readonly allowDefaults: boolean
  /** URL prefixes (scheme, host, path) a request's `repositories` may use; empty refuses every one. */
  readonly repositoryAllowList: ReadonlyArray<string>
  /** Waiting jobs beyond this many: 529. */
  readonly maxPendingJobs: number
  /** Builds run at once. */
  readonly concurrency: number
  /** Seconds a build may run. */
  readonly jobTimeout: number
  /** Seconds a finished job is kept: with `packages_versions`, without, with `defaults`; a failed one. */
  readonly buildTtl: number
  readonly buildTtlUnversioned: number
  readonly buildDefaultsTtl: number
  readonly buildFailureTtl: number
  /** Shown in overview.json's `server.contact`. */
  readonly contact: string
}

export const defaultAsuSettings: AsuSettings = {
  maxCustomRootfsSizeMb: 1024,
  maxDefaultsLength: 20480,
  allowDefaults: false,
  repositoryAllowList: [],
  maxPendingJobs: 200,
  concurrency: 1,
  jobTimeout: 600,
  buildTtl: 7 * 24 * 3600,
  buildTtlUnversioned: 24 * 3600,
  buildDefaultsTtl: 30 * 60,
  buildFailureTtl: 3600,
  contact: "",
}

export class AsuSettingsRef extends Context.Reference<AsuSettingsRef>()("owrt/AsuSettings", {
  defaultValue: (): AsuSettings => defaultAsuSettings,
}) {}

/** Whether `url` lies under one of the allowed prefixes: same scheme and host, path below the prefix's. */
export const isRepositoryAllowed = (url: string, allowList: ReadonlyArray<string>): boolean => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return false
  }
  // The URL goes into the builder's repositories file as written, and the package manager's downloader
  // (wget) parses it its own way: only a URL already in normal form, without user info, is compared, so
  // that `https://allowed\@elsewhere/`, `..` segments or case tricks cannot reach another host or path.
  if (parsed.href !== url || parsed.username !== "" || parsed.password !== "" || url.includes("\\"))
    return false
  return allowList.some((entry) => {
    let allowed: URL
    try {
      allowed = new URL(entry)
    } catch {
      return false
    }
    const prefix = allowed.pathname.endsWith("/") ? allowed.pathname : `${allowed.pathname}/`
    return (
      parsed.protocol === allowed.protocol &&
      parsed.host === allowed.host &&
      (parsed.pathname === allowed.pathname || parsed.pathname.startsWith(prefix))
    )
  })
}
