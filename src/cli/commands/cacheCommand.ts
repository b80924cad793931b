import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { formatBytes } from "../../progress/terminalProgress.js"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when a cache command runs: tar and the registry client stay out of every other command.
const cacheModule = Effect.promise(() => import("../../operations/cache.js"))

const profiles = Args.text({ name: "profile" }).pipe(
  Args.repeated,
  Args.withDescription("Profiles: id or id@rev (a revision number, hash prefix or git commit)"),
)

const keygen = Command.make(
  "keygen",
  {
    name: Args.text({ name: "name" }).pipe(Args.withDescription("Key name, e.g. ci-1")),
    directory: Options.text("dir").pipe(
      Options.optional,
      Options.withDescription("Where to write NAME.sec and NAME.pub (default: here)"),
    ),
    json: jsonOption,
  },
  // Needs neither the store nor the database: it does not open them (nor create ./store).
  (options) =>
    Effect.gen(function* () {
      const { writeKeyPair } = yield* cacheModule
      const made = yield* writeKeyPair({
        name: options.name,
        directory: Option.getOrUndefined(options.directory),
      })
      yield* emit(options.json, made, (k) => [
        `secret key: ${k.secretKeyFile} (keep it private; cache.signingKey: "file:${k.secretKeyFile}")`,
        `public key: ${k.publicKeyFile}`,
        `add to cache.trustedKeys where nodes are substituted: "${k.publicKey}"`,
      ])
    }),
).pipe(Command.withDescription("Make a signing key pair for the shared cache (Ed25519, name:base64)"))

const push = Command.make(
  "push",
  {
    profiles,
    all: Options.boolean("all").pipe(
      Options.withDescription("Every store path (secrets-holding ones never)"),
    ),
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const { cachePush } = yield* cacheModule
        const report = yield* cachePush.run({ profiles: options.profiles, all: options.all }, cliCaller)
        yield* emit(options.json, report, (r) => [
          ...r.nodes.map((n) => `${n.status.padEnd(8)} ${n.kind.padEnd(17)} ${n.key}`),
          `${r.totals.pushed} pushed, ${r.totals.present} already in ${r.registry}, ${r.totals.skipped} skipped (secrets)`,
        ])
      }),
    ),
).pipe(Command.withDescription("Push realized profiles (or --all) to the shared cache, signed"))

const pull = Command.make(
  "pull",
  {
    profiles,
    all: Options.boolean("all").pipe(Options.withDescription("Every concrete profile")),
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const { cachePull } = yield* cacheModule
        const report = yield* cachePull.run({ profiles: options.profiles, all: options.all }, cliCaller)
        yield* emit(options.json, report, (r) => [
          ...r.pulled.map((p) => `${p.profile}@${p.rev}  ${p.cached ? "already here" : "pulled"}  ${p.key}`),
          ...r.failures.map((f) => `${f.profile}  error[${f.error.code}]: ${f.error.message}`),
        ])
        const [first] = report.failures
        if (first) process.exitCode = first.error.exitCode
      }),
    ),
).pipe(
  Command.withDescription("Fetch profiles (or --all) from the shared cache into the store, building nothing"),
)

const ls = Command.make("ls", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { cacheList } = yield* cacheModule
      yield* emit(options.json, yield* cacheList.run({}, cliCaller), (r) =>
        r.registries.flatMap((reg) => [
          `${reg.registry}: ${reg.entries.length} node(s)`,
          ...table([
            ["KEY", "KIND", "SIZE", "SIGNED BY", "HERE"],
            ...reg.entries.map((e) => [
              e.key,
              e.kind,
              formatBytes(e.size),
              e.signedBy ?? "-",
              e.local ? "yes" : "no",
            ]),
          ]),
        ]),
      )
    }),
  ),
).pipe(Command.withDescription("List the nodes the shared caches hold"))

const verify = Command.make("verify", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { cacheVerify } = yield* cacheModule
      const report = yield* cacheVerify.run({}, cliCaller)
      yield* emit(options.json, report, (r) => [
        ...r.problems.map((p) => `${p.registry}:${p.key}  error[${p.code}]: ${p.message}`),
        `${r.checked} node(s) checked, ${r.problems.length} refused`,
      ])
      // Refused entries are an integrity failure, as `store verify`'s drift is.
      if (report.problems.length > 0) process.exitCode = 6
    }),
  ),
).pipe(
  Command.withDescription(
    "Re-check what the shared caches hold against their signatures, digests and trees (exit 6 when one fails)",
  ),
)

export const cacheCommand = Command.make("cache").pipe(
  Command.withDescription("The shared cache: OCI registries holding signed node outputs (docs/cache.md)"),
  Command.withSubcommands([keygen, push, pull, ls, verify]),
)
