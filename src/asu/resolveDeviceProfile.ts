import type { ProfilesJson } from "./upstreamCatalog.js"

/*
 * Which device profile a request's `profile` names (asu-api.md §3, §4): a profile id of the target's
 * profiles.json, or one of its `supported_devices` (with `,` written `_`); on a target whose only
 * profile is `generic` (x86/64 and the like), any name means `generic`.
 */

/** Every accepted name → its canonical profile id. */
export const profileNames = (profiles: ProfilesJson["profiles"]): ReadonlyMap<string, string> => {
  const names = new Map<string, string>()
  for (const [id, data] of Object.entries(profiles)) {
    for (const alias of data.supported_devices ?? []) names.set(alias.replace(/,/g, "_"), id)
    names.set(id, id)
  }
  return names
}

/** The canonical profile id for `requested` (already `,` → `_`), or undefined when the target has none such. */
export const resolveDeviceProfile = (
  profiles: ProfilesJson["profiles"],
  requested: string,
): string | undefined => {
  const found = profileNames(profiles).get(requested.replace(/,/g, "_"))
  if (found !== undefined) return found
  const ids = Object.keys(profiles)
  return ids.length === 1 && ids[0] === "generic" ? "generic" : undefined
}
