import { posix } from "node:path"
import { ProfileInvalidError } from "../errors.js"
import type { ResolvedProfile } from "../profile/resolveProfile.js"

/*
 * Symlinks in a staged overlay. The Image Builder copies `FILES=` with `cp -fpR -L` (its Makefile's
 * `prepare_files`): every link is dereferenced on the build machine, none reaches the image as a link. A link
 * whose target is absolute, or leaves the overlay, would copy a file of the build machine (`/etc/shadow`,
 * the store's `secrets.key`) into the image, and the key — which covers only the link text — would not change
 * when that file does. So a link is kept only when it resolves, inside the staged tree, to a file or
 * directory that the tree itself holds: then what enters the image is covered by the key (the target's
 * digest and the link text). Anything else is refused before any work.
 */

/** The build marker make-image adds to `FILES`: a link may point at it. */
const buildMarkerPath = "etc/owrt-build"

/** Link hops followed before a chain counts as a loop (Linux's own limit). */
const maxHops = 40

type StagedNode = { readonly kind: "file" } | { readonly kind: "symlink"; readonly target: string }

export type LinkProblem =
  | { readonly kind: "absolute"; readonly link: string; readonly target: string; readonly via: string }
  | { readonly kind: "escape"; readonly link: string; readonly target: string; readonly via: string }
  | { readonly kind: "dangling"; readonly link: string; readonly target: string; readonly missing: string }
  | { readonly kind: "loop"; readonly link: string; readonly target: string }

/** The staged tree's entries as stage-overlay writes them: overlay first, inline files and scripts over it. */
const stagedEntries = (profile: ResolvedProfile): Map<string, StagedNode> => {
  const nodes = new Map<string, StagedNode>()
  for (const entry of profile.overlay) {
    nodes.set(
      entry.path,
      entry.kind === "symlink" ? { kind: "symlink", target: entry.linkTarget ?? "" } : { kind: "file" },
    )
  }
  for (const file of profile.files) nodes.set(file.path.replace(/^\/+/, ""), { kind: "file" })
  for (const script of profile.first_boot) nodes.set(`etc/uci-defaults/${script.name}`, { kind: "file" })
  if (!nodes.has(buildMarkerPath)) nodes.set(buildMarkerPath, { kind: "file" })
  return nodes
}

const split = (path: string) => path.split("/").filter((part) => part !== "" && part !== ".")

/**
 * Resolves every symlink of the staged tree inside the tree, as `cp -L` would on the build machine, and
 * returns the first that does not land on something the tree holds.
 */
export const findLinkProblem = (profile: ResolvedProfile): LinkProblem | undefined => {
  const nodes = stagedEntries(profile)
  const directories = new Set<string>([""])
  for (const path of nodes.keys()) {
    const parts = path.split("/")
    for (let i = 1; i < parts.length; i++) directories.add(parts.slice(0, i).join("/"))
  }
  for (const [link, node] of nodes) {
    if (node.kind !== "symlink") continue
    const problem = resolveLink(link, node.target, nodes, directories)
    if (problem) return problem
  }
  return undefined
}

const resolveLink = (
  link: string,
  target: string,
  nodes: ReadonlyMap<string, StagedNode>,
  directories: ReadonlySet<string>,
): LinkProblem | undefined => {
  if (target.startsWith("/")) return { kind: "absolute", link, target, via: link }
  const resolved: Array<string> = []
  const pending = [...split(posix.dirname(link)), ...split(target)]
  let hops = 0
  while (pending.length > 0) {
    const part = pending.shift() as string
    if (part === "..") {
      if (resolved.length === 0) return { kind: "escape", link, target, via: link }
      resolved.pop()
      continue
    }
    const path = [...resolved, part].join("/")
    const found = nodes.get(path)
    if (found?.kind === "symlink") {
      if (++hops > maxHops) return { kind: "loop", link, target }
      if (found.target.startsWith("/")) return { kind: "absolute", link, target, via: path }
      pending.unshift(...split(found.target))
      continue
    }
    if (found?.kind === "file") {
      if (pending.length > 0) return { kind: "dangling", link, target, missing: [path, ...pending].join("/") }
      resolved.push(part)
      continue
    }
    if (!directories.has(path))
      return { kind: "dangling", link, target, missing: [path, ...pending].join("/") }
    resolved.push(part)
  }
  const end = resolved.join("/")
  // A link to its own directory or an ancestor: `cp -L` would copy the tree into itself without end.
  if (end === "" || link === end || link.startsWith(`${end}/`)) return { kind: "loop", link, target }
  return undefined
}

export const describeLinkProblem = (problem: LinkProblem): { message: string; hint: string } => {
  const link = `overlay link /${problem.link} -> ${problem.target}`
  switch (problem.kind) {
    case "absolute":
      return {
        message:
          problem.via === problem.link
            ? `${link} has an absolute target: the Image Builder copies FILES dereferencing links (cp -L), so it would copy the build machine's ${problem.target} into the image`
            : `${link} resolves through /${problem.via}, whose target is absolute: the Image Builder would copy a file of the build machine into the image`,
        hint: "put the file itself in the overlay, or make the link relative to a file the overlay holds",
      }
    case "escape":
      return {
        message: `${link} points outside the overlay: the Image Builder would copy a file of the build machine into the image`,
        hint: "put the file itself in the overlay, or make the link relative to a file the overlay holds",
      }
    case "dangling":
      return {
        message: `${link} points at /${problem.missing}, which the overlay does not hold: the Image Builder copies FILES dereferencing links (cp -L) and would fail on it`,
        hint: "add the target to the overlay, or create the link in a first_boot script (ln -s) if the target comes from a package",
      }
    case "loop":
      return {
        message: `${link} loops (it leads to itself or to a directory that contains it)`,
        hint: "point the link at a file, or at a directory that does not contain the link",
      }
  }
}

/** The link problem of a profile as a located profile error. */
export const linkProblemError = (profile: ResolvedProfile, problem: LinkProblem): ProfileInvalidError => {
  const { message, hint } = describeLinkProblem(problem)
  return new ProfileInvalidError({
    code: problem.kind === "dangling" ? "profile_link_dangling" : "profile_path_escape",
    diagnostics: [
      { file: `profiles/${profile.id}.yaml`, line: 1, column: 1, path: "overlay", message, hint },
    ],
  })
}
