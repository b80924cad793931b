import { basename } from "node:path"
import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { StorePathRecords } from "../db/storePathRecords.js"
import { AuditMismatchError } from "../errors.js"
import { Realizer } from "../graph/realizer.js"
import { treeDifferences, treeDigest } from "../store/treeDigest.js"
import { makeWorkDirectory } from "../store/workDirectory.js"
import { defineOperation } from "./operation.js"
import { ProfileSpecSchema } from "./revision.js"
import { Integer } from "./schemaTypes.js"

export const audit = defineOperation({
  name: "audit",
  description:
    "Rebuild a realized profile from scratch (stored builder and overlay) and compare the output with the store; fails with audit_mismatch listing every differing file",
  readOnly: true,
  params: Schema.Struct({ profile: ProfileSpecSchema }),
  result: Schema.Struct({
    profile: Schema.String,
    identical: Schema.Literal(true),
    digest: Schema.String,
    files: Integer,
  }),
  run: (params) =>
    Effect.scoped(
      Effect.gen(function* () {
        const config = yield* AppConfig
        const scratch = yield* makeWorkDirectory(config.store, "audit")
        const { stored, rebuilt, profile } = yield* (yield* Realizer).rebuildInto(params.profile, scratch)
        const before = yield* treeDigest(stored)
        const after = yield* treeDigest(rebuilt)
        // The stored tree is read-only, the rebuilt one as the build left it: modes compare as published.
        const differing = treeDifferences(before.entries, after.entries, { modes: "published" })
        if (differing.length > 0) return yield* new AuditMismatchError({ profile, differing })
        // The digest recorded when the output was stored (taken before it was made read-only).
        const row = yield* StorePathRecords.find(basename(stored).slice(0, 16))
        return {
          profile,
          identical: true as const,
          digest: row?.digest ?? before.digest,
          files: before.files,
        }
      }),
    ),
})
