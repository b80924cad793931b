import { Effect, Fiber, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { listEligibleDevices } from "../flash/eligibleDevices.js"
import { flashImage } from "../flash/flashOperation.js"
import { FlashReportSchema } from "../operations/flash.js"
import { BadRequestError, FlashDisabledError } from "./httpErrors.js"
import { decodeInput, errorResponse, json, jsonResponse, type Route, type ServerInfo } from "./route.js"

/*
 * Flashing from the web exists only when the server was started with --allow-flash, offers only devices
 * that pass the pre-flight checks and are on the configuration's allow-list (flash.allowDevices), and
 * writes only when the request repeats the device path as its confirmation.
 */

const EligibleDeviceSchema = Schema.Struct({
  path: Schema.String,
  name: Schema.String,
  sizeBytes: Schema.Int,
  model: Schema.optional(Schema.String),
  serial: Schema.optional(Schema.String),
  removable: Schema.Boolean,
  isLoop: Schema.Boolean,
})

const FlashRequestSchema = Schema.Struct({
  source: Schema.String.pipe(Schema.minLength(1)).annotations({
    description: "An artifact id (`<key>/<name>` or a SHA-256 prefix) or a profile `id[@rev]`",
  }),
  device: Schema.String.pipe(Schema.minLength(1)).annotations({
    description: "A device from /api/flash/devices",
  }),
  confirm: Schema.optional(
    Schema.String.annotations({
      description: "The device path typed again: without it the answer is the plan and nothing is written",
    }),
  ),
  wipe: Schema.optional(Schema.Boolean),
  verify: Schema.optional(Schema.Literal("full", "none")),
})

const requireFlash = (server: ServerInfo) =>
  server.allowFlash ? Effect.void : Effect.fail(new FlashDisabledError())

export const flashRoutes: ReadonlyArray<Route> = [
  {
    method: "GET",
    path: "/api/flash/devices",
    describe: (schemas) => ({
      operationId: "flashDevices",
      tags: ["flash"],
      summary: "Devices a card may be written to (only with `owrt serve --allow-flash`)",
      responses: {
        200: jsonResponse(
          "Eligible devices",
          schemas.of(Schema.Struct({ devices: Schema.Array(EligibleDeviceSchema) })),
        ),
        404: errorResponse("Flashing is disabled on this server (flash_disabled)"),
      },
    }),
    handle: ({ server }) =>
      Effect.gen(function* () {
        yield* requireFlash(server)
        const config = yield* AppConfig
        return json({
          devices: listEligibleDevices({ allowLoop: server.allowLoop, allowList: config.flash.allowDevices }),
        })
      }),
  },
  {
    method: "POST",
    path: "/api/flash",
    describe: (schemas) => ({
      operationId: "flash",
      tags: ["flash"],
      summary:
        "Plan a flash (no `confirm`), or write the card when `confirm` repeats the device path; flushed and read back unless verify is none",
      requestBody: {
        required: true,
        content: { "application/json": { schema: schemas.of(FlashRequestSchema) } },
      },
      responses: {
        200: jsonResponse("The plan, or what was written", schemas.of(FlashReportSchema)),
        404: errorResponse("Flashing is disabled on this server (flash_disabled)"),
        409: errorResponse("Refused by a safety check (flash_*), or the card read back differently"),
      },
    }),
    handle: ({ body, context, server }) =>
      Effect.gen(function* () {
        yield* requireFlash(server)
        const request = yield* decodeInput(FlashRequestSchema, "flash request")(body)
        if (request.confirm !== undefined && request.confirm !== request.device) {
          return yield* new BadRequestError({
            detail: `confirm must repeat the device path exactly (${request.device}); nothing was written`,
          })
        }
        // A write runs to its end even when the client goes away: a half-written card helps nobody.
        const flashing = yield* Effect.forkDaemon(
          flashImage({
            source: request.source,
            // A web client names store images and profiles, never a file on the server.
            allowFiles: false,
            device: request.device,
            force: request.confirm !== undefined,
            wipe: request.wipe,
            verify: request.verify,
            allowLoop: server.allowLoop,
            requireAllowList: true,
            requestedBy: context.requestedBy,
          }),
        )
        return json(yield* Fiber.join(flashing))
      }),
  },
]
