import { createHash } from "node:crypto"
import {
  closeSync,
  createReadStream,
  createWriteStream,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
} from "node:fs"
import { join } from "node:path"
import { pipeline } from "node:stream/promises"
import { Effect, Option, Schema } from "effect"
import { type HttpResponse, httpGetBytes, openGet } from "../builder/httpGet.js"
import { retrySchedule } from "../builder/upstream.js"
import {
  BaseImageInvalidError,
  ChecksumMismatchError,
  DownloadError,
  InternalError,
  NotFoundError,
  OfflineError,
} from "../errors.js"
import type { ResolvedRaspios } from "../profile/raspiosSchema.js"
import { runTool } from "./tools.js"

/*
 * The base image of a Raspberry Pi OS profile: found in an OS list (rpi-imager's format) or named by URL and
 * digests in the profile, downloaded, verified (SHA-256 of the compressed file, then of the decompressed
 * .img), decompressed by content (xz or zstd, by their magic bytes, not the file name) and checked to have
 * the layout Raspberry Pi OS images have. Stored once per extracted digest; never modified afterwards.
 */

export const baseImageFile = "base.img"
export const baseImageInfoFile = "base.json"

/** One entry of an OS list, as much of it as owrt reads (other fields are ignored). */
const OsListEntry = Schema.Struct({
  name: Schema.String,
  url: Schema.optional(Schema.String),
  extract_size: Schema.optional(Schema.Number),
  extract_sha256: Schema.optional(Schema.String),
  image_download_size: Schema.optional(Schema.Number),
  image_download_sha256: Schema.optional(Schema.String),
  release_date: Schema.optional(Schema.String),
  init_format: Schema.optional(Schema.String),
  devices: Schema.optional(Schema.Array(Schema.String)),
  subitems: Schema.optional(Schema.Array(Schema.Unknown)),
})
const decodeEntry = Schema.decodeUnknownOption(OsListEntry)
const OsList = Schema.Struct({ os_list: Schema.Array(Schema.Unknown) })
const decodeList = Schema.decodeUnknownEither(Schema.parseJson(OsList))

/** A base image, resolved: where it is and what its bytes must hash to. */
export interface BaseImage {
  readonly url: string
  /** SHA-256 of the compressed download; null when the OS list gives none (the extracted digest is checked). */
  readonly sha256: string | null
  readonly extractSha256: string
  readonly releaseDate: string | null
  /** How the image is customised at first boot (rpi-imager's init_format); null when not known. */
  readonly initFormat: string | null
  readonly name: string
}

const sha256Pattern = /^[0-9a-f]{64}$/

/** Every entry of the list, categories (`subitems`) flattened. */
const entriesOf = (items: ReadonlyArray<unknown>): Array<typeof OsListEntry.Type> =>
  items.flatMap((item) =>
    Option.match(decodeEntry(item), {
      onNone: () => [],
      onSome: (entry) => [entry, ...entriesOf(entry.subitems ?? [])],
    }),
  )

/**
 * The base image a profile names: its URL and digests as given, or the OS list entry of that name and
 * release date (relative URLs resolve against the list's URL, as a browser's would).
 */
