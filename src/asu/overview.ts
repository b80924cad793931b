import { Effect } from "effect"
import { AppConfig } from "../config/appConfig.js"
import type { DownloadError } from "../errors.js"
import { owrtVersion } from "../version.js"
import { AsuSettingsRef } from "./asuSettings.js"
import { branchOf, changesForBranch, packageChangesData } from "./packageChanges.js"
import { supportedVersions, upstreamTargets, upstreamVersions } from "./upstreamCatalog.js"

/*
 * `/json/v1/overview.json` (asu-api.md §1): the branches this server builds with their versions, targets
 * and package changes, where upstream is, and the server's limits. owut reads it before every upgrade.
 */

/** `[upcoming?, stable, oldstable]`, as `/json/v1/latest.json` lists them. */
export const latestVersions = Effect.map(upstreamVersions, (versions) =>
  versions === undefined
    ? []
    : [
        ...(versions.upcoming_version ? [versions.upcoming_version] : []),
        versions.stable_version,
        versions.oldstable_version,
      ],
)

export const overview: Effect.Effect<Record<string, unknown>, DownloadError, AppConfig> = Effect.gen(
  function* () {
    const settings = yield* AsuSettingsRef
    const config = yield* AppConfig
    const versions = yield* supportedVersions
    const published = (yield* upstreamVersions)?.versions_list ?? []
    const branches: Record<string, unknown> = {}
    for (const [name, branch] of Object.entries(packageChangesData.branches)) {
      const snapshot = name === "SNAPSHOT"
      const own = versions.filter((v) => branchOf(v) === name)
      const newest = snapshot ? "SNAPSHOT" : published.find((v) => branchOf(v) === name)
      const targets = newest === undefined ? undefined : yield* upstreamTargets(newest)
      branches[name] = {
        name,
        path: snapshot ? "snapshots" : "releases/{version}",
        enabled: targets !== undefined,
        snapshot,
        branch_off_rev: branch.branch_off_rev,
        package_changes: changesForBranch(name),
        versions: own,
        targets: targets ?? {},
      }
    }
    return {
      latest: yield* latestVersions,
      branches,
      upstream_url: config.upstream,
      server: {
        version: `owrt ${owrtVersion}`,
        contact: settings.contact,
        allow_defaults: settings.allowDefaults,
        repository_allow_list: settings.repositoryAllowList,
        max_custom_rootfs_size_mb: settings.maxCustomRootfsSizeMb,
        max_defaults_length: settings.maxDefaultsLength,
      },
    }
  },
)
