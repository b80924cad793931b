import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import {
  BuildFailedError,
  DeviceProfileUnknownError,
  ImageMissingError,
  ImageTooBigError,
  InternalError,
  PackageSelectionError,
} from "../errors.js"
import { copyStagedTree } from "../overlay/filesTree.js"
import { manifestHashPlaceholder } from "../profile/profileSchema.js"
import { redactSecrets } from "../profile/secrets.js"
import { nodeKey } from "../store/nodeKey.js"
import type { TreeFile } from "../store/treeDigest.js"
import type { BuilderInfo } from "./builderInfo.js"
import { makeBuilderInstance, runMake } from "./builderInstance.js"
import { type CustomRepositories, writeCustomRepositories } from "./customRepositories.js"
import { suggestDevices } from "./deviceSuggestion.js"
import { readPackageIndexSync, suggestPackage } from "./packageIndex.js"
import { manifestHash } from "./packageManifest.js"
import { parsePackageProblems, withFixes } from "./packageProblems.js"
import { readInstalledPackages, removalsFile, removalsWithoutEffect } from "./removals.js"

/*
 * make-image: `make manifest` first (package problems fail in a second, with a typed error naming the
 * packages), then `make image` with a fresh BIN_DIR, in a private instance of the builder. The output is
 * BIN_DIR and the build log. An image the Image Builder deleted as too big fails the node, so a broken
 * output is never stored.
 */

export const makeImageSchema = 1

export interface MakeImageParams {
  readonly builderKey: string
  readonly overlayKey: string
  readonly release: string
  readonly target: string
  /** Canonical device profile id (aliases resolved). */
  readonly device: string
  readonly packages: ReadonlyArray<string>
  readonly disabledServices: ReadonlyArray<string>
  readonly rootfsSize: number | null
  /** ROOTFS_FILESYSTEM; absent when the profile does not set it (keys of existing profiles stay as they were). */
  readonly filesystem?: string | undefined
  /** EXTRA_IMAGE_NAME, `{manifest_hash}` replaced at build time; absent when the profile does not set it. */
  readonly imageName?: string | undefined
  /** Package feeds added to the builder's, and their keys; absent when the profile has none. */
  readonly repositories?: CustomRepositories | undefined
  /** The build marker names these, so they are part of what the image contains. */
  readonly profile: string
  readonly revision: string
}

/** Key of a package selection check: what `make manifest` depends on. */
export const packageSelectionKey = (params: MakeImageParams) =>
  nodeKey("make-image", makeImageSchema, {
    check: "manifest",
    builderKey: params.builderKey,
    device: params.device,
    packages: params.packages,
    // Other feeds offer other packages: a selection checked with them says nothing about one without.
    ...(params.repositories === undefined ? {} : { repositories: params.repositories }),
  })

/** Where the build marker goes in the image: traceable from a running device or a flashed card. */
export const buildMarkerPath = "etc/owrt-build"

export const buildMarker = (params: MakeImageParams, key: string): string =>
  `${JSON.stringify({ owrt: 1, profile: params.profile, revision: params.revision, key })}\n`

const lines = (text: string) => text.split("\n").map((l) => l.replace(/\r$/, ""))

export const parseTooBig = (output: string): ReadonlyArray<{ name: string; size: number; limit: number }> =>
  lines(output).flatMap((line) => {
    const match = /WARNING: Image file (\S+) is too big: (\d+) > (\d+)/.exec(line)
    return match?.[1]
      ? [{ name: match[1].replace(/^.*\//, ""), size: Number(match[2]), limit: Number(match[3]) }]
      : []
  })

const ProfilesJson = Schema.Struct({
  profiles: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      images: Schema.Array(
        Schema.Struct({ name: Schema.String, type: Schema.String, sha256: Schema.String }),
      ),
    }),
  }),
})

/** What opkg says when it leaves a feed out: the feed's packages are then unknown. */
export const feedsLeftOut = (output: string, customFeeds = true): ReadonlyArray<string> => [
  ...new Set(
    lines(output).flatMap((line) => {
      if (/Signature check failed/.test(line))
        return [
          `a feed's signature did not verify with the builder's keys${customFeeds ? " (is its key in repository_keys?)" : ""}`,
        ]
      const download = /Failed to download (\S+)/.exec(line)?.[1]?.replace(/,$/, "")
      return download === undefined ? [] : [`could not download ${download}`]
    }),
  ),
]

