import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/*
 * Real block devices for flash tests: loop devices over sparse files. Each test detaches exactly the
 * devices it attached. Where loop devices cannot be made (not root, no loop module), the tests say so
 * and skip.
 */

export const loopDevicesUnavailable = ((): string | undefined => {
  if (process.getuid?.() !== 0) return "flash tests need root to attach loop devices"
  const dir = mkdtempSync(join(tmpdir(), "owrt-loop-probe-"))
  try {
    execFileSync("truncate", ["-s", "1M", join(dir, "probe")])
    const device = execFileSync("losetup", ["-f", "--show", join(dir, "probe")], { encoding: "utf8" }).trim()
    execFileSync("losetup", ["-d", device])
    return undefined
  } catch (e) {
    return `loop devices cannot be attached here (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})()

export interface LoopDevice {
  readonly device: string
  readonly backingFile: string
  readonly detach: () => void
}

export const attachLoop = (
  backingFile: string,
  options: { readonly sizeBytes: number; readonly readOnly?: boolean; readonly partitions?: boolean },
): LoopDevice => {
  execFileSync("truncate", ["-s", String(options.sizeBytes), backingFile])
  const device = execFileSync(
    "losetup",
    ["-f", "--show", ...(options.readOnly ? ["-r"] : []), ...(options.partitions ? ["-P"] : []), backingFile],
    { encoding: "utf8" },
  ).trim()
  let attached = true
  return {
    device,
    backingFile,
    detach: () => {
      if (!attached) return
      attached = false
      try {
        execFileSync("losetup", ["-d", device], { stdio: "ignore" })
      } catch {
        // already gone
      }
    },
  }
}

/** Reads `length` bytes at `offset` from a device with O_DIRECT (dd), past the page cache. */
export const readDirect = (device: string, offset: number, length: number): Buffer => {
  const block = 4096
  const skip = Math.floor(offset / block)
  const count = Math.ceil((offset + length) / block) - skip
  const data = execFileSync(
    "dd",
    [`if=${device}`, "iflag=direct", `bs=${block}`, `skip=${skip}`, `count=${count}`, "status=none"],
    { maxBuffer: 1024 * 1024 * 1024 },
  )
  return data.subarray(offset - skip * block, offset - skip * block + length)
}
