import { SqlSchema } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { type DatabaseFailure, RecordsSql, sqlFailure } from "./database.js"
import { lazyQuery } from "./lazyQuery.js"

/** A profile revision as the database knows it. */
export interface RevisionRecord {
  readonly profile: string
  readonly seq: number
  readonly hash: string
  readonly source: string
  readonly firstSeen: string
}

const Row = Schema.Struct({
  profile: Schema.String,
  seq: Schema.Number,
  hash: Schema.String,
  source: Schema.String,
  first_seen: Schema.String,
})
type Row = typeof Row.Type
const RowWithCanonical = Schema.Struct({ ...Row.fields, canonical: Schema.String })

const toRecord = (row: Row): RevisionRecord => ({
  profile: row.profile,
  seq: row.seq,
  hash: row.hash,
  source: row.source,
  firstSeen: row.first_seen,
})

type DbError = DatabaseFailure

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
    /** The record of a revision, if it has one (recording nothing). */
    readonly find: (profile: string, hash: string) => Effect.Effect<RevisionRecord | undefined, DbError>
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

/** What `RevisionRecords` is made of: records.ts makes every record service in one effect. */
export const makeRevisionRecords = Effect.gen(function* () {
  const sql = yield* RecordsSql
  const find = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.Struct({ profile: Schema.String, hash: Schema.String }),
      Result: Row,
      execute: ({ profile, hash }) =>
        sql`SELECT profile, seq, hash, source, first_seen FROM profile_revisions
          WHERE profile = ${profile} AND hash = ${hash}`,
    }),
  )
  const all = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: Row,
      execute: () => sql`SELECT profile, seq, hash, source, first_seen FROM profile_revisions`,
    }),
  )
  const ofProfile = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.String,
      Result: Row,
      execute: (profile) =>
        sql`SELECT profile, seq, hash, source, first_seen FROM profile_revisions
          WHERE profile = ${profile} ORDER BY seq`,
    }),
  )
  const bySeq = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.Struct({ profile: Schema.String, seq: Schema.Number }),
      Result: RowWithCanonical,
      execute: ({ profile, seq }) =>
        sql`SELECT * FROM profile_revisions WHERE profile = ${profile} AND seq = ${seq}`,
    }),
  )
  const byHashPrefix = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Struct({ profile: Schema.String, prefix: Schema.String }),
      Result: RowWithCanonical,
      execute: ({ profile, prefix }) =>
        sql`SELECT * FROM profile_revisions
          WHERE profile = ${profile} AND substr(hash, 1, ${prefix.length}) = ${prefix}
          ORDER BY seq`,
    }),
  )
  return RevisionRecords.of({
    record: (revision) =>
      Effect.gen(function* () {
        const existing = yield* find(revision)
        if (Option.isSome(existing)) return { ...toRecord(existing.value), isNew: false }
        const now = new Date().toISOString()
        // One statement, so the sequence number is taken under SQLite's write lock: two processes
        // recording revisions of one profile at once never get the same number. PostgreSQL takes no such
        // lock: there, the statement runs in a transaction holding an advisory lock on the profile's name,
        // which every machine sharing the database respects.
        const insert = sql`INSERT INTO profile_revisions (profile, seq, hash, canonical, source, first_seen)
                   SELECT ${revision.profile}, COALESCE(MAX(seq), 0) + 1, ${revision.hash},
                          ${revision.canonical}, ${revision.source}, ${now}
                   FROM profile_revisions WHERE profile = ${revision.profile}
                   ON CONFLICT (profile, hash) DO NOTHING`
        yield* sql.onDialectOrElse({
          pg: () =>
            sql`SELECT pg_advisory_xact_lock(hashtext(${`owrt profile ${revision.profile}`}))`.pipe(
              Effect.zipRight(insert),
              sql.withTransaction,
            ),
          orElse: () => insert,
        })
        const row = yield* find(revision)
        if (Option.isNone(row)) return yield* Effect.dieMessage("revision vanished right after insert")
        return { ...toRecord(row.value), isNew: row.value.first_seen === now }
      }).pipe(sqlFailure("record revision")),
    find: (profile, hash) =>
      find({ profile, hash }).pipe(
        Effect.map(Option.map(toRecord)),
        Effect.map(Option.getOrUndefined),
        sqlFailure("read revision"),
      ),
    known: () =>
      all(undefined).pipe(
        Effect.map(
          (rows) => new Map(rows.map((row) => [`${row.profile}\0${row.hash}`, toRecord(row)] as const)),
        ),
        sqlFailure("read revisions"),
      ),
    history: (profile) =>
      ofProfile(profile).pipe(
        Effect.map((rows) => rows.map(toRecord)),
        sqlFailure("read history"),
      ),
    bySeq: (profile, seq) =>
      bySeq({ profile, seq }).pipe(
        Effect.map(Option.map((row) => ({ ...toRecord(row), canonical: row.canonical }))),
        Effect.map(Option.getOrUndefined),
        sqlFailure("read revision"),
      ),
    byHashPrefix: (profile, prefix) =>
      byHashPrefix({ profile, prefix: prefix.toLowerCase() }).pipe(
        Effect.map((rows) => rows.map((row) => ({ ...toRecord(row), canonical: row.canonical }))),
        sqlFailure("read revision"),
      ),
  })
})

export const revisionRecordsLayer = Layer.effect(RevisionRecords, makeRevisionRecords)
