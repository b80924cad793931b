import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import type { DatabaseBusyError, DatabaseError } from "../errors.js"
import { databaseFailure } from "./database.js"

/** A profile revision as the database knows it. */
export interface RevisionRecord {
  readonly profile: string
  readonly seq: number
  readonly hash: string
  readonly source: string
  readonly firstSeen: string
}

interface Row {
  readonly profile: string
  readonly seq: number
  readonly hash: string
  readonly source: string
  readonly first_seen: string
  readonly canonical?: string
}

const toRecord = (row: Row): RevisionRecord => ({
  profile: row.profile,
  seq: row.seq,
  hash: row.hash,
  source: row.source,
  firstSeen: row.first_seen,
})

type DbError = DatabaseError | DatabaseBusyError

export class RevisionRecords extends Context.Tag("owrt/RevisionRecords")<
  RevisionRecords,
  {
    /** Records a revision if it is new (next sequence number for its profile); returns its record. */
    readonly record: (revision: {
      readonly profile: string
      readonly hash: string
      readonly canonical: string
      readonly source: string
    }) => Effect.Effect<RevisionRecord & { readonly isNew: boolean }, DbError>
    readonly history: (profile: string) => Effect.Effect<ReadonlyArray<RevisionRecord>, DbError>
    /** Every recorded revision, keyed `profile\0hash`: one query where many profiles are resolved at once. */
    readonly known: () => Effect.Effect<ReadonlyMap<string, RevisionRecord>, DbError>
    readonly bySeq: (
      profile: string,
      seq: number,
    ) => Effect.Effect<(RevisionRecord & { canonical: string }) | undefined, DbError>
    readonly byHashPrefix: (
      profile: string,
      prefix: string,
    ) => Effect.Effect<ReadonlyArray<RevisionRecord & { canonical: string }>, DbError>
  }
>() {}

export const revisionRecordsLayer = Layer.effect(
  RevisionRecords,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const find = (profile: string, hash: string) =>
      sql<Row>`SELECT profile, seq, hash, source, first_seen FROM profile_revisions
               WHERE profile = ${profile} AND hash = ${hash}`
    return {
      record: (revision) =>
        Effect.gen(function* () {
          const [existing] = yield* find(revision.profile, revision.hash)
          if (existing) return { ...toRecord(existing), isNew: false }
          const now = new Date().toISOString()
          // One statement, so the sequence number is taken under SQLite's write lock: two processes
          // recording revisions of one profile at once never get the same number.
          yield* sql`INSERT INTO profile_revisions (profile, seq, hash, canonical, source, first_seen)
                     SELECT ${revision.profile}, COALESCE(MAX(seq), 0) + 1, ${revision.hash},
                            ${revision.canonical}, ${revision.source}, ${now}
                     FROM profile_revisions WHERE profile = ${revision.profile}
                     ON CONFLICT (profile, hash) DO NOTHING`
          const [row] = yield* find(revision.profile, revision.hash)
          if (!row) return yield* Effect.dieMessage("revision vanished right after insert")
          return { ...toRecord(row), isNew: row.first_seen === now }
        }).pipe(Effect.mapError(databaseFailure("record revision"))),
      known: () =>
        sql<Row>`SELECT profile, seq, hash, source, first_seen FROM profile_revisions`.pipe(
          Effect.map(
            (rows) => new Map(rows.map((row) => [`${row.profile}\0${row.hash}`, toRecord(row)] as const)),
          ),
          Effect.mapError(databaseFailure("read revisions")),
        ),
      history: (profile) =>
        sql<Row>`SELECT profile, seq, hash, source, first_seen FROM profile_revisions
                 WHERE profile = ${profile} ORDER BY seq`.pipe(
          Effect.map((rows) => rows.map(toRecord)),
          Effect.mapError(databaseFailure("read history")),
        ),
      bySeq: (profile, seq) =>
        sql<
          Row & { canonical: string }
        >`SELECT * FROM profile_revisions WHERE profile = ${profile} AND seq = ${seq}`.pipe(
          Effect.map(([row]) => (row ? { ...toRecord(row), canonical: row.canonical } : undefined)),
          Effect.mapError(databaseFailure("read revision")),
        ),
      byHashPrefix: (profile, prefix) =>
        sql<Row & { canonical: string }>`SELECT * FROM profile_revisions
                 WHERE profile = ${profile} AND substr(hash, 1, ${prefix.length}) = ${prefix.toLowerCase()}
                 ORDER BY seq`.pipe(
          Effect.map((rows) => rows.map((row) => ({ ...toRecord(row), canonical: row.canonical }))),
          Effect.mapError(databaseFailure("read revision")),
        ),
    }
  }),
)
