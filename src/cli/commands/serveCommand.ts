import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { configOptions, toConfigFlags } from "../commonOptions.js"

export const serveCommand = Command.make(
  "serve",
  {
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription(
        "Address to listen on (default: 127.0.0.1); anything but loopback needs --token",
      ),
    ),
    port: Options.integer("port").pipe(
      Options.withDefault(8088),
      Options.withDescription(
        "Port to listen on (default: 8088); 0 picks a free one (the `listening:` line says which)",
      ),
    ),
    token: Options.text("token").pipe(
      Options.optional,
      Options.withDescription(
        "Require `Authorization: Bearer <token>` on every API request (OWRT_SERVE_TOKEN keeps it out of `ps`)",
      ),
    ),
    allowFlash: Options.boolean("allow-flash").pipe(
      Options.withDescription("Let web clients write cards (only devices in flash.allowDevices)"),
    ),
    allowLoop: Options.boolean("allow-loop").pipe(
      Options.withDescription("With --allow-flash: loop devices count as cards (lab and test use)"),
    ),
    maxJobs: Options.integer("max-jobs").pipe(
      Options.withDefault(2),
      Options.withDescription(
        "Realize jobs running at once (default: 2; more wait, queued); make runs are limited by --jobs",
      ),
    ),
    asuAllowDefaults: Options.boolean("asu-allow-defaults").pipe(
      Options.withDescription(
        "ASU: accept `defaults` (first-boot scripts) in build requests (default: refused)",
      ),
    ),
    asuRepositoryAllow: Options.text("asu-repository-allow").pipe(
      Options.repeated,
      Options.withDescription(
        "ASU: a URL prefix request `repositories` may use (repeatable; default: none allowed)",
      ),
    ),
    asuCorsOrigin: Options.text("asu-cors-origin").pipe(
      Options.repeated,
      Options.withDescription(
        "ASU: a browser origin allowed to call the ASU routes (repeatable; default: any)",
      ),
    ),
    asuConcurrency: Options.integer("asu-concurrency").pipe(
      Options.withDefault(1),
      Options.withDescription("ASU: builds run at once (default: 1)"),
    ),
    asuMaxPendingJobs: Options.integer("asu-max-pending-jobs").pipe(
      Options.withDefault(200),
      Options.withDescription("ASU: waiting builds beyond which requests get 529 (default: 200)"),
    ),
    asuJobTimeout: Options.integer("asu-job-timeout").pipe(
      Options.withDefault(600),
      Options.withDescription("ASU: seconds a build may take (default: 600)"),
    ),
    asuFailureTtl: Options.integer("asu-failure-ttl").pipe(
      Options.withDefault(3600),
      Options.withDescription(
        "ASU: seconds a failed result is kept and answered (default: 3600; 0 retries at once)",
      ),
    ),
    downloads: Options.text("downloads").pipe(
      Options.optional,
      Options.withDescription(
        "Serve this directory under /downloads/ (a download tree, and the Firmware Selector's pages): one origin, no CORS",
      ),
    ),
    asuContact: Options.text("asu-contact").pipe(
      Options.withDefault(""),
      Options.withDescription("ASU: contact shown in overview.json"),
    ),
    ...configOptions,
  },
  (options) =>
    // Loaded on demand: no other command should pay for the web server at startup.
    Effect.flatMap(
      Effect.promise(() => import("../../web/serveApp.js")),
      ({ serve }) =>
        serve({
          host: options.host,
          port: options.port,
          // An empty token (flag or variable) is no token: `serve` refuses it rather than match it.
          token: Option.getOrUndefined(options.token) ?? (process.env.OWRT_SERVE_TOKEN || undefined),
          allowFlash: options.allowFlash,
          allowLoop: options.allowLoop,
          maxJobs: Math.max(1, options.maxJobs),
          asu: {
            allowDefaults: options.asuAllowDefaults,
            repositoryAllowList: options.asuRepositoryAllow,
            corsOrigins: options.asuCorsOrigin,
            concurrency: Math.max(1, options.asuConcurrency),
            maxPendingJobs: Math.max(0, options.asuMaxPendingJobs),
            jobTimeout: Math.max(1, options.asuJobTimeout),
            buildFailureTtl: Math.max(0, options.asuFailureTtl),
            contact: options.asuContact,
            downloads: Option.getOrUndefined(options.downloads),
          },
          config: toConfigFlags(options),
        }),
    ),
).pipe(
  Command.withDescription(
    "Serve the HTTP API (OpenAPI at /openapi.json) and the web UI; realize jobs, downloads, flashing when allowed",
  ),
)
