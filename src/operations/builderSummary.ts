import { Schema } from "effect"
import type { Builder } from "../builder/builderStore.js"
import { Integer } from "./schemaTypes.js"

const builderFields = {
  key: Schema.String.annotations({ description: "The fetch-builder node key" }),
  path: Schema.String.annotations({ description: "The builder tree in the store" }),
  release: Schema.String,
  target: Schema.String.annotations({ description: "<target>/<subtarget>" }),
  archiveName: Schema.String,
  archiveSha256: Schema.String,
  signedBy: Schema.String.annotations({ description: "The usign key id that signed sha256sums" }),
  upstream: Schema.String,
  files: Integer,
  bytes: Integer,
  createdAt: Schema.String,
  lastUsedAt: Schema.String,
}

/** A stored Image Builder, as `owrt builders list --json` prints each one. */
export const BuilderSummarySchema = Schema.Struct({
  ...builderFields,
  references: Schema.optional(Integer.annotations({ description: "Builds recorded with this builder" })),
})
export type BuilderSummary = typeof BuilderSummarySchema.Type

/** A builder prune left alone, and why (in use by a running process, locked). */
export const KeptBuilderSchema = Schema.Struct({ ...builderFields, reason: Schema.String })

export const builderSummaryJson = (b: Builder & { readonly references?: number }): BuilderSummary => ({
  key: b.key,
  path: b.path,
  release: b.release,
  target: b.target,
  archiveName: b.archiveName,
  archiveSha256: b.archiveSha256,
  signedBy: b.signedBy,
  upstream: b.upstream,
  files: b.files,
  bytes: b.bytes,
  createdAt: b.createdAt,
  lastUsedAt: b.lastUsedAt,
  ...(b.references === undefined ? {} : { references: b.references }),
})
