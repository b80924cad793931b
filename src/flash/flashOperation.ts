import { existsSync, statSync } from "node:fs"
import { join, resolve } from "node:path"
import { Cause, Effect, Exit, Option } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { ArtifactRecords } from "../db/artifactRecords.js"
import type { Requester } from "../db/buildRecords.js"
import { effectiveFlashStatus, type FlashMode, type FlashOutcome, FlashRecords } from "../db/flashRecords.js"
import type { Database } from "../db/records.js"
import { StorePathRecords } from "../db/storePathRecords.js"
import {
  FlashImageError,
  FlashIoError,
  FlashMismatchError,
  FlashRefusedError,
  isOwrtError,
  NotFoundError,
  type OwrtError,
} from "../errors.js"
import { Realizer } from "../graph/realizer.js"
import { ProfileRepository } from "../profile/profileRepository.js"
import { Progress } from "../progress/progress.js"
import { storePathName } from "../store/nodeStore.js"
import { sha256FileStreamed } from "../text/digest.js"
import { roundUp } from "./alignedMemory.js"
import { blockMapBeside, readBlockMap } from "./blockMap.js"
import { openCard } from "./cardDevice.js"
import { type DeviceFacts, readDeviceFacts, readSystemFacts } from "./deviceFacts.js"
import { isAllowListed } from "./eligibleDevices.js"
import { type CardImagePreference, chooseCardImage } from "./imageChoice.js"
import { type ImageSource, openImageReader, openImageSource } from "./imageSource.js"
import { preflight } from "./preflight.js"
import { imageChunkDigests, verifyCard } from "./verifyCard.js"
import { wipeRegions, writeCard } from "./writeCard.js"

/*
 * `owrt flash` as one library operation, for every frontend: find the image (a file, a stored artifact,
 * or a profile's build), check the device, and — only when forced — write, flush and read back. Every
 * request is recorded, dry runs and refusals included.
 */

export type VerifyMode = "full" | "none"

export interface FlashRequest {
  /** An image file, an artifact id (sha256 prefix or `<key>/<name>`), or a profile `id[@rev]`. */
  readonly source: string
  readonly device: string
  /** Without it nothing is written: the answer is the plan. */
  readonly force: boolean
  /** Defaults to the profile's flash policy, else off. */
  readonly wipe?: boolean | undefined
  /** Defaults to the profile's flash policy, else full. */
  readonly verify?: VerifyMode | undefined
  /** Only read the card back and compare it with the image (checking a card written earlier). */
  readonly verifyOnly?: boolean | undefined
  /** Use the image's block map when one lies beside it (the default); false writes every block. */
  readonly bmap?: boolean | undefined
  readonly allowLoop: boolean
  /** MCP and web clients may only flash devices the configuration lists. */
  readonly requireAllowList?: boolean | undefined
  readonly requestedBy: Requester
  /**
   * Whether `source` may name a file on this machine: the CLI's user may; MCP and web clients name store
   * images and profiles only (owrt runs as root to flash, and would otherwise copy any file to a card).
   */
  readonly allowFiles?: boolean | undefined
  /** Asked with the plan when not forced (a person typing the device name); true goes ahead. */
  readonly confirm?: ((plan: FlashReport) => Effect.Effect<boolean>) | undefined
}

export interface FlashImage {
  readonly path: string
  readonly bytes: number
  readonly fileBytes: number
  readonly compression: "none" | "gzip" | "xz" | "zstd"
  readonly profile?: string | undefined
  readonly revision?: string | undefined
  readonly artifact?:
    | { readonly key: string; readonly name: string; readonly type: string; readonly sha256: string }
    | undefined
  /** Why this image (artifact selection). */
  readonly choice?: string | undefined
  /** The block map used: only the blocks it names are written and read back. */
  readonly bmap?: { readonly path: string; readonly mappedBytes: number } | undefined
}

export interface FlashDevice {
  readonly path: string
  readonly requested: string
  readonly name: string
  readonly sizeBytes: number
  readonly blockSize: number
  readonly model?: string | undefined
  readonly serial?: string | undefined
  readonly removable: boolean
  /** Earlier verifications of this card (by serial) that failed. */
  readonly suspect: boolean
}

