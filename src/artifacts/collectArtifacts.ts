import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { ArtifactVerificationError, describeCause, InternalError } from "../errors.js"
import { parsePackageManifest } from "../image/packageManifest.js"
import { RemovalWithoutEffectSchema, removalsFile } from "../image/removals.js"
import { ResolvedRepositories } from "../profile/profileSchema.js"
import { sha256File } from "../text/digest.js"

/*
 * collect-artifacts: checks make-image's output against its own sha256sums and profiles.json, classifies
 * every image, parses the package manifest, keeps the SBOM, and writes the owrt manifest — the record an
 * auditor reads. Images are hard links to make-image's files (same store, no copy).
 */

export const collectArtifactsSchema = 1

export const artifactsManifestName = "owrt-manifest.json"

export const ArtifactRecordSchema = Schema.Struct({
  name: Schema.String,
  type: Schema.String,
  filesystem: Schema.NullOr(Schema.String),
  sha256: Schema.String,
  size: Schema.Number,
})
export type Artifact = typeof ArtifactRecordSchema.Type

/** `owrt-manifest.json`: what an auditor reads, and what owrt reads back from a stored artifact set. */
export const ArtifactsManifestSchema = Schema.Struct({
  owrt: Schema.Literal(1),
  profile: Schema.String,
  revision: Schema.String,
  inputs: Schema.Struct({
    release: Schema.String,
    target: Schema.String,
    device: Schema.String,
    packages: Schema.Array(Schema.String),
    disabledServices: Schema.Array(Schema.String),
    rootfsSize: Schema.NullOr(Schema.Number),
    /** The package feeds (and keys) added to the builder's; absent when the profile has none. */
    repositories: Schema.optional(ResolvedRepositories),
  }),
  builder: Schema.Struct({
    key: Schema.String,
    archive: Schema.String,
    archiveSha256: Schema.String,
    signedBy: Schema.String,
  }),
  keys: Schema.Struct({
    fetchBuilder: Schema.String,
    stageOverlay: Schema.String,
    makeImage: Schema.String,
    collectArtifacts: Schema.String,
  }),
  images: Schema.Array(ArtifactRecordSchema),
  packages: Schema.Array(Schema.Struct({ name: Schema.String, version: Schema.String })),
  sbom: Schema.NullOr(Schema.String),
  /** `-name` entries of packages that removed nothing (make-image's findings); absent when there are none. */
  removalsWithoutEffect: Schema.optional(Schema.Array(RemovalWithoutEffectSchema)),
  /**
   * Raspberry Pi OS profiles (kind raspios) only: the base image and the SHA-256 of the image before
   * compression. Their `builder` names the base image (its key, file name and download SHA-256, signedBy
   * empty), `inputs.release` its release date and `inputs.target` "raspios".
   */
  raspios: Schema.optional(
    Schema.Struct({
      base: Schema.Struct({
        url: Schema.String,
        extractSha256: Schema.String,
        releaseDate: Schema.NullOr(Schema.String),
      }),
      imageSha256: Schema.optional(Schema.String),
      /** The block map of the image (bmaptool format 2.0), next to the images. */
      bmap: Schema.optional(Schema.Struct({ name: Schema.String, sha256: Schema.String })),
    }),
  ),
})
export type ArtifactsManifest = typeof ArtifactsManifestSchema.Type

const ProfilesJson = Schema.Struct({
  profiles: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      images: Schema.Array(
        Schema.Struct({
          name: Schema.String,
          type: Schema.String,
          filesystem: Schema.optional(Schema.String),
          sha256: Schema.String,
        }),
      ),
    }),
  }),
})

/** Image type from a file name, for images profiles.json does not list. */
export const imageTypeFromName = (name: string): string => {
  const match =
    /-(sysupgrade|factory|combined-efi|combined|sdcard|rootfs|initramfs-kernel|kernel|ext4-sdcard|squashfs-sdcard)\.[a-z0-9.]+$/.exec(
      name,
    )
  return match?.[1] ?? "other"
}

const isImageFile = (name: string) =>
  name.startsWith("openwrt-") &&
  !name.endsWith(".manifest") &&
  !name.endsWith(".bom.cdx.json") &&
  !name.endsWith(".buildinfo") &&
  name !== "profiles.json" &&
  name !== "sha256sums"

export { parsePackageManifest } from "../image/packageManifest.js"

