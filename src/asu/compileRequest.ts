import type { BuilderInfo } from "../image/builderInfo.js"
import { manifestHashPlaceholder } from "../profile/profileSchema.js"
import { sha256Hex } from "../text/digest.js"
import { type BuildRequest, requestedPackages } from "./buildRequest.js"
import { applyPackageChanges } from "./packageChanges.js"

/*
 * An ASU request becomes an owrt profile (asu-api.md §7): release, target and the canonical device;
 * packages after the package changes table, and with `diff_packages` every default not requested removed
 * with `-name`; `defaults` as the first-boot script /etc/uci-defaults/99-asu-defaults; `rootfs_size_mb`
 * as rootfs_size; `filesystem`; `image_name: "{manifest_hash}"`, so the images are named as upstream names them;
 * `repositories` (allowed ones only), `repositories_mode` and `repository_keys` as the profile's feeds. The
 * profile is realized like any other, so its keys are a profile's keys:
 * the same document as a working-tree profile of the same id is the same build.
 */

/** The file name the request's `defaults` gets under /etc/uci-defaults, as upstream names it. */
export const defaultsScriptName = "99-asu-defaults"

export interface CompiledRequest {
  /** `asu-` and 16 hex digits of the document's SHA-256: the same request is always the same profile. */
  readonly id: string
  /** The profile document (JSON, which is YAML), as `profiles/<id>.yaml` would hold it. */
  readonly text: string
  /** The packages as `make image` is asked for them (upstream's `build_cmd_packages`), in request order. */
  readonly buildPackages: ReadonlyArray<string>
}

/** Upstream's `diff_packages`: `-name` for each default not requested (sorted), then the requested ones. */
export const diffPackages = (requested: ReadonlyArray<string>, defaults: ReadonlySet<string>) => {
  const wanted = new Set(requested)
  const removals = [...defaults]
    .filter((name) => !wanted.has(name))
    .map((name) => `-${name}`.replace(/^--/, "-"))
    .sort()
  return [...new Set(removals), ...requested]
}

export const compileRequest = (
  request: BuildRequest,
  device: string,
  info: Pick<BuilderInfo, "defaultPackages" | "profiles">,
): CompiledRequest => {
  const changed = applyPackageChanges({
    version: request.version,
    target: request.target,
    device,
    packages: requestedPackages(request).map((p) => p.replace(/^\+/, "")),
  })
  const devicePackages = info.profiles.find((p) => p.id === device)?.packages ?? []
  const buildPackages = request.diff_packages
    ? diffPackages(changed, new Set([...info.defaultPackages, ...devicePackages]))
    : changed
  const document = {
    release: request.version,
    target: request.target,
    device,
    ...(buildPackages.length > 0 ? { packages: buildPackages } : {}),
    ...(request.defaults ? { first_boot: [{ name: defaultsScriptName, script: request.defaults }] } : {}),
    ...(request.rootfs_size_mb === null ? {} : { rootfs_size: request.rootfs_size_mb }),
    ...(request.filesystem === null ? {} : { filesystem: request.filesystem }),
    // Upstream names ASU images with the package hash (EXTRA_IMAGE_NAME).
    image_name: manifestHashPlaceholder,
    // The request's feeds (already checked against the allow-list), in the order sent, and their keys.
    ...(Object.keys(request.repositories).length === 0 && request.repository_keys.length === 0
      ? {}
      : {
          repositories: Object.entries(request.repositories).map(([name, url]) => ({ name, url })),
          // Keys without feeds replace nothing: the builder keeps its own feeds (upstream rewrites the file
          // only for a request with repositories).
          repositories_mode:
            Object.keys(request.repositories).length === 0 ? "append" : request.repositories_mode,
          repository_keys: request.repository_keys,
        }),
  }
  const text = `${JSON.stringify(document, null, 2)}\n`
  return { id: `asu-${sha256Hex(text).slice(0, 16)}`, text, buildPackages }
}