export interface FlashReport {
  readonly id: number
  readonly mode: FlashMode
  readonly status: "planned" | "succeeded"
  readonly image: FlashImage
  readonly device: FlashDevice
  readonly wipe: boolean
  readonly verify: VerifyMode
  /** What the flash does (or did), step by step, in words. */
  readonly steps: ReadonlyArray<string>
  readonly writtenSha256?: string | undefined
  readonly writeMs?: number | undefined
  readonly verifyMs?: number | undefined
}

const hexPrefix = /^[0-9a-f]{8,64}$/i

interface ResolvedSource {
  readonly path: string
  readonly profile?: string | undefined
  readonly revision?: string | undefined
  readonly artifact?: FlashImage["artifact"]
  readonly choice?: string | undefined
  readonly policy?: { readonly image: string; readonly verify: string; readonly wipe: boolean } | undefined
}

/** What the source names: a file first, then an artifact id, then a profile (built or reused). */
const resolveSource = (
  source: string,
  requestedBy: Requester,
  allowFiles: boolean,
): Effect.Effect<ResolvedSource, OwrtError, AppConfig | Database | Realizer | ProfileRepository | Progress> =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const asFile = resolve(source)
    if (allowFiles && existsSync(asFile) && statSync(asFile).isFile()) return { path: asFile }

    const artifactPath = (key: string, name: string) =>
      Effect.gen(function* () {
        const row = yield* StorePathRecords.find(key)
        if (!row?.valid) {
          return yield* new NotFoundError({
            what: "artifact",
            detail: `${key}/${name} is not in the store (run \`owrt store verify\`, or realize its profile again)`,
          })
        }
        return join(config.store, storePathName(key, row.name), "images", name)
      })

    if (hexPrefix.test(source) || /^[0-9a-f]{16}\/[^/]+$/.test(source)) {
      const rows = yield* ArtifactRecords.find(source)
      const distinct = new Set(rows.map((r) => r.sha256))
      if (distinct.size > 1) {
        return yield* new NotFoundError({
          what: "artifact",
          detail: `\`${source}\` matches ${distinct.size} images; give more digits`,
        })
      }
      const [row] = rows
      if (row) {
        return {
          path: yield* artifactPath(row.artifacts_key, row.name),
          artifact: { key: row.artifacts_key, name: row.name, type: row.type, sha256: row.sha256 },
        }
      }
      if (!source.includes("@") && !/[a-z]/i.test(source.replace(/[0-9a-f]/gi, ""))) {
        // All hex and nothing matched: an artifact id, not a profile.
        const repository = yield* ProfileRepository
        const ids = yield* repository.ids()
        if (!ids.includes(source)) {
          return yield* new NotFoundError({
            what: "image",
            detail: `\`${source}\` is not a file, a known artifact or a profile`,
          })
        }
      }
    }

    const realizer = yield* Realizer
    // A realized profile is answered from the store and the database alone: no upstream is asked.
    const { results, failures } = yield* realizer.realize({
      specs: [source],
      requestedBy,
      preferStored: true,
    })
    const [failure] = failures
    if (failure) return yield* Effect.fail(failure.error)
    const [result] = results
    if (!result) return yield* new NotFoundError({ what: "image", detail: `\`${source}\` produced no build` })
    const repository = yield* ProfileRepository
    const entry = yield* repository.resolve(source)
    const policy = entry.revision.profile.flash
    const { chosen, why } = chooseCardImage(
      result.manifest.images.map((i) => ({ ...i, filesystem: i.filesystem ?? null })),
      policy.image as CardImagePreference,
    )
    if (!chosen) return yield* new FlashImageError({ source, detail: why })
    return {
      path: join(result.storePath, "images", chosen.name),
      profile: result.profile,
      revision: result.revision,
      artifact: { key: result.key, name: chosen.name, type: chosen.type, sha256: chosen.sha256 },
      choice: why,
      policy,
    }
  })

