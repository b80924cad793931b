import { existsSync, realpathSync, statSync } from "node:fs"
import { basename, dirname, resolve } from "node:path"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import { AppConfig } from "../../config/appConfig.js"
import { type Diagnostic, NotFoundError, type ProfileErrorCode, ProfileInvalidError } from "../../errors.js"
import { profileJsonSchema } from "../../profile/profileJsonSchema.js"
import { ProfileRepository, type ProfileView } from "../../profile/profileRepository.js"
import type { ResolvedRaspios } from "../../profile/raspiosSchema.js"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, printJson, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

const shortHash = (hash: string) => hash.slice(0, 12)

/** `home-ap@3`; a revision not recorded yet has no number: `home-ap (not recorded)`. */
export const revisionName = (profile: string, seq: number | null): string =>
  seq === null ? `${profile} (not recorded)` : `${profile}@${seq}`

/** Said under a listing that shows a revision without a number. */
export const unrecordedNote = "a revision gets its number when realize, audit or flash first uses it"

/**
 * After a listing over every profile (`profiles list`, `plan --all`): the profiles that do not resolve,
 * each with its located error on stderr (with `--json` they are in the document's `errors`), and exit 3.
 */
export const reportProfileErrors = (
  json: boolean,
  errors: ReadonlyArray<{
    readonly profile: string
    readonly code: string
    readonly message: string
    readonly exitCode: number
  }>,
): Effect.Effect<void> =>
  Effect.sync(() => {
    const [first] = errors
    if (first === undefined) return
    if (!json) {
      for (const e of errors) process.stderr.write(`owrt: ${e.profile}: error[${e.code}]: ${e.message}\n`)
    }
    process.exitCode = first.exitCode
  })

// Loaded when a command runs, so that other commands start without their schemas.
const listProfilesModule = Effect.promise(() => import("../../operations/listProfiles.js"))
const getProfileModule = Effect.promise(() => import("../../operations/getProfile.js"))
const historyModule = Effect.promise(() => import("../../operations/profileHistory.js"))
const revisionModule = Effect.promise(() => import("../../operations/revision.js"))

const list = Command.make("list", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { listProfiles } = yield* listProfilesModule
      const listed = yield* listProfiles.run({}, cliCaller)
      yield* emit(options.json, listed, ({ profiles, errors }) =>
        profiles.length === 0 && errors.length === 0
          ? ["no profiles (add YAML files under profiles/)"]
          : [
              ...table([
                ["PROFILE", "REV", "RELEASE", "TARGET", "DEVICE", "TAGS"],
                ...profiles.map((p) => [
                  `${p.id}${p.abstract ? " (abstract)" : ""}`,
                  `${p.revision.seq ?? "-"} ${shortHash(p.revision.hash)}`,
                  p.release ?? "-",
                  p.target ?? "-",
                  p.device ?? "-",
                  p.tags.join(",") || "-",
                ]),
              ]),
              ...(profiles.some((p) => p.revision.seq === null)
                ? ["", `REV -: not recorded yet (${unrecordedNote})`]
                : []),
            ],
      )
      yield* reportProfileErrors(options.json, listed.errors)
    }),
  ),
).pipe(Command.withDescription("List the profiles with their current revision"))

const profileArg = Args.text({ name: "profile" }).pipe(
  Args.withDescription(
    "Profile id, optionally with @rev: a revision number, a revision hash prefix or a git commit",
  ),
)

/** What `profiles show` says of a Raspberry Pi OS profile's own settings (docs/raspberry-pi.md). */
const raspiosLines = (
  r: ResolvedRaspios,
  p: {
    readonly packages: ReadonlyArray<string>
    readonly files: ReadonlyArray<{ path: string; secret?: string | undefined }>
    readonly first_boot: ReadonlyArray<{ name: string }>
  },
): ReadonlyArray<string> => {
  const base =
    r.base.url !== null
      ? `${r.base.url} (extracted sha256 ${r.base.extract_sha256 ?? "?"})`
      : `${r.base.os ?? "?"} of ${r.base.release_date ?? "?"}${r.base.os_list === null ? "" : ` from ${r.base.os_list}`}`
  return [
    "  kind:     raspios",
    `  base:     ${base}`,
    `  hostname: ${r.hostname ?? "-"}`,
    ...(r.timezone || r.locale || r.keyboard
      ? [
          `  locale:   ${[r.timezone, r.locale, r.keyboard && `keyboard ${r.keyboard}`].filter(Boolean).join(", ")}`,
        ]
      : []),
    `  users:    ${
      r.users
        .map(
          (u) =>
            `${u.name} (${u.password_hash !== null ? "password hash" : u.password_secret !== null ? `password secret ${u.password_secret}` : "password locked"}, ${u.ssh_authorized_keys.length} SSH key(s)${u.sudo ? ", sudo" : ""})`,
        )
        .join(", ") || "-"
    }`,
    `  ssh:      ${r.ssh.enabled ? `on, port ${r.ssh.port}, password login ${r.ssh.password_authentication ? "on" : "off"}` : "off"}`,
    `  wifi:     ${r.wifi === null ? "-" : `${r.wifi.ssid} (${r.wifi.country}, passphrase secret ${r.wifi.psk_secret})`}`,
    `  wireguard: ${r.wireguard === null ? "-" : `wg0 (secret ${r.wireguard.config_secret})`}`,
    `  firewall: ${r.firewall === undefined ? "-" : `incoming dropped except ${r.firewall.allow.join(", ") || "replies"}`}`,
    `  packages: ${p.packages.join(" ") || "-"}${r.python_packages.length > 0 ? `; pip: ${r.python_packages.join(" ")}` : ""}`,
    `  files:    ${p.files.map((f) => `${f.path}${f.secret ? ` (secret ${f.secret})` : ""}`).join(", ") || "-"}`,
    `  first boot: ${p.first_boot.map((s) => s.name).join(", ") || "-"}`,
    `  images:   ${r.compression.map((c) => `.img.${c}`).join(", ")}, .bmap`,
  ]
}

