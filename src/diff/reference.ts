import { isAbsolute, relative, resolve, sep } from "node:path"
import { profileIdPattern } from "../profile/profileSchema.js"
import { elideName } from "../text/closestMatch.js"

/*
 * What `owrt diff` compares is named by a reference: a profile (`home-ap`, `home-ap@3`, `home-ap@HEAD~1`),
 * a build id (`42`), or a store path (`store/0123456789abcdef-home-ap-artifacts`, or any path inside one).
 * A profile id is never all digits here (an all-digit word is a build id: write such a profile `id@rev`),
 * and never holds a `/` (a word with one is a path).
 */
export type Reference =
  | { readonly _tag: "profile"; readonly spec: string; readonly id: string; readonly rev: string | undefined }
  | { readonly _tag: "build"; readonly id: number }
  | { readonly _tag: "path"; readonly path: string }

/** A reference that names nothing owrt could look up: why. */
export interface MalformedReference {
  readonly _tag: "malformed"
  readonly detail: string
}

const forms = "a profile (id or id@rev), a build id, or a store path"

/** Classifies a reference by its form alone (looking nothing up). */
export const parseReference = (text: string): Reference | MalformedReference => {
  const shown = `\`${elideName(text)}\``
  if (text.trim() === "") return { _tag: "malformed", detail: `an empty reference: give ${forms}` }
  if (/^[/.]/.test(text)) return { _tag: "path", path: text }
  const at = text.indexOf("@")
  if (at !== -1) {
    const id = text.slice(0, at)
    const rev = text.slice(at + 1)
    if (!profileIdPattern.test(id) || rev === "") {
      return { _tag: "malformed", detail: `${shown} is not ${forms}: write <id>@<rev> (e.g. home-ap@3)` }
    }
    return { _tag: "profile", spec: text, id, rev }
  }
  if (text.includes("/")) return { _tag: "path", path: text }
  if (/^\d+$/.test(text)) {
    const id = Number(text)
    return Number.isSafeInteger(id)
      ? { _tag: "build", id }
      : { _tag: "malformed", detail: `${shown} is too large for a build id` }
  }
  if (!profileIdPattern.test(text)) return { _tag: "malformed", detail: `${shown} is not ${forms}` }
  return { _tag: "profile", spec: text, id: text, rev: undefined }
}

/** A store path's key and name (its directory is `<key>-<name>`), from any path at or inside it. */
export type StorePathName =
  | { readonly _tag: "storePath"; readonly key: string; readonly name: string }
  | { readonly _tag: "outside" }
  | MalformedReference

const storePathPattern = /^([0-9a-f]{16})-(.+)$/

/** Which store path `path` (resolved against `cwd`) lies in, if it lies in the store `store` at all. */
export const storePathOf = (store: string, path: string, cwd: string): StorePathName => {
  const inside = relative(resolve(store), resolve(cwd, path))
  if (inside === "" || inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
    return { _tag: "outside" }
  }
  const first = inside.split(sep)[0] ?? ""
  const match = storePathPattern.exec(first)
  if (match?.[1] === undefined || match[2] === undefined) {
    return {
      _tag: "malformed",
      detail: `\`${elideName(path)}\` is in the store but in no store path (a directory named <key>-<name>)`,
    }
  }
  return { _tag: "storePath", key: match[1], name: match[2] }
}
