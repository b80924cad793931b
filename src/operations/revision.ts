import { Schema } from "effect"
import type { RevisionRecord } from "../db/revisionRecords.js"
import type { ProfileView } from "../profile/profileRepository.js"
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

/**
 * A profile revision as read-only commands show it (`profiles show|list|validate`): `seq` and `firstSeen`
 * are null while no realize, audit or flash has recorded it.
 */
export const SeenRevisionSchema = Schema.Struct({
  seq: Schema.NullOr(Integer).annotations({
    description:
      "Revision number, usable as <profile>@<seq>; null while the revision is not recorded (realize, audit and flash record the revisions they use)",
  }),
  hash: RevisionSchema.fields.hash,
  source: Schema.String.annotations({
    description:
      "`worktree` or `git:<commit>`: where it was first seen (where it is read, when not recorded)",
  }),
  firstSeen: Schema.NullOr(Schema.String).annotations({ description: "ISO time; null when not recorded" }),
})
export type SeenRevisionJson = typeof SeenRevisionSchema.Type

export const seenRevisionJson = ({ revision, record }: ProfileView): SeenRevisionJson =>
  record === undefined
    ? { seq: null, hash: revision.hash, source: revision.source, firstSeen: null }
    : revisionJson(record)

/** A profile reference: an id, optionally with `@rev`. */
export const ProfileSpecSchema = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a profile id is required, not an empty string" }),
  Schema.annotations({
    title: "profile",
    description:
      "Profile id, optionally with @rev: a revision number, a revision hash prefix or a git commit",
  }),
)