const show = Command.make("show", { profile: profileArg, json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { getProfile } = yield* getProfileModule
      const shown = yield* getProfile.run({ profile: options.profile }, cliCaller)
      const { revision: record, profile: p } = shown
      yield* emit(options.json, shown, () => [
        `${revisionName(p.id, record.seq)}  ${record.hash}${record.source === "worktree" ? "" : `  (${record.source})`}`,
        ...(p.description ? [`  ${p.description}`] : []),
        ...(p.parents.length > 0 ? [`  extends:  ${p.parents.join(" → ")}`] : []),
        ...(p.abstract ? ["  abstract: yes (a parent only; not built)"] : []),
        ...(p.raspios === undefined
          ? [
              `  release:  ${p.release ?? "-"}`,
              `  target:   ${p.target ?? "-"}`,
              `  device:   ${p.device ?? "-"}`,
              `  packages: ${p.packages.join(" ") || "-"}`,
              `  overlay:  ${p.overlay.length} file(s)`,
              ...p.overlay.map(
                (e) =>
                  `    /${e.path}  ${e.kind === "symlink" ? `-> ${e.linkTarget}` : `${e.mode} ${e.size} B`}`,
              ),
              `  files:    ${p.files.map((f) => `${f.path}${f.secret ? ` (secret ${f.secret})` : ""}`).join(", ") || "-"}`,
              `  first boot: ${p.first_boot.map((s) => s.name).join(", ") || "-"}`,
              `  disabled services: ${p.disabled_services.join(" ") || "-"}`,
              `  rootfs size: ${p.rootfs_size === null ? "builder default" : `${p.rootfs_size} MB`}`,
              ...(p.filesystem === undefined ? [] : [`  filesystem: ${p.filesystem}`]),
              ...(p.image_name === undefined ? [] : [`  image name: ${p.image_name}`]),
              ...(p.repositories === undefined
                ? []
                : [
                    `  feeds (${p.repositories.mode}): ${p.repositories.feeds.map((f) => `${f.name} ${f.url}`).join(", ") || "-"}`,
                    `  feed keys: ${p.repositories.keys.length}`,
                  ]),
            ]
          : raspiosLines(p.raspios, p)),
        `  tags:     ${p.tags.join(", ") || "-"}`,
        `  secrets:  ${
          Object.entries(p.secrets)
            .map(([name, ref]) => `${name} (${ref})`)
            .join(", ") || "-"
        }`,
        `  flash:    image ${p.flash.image}, verify ${p.flash.verify}${p.flash.wipe ? ", wipe" : ""}`,
      ])
    }),
  ),
).pipe(Command.withDescription("Show a profile as resolved (extends applied), at a revision"))

const idsArg = Args.text({ name: "profile" }).pipe(
  Args.repeated,
  Args.withDescription(
    "Profiles to validate: ids, or YAML files (a file outside the profiles directory is checked as if it were in it); all when none given",
  ),
)

/** A file path, as opposed to a profile id: it names a file, or looks like a path. */
const looksLikePath = (arg: string) => arg.includes("/") || /\.ya?ml$/.test(arg)

const sameDirectory = (a: string, b: string) => {
  try {
    return realpathSync(a) === realpathSync(b)
  } catch {
    return false
  }
}

type Validated =
  | { readonly id: string; readonly entry: ProfileView }
  | { readonly id: string; readonly file: string; readonly hash: string }
  | { readonly id: string; readonly error: ProfileInvalidError }

