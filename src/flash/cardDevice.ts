import { constants } from "node:fs"
import { type FileHandle, open } from "node:fs/promises"
import { Effect, type Scope } from "effect"
import { FlashRefusedError } from "../errors.js"
import { type DeviceFacts, majorMinorOf } from "./deviceFacts.js"

/*
 * The card, opened the only way owrt ever opens one: O_EXCL, so the kernel refuses while anything has a
 * partition mounted, holds swap on it or has claimed it (the last gate after the pre-flight check; never
 * fall back to a shared open), and O_DIRECT, so every byte written or read back goes to the device and not
 * to the page cache (a ghost card cannot pass a read served from memory).
 */

export interface OpenCard {
  readonly handle: FileHandle
  readonly path: string
  readonly sizeBytes: number
  readonly blockSize: number
}

const errorCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined

export const openCard = (
  device: DeviceFacts,
  mode: "read-write" | "read",
): Effect.Effect<OpenCard, FlashRefusedError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        open(
          device.path,
          (mode === "read-write" ? constants.O_RDWR : constants.O_RDONLY) |
            constants.O_DIRECT |
            constants.O_EXCL,
        ),
      catch: (e) => {
        switch (errorCode(e)) {
          case "EBUSY":
            return new FlashRefusedError({
              code: "flash_busy",
              device: device.path,
              reason: `${device.path} is in use (the kernel refused exclusive access: a mounted partition, swap, or another program); unmount or stop it first`,
            })
          case "EROFS":
            return new FlashRefusedError({
              code: "flash_read_only",
              device: device.path,
              reason: `${device.path} is read-only; check the card's lock switch`,
            })
          case "EACCES":
          case "EPERM":
            return new FlashRefusedError({
              code: "flash_permission_denied",
              device: device.path,
              reason: `no permission to open ${device.path}; run as root or join the group that owns it (disk)`,
            })
          default:
            // The device went away (card pulled, no medium) or cannot do direct I/O: nothing was written,
            // and nothing says the card is bad.
            return new FlashRefusedError({
              code: "flash_device_unavailable",
              device: device.path,
              reason: `${device.path} cannot be opened (${errorCode(e) ?? String(e)}): is the card still in the reader?`,
            })
        }
      },
    }).pipe(
      // What was opened must be the device that was checked: a card swapped since is refused.
      Effect.tap((handle) =>
        Effect.promise(() =>
          handle.stat({ bigint: true }).then(
            (stat) => stat.isBlockDevice() && majorMinorOf(stat.rdev) === device.majorMinor,
            () => false,
          ),
        ).pipe(
          Effect.flatMap((same) =>
            same
              ? Effect.void
              : Effect.promise(() => handle.close().catch(() => undefined)).pipe(
                  Effect.zipRight(
                    new FlashRefusedError({
                      code: "flash_device_changed",
                      device: device.path,
                      reason: `${device.path} is no longer the device that was checked (${device.majorMinor}); check it and run again`,
                    }),
                  ),
                ),
          ),
        ),
      ),
      Effect.map(
        (handle): OpenCard => ({
          handle,
          path: device.path,
          sizeBytes: device.sizeBytes,
          blockSize: device.logicalBlockSize,
        }),
      ),
    ),
    (card) => Effect.promise(() => card.handle.close().catch(() => undefined)),
  )

/** Writes all of `buffer[0, length)` at `position`, however the kernel splits it. */
export const writeFully = async (handle: FileHandle, buffer: Buffer, length: number, position: number) => {
  let done = 0
  while (done < length) {
    const { bytesWritten } = await handle.write(buffer, done, length - done, position + done)
    if (bytesWritten === 0) throw new Error("the device accepted no bytes")
    done += bytesWritten
  }
}

/** Reads `length` bytes at `position` into `buffer`; a short read means the device ended early. */
export const readFully = async (handle: FileHandle, buffer: Buffer, length: number, position: number) => {
  let done = 0
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done)
    if (bytesRead === 0) throw new Error(`the device ended at byte ${position + done}`)
    done += bytesRead
  }
}
