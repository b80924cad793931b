import { Effect, Schema } from "effect"
import type { AppConfig } from "../config/appConfig.js"
import { AsuRequestRejectedError, type DownloadError } from "../errors.js"
import { feedNamePattern, RepositoryKey } from "../profile/profileSchema.js"
import { AsuSettingsRef, isRepositoryAllowed } from "./asuSettings.js"
import type { BuildRequest } from "./buildRequest.js"
import { branchOf } from "./packageChanges.js"
import { resolveDeviceProfile } from "./resolveDeviceProfile.js"
import { supportedBranches, supportedVersions, upstreamProfiles, upstreamTargets } from "./upstreamCatalog.js"

const isRepositoryKey = (key: string): boolean => Schema.is(RepositoryKey)(key)

const reject = (detail: string) => Effect.fail(new AsuRequestRejectedError({ detail }))

/**
 * Upstream's checks, in upstream's order, each with upstream's text (asu-api.md §4). Succeeds with the
 * request's canonical device profile.
 */
export const validateRequest = (
  request: BuildRequest,
): Effect.Effect<string, AsuRequestRejectedError | DownloadError, AppConfig> =>
  Effect.gen(function* () {
    const settings = yield* AsuSettingsRef
    if (request.defaults && !settings.allowDefaults) {
      return yield* reject("Handling `defaults` not enabled on server")
    }
    for (const [name, url] of Object.entries(request.repositories)) {
      if (!isRepositoryAllowed(url, settings.repositoryAllowList)) {
        return yield* reject(`Repository not allowed: ${url}`)
      }
      // Upstream's pattern lets `.` and `..` (and non-ASCII letters) through; the package manager names a
      // file after the feed. owrt's profile limits (64, 2048) are checked here, not when the job runs.
      if (!feedNamePattern.test(name) || name.length > 64)
        return yield* reject(`Invalid repository name: ${name}`)
      if (url.length > 2048) return yield* reject(`Invalid repository URL: longer than 2048 characters`)
    }
    for (const key of request.repository_keys) {
      if (!isRepositoryKey(key)) {
        return yield* reject(
          `Invalid repository key: ${key.slice(0, 24)}${key.length > 24 ? "…" : ""} (a usign public key or a PEM public key)`,
        )
      }
    }
    if (request.distro !== "openwrt") return yield* reject(`Unsupported distro: ${request.distro}`)
    if (!supportedBranches().includes(branchOf(request.version))) {
      return yield* reject(`Unsupported branch: ${request.version}`)
    }
    if (!(yield* supportedVersions).includes(request.version)) {
      return yield* reject(`Unsupported version: ${request.version}`)
    }
    const targets = yield* upstreamTargets(request.version)
    const profiles =
      targets?.[request.target] === undefined
        ? undefined
        : yield* upstreamProfiles(request.version, request.target)
    if (profiles === undefined) {
      return yield* reject(
        `Unsupported target: ${request.target}. The requested target was either dropped, is still being built or is not supported by the selected version. Please check the forums or try again later.`,
      )
    }
    const device = resolveDeviceProfile(profiles.profiles, request.profile)
    if (device === undefined) {
      return yield* reject(
        `Unsupported profile: ${request.profile}. The requested profile was either dropped or never existed. Please check the forums for more information.`,
      )
    }
    return device
  })