export const resolveBaseImage = (
  profileBase: ResolvedRaspios["base"],
  options: {
    readonly osList: string
    readonly store: string
    readonly offline: boolean
    /** Only the stored base images are looked at (store path, audit, flash of a realized profile). */
    readonly storedOnly: boolean
    readonly timeoutSeconds: number
  },
): Effect.Effect<BaseImage, DownloadError | NotFoundError | OfflineError> =>
  Effect.gen(function* () {
    const base = { ...profileBase, os_list: profileBase.os_list ?? options.osList }
    if (base.url !== null) {
      return {
        url: base.url,
        sha256: base.sha256,
        extractSha256: base.extract_sha256 ?? "",
        releaseDate: base.release_date,
        initFormat: null,
        name: base.url.replace(/^.*\//, ""),
      }
    }
    if (options.offline || options.storedOnly) {
      // The entry's name and release date, as a stored base image recorded them when it was fetched.
      const stored = storedBaseImages(options.store).find(
        (b) => b.name === base.os && b.releaseDate === base.release_date,
      )
      if (stored !== undefined) return stored
      if (options.storedOnly) {
        return yield* new NotFoundError({
          what: `${base.os} of ${base.release_date}`,
          detail: "no base image of it is stored here",
        })
      }
      return yield* new OfflineError({
        detail: `${base.os} of ${base.release_date} (the OS list ${base.os_list})`,
      })
    }
    const response = yield* withRetries<HttpResponse>(
      base.os_list,
      httpGetBytes(base.os_list, options.timeoutSeconds * 1000).pipe(
        Effect.mapError((e) => new Transient(e.detail)),
        Effect.flatMap(
          (r: HttpResponse): Effect.Effect<HttpResponse, Transient | DownloadError> =>
            r.status === 200
              ? Effect.succeed(r)
              : isTransientStatus(r.status)
                ? Effect.fail(new Transient(`HTTP ${r.status}`))
                : Effect.fail(
                    new DownloadError({ url: base.os_list, detail: `HTTP ${r.status}`, attempts: 1 }),
                  ),
        ),
      ),
    )
    const list = decodeList(Buffer.from(response.body).toString("utf8"))
    if (list._tag === "Left") {
      return yield* new DownloadError({
        url: base.os_list,
        detail: "not an OS list (JSON with an os_list array)",
        attempts: 1,
      })
    }
    const entries = entriesOf(list.right.os_list).filter((e) => e.url !== undefined)
    const found = entries.find((e) => e.name === base.os && e.release_date === base.release_date)
    if (found === undefined || found.url === undefined) {
      const same = entries.filter((e) => e.name === base.os).map((e) => e.release_date ?? "?")
      return yield* new NotFoundError({
        what: `${base.os} of ${base.release_date}`,
        detail:
          same.length > 0
            ? `the OS list ${base.os_list} has ${base.os} of ${same.join(", ")} only`
            : `not in the OS list ${base.os_list}; it names ${[...new Set(entries.map((e) => e.name))].join(", ")}`,
      })
    }
    const extract = found.extract_sha256 ?? ""
    if (!sha256Pattern.test(extract)) {
      return yield* new DownloadError({
        url: base.os_list,
        detail: `entry ${found.name} of ${found.release_date} has no valid extract_sha256`,
        attempts: 1,
      })
    }
    const download = found.image_download_sha256
    return {
      url: new URL(found.url, base.os_list).toString(),
      sha256: download !== undefined && sha256Pattern.test(download) ? download : null,
      extractSha256: extract,
      releaseDate: found.release_date ?? null,
      initFormat: found.init_format ?? null,
      name: found.name,
    }
  })

const StoredBaseInfo = Schema.Struct({
  url: Schema.String,
  sha256: Schema.String,
  extractSha256: Schema.String,
  releaseDate: Schema.NullOr(Schema.String),
  initFormat: Schema.NullOr(Schema.String),
  name: Schema.String,
})
const decodeStoredBase = Schema.decodeUnknownOption(Schema.parseJson(StoredBaseInfo))

/** The base images in the store (`<key>-raspios-base-*`), as their base.json describes them. */
const storedBaseImages = (store: string): ReadonlyArray<BaseImage> => {
  let names: ReadonlyArray<string>
  try {
    names = readdirSync(store)
      .filter((name) => /^[0-9a-f]{16}-raspios-base-/.test(name))
      .sort()
  } catch {
    return []
  }
  return names.flatMap((name) => {
    try {
      return Option.toArray(decodeStoredBase(readFileSync(join(store, name, baseImageInfoFile), "utf8")))
    } catch {
      return []
    }
  })
}

/** Streams `url` into `file`, hashing as it arrives; the SHA-256 of what was received. */
/** A failure worth retrying: the network, a stall, a cut connection, HTTP 408, 429 or 5xx. */
class Transient {
  readonly _tag = "Transient"
  constructor(readonly detail: string) {}
}

const isTransientStatus = (status: number) => status === 408 || status === 429 || status >= 500
const attempts = 4

/** Retries transient failures with backoff; what still fails is a `DownloadError` naming the attempts. */
const withRetries = <A>(url: string, effect: Effect.Effect<A, Transient | DownloadError>) =>
  Effect.suspend(() => {
    let tries = 0
    return Effect.suspend(() => {
      tries += 1
      return effect
    }).pipe(
      Effect.retry({ schedule: retrySchedule(attempts), while: (e) => e instanceof Transient }),
      Effect.mapError((e) =>
        e instanceof Transient ? new DownloadError({ url, detail: e.detail, attempts: tries }) : e,
      ),
    )
  })

/** Streams `url` into `file`, hashing as it arrives; the SHA-256 of what was received. */
const download = (url: string, file: string, stallSeconds: number): Effect.Effect<string, DownloadError> =>
  withRetries(
    url,
    Effect.tryPromise({
      try: async (signal) => {
        const response = await openGet(url, {
          idleMs: stallSeconds * 1000,
          idleError: () => new Error(`no data for ${stallSeconds}s`),
          signal,
        })
        if (response.statusCode !== 200) {
          response.resume()
          const status = response.statusCode ?? 0
          throw isTransientStatus(status)
            ? new Transient(`HTTP ${status}`)
            : new DownloadError({ url, detail: `HTTP ${status}`, attempts: 1 })
        }
        const hash = createHash("sha256")
        response.on("data", (chunk: Buffer) => hash.update(chunk))
        await pipeline(response, createWriteStream(file), { signal })
        if (!response.complete) throw new Transient("connection closed early")
        return hash.digest("hex")
      },
      catch: (error) =>
        error instanceof Transient || error instanceof DownloadError
          ? error
          : new Transient(error instanceof Error ? error.message : String(error)),
    }),
  )

const fileSha256 = (file: string): Effect.Effect<string, InternalError> =>
  Effect.tryPromise({
    try: async () => {
      const hash = createHash("sha256")
      await pipeline(createReadStream(file), hash)
      return hash.digest("hex")
    },
    catch: (cause) => new InternalError({ cause }),
  })

const magic = (file: string): Buffer => {
  const fd = openSync(file, "r")
  try {
    const head = Buffer.alloc(6)
    readSync(fd, head, 0, 6, 0)
    return head
  } finally {
    closeSync(fd)
  }
}

/** A partition of the image, in bytes. */
export interface Partition {
  readonly offset: number
  readonly size: number
  readonly type: number
}

export interface ImageLayout {
  /** The MBR disk id, 8 hex digits (PARTUUIDs are `<id>-01`, `<id>-02`). */
  readonly diskId: string
  readonly boot: Partition
  readonly root: Partition
}

/**
 * The boot and root partitions, read from the MBR (offsets are never assumed: they moved between pi-gen
 * releases). Refuses anything but a FAT32 first and a Linux second partition inside the file.
 */
export const readLayout = (image: string): Effect.Effect<ImageLayout, BaseImageInvalidError> =>
  Effect.gen(function* () {
    const refuse = (detail: string) => new BaseImageInvalidError({ image, detail })
    const size = yield* Effect.try({
      try: () => statSync(image).size,
      catch: () => refuse("it cannot be read"),
    })
    const mbr = Buffer.alloc(512)
    yield* Effect.try({
      try: () => {
        const fd = openSync(image, "r")
        try {
          readSync(fd, mbr, 0, 512, 0)
        } finally {
          closeSync(fd)
        }
      },
      catch: () => refuse("it cannot be read"),
    })
    if (size < 512 || mbr[510] !== 0x55 || mbr[511] !== 0xaa) {
      return yield* refuse("it has no MBR partition table (no 55 AA signature)")
    }
    const entry = (n: number): Partition => {
      const at = 446 + 16 * n
      return {
        type: mbr[at + 4] ?? 0,
        offset: mbr.readUInt32LE(at + 8) * 512,
        size: mbr.readUInt32LE(at + 12) * 512,
      }
    }
    const boot = entry(0)
    const root = entry(1)
    if (boot.type !== 0x0c && boot.type !== 0x0b) {
      return yield* refuse(`partition 1 has type 0x${boot.type.toString(16)}, not FAT32 (0x0c or 0x0b)`)
    }
    if (root.type !== 0x83) {
      return yield* refuse(`partition 2 has type 0x${root.type.toString(16)}, not Linux (0x83)`)
    }
    for (const [name, p] of [
      ["1", boot],
      ["2", root],
    ] as const) {
      if (p.offset === 0 || p.size === 0 || p.offset + p.size > size) {
        return yield* refuse(`partition ${name} lies outside the image (${size} bytes)`)
      }
    }
    return { diskId: mbr.readUInt32LE(440).toString(16).padStart(8, "0"), boot, root }
  })

/**
 * fetch-base-image's build: download into `work`, verify, decompress, check the layout, and leave
 * `base.img` and `base.json` in `output`. Any failure leaves `output` to be discarded: nothing is stored.
 */
export const fetchBaseImageInto = (options: {
  readonly base: BaseImage
  readonly output: string
  readonly work: string
  readonly stallSeconds: number
}): Effect.Effect<void, DownloadError | ChecksumMismatchError | BaseImageInvalidError | InternalError> =>
  Effect.gen(function* () {
    const { base, output, work } = options
    const compressed = join(work, "download")
    const image = join(output, baseImageFile)
    const received = yield* download(base.url, compressed, options.stallSeconds)
    if (base.sha256 !== null && received !== base.sha256) {
      return yield* new ChecksumMismatchError({
        url: base.url,
        expected: base.sha256,
        actual: received,
        against: "the SHA-256 of the download the OS list or profile gives",
      })
    }
    const head = magic(compressed)
    const tool = head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))
      ? (["zstd", ["-dc", "-q"]] as const)
      : head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))
        ? (["xz", ["-dc"]] as const)
        : undefined
    if (tool === undefined) {
      return yield* new BaseImageInvalidError({
        image: base.url,
        detail: "it is neither xz nor zstd compressed",
      })
    }
    const result = yield* runTool(tool[0], tool[1], { stdinFile: compressed, stdoutFile: image })
    if (result.code !== 0) {
      return yield* new BaseImageInvalidError({
        image: base.url,
        detail: `${tool[0]} cannot decompress it (${result.stderr.trim().replace(/^.*?: /, "") || `exit ${result.code}`})`,
      })
    }
    const extracted = yield* fileSha256(image)
    if (extracted !== base.extractSha256) {
      return yield* new ChecksumMismatchError({
        url: base.url,
        expected: base.extractSha256,
        actual: extracted,
        against: "the extract_sha256 of the decompressed image",
      })
    }
    const layout = yield* readLayout(image).pipe(
      Effect.mapError((e) => new BaseImageInvalidError({ image: base.url, detail: e.detail })),
    )
    yield* Effect.try({
      try: () =>
        writeFileSync(
          join(output, baseImageInfoFile),
          `${JSON.stringify({ ...base, sha256: base.sha256 ?? received, layout }, null, 2)}\n`,
        ),
      catch: (cause) => new InternalError({ cause }),
    })
  })