export const runCollectArtifacts = (options: {
  readonly imagePath: string
  readonly output: string
  readonly manifest: Omit<ArtifactsManifest, "images" | "packages" | "sbom">
}): Effect.Effect<ArtifactsManifest, ArtifactVerificationError | InternalError> =>
  Effect.gen(function* () {
    const { manifest } = options
    const bin = join(options.imagePath, "bin")
    const fail = (detail: string) => new ArtifactVerificationError({ profile: manifest.profile, detail })
    const names = yield* Effect.try({
      try: () => readdirSync(bin).sort(),
      catch: (cause) => new InternalError({ cause }),
    })

    // sha256sums: every file it lists must exist and match.
    const sums = new Map<string, string>()
    if (names.includes("sha256sums")) {
      for (const line of readFileSync(join(bin, "sha256sums"), "utf8").split("\n")) {
        const match = /^([0-9a-f]{64}) [ *]?(.+)$/.exec(line.trim())
        if (match?.[1] && match[2]) sums.set(match[2], match[1])
      }
    }
    for (const [name, expected] of sums) {
      const path = join(bin, name)
      if (!existsSync(path)) {
        if (name.startsWith("packages/") || name.startsWith("kmods/")) continue
        return yield* fail(`${name} is listed in sha256sums but missing`)
      }
      if (statSync(path).isFile() && sha256File(path) !== expected)
        return yield* fail(`${name} does not match sha256sums`)
    }

    const profilesJson = yield* Effect.try({
      try: () => JSON.parse(readFileSync(join(bin, "profiles.json"), "utf8")) as unknown,
      catch: () => fail("profiles.json is missing or not JSON"),
    }).pipe(
      Effect.flatMap((v) =>
        Schema.decodeUnknown(ProfilesJson)(v).pipe(
          Effect.mapError(() => fail("profiles.json has an unexpected shape")),
        ),
      ),
    )
    const listed = profilesJson.profiles[manifest.inputs.device]?.images ?? []
    if (listed.length === 0) return yield* fail(`profiles.json lists no images for ${manifest.inputs.device}`)

    const images: Array<Artifact> = []
    const seen = new Set<string>()
    for (const image of listed) {
      const path = join(bin, image.name)
      if (!existsSync(path))
        return yield* fail(`${image.name} is listed in profiles.json but missing (too big?)`)
      const sha256 = sha256File(path)
      if (sha256 !== image.sha256) return yield* fail(`${image.name} does not match profiles.json`)
      images.push({
        name: image.name,
        type: image.type,
        filesystem: image.filesystem ?? null,
        sha256,
        size: statSync(path).size,
      })
      seen.add(image.name)
    }
    for (const name of names) {
      if (seen.has(name) || !isImageFile(name) || !statSync(join(bin, name)).isFile()) continue
      const path = join(bin, name)
      images.push({
        name,
        type: imageTypeFromName(name),
        filesystem: null,
        sha256: sha256File(path),
        size: statSync(path).size,
      })
    }
    images.sort((a, b) => (a.name < b.name ? -1 : 1))

    const manifestFile = names.find((n) => n.endsWith(".manifest"))
    const packages = manifestFile ? parsePackageManifest(readFileSync(join(bin, manifestFile), "utf8")) : []
    const sbom = names.find((n) => n.endsWith(".bom.cdx.json")) ?? null

    const removalsPath = join(options.imagePath, removalsFile)
    const removals = existsSync(removalsPath)
      ? yield* Effect.try({
          try: () => JSON.parse(readFileSync(removalsPath, "utf8")) as unknown,
          catch: () => fail(`${removalsFile} is not JSON`),
        }).pipe(
          Effect.flatMap((v) =>
            Schema.decodeUnknown(Schema.Array(RemovalWithoutEffectSchema))(v).pipe(
              Effect.mapError(() => fail(`${removalsFile} has an unexpected shape`)),
            ),
          ),
        )
      : []

    const result: ArtifactsManifest = {
      ...manifest,
      images,
      packages,
      sbom,
      ...(removals.length > 0 ? { removalsWithoutEffect: removals } : {}),
    }
    yield* Effect.try({
      try: () => {
        mkdirSync(join(options.output, "images"))
        for (const image of images)
          linkSync(join(bin, image.name), join(options.output, "images", image.name))
        if (manifestFile) copyFileSync(join(bin, manifestFile), join(options.output, manifestFile))
        if (sbom) copyFileSync(join(bin, sbom), join(options.output, sbom))
        writeFileSync(join(options.output, artifactsManifestName), `${JSON.stringify(result, null, 2)}\n`)
      },
      catch: (cause) => new InternalError({ cause }),
    })
    return result
  }).pipe(
    // A file that vanished or cannot be read between listing and hashing is a verification failure, not a crash.
    Effect.catchAllDefect((cause) =>
      Effect.fail(
        new ArtifactVerificationError({ profile: options.manifest.profile, detail: describeCause(cause) }),
      ),
    ),
  )
