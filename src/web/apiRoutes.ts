import { Effect, Schema, Stream } from "effect"
import { NotFoundError } from "../errors.js"
import { buildLog, requireBuild } from "../operations/buildLog.js"
import {
  audit,
  getBuild,
  getProfile,
  listArtifacts,
  listBuilders,
  listBuilds,
  listProfiles,
  listStore,
  plan,
  profileHistory,
  realize,
  realizeBatch,
  storeVerify,
} from "../operations/index.js"
import { type ProfileErrorJson, ProfileErrorSchema, profileErrorJson } from "../operations/listProfiles.js"
import { maxBatchProfiles } from "../operations/realizeBatch.js"
import { selectProfiles } from "../operations/selection.js"
import { BadRequestError } from "./httpErrors.js"
import { JobEventSchema, type JobJson, JobSchema } from "./jobs/job.js"
import { decodeInput, errorResponse, json, jsonResponse, operationRoute, type Route } from "./route.js"
import { artifactFile, storeFile } from "./storeFiles.js"

const JobAcceptedSchema = Schema.Struct({
  job: JobSchema,
  joined: Schema.Boolean.annotations({
    description:
      "true when an existing job answers the request: the running job of an identical request, or the finished job that built the same revision while its result is still current",
  }),
})

const BatchAcceptedSchema = Schema.Struct({
  jobs: Schema.Array(JobAcceptedSchema),
  errors: Schema.Array(ProfileErrorSchema).annotations({
    description: "Profiles `all`/`tag` selected that do not resolve: no job is started for them",
  }),
})

const ServerInfoSchema = Schema.Struct({
  version: Schema.String,
  allowFlash: Schema.Boolean,
  tokenRequired: Schema.Boolean,
  maxJobs: Schema.Int,
})

const RealizeBodySchema = realize.params

const BatchBodySchema = Schema.Struct({
  profiles: Schema.optional(
    Schema.Array(Schema.String.pipe(Schema.minLength(1))).pipe(
      Schema.maxItems(maxBatchProfiles, {
        description: `At most ${maxBatchProfiles}; specs naming the same revision share one job`,
      }),
    ),
  ),
  all: Schema.optional(Schema.Boolean),
  tag: Schema.optional(Schema.String),
  rebuild: Schema.optional(Schema.Boolean),
})

const decodeRealize = decodeInput(RealizeBodySchema, "realize request")
const decodeBatch = decodeInput(BatchBodySchema, "batch request")
const decodeSince = decodeInput(
  Schema.Struct({
    since: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())),
  }),
  "query",
)

const fileResponses = {
  200: { description: "The file", content: { "application/octet-stream": {} } },
  206: { description: "The requested byte range (`Range: bytes=a-b`)" },
  304: { description: "Unchanged: `If-None-Match` named the current ETag (the file's SHA-256)" },
  403: errorResponse("The path leads outside the store path"),
  404: errorResponse("No such file"),
  416: errorResponse("The range lies beyond the end of the file"),
}

const downloadParameters = [
  { name: "Range", in: "header", required: false, schema: { type: "string" }, description: "bytes=a-b" },
  { name: "If-None-Match", in: "header", required: false, schema: { type: "string" } },
]

const acceptedHeaders = (id: string) => ({ location: `/api/jobs/${id}` })

