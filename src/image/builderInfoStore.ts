import { Effect, Option, Schema } from "effect"
import { BuilderRecords } from "../db/builderRecords.js"
import type { DatabaseFailure } from "../db/database.js"
import { BuildFailedError, type InternalError } from "../errors.js"
import { makeWorkDirectory } from "../store/workDirectory.js"
import { type BuilderInfo, BuilderInfoSchema, parseMakeInfo } from "./builderInfo.js"
import { makeBuilderInstance, runMake } from "./builderInstance.js"

/**
 * A builder's `make info` (device profiles and their aliases), run once per builder and kept in the
 * database: keys need canonical device ids, and plans must not run make.
 */
export const builderInfo = (
  builder: { readonly key: string; readonly path: string; readonly release: string; readonly target: string },
  store: string,
  timeoutSeconds: number,
): Effect.Effect<BuilderInfo, DatabaseFailure | InternalError | BuildFailedError, BuilderRecords> =>
  Effect.gen(function* () {
    const cached = yield* BuilderRecords.info(builder.key)
    const decoded = cached === undefined ? undefined : yield* decodeStoredInfo(builder.key, cached)
    if (decoded) return decoded
    const info = yield* Effect.scoped(
      Effect.gen(function* () {
        const work = yield* makeWorkDirectory(store, `info-${builder.key}`)
        const instance = yield* makeBuilderInstance(builder.path, work)
        const result = yield* runMake(instance, ["info"], { timeoutSeconds })
        if (result.exit !== 0) {
          return yield* new BuildFailedError({
            profile: `${builder.release} ${builder.target}`,
            step: "make info",
            exit: result.exit,
            logTail: result.output.split("\n").slice(-15).join("\n"),
            timedOut: result.timedOut,
          })
        }
        return parseMakeInfo(result.output)
      }),
    )
    yield* BuilderRecords.saveInfo(builder.key, JSON.stringify(info))
    return info
  })

/** The cached `make info` of a builder, without running anything. */
export const cachedBuilderInfo = (
  builderKey: string,
): Effect.Effect<BuilderInfo | undefined, DatabaseFailure, BuilderRecords> =>
  Effect.flatMap(BuilderRecords.info(builderKey), (info) =>
    info === undefined ? Effect.succeed(undefined) : decodeStoredInfo(builderKey, info),
  )

const decodeInfo = Schema.decodeUnknownOption(Schema.parseJson(BuilderInfoSchema))

/** A stored `make info`, decoded; one that does not decode (an older or damaged row) is read again. */
const decodeStoredInfo = (key: string, text: string): Effect.Effect<BuilderInfo | undefined> =>
  Effect.sync(() => Option.getOrUndefined(decodeInfo(text))).pipe(
    Effect.tap((info) =>
      info === undefined
        ? Effect.logDebug(`builder_info of ${key} does not decode; running make info again`)
        : Effect.void,
    ),
  )
