import type { DeviceFacts, SystemFacts } from "./deviceFacts.js"

/*
 * The flash pre-flight check as a pure decision over device and system facts. Refusing is always safe;
 * every refusal says what to do instead.
 */

export type FlashRefusal =
  | "flash_not_block_device"
  | "flash_partition"
  | "flash_system_disk"
  | "flash_mounted"
  | "flash_held"
  | "flash_read_only"
  | "flash_too_small"
  | "flash_loop_not_allowed"

export type PreflightVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: FlashRefusal; readonly message: string }

const systemMountPoints = new Set(["/", "/boot", "/boot/efi", "/usr", "/var", "/home"])

export const preflight = (
  device: DeviceFacts,
  system: SystemFacts,
  options: { readonly imageBytes: number; readonly allowLoop: boolean },
): PreflightVerdict => {
  const refuse = (code: FlashRefusal, message: string): PreflightVerdict => ({ ok: false, code, message })
  const shown = device.requested === device.path ? device.path : `${device.requested} (${device.path})`
  if (!device.isBlockDevice) {
    return refuse(
      "flash_not_block_device",
      `${shown} is not a block device; give the card's device, e.g. /dev/sdb or /dev/mmcblk0`,
    )
  }
  if (device.nodeMajorMinor !== device.majorMinor) {
    return refuse(
      "flash_not_block_device",
      `${shown} is not the device node of ${device.name} (${
        device.nodeMajorMinor === undefined
          ? "not a block device node"
          : `device ${device.nodeMajorMinor}, not ${device.majorMinor}`
      }); give the card's device under /dev`,
    )
  }
  if (device.isPartition) {
    return refuse(
      "flash_partition",
      `${shown} is a partition; give the whole card (the disk, not ${device.name})`,
    )
  }
  if (device.isLoop && !options.allowLoop) {
    return refuse(
      "flash_loop_not_allowed",
      `${shown} is a loop device; pass --allow-loop to write to one (lab and test use)`,
    )
  }
  const own = new Set([device.majorMinor, ...device.partitions.map((p) => p.majorMinor)])
  const ownPaths = new Set([device.path, ...device.partitions.map((p) => `/dev/${p.name}`)])
  const mounts = system.mounts.filter((m) => own.has(m.majorMinor) || ownPaths.has(m.source))
  const systemMount = mounts.find((m) => systemMountPoints.has(m.mountPoint))
  const swap = system.swaps.find((s) => ownPaths.has(s))
  if (systemMount || swap) {
    const what = systemMount ? `${systemMount.mountPoint} is mounted from it` : `it holds swap (${swap})`
    return refuse("flash_system_disk", `${shown} is a system disk (${what}); refusing to overwrite it`)
  }
  if (mounts.length > 0) {
    const list = mounts.map((m) => `${m.source} on ${m.mountPoint}`).join(", ")
    return refuse("flash_mounted", `${shown} has mounted file systems (${list}); unmount them first`)
  }
  if (device.holders.length > 0) {
    return refuse(
      "flash_held",
      `${shown} is in use by ${device.holders.join(", ")}; stop what holds it first`,
    )
  }
  if (device.readOnly) {
    return refuse("flash_read_only", `${shown} is read-only; check the card's lock switch`)
  }
  if (device.sizeBytes < options.imageBytes) {
    return refuse(
      "flash_too_small",
      `${shown} holds ${device.sizeBytes} bytes, the image needs ${options.imageBytes}; use a larger card`,
    )
  }
  return { ok: true }
}
