import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { BuildRecords } from "../db/buildRecords.js"
import { StorePathRecords } from "../db/storePathRecords.js"
import { InternalError, isOwrtError, type OwrtError } from "../errors.js"
import { failureLogPath } from "../graph/kinds/makeImageNode.js"
import { Realizer } from "../graph/realizer.js"
import { canonicalDevice } from "../image/builderInfo.js"
import { packagesHash } from "../image/packageManifest.js"
import { ProfileRepository } from "../profile/profileRepository.js"
import { storePathName } from "../store/nodeStore.js"
import { type BuildRequest, buildRequestSchema } from "./buildRequest.js"
import { compileRequest, defaultsScriptName } from "./compileRequest.js"

/*
 * One ASU build (asu-api.md §7), through owrt's own pipeline: the Image Builder is fetched and verified
 * (`container_setup`), its revision checked against `version_code` (`validate_revision`), the request
 * compiled to a profile (`validate_manifest`) and realized (`building_image`). The finished body is made
 * from the build's own profiles.json, as upstream makes it (§6).
 */

export type BuildStage =
  | "init"
  | "container_setup"
  | "validate_revision"
  | "validate_manifest"
  | "building_image"

/** Why a build failed, as ASU clients show it (`detail`), and the log lines behind it. */
export class AsuBuildFailure {
  readonly _tag = "AsuBuildFailure"
  constructor(
    readonly detail: string,
    readonly stderr: string,
  ) {}
}

/** The stored request, read back (large limits: it was checked against the server's when it came in). */
export const decodeStoredRequest = Schema.decodeUnknown(
  Schema.parseJson(
    buildRequestSchema({
      maxCustomRootfsSizeMb: Number.MAX_SAFE_INTEGER,
      maxDefaultsLength: Number.MAX_SAFE_INTEGER,
    }),
  ),
)

/** An owrt error as upstream words the same failure. */
export const failureDetail = (error: OwrtError): string => {
  switch (error.code) {
    case "package_selection_invalid":
      return `Error: Impossible package selection: ${error.message.replace(/^profile \S+: impossible package selection: /, "")}`
    case "image_too_big":
      return "Error: Selected packages exceed device storage"
    default:
      return `Error: ${error.message}`
  }
}

const ProfilesJson = Schema.Struct({
  profiles: Schema.Record({
    key: Schema.String,
    value: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  }),
})

const topLevelFields = [
  "arch_packages",
  "default_packages",
  "linux_kernel",
  "metadata_version",
  "source_date_epoch",
  "target",
  "version_code",
  "version_number",
] as const
const profileFields = ["device_packages", "image_prefix", "images", "supported_devices", "titles"] as const

export interface FinishedBuild {
  /** The finished body's build fields (asu-api.md §6), without the job fields. */
  readonly body: Record<string, unknown>
  readonly stdout: string
}

/** The log of the profile's latest build when it failed in make (kept under the store's logs/). */
const failedBuildLog = (profile: string) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const [row] = yield* BuildRecords.list({ profile, limit: 1 })
    if (row?.status !== "failed") return undefined
    const path = failureLogPath(config.store, row.id)
    return existsSync(path) ? readFileSync(path, "utf8") : undefined
  }).pipe(Effect.orElseSucceed(() => undefined))

/** The tail of a build log: enough to see what happened, bounded for the database and the response. */
const tail = (text: string, max = 64 * 1024) => (text.length > max ? text.slice(text.length - max) : text)

