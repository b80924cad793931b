import { Effect, Fiber, FiberSet, Schema } from "effect"
import { FlashReportSchema, flash } from "../operations/flash.js"
import { flashDevices } from "../operations/flashDevices.js"
import { listFlashes } from "../operations/listFlashes.js"
import { FlashProgressSchema } from "./flashProgress.js"
import { BadRequestError, FlashDisabledError } from "./httpErrors.js"
import {
  decodeInput,
  errorResponse,
  json,
  jsonResponse,
  operationRoute,
  type Route,
  type ServerInfo,
} from "./route.js"

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

const decodeFlashRequest = decodeInput(FlashRequestSchema, "flash request")

const requireFlash = (server: ServerInfo) =>
  server.allowFlash ? Effect.void : Effect.fail(new FlashDisabledError())

const flashDisabledResponse = errorResponse("Flashing is disabled on this server (flash_disabled)")

/** A route that answers only on a server started with --allow-flash (404 flash_disabled otherwise). */
const whenFlashAllowed = (route: Route): Route => ({
  ...route,
  describe: (schemas) => {
    const described = route.describe(schemas)
    const responses = typeof described.responses === "object" ? described.responses : {}
    return { ...described, responses: { ...responses, 404: flashDisabledResponse } }
  },
  handle: (input) => Effect.zipRight(requireFlash(input.server), route.handle(input)),
})

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
        404: flashDisabledResponse,
      },
    }),
    handle: ({ context, server }) =>
      Effect.gen(function* () {
        yield* requireFlash(server)
        const { devices } = yield* flashDevices.run({ allowLoop: server.allowLoop }, context)
        return json({ devices })
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
        404: flashDisabledResponse,
        409: errorResponse("Refused by a safety check (flash_*), or the card read back differently"),
      },
    }),
    handle: ({ body, context, server }) =>
      Effect.gen(function* () {
        yield* requireFlash(server)
        const request = yield* decodeFlashRequest(body)
        if (request.confirm !== undefined && request.confirm !== request.device) {
          return yield* new BadRequestError({
            detail: `confirm must repeat the device path exactly (${request.device}); nothing was written`,
          })
        }
        // A write runs to its end even when the client goes away: a half-written card helps nobody.
        // The flash operation takes store images and profiles, never a file on the server, and only devices
        // on the configuration's allow-list.
        // It runs in the server's task set, so a shutdown waits for it (and its flash record) to finish.
        const run = flash.run(
          {
            source: request.source,
            device: request.device,
            force: request.confirm !== undefined,
            wipe: request.wipe,
            verify: request.verify,
            allowLoop: server.allowLoop,
          },
          context,
        )
        // A write reports how far it has got (GET /api/flash/progress); a plan writes nothing.
        const flashing = yield* FiberSet.run(
          server.tasks,
          (request.confirm === undefined
            ? run
            : server.flashProgress.watch({ device: request.device, source: request.source }, run)
          ).pipe(Effect.uninterruptible),
        )
        return json(yield* Fiber.join(flashing))
      }),
  },
  {
    method: "GET",
    path: "/api/flash/progress",
    describe: (schemas) => ({
      operationId: "flashProgress",
      tags: ["flash"],
      summary:
        "Card writes running on this server, each with what it is doing and how many bytes are done (only with `owrt serve --allow-flash`)",
      responses: {
        200: jsonResponse(
          "The running writes, oldest first",
          schemas.of(Schema.Struct({ flashes: Schema.Array(FlashProgressSchema) })),
        ),
        404: flashDisabledResponse,
      },
    }),
    handle: ({ server }) =>
      Effect.gen(function* () {
        yield* requireFlash(server)
        return json({ flashes: server.flashProgress.list() })
      }),
  },
  // Who flashed what onto which card (users, serials): as private as flashing itself.
  whenFlashAllowed(
    operationRoute({ method: "GET", path: "/api/flashes", tag: "flash", operation: listFlashes }),
  ),
]
