import { Effect, Schema } from "effect"
import { Realizer, type Selection } from "../graph/realizer.js"
import { ProfileSpecSchema } from "./revision.js"

/** Which profiles an operation works on, as `owrt realize`/`owrt plan` take them. */
export const SelectionFields = {
  profiles: Schema.optional(
    Schema.Array(ProfileSpecSchema).annotations({ description: "Profiles: id or id@rev" }),
  ),
  all: Schema.optional(Schema.Boolean.annotations({ description: "Every concrete (non-abstract) profile" })),
  tag: Schema.optional(Schema.String.annotations({ description: "Profiles with this tag" })),
}

/** The profiles a selection names (with `all`/`tag`, the ones that do not resolve are returned as their id). */
export const selectProfiles = (selection: Selection) =>
  Effect.flatMap(Realizer, (realizer) => realizer.select(selection))
