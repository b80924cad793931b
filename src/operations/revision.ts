import { Schema } from "effect"
import type { RevisionRecord } from "../db/revisionRecords.js"
import { Integer } from "./schemaTypes.js"

/** A recorded revision of a profile, as `owrt profiles history --json` prints it. */
export const RevisionSchema = Schema.Struct({
  seq: Integer.annotations({ description: "Revision number, usable as <profile>@<seq>" }),
  hash: Schema.String.annotations({ description: "SHA-256 of the canonical resolved profile" }),
  source: Schema.String.annotations({ description: "`worktree` or `git:<commit>`: where it was first seen" }),
  firstSeen: Schema.String.annotations({ description: "ISO time" }),
})
export type RevisionJson = typeof RevisionSchema.Type

export const revisionJson = (record: RevisionRecord): RevisionJson => ({
  seq: record.seq,
  hash: record.hash,
  source: record.source,
  firstSeen: record.firstSeen,
})

/** A profile reference: an id, optionally with `@rev`. */
export const ProfileSpecSchema = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a profile id is required, not an empty string" }),
  Schema.annotations({
    title: "profile",
    description:
      "Profile id, optionally with @rev: a revision number, a revision hash prefix or a git commit",
  }),
)