const tail = (text: string, count = 25) => lines(text.trimEnd()).slice(-count).join("\n")

export interface MakeImageInputs {
  readonly params: MakeImageParams
  readonly key: string
  readonly builderPath: string
  readonly overlayPath: string
  /** The staged overlay's listing as recorded when it was stored: the modes its files were staged with. */
  readonly overlayListing: ReadonlyArray<TreeFile>
  readonly timeoutSeconds: number
  /** The caller's environment variables make sees too (the `makeEnv` setting). */
  readonly makeEnv: ReadonlyArray<string>
  readonly secrets: ReadonlyMap<string, string>
  /** The builder's `make info`: device profiles for "did you mean" when make does not know the device. */
  readonly builderInfo: BuilderInfo
  /** Where the log is kept when the build fails (the work directory goes away). */
  readonly failureLog?: string | undefined
  /** The build record that keeps that log (`owrt builds log <id>`), named by package errors. */
  readonly buildId?: number | undefined
  /** This builder/device/package selection passed `make manifest` before. */
  readonly manifestChecked?: boolean | undefined
  readonly onManifestPassed?: ((output: string) => Effect.Effect<void>) | undefined
  readonly onOutput?: (text: string) => void
}

/** Runs make-image into `output` (bin/ and build.log), using `work` for the instance and FILES. */
export const runMakeImage = (inputs: MakeImageInputs, output: string, work: string) =>
  Effect.gen(function* () {
    const { params } = inputs
    const files = join(work, "files")
    yield* Effect.try({
      try: () => {
        copyStagedTree(inputs.overlayPath, inputs.overlayListing, files)
        mkdirSync(join(files, "etc"), { recursive: true })
        rmSync(join(files, buildMarkerPath), { force: true })
        writeFileSync(join(files, buildMarkerPath), buildMarker(params, inputs.key), { mode: 0o644 })
      },
      catch: (cause) => new InternalError({ cause }),
    })
    const instance = yield* makeBuilderInstance(inputs.builderPath, work, inputs.makeEnv)
    const repositories = params.repositories
    const { keysLeftOut } =
      repositories === undefined
        ? { keysLeftOut: [] }
        : yield* Effect.try({
            try: () =>
              writeCustomRepositories(inputs.builderPath, instance.written, repositories, inputs.secrets),
            catch: (cause) => new InternalError({ cause }),
          })
    const binDir = join(output, "bin")
    let log = ""
    const record = (text: string) => {
      log += text
      inputs.onOutput?.(text)
    }
    for (const name of keysLeftOut) {
      record(`owrt: repository key ${name} left out: the Image Builder ships another key with that id\n`)
    }
    const writeLog = (failed = false) =>
      Effect.try({
        try: () => {
          const text = redactSecrets(log, inputs.secrets)
          writeFileSync(join(output, "build.log"), text)
          if (failed && inputs.failureLog) {
            mkdirSync(join(inputs.failureLog, ".."), { recursive: true })
            writeFileSync(inputs.failureLog, text)
          }
        },
        catch: (cause) => new InternalError({ cause }),
      })
    const packages = params.packages.join(" ")
    const common = [`PROFILE=${params.device}`, `PACKAGES=${packages}`]

    const check = (step: string, result: { exit: number | null; output: string; timedOut: boolean }) =>
      Effect.gen(function* () {
        if (result.exit === 0 && !result.timedOut) return
        yield* writeLog(true)
        if (/Profile ".*" does not exist!/.test(result.output)) {
          return yield* new DeviceProfileUnknownError({
            profile: params.profile,
            device: params.device,
            builder: `${params.release} ${params.target}`,
            suggestions: suggestDevices(inputs.builderInfo, params.device),
          })
        }
        const problems = result.timedOut ? [] : parsePackageProblems(result.output)
        if (problems.length > 0) {
          // "Did you mean" from the packages this builder can install (its feeds, and the lists of remote
          // feeds its package manager just downloaded into the instance).
          const index = problems.some((p) => p.kind === "unknown")
            ? yield* Effect.try({
                try: () => readPackageIndexSync(inputs.builderPath, [instance.written]),
                catch: (cause) => new InternalError({ cause }),
              })
            : undefined
          return yield* new PackageSelectionError({
            profile: params.profile,
            problems: withFixes(problems, params.packages, (name) =>
              index === undefined ? undefined : suggestPackage(index, name),
            ),
            detail: redactSecrets(tail(result.output, 5), inputs.secrets),
            buildId: inputs.buildId,
            feedsLeftOut: feedsLeftOut(
              redactSecrets(result.output, inputs.secrets),
              (params.repositories?.feeds.length ?? 0) > 0,
            ),
          })
        }
        return yield* new BuildFailedError({
          profile: params.profile,
          step,
          exit: result.exit,
          logTail: redactSecrets(tail(result.output), inputs.secrets),
          timedOut: result.timedOut,
        })
      })

    // The package check depends only on the builder, the device and the package list: a selection that
    // passed once is not checked again (a rebuild, or another profile asking for the same packages).
    // `{manifest_hash}` needs this selection's manifest, so `make manifest` runs even when it passed before.
    const needsManifest = params.imageName?.includes(manifestHashPlaceholder) ?? false
    let manifestOutput = ""
    if (!(inputs.manifestChecked ?? false) || needsManifest) {
      record(`$ make manifest ${common.join(" ")} STRIP_ABI=1\n`)
      const manifest = yield* runMake(instance, ["manifest", ...common, "STRIP_ABI=1"], {
        timeoutSeconds: inputs.timeoutSeconds,
        onOutput: record,
      })
      yield* check("make manifest", manifest)
      manifestOutput = manifest.stdout
      yield* inputs.onManifestPassed?.(manifest.output) ?? Effect.void
    } else record(`(make manifest skipped: this package selection passed before)\n`)

    const imageArgs = [
      "image",
      ...common,
      `FILES=${files}`,
      `BIN_DIR=${binDir}`,
      ...(params.disabledServices.length > 0
        ? [`DISABLED_SERVICES=${params.disabledServices.join(" ")}`]
        : []),
      ...(params.rootfsSize !== null ? [`ROOTFS_PARTSIZE=${params.rootfsSize}`] : []),
      ...(params.filesystem !== undefined ? [`ROOTFS_FILESYSTEM=${params.filesystem}`] : []),
      ...(params.imageName !== undefined
        ? [
            `EXTRA_IMAGE_NAME=${params.imageName.replaceAll(manifestHashPlaceholder, manifestHash(manifestOutput))}`,
          ]
        : []),
    ]
    record(`$ make ${imageArgs.map((a) => (a.includes(" ") ? `'${a}'` : a)).join(" ")}\n`)
    const image = yield* runMake(instance, imageArgs, {
      timeoutSeconds: inputs.timeoutSeconds,
      onOutput: record,
    })
    yield* check("make image", image)
    // A `-name` that removed nothing (another package pulled `name` back in): recorded for realize's warnings.
    yield* Effect.try({
      try: () => {
        const installed = readInstalledPackages(instance.written)
        const removals = installed === undefined ? [] : removalsWithoutEffect(params.packages, installed)
        if (removals.length > 0)
          writeFileSync(join(output, removalsFile), `${JSON.stringify(removals, null, 2)}\n`)
      },
      catch: (cause) => new InternalError({ cause }),
    })
    const tooBig = parseTooBig(image.output)
    yield* writeLog(tooBig.length > 0)
    if (tooBig.length > 0) return yield* new ImageTooBigError({ profile: params.profile, images: tooBig })

    // The Image Builder exits 0 without an image in more cases than "too big": check what it promised.
    const profilesJson = join(binDir, "profiles.json")
    if (!existsSync(profilesJson)) {
      return yield* new ImageMissingError({
        profile: params.profile,
        missing: [],
        detail: "no profiles.json in BIN_DIR",
      })
    }
    const parsed = yield* Effect.try({
      try: () => JSON.parse(readFileSync(profilesJson, "utf8")) as unknown,
      catch: (cause) => new InternalError({ cause }),
    }).pipe(
      Effect.flatMap((value) =>
        Schema.decodeUnknown(ProfilesJson)(value).pipe(
          Effect.mapError((cause) => new InternalError({ cause })),
        ),
      ),
    )
    const entry = parsed.profiles[params.device]
    if (!entry) {
      return yield* new ImageMissingError({
        profile: params.profile,
        missing: [],
        detail: `profiles.json has no entry for ${params.device}`,
      })
    }
    const present = new Set(readdirSync(binDir))
    const missing = entry.images.map((i) => i.name).filter((name) => !present.has(name))
    if (missing.length > 0) {
      return yield* new ImageMissingError({
        profile: params.profile,
        missing,
        detail: "listed in profiles.json but not in BIN_DIR",
      })
    }
  })
