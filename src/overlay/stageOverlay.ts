import { chmodSync, lstatSync, lutimesSync, mkdirSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { type GitError, InternalError, ProfileInvalidError } from "../errors.js"
import type { ProfileRevision } from "../profile/resolveProfile.js"
import { referencedSecrets, secretPlaceholder } from "../profile/secrets.js"
import type { Canonical } from "../text/canonicalJson.js"
import { sha256Hex } from "../text/digest.js"
import { findLinkProblem, linkProblemError } from "./overlayLinks.js"

/*
 * stage-overlay: the tree passed to the Image Builder as FILES=. Overlay directory files, inline files
 * (secrets substituted) and first-boot scripts under etc/uci-defaults/. Its key covers the staged content
 * only: files by digest, and secrets by keyed fingerprint, never by value.
 */

export const stageOverlaySchema = 1

const lstatOrUndefined = (path: string) => {
  try {
    return lstatSync(path)
  } catch {
    return undefined
  }
}

const trySync = (f: () => void) => Effect.try({ try: f, catch: (cause) => new InternalError({ cause }) })

/** Every file time in a staged tree: fixed, so the images built from it do not depend on when it was staged. */
const stagedTime = new Date(0)

/** Names of the secrets a profile's build uses: in its staged tree and in its feed URLs. */
export const secretsUsed = (revision: ProfileRevision): ReadonlyArray<string> => {
  const names = new Set<string>()
  for (const file of revision.profile.files) {
    if (file.secret !== undefined) names.add(file.secret)
    for (const name of referencedSecrets(file.content ?? "")) names.add(name)
  }
  for (const script of revision.profile.first_boot)
    for (const name of referencedSecrets(script.script)) names.add(name)
  // A private feed's credentials (`https://${secret:NAME}@host/…`): make-image writes them, and the build log
  // is redacted of them.
  for (const feed of revision.profile.repositories?.feeds ?? [])
    for (const name of referencedSecrets(feed.url)) names.add(name)
  return [...names].sort()
}

/**
 * What the stage-overlay key covers: the staged content only — files by digest, and secrets by keyed
 * fingerprint, never by value. A profile whose links would make the Image Builder copy anything but the
 * staged tree into the image (see overlayLinks.ts) has no key: it is refused here, so plan refuses it too.
 */
export const stageOverlayKeyInputs = (
  revision: ProfileRevision,
  fingerprints: Readonly<Record<string, string>>,
): Effect.Effect<{ readonly [k: string]: Canonical }, ProfileInvalidError> => {
  const problem = findLinkProblem(revision.profile)
  if (problem) return Effect.fail(linkProblemError(revision.profile, problem))
  return Effect.succeed({
    overlay: revision.profile.overlay.map((e) => ({
      path: e.path,
      kind: e.kind,
      mode: e.mode,
      sha256: e.sha256,
      linkTarget: e.linkTarget,
    })),
    files: revision.profile.files.map((f) => ({
      path: f.path,
      mode: f.mode,
      content: f.content,
      secret: f.secret,
    })),
    firstBoot: revision.profile.first_boot.map((s) => ({ name: s.name, script: s.script })),
    secrets: fingerprints,
  })
}

const substitute = (text: string, values: ReadonlyMap<string, string>) =>
  text.replace(secretPlaceholder, (_, name: string) => values.get(name) ?? "")

/** Writes the staged tree of `revision` into `output` (an empty directory). */
export const stageOverlay = (
  revision: ProfileRevision,
  secretValues: ReadonlyMap<string, string>,
  output: string,
): Effect.Effect<void, InternalError | GitError | ProfileInvalidError> =>
  Effect.gen(function* () {
    const problem = findLinkProblem(revision.profile)
    if (problem) return yield* linkProblemError(revision.profile, problem)
    const written: Array<string> = []
    const throughLink = (relative: string, through: string) =>
      new ProfileInvalidError({
        code: "profile_path_escape",
        diagnostics: [
          {
            file: `profiles/${revision.profile.id}.yaml`,
            line: 1,
            column: 1,
            path: "files",
            message: `/${relative} would be written through /${through}, which the overlay makes a link or a file`,
            hint: "write the file at the link's target path instead, or drop the link from the overlay",
          },
        ],
      })
    /**
     * Creates `relative` inside `output` without ever following a link: the overlay may hold links with
     * absolute targets (paths inside the image), which on this machine point at the host's files.
     */
    const ensureParents = (relative: string) =>
      Effect.gen(function* () {
        const parts = relative.split("/")
        let current = output
        for (let i = 0; i < parts.length - 1; i++) {
          current = join(current, parts[i] as string)
          const stat = lstatOrUndefined(current)
          if (stat === undefined) yield* trySync(() => mkdirSync(current))
          else if (!stat.isDirectory()) return yield* throughLink(relative, parts.slice(0, i + 1).join("/"))
        }
      })
    const write = (relative: string, content: Uint8Array | string, mode: number) =>
      Effect.gen(function* () {
        yield* ensureParents(relative)
        const full = join(output, relative)
        const existing = lstatOrUndefined(full)
        if (existing?.isDirectory()) return yield* throughLink(relative, relative)
        yield* trySync(() => {
          // A later layer replaces an earlier entry (an overlay file or link) at the same path.
          if (existing) unlinkSync(full)
          writeFileSync(full, content, { flag: "wx", mode: 0o600 })
          chmodSync(full, mode)
          written.push(full)
        })
      })

    for (const entry of revision.profile.overlay) {
      if (entry.kind === "symlink") {
        const target = entry.linkTarget ?? ""
        yield* ensureParents(entry.path)
        yield* Effect.try({
          try: () => {
            const full = join(output, entry.path)
            symlinkSync(target, full)
            lutimesSync(full, stagedTime, stagedTime)
          },
          catch: (cause) => new InternalError({ cause }),
        })
        continue
      }
      const bytes = yield* revision.readOverlay(entry.path)
      if (bytes !== undefined && sha256Hex(bytes) !== entry.sha256) {
        return yield* new InternalError({
          cause: `overlay file ${entry.path} of ${revision.profile.id} changed while building; run again`,
        })
      }
      if (bytes === undefined) {
        return yield* new InternalError({
          cause: `overlay file ${entry.path} of ${revision.profile.id} is not readable`,
        })
      }
      yield* write(entry.path, bytes, entry.mode)
    }
    for (const file of revision.profile.files) {
      const content =
        file.secret !== undefined
          ? (secretValues.get(file.secret) ?? "")
          : substitute(file.content ?? "", secretValues)
      yield* write(file.path.replace(/^\/+/, ""), content, Number.parseInt(file.mode, 8))
    }
    for (const script of revision.profile.first_boot) {
      yield* write(`etc/uci-defaults/${script.name}`, substitute(script.script, secretValues), 0o755)
    }
    yield* Effect.try({
      try: () => {
        for (const path of written) lutimesSync(path, stagedTime, stagedTime)
      },
      catch: (cause) => new InternalError({ cause }),
    })
  })