const refused = (device: string, code: string, reason: string) =>
  new FlashRefusedError({ code, device, reason })

/** The same physical device: node, size and (where known) serial unchanged. */
const sameDevice = (a: DeviceFacts, b: DeviceFacts): boolean =>
  a.path === b.path && a.majorMinor === b.majorMinor && a.sizeBytes === b.sizeBytes && a.serial === b.serial

const describeDevice = (d: FlashDevice) =>
  `${d.path}${d.requested !== d.path ? ` (${d.requested})` : ""}, ${(d.sizeBytes / 1024 ** 3).toFixed(2)} GiB${
    d.model ? `, ${d.model}` : ""
  }${d.serial ? ` serial ${d.serial}` : ""}`

export const flashImage = (
  request: FlashRequest,
): Effect.Effect<FlashReport, OwrtError, AppConfig | Database | Realizer | ProfileRepository | Progress> =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const progress = yield* Progress
    const asked = readDeviceFacts(request.device)
    if (request.requireAllowList && !isAllowListed(asked, config.flash.allowDevices)) {
      return yield* refused(
        request.device,
        "flash_device_not_allowed",
        `${request.device} is not on the flash allow-list (flash.allowDevices in graph.config.ts: ${
          config.flash.allowDevices.join(", ") || "empty"
        }); add it there to flash it from this client`,
      )
    }

    progress.report({ kind: "step", task: "flash", message: `finding the image for ${request.source}` })
    const source = yield* resolveSource(request.source, request.requestedBy, request.allowFiles ?? false)
    const image: ImageSource = yield* openImageSource(source.path)
    if (source.artifact) {
      const digest = yield* Effect.tryPromise({
        try: async () => image.sha256 ?? (await sha256FileStreamed(source.path)),
        catch: (e) =>
          new FlashImageError({ source: source.path, detail: e instanceof Error ? e.message : String(e) }),
      })
      if (digest !== source.artifact.sha256) {
        return yield* new FlashImageError({
          source: source.path,
          detail: `the stored image changed since it was built (sha256 ${digest}, recorded ${source.artifact.sha256}); run \`owrt store verify\``,
        })
      }
    }
    // The image's block map, when it has one (and it is wanted): checked before anything is written.
    const blockMapPath = request.bmap === false ? undefined : blockMapBeside(image.path)
    const blockMap =
      blockMapPath === undefined
        ? undefined
        : yield* Effect.try({
            try: () => readBlockMap(blockMapPath, image.bytes),
            catch: (error) =>
              error instanceof FlashImageError
                ? error
                : new FlashImageError({ source: blockMapPath, detail: String(error) }),
          })
    progress.report({ kind: "done", task: "flash" })
    const wipe = request.wipe ?? source.policy?.wipe ?? false
    const verify: VerifyMode = request.verify ?? (source.policy?.verify === "none" ? "none" : "full")
    const requestedMode: FlashMode = request.verifyOnly ? "verify-only" : request.force ? "write" : "dry-run"

    // Read now, not before the image was found: a realize can take minutes, and cards get swapped.
    const facts = readDeviceFacts(request.device)
    const verdict = preflight(facts, readSystemFacts(), {
      imageBytes: roundUp(image.bytes, facts.logicalBlockSize || 512),
      allowLoop: request.allowLoop,
    })
    const suspects = yield* FlashRecords.suspectRecords(facts.serial)
    const device: FlashDevice = {
      path: facts.path,
      requested: facts.requested,
      name: facts.name,
      sizeBytes: facts.sizeBytes,
      blockSize: facts.logicalBlockSize,
      model: facts.model,
      serial: facts.serial,
      removable: facts.removable,
      suspect: suspects.length > 0,
    }
    const flashImageInfo: FlashImage = {
      path: image.path,
      bytes: image.bytes,
      fileBytes: image.fileBytes,
      compression: image.compression,
      profile: source.profile,
      revision: source.revision,
      artifact: source.artifact,
      choice: source.choice,
      bmap: blockMap && { path: blockMap.path, mappedBytes: blockMap.mappedBytes },
    }

    const record = (mode: FlashMode) =>
      FlashRecords.start({
        mode,
        source: request.source,
        imagePath: image.path,
        imageBytes: image.bytes,
        compression: image.compression,
        profile: source.profile,
        revisionHash: source.revision,
        artifactsKey: source.artifact?.key,
        artifactName: source.artifact?.name,
        artifactType: source.artifact?.type,
        devicePath: facts.path,
        deviceRequested: facts.requested,
        deviceModel: facts.model,
        deviceSerial: facts.serial,
        deviceBytes: facts.sizeBytes,
        wipe,
        verify: request.verifyOnly ? "full" : verify,
        requestedBy: request.requestedBy,
      })

    if (!verdict.ok) {
      const id = yield* record(requestedMode)
      yield* FlashRecords.finish(id, {
        status: "refused",
        errorCode: verdict.code,
        errorMessage: verdict.message,
      })
      return yield* refused(facts.requested, verdict.code, verdict.message)
    }

    const mapped = blockMap
      ? `, only the ${blockMap.mappedBytes} bytes of data its block map ${blockMap.path} names (checked as they stream by)`
      : ""
    const steps = request.verifyOnly
      ? [
          `read ${describeDevice(device)} back with O_DIRECT and compare it with ${image.path}${
            blockMap ? ` — the ${blockMap.mappedBytes} bytes its block map names` : ""
          }`,
        ]
      : [
          `write ${image.path} (${image.bytes} bytes${image.compression === "none" ? "" : `, decompressed from ${image.compression} as it is written`}${mapped})${
            source.choice ? ` — ${source.choice}` : ""
          }`,
          `to ${describeDevice(device)}`,
          ...(wipe
            ? [
                `first zero ${wipeRegions(facts.sizeBytes, image.bytes, facts.logicalBlockSize)
                  .map((r) => `${r.length} bytes at ${r.offset}`)
                  .join(", ")} (old partition tables and file system signatures at both ends)`,
              ]
            : []),
          "with O_DIRECT from aligned memory, then fsync",
          verify === "full"
            ? `then read ${blockMap ? "what was written" : "it all"} back with O_DIRECT and compare`
            : "without reading it back (--verify none)",
        ]
    if (device.suspect) {
      steps.push(
        `warning: this card (serial ${facts.serial}) failed verification before — it may be fake or worn out`,
      )
    }

    let mode = requestedMode
    if (mode === "dry-run" && request.confirm) {
      const plan: FlashReport = {
        id: 0,
        mode,
        status: "planned",
        image: flashImageInfo,
        device,
        wipe,
        verify,
        steps,
      }
      if (yield* request.confirm(plan)) mode = "write"
      // A person may take a while to answer: the device must still be the one the plan described.
      const now = readDeviceFacts(request.device)
      if (mode === "write" && !sameDevice(facts, now)) {
        const id = yield* record("write")
        const reason = `${request.device} changed while waiting for the answer (now ${now.path}, ${now.majorMinor}, ${now.sizeBytes} bytes, serial ${now.serial ?? "?"}); nothing was written — run again`
        yield* FlashRecords.finish(id, {
          status: "refused",
          errorCode: "flash_device_changed",
          errorMessage: reason,
        })
        return yield* refused(request.device, "flash_device_changed", reason)
      }
    }
    const id = yield* record(mode)
    const finish = (outcome: FlashOutcome) => FlashRecords.finish(id, outcome)
    if (mode === "dry-run") {
      yield* finish({ status: "planned" })
      return { id, mode, status: "planned", image: flashImageInfo, device, wipe, verify, steps }
    }

    const reopen = openImageReader(image)
    /** SHA-256 of the image as it was read for the card, once known (recorded even when the card fails). */
    let imageSha256: string | undefined
    const run = Effect.scoped(
      Effect.gen(function* () {
        const card = yield* openCard(facts, request.verifyOnly ? "read" : "read-write")
        if (request.verifyOnly) {
          const reader = yield* Effect.acquireRelease(reopen, (r) => Effect.promise(() => r.close()))
          const expected = yield* imageChunkDigests(reader, card.blockSize, blockMap)
          imageSha256 = expected.sha256
          const started = Date.now()
          yield* verifyCard(
            card,
            { segments: expected.segments, imageBytes: expected.imageBytes },
            reopen,
          ).pipe(
            // The card holds other data: suspect only if the records say this image was written to it last.
            Effect.catchTag("FlashMismatchError", (mismatch) =>
              Effect.flatMap(
                FlashRecords.lastWriteTo({
                  before: id,
                  path: facts.path,
                  serial: facts.serial,
                  sizeBytes: facts.sizeBytes,
                }),
                (last) =>
                  Effect.fail(
                    new FlashMismatchError({
                      ...mismatch,
                      verifyOnly: {
                        image: image.path,
                        lastWrite: last && {
                          flashId: last.id,
                          status: effectiveFlashStatus(last),
                          sameImage: last.image_sha256 === expected.sha256,
                        },
                      },
                    }),
                  ),
              ),
            ),
          )
          return { verifyMs: Date.now() - started }
        }
        const reader = yield* Effect.acquireRelease(reopen, (r) => Effect.promise(() => r.close()))
        const writeStarted = Date.now()
        const written = yield* writeCard(card, reader, { imageBytes: image.bytes, wipe, blockMap })
        imageSha256 = written.sha256
        // The stored image was checked before writing; what was read while writing must be it too.
        const read = image.compression === "none" ? written.sha256 : reader.fileSha256?.()
        if (source.artifact && read !== undefined && read !== source.artifact.sha256) {
          return yield* new FlashImageError({
            source: image.path,
            detail: `the stored image changed while it was being written (sha256 ${read}, recorded ${source.artifact.sha256}); the card holds that changed image — run \`owrt store verify\` and flash again`,
          })
        }
        const writeMs = Date.now() - writeStarted
        if (verify === "none") return { writeMs, writtenSha256: written.sha256 }
        const verifyStarted = Date.now()
        yield* verifyCard(card, written, reopen)
        return { writeMs, writtenSha256: written.sha256, verifyMs: Date.now() - verifyStarted }
      }),
    )
    const exit = yield* Effect.exit(run).pipe(
      // Ctrl+C mid-write: the record says so, and the card is left half-written (the message says so too).
      Effect.onInterrupt(() =>
        finish({
          status: "interrupted",
          errorCode: "interrupted",
          errorMessage: "interrupted: the card holds part of the image; flash it again before use",
        }).pipe(Effect.ignore),
      ),
    )
    if (Exit.isSuccess(exit)) {
      yield* finish({ status: "succeeded", imageSha256, ...exit.value })
      return {
        id,
        mode,
        status: "succeeded",
        image: flashImageInfo,
        device,
        wipe,
        verify,
        steps,
        ...exit.value,
      }
    }
    const error = Option.getOrUndefined(Cause.failureOption(exit.cause))
    // Only what the card itself did wrong makes it suspect: not a refusal, not the image.
    if (error instanceof FlashMismatchError || error instanceof FlashIoError) {
      yield* finish({
        status: "mismatch",
        imageSha256,
        errorCode: error.code,
        errorMessage: error.message,
        ...(error instanceof FlashMismatchError
          ? { firstBadOffset: error.firstBadOffset, badBytes: error.badBytes }
          : {}),
      })
      if (error instanceof FlashIoError || error.suspect) {
        yield* FlashRecords.recordSuspect({
          flashId: id,
          model: facts.model,
          serial: facts.serial,
          sizeBytes: facts.sizeBytes,
          reason: error.message,
        })
      }
    } else if (error !== undefined && isOwrtError(error)) {
      yield* finish({
        status: error instanceof FlashRefusedError ? "refused" : "failed",
        errorCode: error.code,
        errorMessage: error.message,
      })
    } else {
      yield* finish({ status: "interrupted", errorCode: "interrupted", errorMessage: "interrupted" })
    }
    return yield* Effect.failCause(exit.cause)
  })