export const runBuild = (
  request: BuildRequest,
  binDir: string,
  stage: (stage: BuildStage) => Effect.Effect<void>,
) =>
  Effect.gen(function* () {
    const realizer = yield* Realizer
    const profiles = yield* ProfileRepository
    const config = yield* AppConfig
    yield* stage("container_setup")
    const { info } = yield* realizer.describeBuilder({ release: request.version, target: request.target })
    yield* stage("validate_revision")
    if (request.version_code !== "" && info.revision !== request.version_code) {
      return yield* Effect.fail(
        new AsuBuildFailure(
          `Error: Received incorrect version ${info.revision ?? "unknown"} (requested ${request.version_code})`,
          "",
        ),
      )
    }
    const onlyGeneric = info.profiles.length === 1 && info.profiles[0]?.id === "generic"
    const device = canonicalDevice(info, request.profile) ?? (onlyGeneric ? "generic" : undefined)
    if (device === undefined) {
      return yield* Effect.fail(
        new AsuBuildFailure(
          `Error: Unsupported profile: ${request.profile}. The requested profile was either dropped or never existed. Please check the forums for more information.`,
          "",
        ),
      )
    }
    yield* stage("validate_manifest")
    const compiled = compileRequest(request, device, info)
    const entry = yield* profiles.resolveText(compiled.id, compiled.text, "asu")
    yield* stage("building_image")
    const { results } = yield* realizer.realize({ specs: [entry], requestedBy: "api" }).pipe(
      Effect.catchAll((error) =>
        Effect.flatMap(failedBuildLog(compiled.id), (log) =>
          Effect.fail(
            new AsuBuildFailure(
              failureDetail(error),
              // As upstream, the Image Builder's output; then owrt's own account of what failed.
              log === undefined
                ? error.message
                : `${tail(log)}${log.endsWith("\n") ? "" : "\n"}${error.message}`,
            ),
          ),
        ),
      ),
    )
    const [result] = results
    if (!result) return yield* new InternalError({ cause: `ASU build ${binDir} returned no result` })

    const manifest = Object.fromEntries(result.manifest.packages.map((p) => [p.name, p.version]))
    for (const [name, version] of Object.entries(request.packages_versions ?? {})) {
      const built = manifest[name]
      if (built === undefined) {
        return yield* Effect.fail(
          new AsuBuildFailure(`Error: Impossible package selection: ${name} not in manifest`, ""),
        )
      }
      if (built !== version) {
        return yield* Effect.fail(
          new AsuBuildFailure(
            `Error: Impossible package selection: ${name} version not as requested: ${version} vs. ${built}`,
            "",
          ),
        )
      }
    }

    const imageRow = yield* StorePathRecords.find(result.manifest.keys.makeImage)
    if (!imageRow)
      return yield* new InternalError({ cause: `no store row for ${result.manifest.keys.makeImage}` })
    const imagePath = join(config.store, storePathName(imageRow.key, imageRow.name))
    const read = (file: string) =>
      Effect.try({
        try: () => readFileSync(join(imagePath, file), "utf8"),
        catch: (cause) => new InternalError({ cause }),
      })
    const profilesJson = yield* read("bin/profiles.json").pipe(
      Effect.flatMap((text) => Schema.decodeUnknown(Schema.parseJson(ProfilesJson))(text)),
      Effect.mapError((cause) => new InternalError({ cause })),
    )
    const top = JSON.parse(yield* read("bin/profiles.json")) as Record<string, unknown>
    const profile = profilesJson.profiles[device] ?? {}
    const body: Record<string, unknown> = {}
    for (const field of topLevelFields) if (top[field] !== undefined) body[field] = top[field]
    for (const field of profileFields) if (profile[field] !== undefined) body[field] = profile[field]
    const log = yield* read("build.log").pipe(Effect.orElseSucceed(() => ""))
    // The name make image was given (make-image logs its command line), else the hash of the image's manifest.
    const extraImageName =
      /^\$ make image .*\bEXTRA_IMAGE_NAME=(\S+)/m.exec(log)?.[1] ??
      packagesHash(result.manifest.packages.map((p) => p.name))
    const epoch =
      typeof top.source_date_epoch === "number" ? top.source_date_epoch : Number(top.source_date_epoch)
    const files = `/etc/uci-defaults/${defaultsScriptName}`
    Object.assign(body, {
      manifest,
      id: device,
      bin_dir: binDir,
      build_cmd_packages: compiled.buildPackages,
      build_cmd: [
        "make",
        "image",
        `PROFILE=${device}`,
        `PACKAGES=${compiled.buildPackages.join(" ")}`,
        `EXTRA_IMAGE_NAME=${extraImageName}`,
        `FILES=${request.defaults ? files : ""}`,
        `BIN_DIR=/store/${binDir}`,
        ...(request.rootfs_size_mb === null ? [] : [`ROOTFS_PARTSIZE=${request.rootfs_size_mb}`]),
        ...(request.filesystem === null ? [] : [`ROOTFS_FILESYSTEM=${request.filesystem}`]),
      ],
      build_at: Number.isFinite(epoch) ? new Date(epoch * 1000).toISOString() : null,
      detail: "done",
      // owrt's own: which profile revision and store key this is (the same as a profile with this document).
      owrt: {
        profile: result.profile,
        revision: result.revision,
        key: result.key,
        makeImageKey: result.manifest.keys.makeImage,
        cacheHit: result.cacheHit,
        buildId: result.buildId,
      },
    })
    return { body, stdout: tail(log) } satisfies FinishedBuild
  }).pipe(
    Effect.catchAll((error) =>
      error instanceof AsuBuildFailure
        ? Effect.fail(error)
        : Effect.fail(
            new AsuBuildFailure(
              isOwrtError(error) ? failureDetail(error) : `Error: ${String(error)}`,
              isOwrtError(error) ? error.message : String(error),
            ),
          ),
    ),
  )
