import { createHash } from "node:crypto"
import { createReadStream, mkdirSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { pipeline } from "node:stream/promises"
import { Effect } from "effect"
import { type ArtifactsManifest, artifactsManifestName } from "../artifacts/collectArtifacts.js"
import { InternalError } from "../errors.js"
import { customisedImageFile } from "./customiseImage.js"
import { runToolOk } from "./tools.js"

/*
 * collect-artifacts of a Raspberry Pi OS profile: the customised image compressed as `<profile>.img.xz`
 * (xz with a fixed block size and --no-adjust, so the bytes do not depend on the number of threads or the
 * memory), the SHA-256 of the image before and after compression in SHA256SUMS, and the owrt manifest.
 */

const sha256Of = (file: string): Effect.Effect<string, InternalError> =>
  Effect.tryPromise({
    try: async () => {
      const hash = createHash("sha256")
      await pipeline(createReadStream(file), hash)
      return hash.digest("hex")
    },
    catch: (cause) => new InternalError({ cause }),
  })

export const collectRaspiosArtifacts = (options: {
  readonly imagePath: string
  readonly output: string
  readonly profile: string
  readonly manifest: Omit<ArtifactsManifest, "images" | "packages" | "sbom">
  readonly packages: ReadonlyArray<string>
}): Effect.Effect<ArtifactsManifest, InternalError> =>
  Effect.gen(function* () {
    const image = join(options.imagePath, customisedImageFile)
    const images = join(options.output, "images")
    const name = `${options.profile}.img.xz`
    const compressed = join(images, name)
    yield* Effect.try({
      try: () => mkdirSync(images, { recursive: true }),
      catch: (cause) => new InternalError({ cause }),
    })
    yield* runToolOk("xz", ["-6", "-T2", "--block-size=16MiB", "--no-adjust", "-c", image], {
      stdoutFile: compressed,
    })
    const imageSha = yield* sha256Of(image)
    const xzSha = yield* sha256Of(compressed)
    const size = yield* Effect.try({
      try: () => statSync(compressed).size,
      catch: (cause) => new InternalError({ cause }),
    })
    const manifest: ArtifactsManifest = {
      ...options.manifest,
      images: [{ name, type: "sdcard", filesystem: "ext4", sha256: xzSha, size }],
      packages: options.packages.map((p) => ({ name: p, version: "first-boot" })),
      sbom: null,
      raspios: {
        ...(options.manifest.raspios ?? { base: { url: "", extractSha256: "", releaseDate: null } }),
        imageSha256: imageSha,
      },
    }
    yield* Effect.try({
      try: () => {
        writeFileSync(
          join(options.output, "SHA256SUMS"),
          `${imageSha}  ${options.profile}.img\n${xzSha}  ${name}\n`,
        )
        writeFileSync(join(options.output, artifactsManifestName), `${JSON.stringify(manifest, null, 2)}\n`)
      },
      catch: (cause) => new InternalError({ cause }),
    })
    return manifest
  })
