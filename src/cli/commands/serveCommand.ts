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
          config: toConfigFlags(options),
        }),
    ),
).pipe(
  Command.withDescription(
    "Serve the HTTP API (OpenAPI at /openapi.json) and the web UI; realize jobs, downloads, flashing when allowed",
  ),
)
