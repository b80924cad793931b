import { Effect } from "effect"
import { AsuJobRecords, type AsuJobRow } from "../db/asuJobRecords.js"

/*
 * A job as ASU answers it (asu-api.md §5): status code, the `X-Imagebuilder-Status` and
 * `X-Queue-Position` headers, and a body that always has `enqueued_at` and `request_hash`.
 */

export interface AsuReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Readonly<Record<string, unknown>>
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
export const jobReply = (row: AsuJobRow) =>
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
