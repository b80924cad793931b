import type { ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import type { ClientRequest, IncomingMessage } from "node:http"
import { Effect } from "effect"
import {
  ArchiveCorruptError,
  ChecksumMismatchError,
  DownloadError,
  freeBytesAt,
  StoreFullError,
  UnsafeArchiveError,
} from "../errors.js"
import { childProcess, readline } from "../process/lazyBuiltin.js"
import { openGet } from "./httpGet.js"
import { listingArguments, parseListingLine } from "./tarListing.js"
import { TarEntryCheck, TarSafetyScanner, type TarSummary, type UnsafeReason } from "./tarSafety.js"

/*
 * Download, verify and unpack in one pass, like `curl | zstd -dc | tar -x`: bytes from the network are
 * hashed and fed to the decompressor (chosen by content, not by file name), which feeds tar. Nothing is
 * trusted until the stream ended, the SHA-256 matched the signed value and every member was judged safe;
 * the caller extracts into a private directory and publishes it only then.
 *
 * With GNU tar, the decompressor writes straight into tar and every member is judged from tar's verbose
 * listing: GNU tar itself refuses `..` members, strips leading `/` (both reported on stderr, which makes
 * the archive unsafe here) and creates links that point outside only as placeholders until the end, so
 * nothing can be written outside the private directory while the listing is read. With another tar, the
 * decompressed bytes pass through this process and each header is judged before tar sees it.
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

let gnuTarAvailable: boolean | undefined
const isGnuTar = (): boolean => {
  if (gnuTarAvailable === undefined) {
    try {
      gnuTarAvailable = childProcess()
        .execFileSync("tar", ["--version"], { encoding: "utf8" })
        .includes("GNU tar")
    } catch {
      gnuTarAvailable = false
    }
  }
  return gnuTarAvailable
}

/** GNU tar's own refusals, which make the whole archive unsafe: [message, reason, member name group]. */
const tarStderrProblems: ReadonlyArray<readonly [RegExp, UnsafeReason]> = [
  [/tar: (.*): Member name contains '\.\.'/, "parent directory reference"],
  [/Removing leading [`'][^']*\.\.\/?'/, "parent directory reference"],
  [/Removing leading [`']\/'/, "absolute path"],
]

const noSpace = /No space left on device|Disk quota exceeded/i

export interface ExtractResult extends TarSummary {
  readonly sha256: string
  readonly bytes: number
  readonly compression: Compression
}

/** A failure worth another attempt: the network, the server's health, a stall. */
export class TransientDownloadError {
  readonly _tag = "TransientDownloadError"
  constructor(readonly detail: string) {}
}

export type DownloadExtractError =
  | TransientDownloadError
  | DownloadError
  | ChecksumMismatchError
  | UnsafeArchiveError
  | ArchiveCorruptError
  | StoreFullError

interface Exited {
  readonly code: number | null
  readonly stderr: string
}

const exitOf = (child: ChildProcess): Promise<Exited> =>
  new Promise((resolve) => {
    let stderr = ""
    child.stderr?.on("data", (chunk: Buffer) => {
      if (stderr.length < 4000) stderr += chunk.toString("utf8")
    })
    child.on("close", (code) => resolve({ code, stderr: stderr.trim() }))
    child.on("error", (error) => resolve({ code: -1, stderr: error.message }))
  })

/**
 * Streams `url` through hash, decompressor, header check and `tar -x` into `destination` (an empty
 * private directory). Transient failures (network, 5xx, stall, truncation) are reported as such for the
 * caller to retry; anything else is final. Its processes are killed on failure and on interruption.
 */
export const downloadAndExtract = (options: {
  readonly url: string
  readonly destination: string
  readonly expectedSha256: string
  readonly stallSeconds: number
  readonly attempt: number
  readonly onBytes?: (bytes: number, total: number | undefined) => void
}): Effect.Effect<ExtractResult, DownloadExtractError> =>
  Effect.async<ExtractResult, DownloadExtractError>((resume, signal) => {
    const { url } = options
    const hash = createHash("sha256")
    const gnu = isGnuTar()
    // GNU tar: members judged from its listing. Otherwise: headers judged on the way through.
    const scanner: TarSafetyScanner | TarEntryCheck = gnu ? new TarEntryCheck() : new TarSafetyScanner()
    let bytes = 0
    let compression: Compression | undefined
    let decompress: ChildProcess | undefined
    let tar: ChildProcess | undefined
    let req: ClientRequest | undefined
    let done = false
    let downloadEnded = false
    /** Why unpacking stopped early; the download still runs to the end so the checksum can say more. */
    let brokenSink: string | undefined
    let currentResponse: IncomingMessage | undefined
    const broke = (detail: string) => {
      if (brokenSink !== undefined) return
      brokenSink = detail
      killAll()
      currentResponse?.resume()
    }
    let tarExit: Promise<Exited> | undefined
    let decompressExit: Promise<Exited> | undefined

    const killAll = () => {
      for (const child of [decompress, tar])
        if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }
    const finish = (outcome: Effect.Effect<ExtractResult, DownloadExtractError>, succeeded = false) => {
      if (done) return
      done = true
      req?.destroy()
      if (!succeeded) killAll()
      resume(outcome)
    }
    const unsafe = () => {
      const problem = scanner.problem
      return new UnsafeArchiveError({
        url,
        entry: problem?.path ?? "",
        reason: `${problem?.reason ?? "unsafe"}${problem?.detail ? ` (${problem.detail})` : ""}`,
      })
    }
    // tar (or the decompressor) could not write because the disk is full: the store's problem, not upstream's.
    let outOfSpace = false
    const corrupt = (detail: string) =>
      outOfSpace || noSpace.test(detail)
        ? new StoreFullError({
            path: options.destination,
            freeBytes: freeBytesAt(options.destination),
            operation: `unpacking ${url}`,
          })
        : new ArchiveCorruptError({ url, detail })

    /** Decompressed tar bytes: checked (without GNU tar), then handed to tar with backpressure on `source`. */
    const toTar = (chunk: Buffer, source: { pause: () => void; resume: () => void }) => {
      if (scanner instanceof TarSafetyScanner) scanner.feed(chunk)
      if (scanner.problem) {
        finish(Effect.fail(unsafe()))
        return
      }
      const stdin = tar?.stdin
      if (stdin && !stdin.destroyed && !stdin.write(chunk)) {
        source.pause()
        stdin.once("drain", () => source.resume())
      }
    }

    const tarArguments = [
      "-x",
      ...(gnu ? listingArguments : []),
      "-f",
      "-",
      "-C",
      options.destination,
      "--no-same-owner",
    ]

    const start = (head: Buffer): boolean => {
      compression = sniffCompression(head)
      if (compression === undefined) return false
      tar = childProcess().spawn("tar", [...tarArguments, ...(gnu ? ["--delay-directory-restore"] : [])], {
        stdio: ["pipe", gnu ? "pipe" : "ignore", "pipe"],
      })
      tar.stdin?.on("error", () => undefined)
      if (tar.stdout && scanner instanceof TarEntryCheck) {
        const check = scanner
        readline()
          .createInterface({ input: tar.stdout, crlfDelay: Number.POSITIVE_INFINITY })
          .on("line", (line) => {
            const entry = parseListingLine(line)
            if (!entry) return
            check.add(entry.path, entry.type, entry.linkTarget)
            if (check.problem) finish(Effect.fail(unsafe()))
          })
      }
      tarExit = exitOf(tar)
      void tarExit.then((exit) => {
        if (noSpace.test(exit.stderr)) outOfSpace = true
      })
      // A tar that stops before the download ended (it found the archive broken) would otherwise leave the
      // download paused on backpressure until the stall timeout: settle at once.
      void tarExit.then((exit) => {
        if (!done && !downloadEnded) {
          if (scanner.problem) finish(Effect.fail(unsafe()))
          else broke(`tar stopped: ${exit.stderr || `exit ${exit.code}`}`)
        }
      })
      if (compression === "none") return true
      const [command, args] = decompressor[compression]
      if (gnu && tar.stdin) {
        // The decompressor writes straight into tar: the bytes never pass through this process.
        decompress = childProcess().spawn(command, args as Array<string>, {
          stdio: ["pipe", tar.stdin, "pipe"],
        })
        tar.stdin.destroy()
      } else {
        decompress = childProcess().spawn(command, args as Array<string>, { stdio: ["pipe", "pipe", "pipe"] })
        const output = decompress.stdout
        output?.on("data", (chunk: Buffer) => toTar(chunk, output))
        output?.on("end", () => tar?.stdin?.end())
      }
      decompress.stdin?.on("error", () => undefined)
      decompressExit = exitOf(decompress)
      void decompressExit.then((exit) => {
        if (!done && !downloadEnded && exit.code !== 0)
          broke(`${compression} stopped: ${exit.stderr || `exit ${exit.code}`}`)
      })
      return true
    }

    const settle = async (response: IncomingMessage) => {
      const [decompressed, extracted] = await Promise.all([decompressExit, tarExit])
      if (!response.complete)
        return finish(Effect.fail(broken(`connection closed after ${bytes} bytes (truncated)`)))
      const actual = hash.digest("hex")
      // The checksum comes first: a tampered or truncated download explains any later failure.
      if (actual !== options.expectedSha256) {
        return finish(
          Effect.fail(new ChecksumMismatchError({ url, expected: options.expectedSha256, actual })),
        )
      }
      if (extracted && scanner instanceof TarEntryCheck) {
        for (const [pattern, reason] of tarStderrProblems) {
          const match = pattern.exec(extracted.stderr)
          if (match) scanner.fail({ path: match[1] ?? "", reason })
        }
      }
      if (scanner.problem) return finish(Effect.fail(unsafe()))
      // tar stopped writing for want of space; the decompressor's broken pipe is only a consequence.
      if (extracted && noSpace.test(extracted.stderr)) return finish(Effect.fail(corrupt(extracted.stderr)))
      if (decompressed && decompressed.code !== 0) {
        return finish(
          Effect.fail(
            corrupt(`${compression} failed: ${decompressed.stderr || `exit ${decompressed.code}`}`),
          ),
        )
      }
      const summary = scanner.finish()
      if (!summary.ok) {
        const p = summary.problem
        return finish(
          Effect.fail(
            new UnsafeArchiveError({
              url,
              entry: p.path,
              reason: `${p.reason}${p.detail ? ` (${p.detail})` : ""}`,
            }),
          ),
        )
      }
      if (extracted?.code !== 0) {
        return finish(Effect.fail(corrupt(`tar failed: ${extracted?.stderr || `exit ${extracted?.code}`}`)))
      }
      finish(
        Effect.succeed({ ...summary.summary, sha256: actual, bytes, compression: compression ?? "none" }),
        true,
      )
    }

    let stalled = false
    const broken = (what: string) =>
      new TransientDownloadError(
        stalled ? `no data for ${options.stallSeconds}s after ${bytes} bytes (stalled)` : what,
      )
    openGet(options.url, {
      idleMs: options.stallSeconds * 1000,
      idleError: () => {
        stalled = true
        return new Error(`no data for ${options.stallSeconds}s (stalled)`)
      },
      signal,
      onRequest: (r) => {
        req = r
      },
    }).then(
      (response) => {
        const status = response.statusCode ?? 0
        if (status !== 200) {
          response.resume()
          const detail = `HTTP ${status}`
          return finish(
            Effect.fail(
              status >= 500 || status === 429 || status === 408
                ? new TransientDownloadError(detail)
                : new DownloadError({
                    url,
                    detail: status === 404 ? "HTTP 404 (listed in sha256sums but missing)" : detail,
                    attempts: options.attempt,
                  }),
            ),
          )
        }
        currentResponse = response
        const length = Number(response.headers["content-length"])
        const total = Number.isFinite(length) ? length : undefined
        response.on("data", (chunk: Buffer) => {
          if (done) return
          if (scanner.problem) return finish(Effect.fail(unsafe()))
          hash.update(chunk)
          bytes += chunk.length
          options.onBytes?.(bytes, total)
          if (brokenSink !== undefined) return
          if (compression === undefined && !start(chunk)) {
            return finish(Effect.fail(corrupt("not a tar archive compressed with zstd, xz or gzip")))
          }
          if (compression === "none") toTar(chunk, response)
          else {
            const stdin = decompress?.stdin
            if (stdin && !stdin.destroyed && !stdin.write(chunk)) {
              response.pause()
              stdin.once("drain", () => response.resume())
            }
          }
        })
        response.on("end", () => {
          downloadEnded = true
          if (done) return
          if (brokenSink !== undefined) {
            const actual = hash.digest("hex")
            return finish(
              Effect.fail(
                actual !== options.expectedSha256
                  ? new ChecksumMismatchError({ url, expected: options.expectedSha256, actual })
                  : corrupt(brokenSink),
              ),
            )
          }
          if (compression === undefined) return finish(Effect.fail(corrupt("empty download")))
          if (compression === "none") tar?.stdin?.end()
          else decompress?.stdin?.end()
          void settle(response)
        })
        response.on("error", (error) => finish(Effect.fail(broken(error.message))))
        response.on("aborted", () => finish(Effect.fail(broken(`connection aborted after ${bytes} bytes`))))
      },
      (error: Error) => finish(Effect.fail(broken(error.message))),
    )
    return Effect.sync(() => {
      done = true
      req?.destroy()
      killAll()
    })
  })
