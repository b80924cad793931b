import { readdirSync } from "node:fs"
import { join } from "node:path"
import { type DeviceFacts, readDeviceFacts, readSystemFacts } from "./deviceFacts.js"
import { preflight } from "./preflight.js"

/*
 * The block devices a card could be: whole disks that pass every pre-flight check but the size one (that
 * depends on the image). Frontends offer only these.
 */

export interface EligibleDevice {
  readonly path: string
  readonly name: string
  readonly sizeBytes: number
  readonly model?: string | undefined
  readonly serial?: string | undefined
  readonly removable: boolean
  readonly isLoop: boolean
}

/** Whether the configuration's allow-list names this device: by the path given, or one leading to it. */
export const isAllowListed = (device: DeviceFacts, allowList: ReadonlyArray<string>, root = "/"): boolean =>
  allowList.some(
    (entry) =>
      entry === device.requested ||
      entry === device.path ||
      readDeviceFacts(entry, root).path === device.path,
  )

export const listEligibleDevices = (
  options: { readonly allowLoop: boolean; readonly allowList?: ReadonlyArray<string> | undefined },
  root = "/",
): ReadonlyArray<EligibleDevice> => {
  const system = readSystemFacts(root)
  let names: ReadonlyArray<string> = []
  try {
    names = readdirSync(join(root, "sys/block"))
  } catch {
    return []
  }
  return names
    .map((name): DeviceFacts => readDeviceFacts(`/dev/${name}`, root))
    .filter((facts) => facts.sizeBytes > 0)
    .filter((facts) => preflight(facts, system, { imageBytes: 0, allowLoop: options.allowLoop }).ok)
    .filter((facts) => options.allowList === undefined || isAllowListed(facts, options.allowList, root))
    .map((facts) => ({
      path: facts.path,
      name: facts.name,
      sizeBytes: facts.sizeBytes,
      model: facts.model,
      serial: facts.serial,
      removable: facts.removable,
      isLoop: facts.isLoop,
    }))
}
