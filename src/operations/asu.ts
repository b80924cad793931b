import { Effect, Schema } from "effect"
import type { AsuReply } from "../asu/jobResponse.js"
import { latestVersions, overview } from "../asu/overview.js"
import { branchOf } from "../asu/packageChanges.js"
import { archPackageIndex, profileDocument, targetPackageIndex } from "../asu/packageIndexes.js"
import {
  buildErrors,
  buildsByVersion,
  buildsPerDay,
  byVersionWeeks,
  summary,
  topPackages,
} from "../asu/statistics.js"
import { buildStatus, submitBuild } from "../asu/submitBuild.js"
import { supportedBranches, upstreamProfiles } from "../asu/upstreamCatalog.js"
import { AsuJobRecords } from "../db/asuJobRecords.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

/*
 * The ASU build service's actions (asu-api.md), for `owrt serve`'s ASU routes. Each answers in ASU's wire
 * format — status, headers, body — because that format is the contract its clients (the Firmware
 * Selector, owut, LuCI) hold servers to. Not in `operations` (MCP and the owrt API have realize).
 */

export const AsuReplySchema = Schema.Struct({
  status: Integer.annotations({ description: "HTTP status as upstream answers it" }),
  headers: Schema.Record({ key: Schema.String, value: Schema.String }),
  body: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
})

const reply = (
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): AsuReply => ({
  status,
  headers,
  body,
})

export const asuBuild = defineOperation({
  name: "asuBuild",
  description:
    "Submit an ASU build request, or get the job of the same request: 202 queued/started, 200 finished, 500 failed; 400/422/529 as upstream",
  readOnly: false,
  idempotent: true,
  params: Schema.Struct({
    body: Schema.Unknown.annotations({ description: "The request body as sent (asu-api.md §2)" }),
    retry: Schema.optional(
      Schema.Boolean.annotations({
        description: "Drop a finished or failed result of the same request first",
      }),
    ),
  }),
  result: AsuReplySchema,
  run: (params) =>
    submitBuild(params.body, { retry: params.retry }).pipe(
      Effect.catchTags({
        AsuRequestRejectedError: (error) => Effect.succeed(reply(400, { detail: error.detail, status: 400 })),
        AsuQueueFullError: (error) =>
          Effect.succeed(reply(529, { status: 529, title: "Server overloaded", detail: error.message })),
      }),
    ),
})

export const asuBuildStatus = defineOperation({
  name: "asuBuildStatus",
  description:
    "The ASU job of a request hash: 202, 200 or 500 with X-Imagebuilder-Status and X-Queue-Position",
  readOnly: true,
  params: Schema.Struct({ requestHash: Schema.String }),
  result: AsuReplySchema,
  run: (params) =>
    Effect.map(
      buildStatus(params.requestHash),
      (found) =>
        found ??
        reply(404, { status: 404, title: "Not Found", detail: "could not find provided request hash" }),
    ),
})

export const asuStats = defineOperation({
  name: "asuStats",
  description: "How many ASU builds are waiting",
  readOnly: true,
  params: Schema.Struct({}),
  result: Schema.Struct({ queue_length: Integer }),
  run: () => Effect.map(AsuJobRecords.queued(), (n) => ({ queue_length: n })),
})

export const asuRevision = defineOperation({
  name: "asuRevision",
  description: "The revision (version_code) upstream publishes for a version and target",
  readOnly: true,
  params: Schema.Struct({ version: Schema.String, target: Schema.String, subtarget: Schema.String }),
  result: AsuReplySchema,
  run: (params) =>
    Effect.gen(function* () {
      if (!supportedBranches().includes(branchOf(params.version))) {
        return reply(400, { detail: `Unsupported version: ${params.version}`, status: 400 })
      }
      const target = `${params.target}/${params.subtarget}`
      const profiles = /^[\w-]+\/[\w-]+$/.test(target)
        ? yield* upstreamProfiles(params.version, target)
        : undefined
      if (profiles === undefined) {
        return reply(404, { detail: `Failed to fetch revision for ${params.version}/${target}`, status: 404 })
      }
      return reply(200, { revision: profiles.version_code })
    }),
})

export const asuOverview = defineOperation({
  name: "asuOverview",
  description: "overview.json: branches with versions, targets and package changes; upstream; server limits",
  readOnly: true,
  params: Schema.Struct({}),
  result: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  run: () => overview,
})

export const asuLatest = defineOperation({
  name: "asuLatest",
  description: "latest.json: the upcoming, stable and oldstable versions",
  readOnly: true,
  params: Schema.Struct({}),
  result: Schema.Struct({ latest: Schema.Array(Schema.String) }),
  run: () => Effect.map(latestVersions, (latest) => ({ latest })),
})

