import { Effect, Schema } from "effect"
import { Realizer } from "../graph/realizer.js"
import { defineOperation } from "./operation.js"

/*
 * Not in the table of operations frontends offer (MCP, HTTP): it is the one place where a signature check
 * can be turned off, which stays with a person at the command line. Clients lose nothing: realize fetches
 * and verifies the builder a profile needs.
 */
export const ensureBuilder = defineOperation({
  name: "ensureBuilder",
  description:
    "Fetch, verify (usign signature, SHA-256, tar safety) and store the official Image Builder of a release and target, or reuse the stored one",
  // It may download and store a builder; asking again reuses it.
  readOnly: false,
  idempotent: true,
  params: Schema.Struct({
    release: Schema.String.pipe(Schema.minLength(1)).annotations({
      description: 'OpenWrt release, e.g. 23.05.5 or "snapshot"',
    }),
    target: Schema.String.pipe(Schema.minLength(1)).annotations({ description: "<target>/<subtarget>" }),
    skipSignature: Schema.optional(Schema.Boolean).annotations({
      description:
        "UNSAFE: accept a sha256sums whose signature is missing, unknown or wrong (checksums are still verified)",
    }),
  }),
  result: Schema.Struct({
    key: Schema.String,
    path: Schema.String,
    release: Schema.String,
    target: Schema.String,
    archiveSha256: Schema.String,
    signedBy: Schema.String,
  }),
  run: (params) =>
    Effect.gen(function* () {
      const builder = yield* (yield* Realizer).ensureBuilder({
        release: params.release,
        target: params.target,
        skipSignature: params.skipSignature === true,
      })
      return {
        key: builder.key,
        path: builder.path,
        release: builder.release,
        target: builder.target,
        archiveSha256: builder.archiveSha256,
        signedBy: builder.signedBy,
      }
    }),
})
