import { Effect, Schema } from "effect"
import { BuildRecords } from "../db/buildRecords.js"
import { BuildMarker, identifyCard as readBuildMarker } from "../flash/identifyCard.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

/*
 * Not in the table of operations frontends offer (MCP, HTTP): it reads a raw block device as the user
 * running owrt (usually root), and unlike flash it has no allow-list to confine it to. `owrt flash
 * --identify` is where a person asks.
 */
export const identifyCard = defineOperation({
  name: "identifyCard",
  description:
    "Read the owrt build marker back from a card (without mounting anything) and name its profile, revision, image key, the builds that made that image and how often it was reused",
  readOnly: true,
  params: Schema.Struct({
    device: Schema.String.pipe(Schema.minLength(1, { message: () => "a device is required" })).annotations({
      description: "The card's block device, e.g. /dev/sdb",
    }),
  }),
  result: Schema.Struct({
    device: Schema.String,
    marker: Schema.NullOr(BuildMarker).annotations({ description: "null: no owrt build marker found" }),
    foundAt: Schema.NullOr(
      Schema.Struct({ offset: Integer, filesystem: Schema.Literal("squashfs", "ext4") }),
    ).annotations({ description: "The file system holding the marker: its byte offset and kind" }),
    builds: Schema.Array(
      Schema.Struct({
        id: Integer,
        profile: Schema.String,
        rev: Schema.NullOr(Integer),
        finishedAt: Schema.NullOr(Schema.String),
      }),
    ).annotations({ description: "The builds that made this image (newest first, at most 20)" }),
    reuses: Integer.annotations({
      description: "How many later builds reused this image from the store instead of making it",
    }),
    searched: Schema.Array(Schema.Struct({ offset: Integer, filesystem: Schema.String })).annotations({
      description: "The file systems looked at",
    }),
  }),
  run: (params) =>
    Effect.gen(function* () {
      const found = yield* readBuildMarker(params.device)
      const builds = found.marker ? yield* BuildRecords.ofImage(found.marker.key) : []
      const reuses = found.marker ? yield* BuildRecords.reusesOfImage(found.marker.key) : 0
      return {
        device: found.device,
        marker: found.marker ?? null,
        foundAt: found.foundAt ?? null,
        builds: builds.map((b) => ({
          id: b.id,
          profile: b.profile,
          rev: b.revision_seq,
          finishedAt: b.finished_at,
        })),
        reuses,
        searched: found.searched,
      }
    }),
})
