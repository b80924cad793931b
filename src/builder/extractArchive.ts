import { type ChildProcess, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { Effect, Stream } from "effect"
import { ArchiveCorruptError, ChecksumMismatchError, UnsafeArchiveError } from "../errors.js"
import { TarSafetyScanner, type TarSummary } from "./tarSafety.js"

/*
 * Download, verify and unpack in one pass, like `curl | zstd -dc | tar -x`: bytes from the network are
 * hashed and fed to the decompressor (chosen by content, not by file name); its output is checked header
 * by header and fed to GNU tar. Nothing here is trusted until the stream ended, the SHA-256 matched the
 * signed value and every header was safe; the caller extracts into a private directory and publishes it
 * only then.
 */

export type Compression = "zstd" | "xz" | "gzip" | "none"

/** The compression of a stream, from its first bytes. */
export const sniffCompression = (head: Uint8Array): Compression | undefined => {
  const starts = (...bytes: Array<number>) => bytes.every((b, i) => head[i] === b)
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return "zstd"
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "xz"
  if (starts(0x1f, 0x8b)) return "gzip"
  if (head.length >= 262 && Buffer.from(head.subarray(257, 262)).toString("latin1") === "ustar") return "none"
  return undefined
}

const decompressor: Record<Exclude<Compression, "none">, readonly [string, ReadonlyArray<string>]> = {
  zstd: ["zstd", ["-dc", "-q"]],
  xz: ["xz", ["-dc", "-T0"]],
  gzip: ["gzip", ["-dc"]],
}

export interface ExtractResult extends TarSummary {
  readonly sha256: string
  readonly bytes: number
  readonly compression: Compression
}

type ExtractError<E> = E | ChecksumMismatchError | UnsafeArchiveError | ArchiveCorruptError

const exitOf = (child: ChildProcess): Promise<{ code: number | null; stderr: string }> =>
  new Promise((resolve) => {
    let stderr = ""
    child.stderr?.on("data", (chunk: Buffer) => {
      if (stderr.length < 4000) stderr += chunk.toString("utf8")
    })
    child.on("close", (code) => resolve({ code, stderr: stderr.trim() }))
    child.on("error", (error) => resolve({ code: -1, stderr: error.message }))
  })

/**
 * Streams `body` through hash, decompressor, header check and `tar -x` into `destination` (an empty
 * private directory). Fails, having killed its processes, on a checksum mismatch, an unsafe entry or a
 * corrupt archive; the caller removes `destination` then.
 */
export const extractVerified = <E>(options: {
  readonly url: string
  readonly body: Stream.Stream<Uint8Array, E>
  readonly destination: string
  readonly expectedSha256: string
  readonly onBytes?: (bytes: number) => void
}): Effect.Effect<ExtractResult, ExtractError<E>> =>
  Effect.gen(function* () {
    const { url } = options
    const hash = createHash("sha256")
    const scanner = new TarSafetyScanner()
    let bytes = 0
    let compression: Compression | undefined
    let decompress: ChildProcess | undefined
    let tar: ChildProcess | undefined
    let decompressExit: Promise<{ code: number | null; stderr: string }> | undefined
    let tarExit: Promise<{ code: number | null; stderr: string }> | undefined
    const children = () => [decompress, tar].filter((c): c is ChildProcess => c !== undefined)
    const killAll = () => {
      for (const child of children()) if (child.exitCode === null) child.kill("SIGKILL")
    }

    const start = (head: Uint8Array) => {
      compression = sniffCompression(head)
      if (compression === undefined) return false
      tar = spawn(
        "tar",
        ["-x", "-f", "-", "-C", options.destination, "--no-same-owner", "--delay-directory-restore"],
        { stdio: ["pipe", "ignore", "pipe"] },
      )
      tarExit = exitOf(tar)
      const tarStdin = tar.stdin
      if (compression === "none") return true
      const [command, args] = decompressor[compression]
      decompress = spawn(command, args as Array<string>, { stdio: ["pipe", "pipe", "pipe"] })
      decompressExit = exitOf(decompress)
      const output = decompress.stdout
      output?.on("data", (chunk: Buffer) => {
        scanner.feed(chunk)
        if (scanner.problem) {
          killAll()
          return
        }
        if (tarStdin && !tarStdin.write(chunk)) {
          output.pause()
          tarStdin.once("drain", () => output.resume())
        }
      })
      output?.on("end", () => tarStdin?.end())
      tarStdin?.on("error", () => undefined)
      decompress.stdin?.on("error", () => undefined)
      return true
    }

    /** Where raw bytes go: the decompressor, or (uncompressed) straight through the check into tar. */
    const sink = () => (compression === "none" ? tar?.stdin : decompress?.stdin)

    const write = (chunk: Uint8Array) =>
      Effect.async<void>((resume) => {
        if (compression === "none") {
          scanner.feed(chunk)
          if (scanner.problem) {
            killAll()
            resume(Effect.void)
            return
          }
        }
        const target = sink()
        if (!target || target.destroyed || target.writableEnded) {
          resume(Effect.void)
          return
        }
        if (target.write(chunk)) resume(Effect.void)
        else {
          const done = () => {
            target.off("drain", done)
            target.off("close", done)
            resume(Effect.void)
          }
          target.on("drain", done)
          target.on("close", done)
        }
      })

    const corrupt = (detail: string) => new ArchiveCorruptError({ url, detail })
    const unsafe = () => {
      const problem = scanner.problem
      return new UnsafeArchiveError({
        url,
        entry: problem?.path ?? "",
        reason: `${problem?.reason ?? "unsafe"}${problem?.detail ? ` (${problem.detail})` : ""}`,
      })
    }

    const pump = Stream.runForEach(options.body, (chunk) =>
      Effect.gen(function* () {
        if (scanner.problem) return yield* unsafe()
        hash.update(chunk)
        bytes += chunk.length
        options.onBytes?.(bytes)
        if (compression === undefined && !start(chunk)) {
          return yield* corrupt("not a tar archive compressed with zstd, xz or gzip")
        }
        yield* write(chunk)
      }),
    )

    yield* pump.pipe(
      Effect.onExit(() => Effect.sync(() => sink()?.end())),
      Effect.onInterrupt(() => Effect.sync(killAll)),
      Effect.tapError(() => Effect.sync(killAll)),
    )
    if (compression === undefined) return yield* corrupt("empty download")
    const [decompressed, extracted] = yield* Effect.promise(() =>
      Promise.all([
        decompressExit ?? Promise.resolve({ code: 0, stderr: "" }),
        tarExit ?? Promise.resolve({ code: 0, stderr: "" }),
      ]),
    ).pipe(Effect.onInterrupt(() => Effect.sync(killAll)))

    const actual = hash.digest("hex")
    // The checksum comes first: a tampered or truncated download explains any later failure.
    if (actual !== options.expectedSha256) {
      return yield* new ChecksumMismatchError({ url, expected: options.expectedSha256, actual })
    }
    if (scanner.problem) return yield* unsafe()
    if (decompressed.code !== 0)
      return yield* corrupt(`${compression} failed: ${decompressed.stderr || `exit ${decompressed.code}`}`)
    const finished = scanner.finish()
    if (!finished.ok) {
      const problem = finished.problem
      return yield* new UnsafeArchiveError({
        url,
        entry: problem.path,
        reason: `${problem.reason}${problem.detail ? ` (${problem.detail})` : ""}`,
      })
    }
    if (extracted.code !== 0)
      return yield* corrupt(`tar failed: ${extracted.stderr || `exit ${extracted.code}`}`)
    return { ...finished.summary, sha256: actual, bytes, compression }
  })
