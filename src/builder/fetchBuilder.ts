import { mkdirSync, renameSync, rmdirSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { DownloadError, InternalError } from "../errors.js"
import { downloadAndExtract, TransientDownloadError } from "./extractArchive.js"
import { type BuilderArchive, retrySchedule } from "./upstream.js"

/*
 * fetch-builder's build: the archive streams from upstream through SHA-256 (checked against the signed
 * sha256sums), the decompressor and GNU tar into a private directory; only when all of it held is the
 * archive's one top-level directory moved to `output`. Transient failures are retried with backoff.
 */

/** The store path name of a builder: its archive's name without the compression suffix. */
export const builderPathName = (archive: BuilderArchive): string =>
  archive.name.replace(/\.tar\.(?:zst|xz|gz)$/, "")

export const fetchBuilderInto = (options: {
  readonly archive: BuilderArchive
  readonly output: string
  readonly work: string
  readonly stallSeconds: number
  readonly onBytes: (bytes: number, total: number | undefined) => void
}) =>
  Effect.gen(function* () {
    const { archive } = options
    let attempts = 0
    const attempt = Effect.gen(function* () {
      attempts += 1
      const destination = join(options.work, `attempt-${attempts}`)
      yield* Effect.try({
        try: () => mkdirSync(destination, { mode: 0o700 }),
        catch: (cause) => new InternalError({ cause }),
      })
      const result = yield* downloadAndExtract({
        url: archive.url,
        destination,
        expectedSha256: archive.sha256,
        stallSeconds: options.stallSeconds,
        attempt: attempts,
        onBytes: options.onBytes,
      })
      yield* Effect.try({
        try: () => {
          rmdirSync(options.output)
          renameSync(join(destination, result.topLevel), options.output)
        },
        catch: (cause) => new InternalError({ cause }),
      })
      return result
    })
    return yield* attempt.pipe(
      Effect.retry({
        schedule: retrySchedule(4),
        while: (error) => error instanceof TransientDownloadError,
      }),
      Effect.catchIf(
        (error): error is TransientDownloadError => error instanceof TransientDownloadError,
        (error) => Effect.fail(new DownloadError({ url: archive.url, detail: error.detail, attempts })),
      ),
    )
  })
