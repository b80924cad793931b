import { Effect } from "effect"
import { AsuJobRecords, type AsuJobRow } from "../db/asuJobRecords.js"
import type { DatabaseFailure } from "../db/database.js"

/*
 * A job as ASU answers it (asu-api.md §5): status code, the `X-Imagebuilder-Status` and
 * `X-Queue-Position` headers, and a body that always has `enqueued_at` and `request_hash`.
 */

export interface AsuReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Readonly<Record<string, unknown>>
  /** The body as JSON bytes, when it was kept made (a finished or failed job's answer never changes). */
  readonly encoded?: Uint8Array | undefined
}

/**
 * The answers of finished and failed jobs, made once: clients poll a finished build (and re-POST its
 * request) many times, and parsing and writing its body again each time was most of the work.
 */
const settled = new Map<string, AsuReply>()
const settledLimit = 512

const remember = (key: string, reply: AsuReply): AsuReply => {
  const kept = { ...reply, encoded: Buffer.from(JSON.stringify(reply.body)) }
  if (settled.size >= settledLimit) {
    const oldest = settled.keys().next().value
    if (oldest !== undefined) settled.delete(oldest)
  }
  settled.set(key, kept)
  return kept
}

const parse = (text: string | null): Record<string, unknown> => {
  if (text === null) return {}
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {}
  } catch {
    return {}
  }
}

/** Python's `str(datetime)` of the enqueue time is what upstream sends; ISO is what JSON clients parse. */
export const jobReply = (row: AsuJobRow): Effect.Effect<AsuReply, DatabaseFailure, AsuJobRecords> =>
  Effect.suspend((): Effect.Effect<AsuReply, DatabaseFailure, AsuJobRecords> => {
    if (row.status !== "finished" && row.status !== "failed") return makeReply(row)
    // The row's id and end time name one outcome: a retried request is a new row.
    const key = `${row.id}\0${row.request_hash}\0${row.status}\0${row.finished_at}`
    const kept = settled.get(key)
    return kept ? Effect.succeed(kept) : Effect.map(makeReply(row), (reply) => remember(key, reply))
  })

const makeReply = (row: AsuJobRow) =>
  Effect.gen(function* () {
    const request = parse(row.request)
    const base = { enqueued_at: row.enqueued_at, request_hash: row.request_hash }
    let status: number
    let stage: string
    let queuePosition = 0
    let body: Record<string, unknown>
    switch (row.status) {
      case "queued":
        queuePosition = yield* AsuJobRecords.position(row.id)
        status = 202
        stage = "queued"
        body = { status, detail: "queued", queue_position: queuePosition }
        break
      case "started":
        status = 202
        stage = row.imagebuilder_status
        body = {
          status,
          detail: "started",
          imagebuilder_status: stage,
          request,
          ...(row.stdout === null ? {} : { stdout: row.stdout }),
          ...(row.stderr === null ? {} : { stderr: row.stderr }),
        }
        break
      case "finished":
        status = 200
        stage = "done"
        body = {
          ...parse(row.result),
          request,
          stdout: row.stdout ?? "",
          stderr: row.stderr ?? "",
          imagebuilder_status: "done",
          status,
        }
        break
      case "failed":
        status = 500
        stage = "failed"
        body = {
          request,
          status,
          detail: row.detail ?? "failed",
          stdout: row.stdout ?? "",
          stderr: row.stderr ?? "",
          imagebuilder_status: "failed",
        }
        break
    }
    return {
      status,
      headers: { "X-Imagebuilder-Status": stage, "X-Queue-Position": String(queuePosition) },
      body: { ...body, ...base },
    } satisfies AsuReply
  })