/** Every route of the HTTP API: the server dispatches on it and /openapi.json describes it. */
export const apiRoutes: ReadonlyArray<Route> = [
  {
    method: "GET",
    path: "/api/server",
    describe: (schemas) => ({
      operationId: "serverInfo",
      tags: ["server"],
      summary: "This server: version, whether flashing is enabled, whether a token is required, job slots",
      responses: { 200: jsonResponse("Server facts", schemas.of(ServerInfoSchema)) },
    }),
    handle: ({ server }) =>
      Effect.succeed(
        json({
          version: server.version,
          allowFlash: server.allowFlash,
          tokenRequired: server.tokenRequired,
          maxJobs: server.maxJobs,
        }),
      ),
  },
  operationRoute({ method: "GET", path: "/api/profiles", tag: "profiles", operation: listProfiles }),
  operationRoute({ method: "GET", path: "/api/profiles/{profile}", tag: "profiles", operation: getProfile }),
  operationRoute({
    method: "GET",
    path: "/api/profiles/{profile}/history",
    tag: "profiles",
    operation: profileHistory,
  }),
  operationRoute({ method: "GET", path: "/api/plan", tag: "profiles", operation: plan }),
  {
    method: "POST",
    path: "/api/realize",
    describe: (schemas) => ({
      operationId: "realize",
      tags: ["jobs"],
      summary:
        "Start a realize job (202), or join the running job of an identical request (same resolved revision and rebuild flag, 202), or — without rebuild — get the finished job that built that revision while its result is still current (200)",
      requestBody: {
        required: true,
        content: { "application/json": { schema: schemas.of(RealizeBodySchema) } },
      },
      responses: {
        200: jsonResponse(
          "The finished job that already built this revision (`joined: true`)",
          schemas.of(JobAcceptedSchema),
        ),
        202: jsonResponse("The job; poll its Location or stream /events", schemas.of(JobAcceptedSchema)),
        default: errorResponse("An error document (unknown profile: 404, invalid profile: 422, …)"),
      },
    }),
    handle: ({ body, context, server }) =>
      Effect.gen(function* () {
        const params = yield* decodeRealize(body)
        const { job, joined } = yield* server.board.submit(params, context)
        return json({ job: job.toJson(), joined }, job.finished ? 200 : 202, acceptedHeaders(job.id))
      }),
  },
  {
    method: "POST",
    path: "/api/realize/batch",
    describe: (schemas) => ({
      operationId: "realizeBatch",
      tags: ["jobs"],
      summary: `One realize job per selected profile (202), at most ${maxBatchProfiles} profiles named; a profile named twice shares its job. ${realizeBatch.description}`,
      requestBody: {
        required: true,
        content: { "application/json": { schema: schemas.of(BatchBodySchema) } },
      },
      responses: {
        202: jsonResponse("A job per profile", schemas.of(BatchAcceptedSchema)),
        default: errorResponse("An error document"),
      },
    }),
    handle: ({ body, context, server }) =>
      Effect.gen(function* () {
        // Counted before decoding, whose message would quote every one of them.
        const named = typeof body === "object" && body !== null && "profiles" in body ? body.profiles : []
        if (Array.isArray(named) && named.length > maxBatchProfiles) {
          return yield* new BadRequestError({
            detail: `invalid batch request: ${named.length} profiles named, at most ${maxBatchProfiles} per batch`,
          })
        }
        const params = yield* decodeBatch(body)
        const targets = yield* selectProfiles({
          specs: params.profiles ?? [],
          all: params.all,
          tag: params.tag,
        })
        // With `all`/`tag`, a profile that does not resolve is reported and starts no job; the others do.
        const selected = (params.profiles ?? []).length === 0
        const errors: Array<ProfileErrorJson> = []
        const jobs: Array<{ job: JobJson; joined: boolean }> = []
        yield* Effect.forEach(targets, (target) => {
          const profile = typeof target === "string" ? target : target.revision.profile.id
          const submitted = server.board
            .submit({ profile, rebuild: params.rebuild }, context)
            .pipe(Effect.map(({ job, joined }) => jobs.push({ job: job.toJson(), joined })))
          return selected
            ? submitted.pipe(
                Effect.catchTag("ProfileInvalidError", (error) =>
                  Effect.sync(() => errors.push(profileErrorJson({ profile, error }))),
                ),
              )
            : submitted
        })
        return json({ jobs, errors }, 202)
      }),
  },
  {
    method: "GET",
    path: "/api/jobs",
    describe: (schemas) => ({
      operationId: "listJobs",
      tags: ["jobs"],
      summary: "This server's jobs, newest first (without their logs)",
      responses: {
        200: jsonResponse("Jobs", schemas.of(Schema.Struct({ jobs: Schema.Array(JobSchema) }))),
      },
    }),
    handle: ({ server }) =>
      Effect.succeed(json({ jobs: server.board.list().map((job) => job.toJson(Number.MAX_SAFE_INTEGER)) })),
  },
  {
    method: "GET",
    path: "/api/jobs/{id}",
    describe: (schemas) => ({
      operationId: "getJob",
      tags: ["jobs"],
      summary: "A job's state, node states, result or error, and its log from line `since` (default 0)",
      parameters: [
        { name: "id", in: "path", required: true, schema: { type: "string" } },
        { name: "since", in: "query", required: false, schema: { type: "integer", minimum: 0 } },
      ],
      responses: { 200: jsonResponse("The job", schemas.of(JobSchema)), 404: errorResponse("No such job") },
    }),
    handle: ({ params, query, server }) =>
      Effect.gen(function* () {
        const since = yield* decodeSince({ ...(query.has("since") ? { since: query.get("since") } : {}) })
        const job = yield* server.board.find(params.id ?? "")
        return json(job.toJson(since.since ?? 0))
      }),
  },
  {
    method: "GET",
    path: "/api/jobs/{id}/events",
    describe: (schemas) => ({
      operationId: "jobEvents",
      tags: ["jobs"],
      summary:
        "The job's events as server-sent events (`id` = seq, `event` = type, `data` = the event as JSON), from the first (or after `Last-Event-ID`) until `end`",
      parameters: [
        { name: "id", in: "path", required: true, schema: { type: "string" } },
        { name: "Last-Event-ID", in: "header", required: false, schema: { type: "string" } },
      ],
      responses: {
        200: {
          description: "An event stream",
          content: { "text/event-stream": { schema: schemas.of(JobEventSchema) } },
        },
        404: errorResponse("No such job"),
      },
    }),
    handle: ({ params, headers, server }) =>
      Effect.gen(function* () {
        const job = yield* server.board.find(params.id ?? "")
        const last = Number(headers["last-event-id"])
        const from = Number.isInteger(last) && last >= 0 ? last + 1 : 0
        return {
          _tag: "events" as const,
          events: Stream.map(server.board.follow(job, from), (event) => ({
            id: event.seq,
            event: event.type,
            data: event,
          })),
        }
      }),
  },
  operationRoute({ method: "GET", path: "/api/builds", tag: "builds", operation: listBuilds }),
  operationRoute({ method: "GET", path: "/api/builds/{id}", tag: "builds", operation: getBuild }),
  {
    method: "GET",
    path: "/api/builds/{id}/log",
    describe: () => ({
      operationId: "buildLog",
      tags: ["builds"],
      summary: "A build's whole make log (secrets redacted), as text",
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer" } }],
      responses: {
        200: { description: "The log", content: { "text/plain": {} } },
        404: errorResponse("No such build, or it has no log"),
      },
    }),
    handle: ({ params }) =>
      Effect.gen(function* () {
        const id = Number(params.id)
        if (!Number.isSafeInteger(id)) {
          return yield* new NotFoundError({ what: `build ${params.id}`, detail: "no such build" })
        }
        const text = yield* buildLog(yield* requireBuild(id))
        return { _tag: "text" as const, status: 200, body: text, contentType: "text/plain; charset=utf-8" }
      }),
  },
  operationRoute({ method: "GET", path: "/api/artifacts", tag: "artifacts", operation: listArtifacts }),
  {
    method: "GET",
    path: "/api/artifacts/{key}/{name}",
    describe: () => ({
      operationId: "downloadArtifact",
      tags: ["artifacts"],
      summary:
        "Download an image by its collect-artifacts key and file name. ETag is its SHA-256; Range and If-None-Match are honoured; HEAD too",
      parameters: [
        { name: "key", in: "path", required: true, schema: { type: "string" } },
        { name: "name", in: "path", required: true, schema: { type: "string" } },
        ...downloadParameters,
      ],
      responses: fileResponses,
    }),
    handle: ({ params, server }) =>
      Effect.map(artifactFile(params.key ?? "", params.name ?? "", server), (file) => ({
        _tag: "file" as const,
        file,
      })),
  },
  {
    method: "GET",
    path: "/api/store/{path+}",
    describe: () => ({
      operationId: "downloadStoreFile",
      tags: ["artifacts"],
      summary:
        "Download a file of a make-image or collect-artifacts store path, as `<key>-<name>/<path>` (build.log, owrt-manifest.json, images/…). Overlays are never served",
      parameters: [
        { name: "path", in: "path", required: true, schema: { type: "string" } },
        ...downloadParameters,
      ],
      responses: fileResponses,
    }),
    handle: ({ rest, server }) =>
      Effect.map(storeFile(rest, server), (file) => ({ _tag: "file" as const, file })),
  },
  operationRoute({ method: "POST", path: "/api/audit", tag: "store", operation: audit }),
  operationRoute({ method: "GET", path: "/api/store", tag: "store", operation: listStore }),
  operationRoute({ method: "GET", path: "/api/builders", tag: "store", operation: listBuilders }),
  operationRoute({ method: "POST", path: "/api/store/verify", tag: "store", operation: storeVerify }),
]