const validate = Command.make(
  "validate",
  { profiles: idsArg, json: jsonOption, ...configOptions },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const repository = yield* ProfileRepository
        const config = yield* AppConfig
        const known = yield* repository.ids()
        const idOfFile = (path: string) => basename(path).replace(/\.ya?ml$/, "")
        const results: Array<Validated> = []
        const invalid = (id: string) => (error: ProfileInvalidError) => Effect.succeed({ id, error })
        for (const arg of options.profiles.length > 0 ? options.profiles : known) {
          const path = resolve(arg)
          const isFile = existsSync(path) && statSync(path).isFile()
          if (isFile && !sameDirectory(dirname(path), config.profiles)) {
            // A file elsewhere: checked against the project's profiles, recorded nowhere.
            const id = idOfFile(path)
            const outcome = yield* repository.resolveFile(arg).pipe(
              Effect.map((revision): Validated => ({ id, file: arg, hash: revision.hash })),
              Effect.catchTags({
                ProfileInvalidError: invalid(id),
                ProfileMissing: () => Effect.die(`the profile file ${arg} vanished`),
              }),
            )
            results.push(outcome)
            continue
          }
          const id = isFile || looksLikePath(arg) ? idOfFile(arg) : arg
          if (!isFile && looksLikePath(arg) && !known.includes(id)) {
            return yield* new NotFoundError({
              what: arg,
              detail: `no such file, and no profile \`${id}\` in ${config.profiles}`,
            })
          }
          const outcome = yield* repository.inspect(id).pipe(
            Effect.map((entry): Validated => ({ id, entry })),
            Effect.catchTag("ProfileInvalidError", invalid(id)),
          )
          results.push(outcome)
        }
        const failed = results.flatMap((r) => ("error" in r ? [r.error] : []))
        const { renamedPackageWarnings } = yield* Effect.promise(() => import("../../asu/packageChanges.js"))
        const warningsOf = (r: Validated) =>
          "entry" in r && r.entry.revision.profile.release !== null
            ? renamedPackageWarnings(r.entry.revision.profile.release, r.entry.revision.profile.packages)
            : []
        const { seenRevisionJson } = yield* revisionModule
        if (!options.json || failed.length === 0) {
          yield* emit(
            options.json,
            {
              valid: failed.length === 0,
              profiles: results.flatMap(
                (r): ReadonlyArray<Record<string, unknown>> =>
                  "entry" in r
                    ? [{ id: r.id, revision: seenRevisionJson(r.entry), warnings: warningsOf(r) }]
                    : "file" in r
                      ? [{ id: r.id, file: r.file, hash: r.hash }]
                      : [],
              ),
            },
            () =>
              results.map((r) =>
                "entry" in r
                  ? [
                      `✓ ${r.id}  rev ${r.entry.record?.seq ?? "- (not recorded)"} ${shortHash(r.entry.revision.hash)}`,
                      ...warningsOf(r).map((w) => `  warning[${w.code}]: ${w.message}`),
                    ].join("\n")
                  : "file" in r
                    ? `✓ ${r.id}  ${r.file} (not in the profiles directory, not recorded) ${shortHash(r.hash)}`
                    : `✗ ${r.id}  (${r.error.diagnostics.length} problem(s), listed below)`,
              ),
          )
        }
        const [first] = failed
        if (first !== undefined) {
          const diagnostics: Array<Diagnostic> = failed.flatMap((e) => e.diagnostics)
          const code: ProfileErrorCode = first.code
          return yield* new ProfileInvalidError({ code, diagnostics })
        }
      }),
    ),
).pipe(Command.withDescription("Check profiles: schema, extends, overlays, secret references"))

const history = Command.make(
  "history",
  { profile: Args.text({ name: "profile" }), json: jsonOption, ...configOptions },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const { profileHistory } = yield* historyModule
        yield* emit(
          options.json,
          yield* profileHistory.run({ profile: options.profile }, cliCaller),
          (value) =>
            value.revisions.length === 0
              ? [`no revision of ${value.id} recorded yet (${unrecordedNote})`]
              : table([
                  ["REV", "HASH", "FIRST SEEN", "SOURCE"],
                  ...value.revisions.map((r) => [
                    String(r.seq),
                    shortHash(r.hash),
                    r.firstSeen.replace("T", " ").replace(/\.\d+Z$/, "Z"),
                    r.source.startsWith("git:") ? `git ${r.source.slice(4, 16)}` : r.source,
                  ]),
                ]),
        )
      }),
    ),
).pipe(
  Command.withDescription(
    "List every recorded revision of a profile (use them as <profile>@<rev>); looking records none",
  ),
)

const schema = Command.make("schema", { json: jsonOption }, () => printJson(profileJsonSchema())).pipe(
  Command.withDescription("Print the JSON Schema of profile files, for editors"),
)

export const profilesCommand = Command.make("profiles").pipe(
  Command.withDescription("Inspect and validate device profiles"),
  Command.withSubcommands([list, show, validate, history, schema]),
)