export const asuImage = defineOperation({
  name: "asuImage",
  description: "Which stored artifact set holds the files of an ASU bin_dir (its collect-artifacts key)",
  readOnly: true,
  params: Schema.Struct({ binDir: Schema.String }),
  result: Schema.Struct({ key: Schema.NullOr(Schema.String) }),
  run: (params) =>
    Effect.gen(function* () {
      if (!/^[0-9a-f]{64}$/.test(params.binDir)) return { key: null }
      const row = yield* AsuJobRecords.findByBinDir(params.binDir)
      const result = row?.result ? (JSON.parse(row.result) as { owrt?: { key?: unknown } }) : undefined
      const key = result?.owrt?.key
      return { key: typeof key === "string" ? key : null }
    }),
})

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const asuTargetIndex = defineOperation({
  name: "asuTargetIndex",
  description:
    "A target's package index as ASU serves it: {architecture, packages: {name: version}}, kmods included",
  readOnly: true,
  params: Schema.Struct({ path: Schema.String, target: Schema.String, subtarget: Schema.String }),
  result: JsonObject,
  run: (params) => targetPackageIndex(params.path, params.target, params.subtarget),
})

export const asuArchIndex = defineOperation({
  name: "asuArchIndex",
  description: "An architecture's packages over every feed of a release: {name: version}",
  readOnly: true,
  params: Schema.Struct({ path: Schema.String, arch: Schema.String }),
  result: JsonObject,
  run: (params) => archPackageIndex(params.path, params.arch),
})

export const asuProfileDocument = defineOperation({
  name: "asuProfileDocument",
  description: "One device profile of a target's profiles.json, with the target's metadata, id and build_at",
  readOnly: true,
  params: Schema.Struct({
    path: Schema.String,
    target: Schema.String,
    subtarget: Schema.String,
    profile: Schema.String,
  }),
  result: JsonObject,
  run: (params) => profileDocument(params.path, params.target, params.subtarget, params.profile),
})

/** The request events the statistics are computed from: the longest chart spans 26 weeks. */
const statisticsEvents = Effect.flatMap(
  Effect.sync(() => new Date()),
  (now) =>
    Effect.map(
      AsuJobRecords.eventsSince(
        new Date(now.getTime() - (byVersionWeeks + 1) * 7 * 86_400_000).toISOString(),
      ),
      (events) => ({ now, events }),
    ),
)

const ChartSchema = Schema.Struct({
  labels: Schema.Array(Schema.String),
  datasets: Schema.Array(
    Schema.Struct({
      label: Schema.String,
      data: Schema.Array(Schema.Number),
      color: Schema.optional(Schema.String),
    }),
  ),
})

export const asuBuildsPerDay = defineOperation({
  name: "asuBuildsPerDay",
  description:
    "ASU requests, cache hits and failures per day over the last 30 days (a chart's labels and datasets)",
  readOnly: true,
  params: Schema.Struct({}),
  result: ChartSchema,
  run: () => Effect.map(statisticsEvents, ({ now, events }) => buildsPerDay(events, now)),
})

export const asuBuildsByVersion = defineOperation({
  name: "asuBuildsByVersion",
  description: "ASU requests per week over 26 weeks, per branch, or per version of one branch",
  readOnly: true,
  params: Schema.Struct({ branch: Schema.optional(Schema.String) }),
  result: ChartSchema,
  run: (params) =>
    Effect.map(statisticsEvents, ({ now, events }) => buildsByVersion(events, now, params.branch)),
})

export const asuTopPackages = defineOperation({
  name: "asuTopPackages",
  description: "The packages ASU requests asked for most over the last 30 days, of one branch or all",
  readOnly: true,
  params: Schema.Struct({
    branch: Schema.optional(Schema.String),
    n: Schema.optional(Integer.pipe(Schema.between(1, 1000))),
  }),
  result: Schema.Struct({
    packages: Schema.Array(Schema.Struct({ name: Schema.String, count: Integer })),
    branch: Schema.NullOr(Schema.String),
    days: Integer,
  }),
  run: (params) =>
    Effect.map(statisticsEvents, ({ now, events }) =>
      topPackages(events, now, { branch: params.branch, n: params.n ?? 20 }),
    ),
})

export const asuStatsSummary = defineOperation({
  name: "asuStatsSummary",
  description: "ASU totals over the last 30 days (requests, cache hits, failures) and the queue's length",
  readOnly: true,
  params: Schema.Struct({}),
  result: Schema.Struct({
    days: Integer,
    requests: Integer,
    cache_hits: Integer,
    failures: Integer,
    queue_length: Integer,
  }),
  run: () =>
    Effect.gen(function* () {
      const { now, events } = yield* statisticsEvents
      return summary(events, now, yield* AsuJobRecords.queued())
    }),
})

export const asuBuildErrors = defineOperation({
  name: "asuBuildErrors",
  description:
    "The latest ASU build failures as plain text, one line each, without anything about the client",
  readOnly: true,
  params: Schema.Struct({ n: Schema.optional(Integer.pipe(Schema.between(1, 10_000))) }),
  result: Schema.Struct({ text: Schema.String }),
  run: (params) =>
    Effect.map(statisticsEvents, ({ events }) => ({ text: buildErrors(events, params.n ?? 100) })),
})
