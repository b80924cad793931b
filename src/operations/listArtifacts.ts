import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { cardImages } from "../flash/imageChoice.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"
import { type StoredArtifact, StoredArtifactSchema, storedArtifacts } from "./storedArtifacts.js"

/** The most images one answer lists (and what `card` looks through before it keeps `limit` of them). */
const maxLimit = 1000

/** Only images that go on a card, each artifact set's in the order `owrt flash` prefers them. */
const onlyCardImages = (artifacts: ReadonlyArray<StoredArtifact>): ReadonlyArray<StoredArtifact> => {
  const sets = new Map<string, Array<StoredArtifact>>()
  for (const artifact of artifacts) {
    const set = sets.get(artifact.key)
    if (set) set.push(artifact)
    else sets.set(artifact.key, [artifact])
  }
  return [...sets.values()].flatMap((set) => cardImages(set))
}

export const listArtifacts = defineOperation({
  name: "listArtifacts",
  description:
    "Images in the store (valid artifact sets), newest first, with their SHA-256, size, path and build",
  readOnly: true,
  params: Schema.Struct({
    profile: Schema.optional(Schema.String.annotations({ description: "Only this profile's images" })),
    limit: Schema.optional(Integer.pipe(Schema.between(1, maxLimit))).annotations({
      description: "How many, newest first (default 100)",
    }),
    card: Schema.optional(Schema.Boolean).annotations({
      description:
        "Only images that go on a card (SD-card, combined and factory images; never sysupgrade, kernel or rootfs), each set's in the order `owrt flash` prefers them",
    }),
  }),
  result: Schema.Struct({ artifacts: Schema.Array(StoredArtifactSchema) }),
  run: (params) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      const limit = params.limit ?? 100
      if (params.card !== true) {
        return { artifacts: yield* storedArtifacts(config.store, { profile: params.profile, limit }) }
      }
      const stored = yield* storedArtifacts(config.store, { profile: params.profile, limit: maxLimit })
      return { artifacts: onlyCardImages(stored).slice(0, limit) }
    }),
})
