import { createHash } from "node:crypto"
import { createReadStream, mkdirSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { pipeline } from "node:stream/promises"
import { Effect } from "effect"
import {
  type Artifact,
  type ArtifactsManifest,
  artifactsManifestName,
} from "../artifacts/collectArtifacts.js"
import { InternalError } from "../errors.js"
import { createBmap } from "./bmap.js"
import { customisedImageFile } from "./customiseImage.js"
import { runToolOk } from "./tools.js"

/*
 * collect-artifacts of a Raspberry Pi OS profile: the customised image compressed as `<profile>.img.xz`
 * and/or `.img.zst` (each with fixed settings, so the bytes do not depend on the machine: xz with a fixed
 * block size and --no-adjust, zstd with one worker), its block map `<profile>.bmap`, the SHA-256 of the
 * image before and after compression in SHA256SUMS, and the owrt manifest.
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

const compressors: Record<string, readonly [string, ReadonlyArray<string>]> = {
  xz: ["xz", ["-6", "-T2", "--block-size=16MiB", "--no-adjust", "-c"]],
  zst: ["zstd", ["-q", "-9", "-T1", "-c"]],
}

export const collectRaspiosArtifacts = (options: {
  readonly imagePath: string
  readonly output: string
  readonly profile: string
  readonly compression: ReadonlyArray<string>
  readonly manifest: Omit<ArtifactsManifest, "images" | "packages" | "sbom">
  readonly packages: ReadonlyArray<string>
}): Effect.Effect<ArtifactsManifest, InternalError> =>
  Effect.gen(function* () {
    const image = join(options.imagePath, customisedImageFile)
    const images = join(options.output, "images")
    yield* Effect.try({
      try: () => mkdirSync(images, { recursive: true }),
      catch: (cause) => new InternalError({ cause }),
    })
    const imageSha = yield* sha256Of(image)
    const artifacts: Array<Artifact> = []
    const sums: Array<string> = [`${imageSha}  ${options.profile}.img`]
    for (const format of options.compression) {
      const tool = compressors[format]
      if (tool === undefined) return yield* new InternalError({ cause: `no compressor for ${format}` })
      const name = `${options.profile}.img.${format}`
      const file = join(images, name)
      yield* runToolOk(tool[0], [...tool[1], image], { stdoutFile: file })
      const sha256 = yield* sha256Of(file)
      const size = yield* Effect.try({
        try: () => statSync(file).size,
        catch: (cause) => new InternalError({ cause }),
      })
      artifacts.push({ name, type: "sdcard", filesystem: "ext4", sha256, size })
      sums.push(`${sha256}  ${name}`)
    }
    const bmapName = `${options.profile}.bmap`
    const bmap = yield* createBmap(image)
    const bmapSha = createHash("sha256").update(bmap).digest("hex")
    sums.push(`${bmapSha}  ${bmapName}`)
    const manifest: ArtifactsManifest = {
      ...options.manifest,
      images: artifacts,
      packages: options.packages.map((p) => ({ name: p, version: "first-boot" })),
      sbom: null,
      raspios: {
        ...(options.manifest.raspios ?? { base: { url: "", extractSha256: "", releaseDate: null } }),
        imageSha256: imageSha,
        bmap: { name: bmapName, sha256: bmapSha },
      },
    }
    yield* Effect.try({
      try: () => {
        writeFileSync(join(images, bmapName), bmap)
        writeFileSync(join(options.output, "SHA256SUMS"), `${sums.join("\n")}\n`)
        writeFileSync(join(options.output, artifactsManifestName), `${JSON.stringify(manifest, null, 2)}\n`)
      },
      catch: (cause) => new InternalError({ cause }),
    })
    return manifest
  })
