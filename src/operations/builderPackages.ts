import { Effect, Schema } from "effect"
import { Realizer } from "../graph/realizer.js"
import { IndexedPackageSchema, readPackageIndex } from "../image/packageIndex.js"
import { BuilderTargetFields } from "./builderTarget.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

export const builderPackages = defineOperation({
  name: "builderPackages",
  description:
    "The packages an official Image Builder can install, from its package index (name, version, description), optionally only those whose name or description contains a search text. Fetches and verifies the builder when it is not stored",
  readOnly: false,
  idempotent: true,
  params: Schema.Struct({
    ...BuilderTargetFields,
    search: Schema.optional(
      Schema.String.pipe(Schema.maxLength(200)).annotations({
        description: "Only packages whose name or description contains this (case-insensitive)",
      }),
    ),
  }),
  result: Schema.Struct({
    release: Schema.String,
    target: Schema.String,
    packages: Schema.Array(IndexedPackageSchema),
    total: Integer.annotations({ description: "Packages in the index, before the search" }),
    feeds: Schema.Struct({
      listed: Integer.annotations({ description: "Package feeds the builder's repositories file lists" }),
      read: Integer.annotations({
        description:
          "Feeds whose index is in the builder (its own packages/ and file: feeds); remote feeds are fetched by make at build time and not listed here",
      }),
    }),
  }),
  run: (params) =>
    Effect.gen(function* () {
      const builder = yield* (yield* Realizer).ensureBuilder({
        release: params.release,
        target: params.target,
      })
      const index = yield* readPackageIndex(builder.path)
      const wanted = params.search?.toLowerCase() ?? ""
      const packages =
        wanted === ""
          ? index.packages
          : index.packages.filter(
              (p) =>
                p.name.toLowerCase().includes(wanted) || (p.description ?? "").toLowerCase().includes(wanted),
            )
      return {
        release: builder.release,
        target: builder.target,
        packages,
        total: index.packages.length,
        feeds: index.feeds,
      }
    }),
})
