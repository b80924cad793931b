import { Effect, Schema } from "effect"
import { ProfileRepository } from "../profile/profileRepository.js"
import { OverlayEntry, ResolvedProfile } from "../profile/resolveProfile.js"
import { defineOperation } from "./operation.js"
import { ProfileSpecSchema, SeenRevisionSchema, seenRevisionJson } from "./revision.js"

/** A file mode as people write it: `"0644"`. */
export const octalMode = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, "0")}`

/** The resolved profile as shown: overlay file modes are octal strings, as in `files[].mode`. */
export const ShownProfileSchema = Schema.Struct({
  ...ResolvedProfile.fields,
  overlay: Schema.Array(
    Schema.Struct({
      ...OverlayEntry.fields,
      mode: Schema.String.annotations({ description: 'Octal file mode, e.g. "0644"' }),
    }),
  ),
})

export const getProfile = defineOperation({
  name: "getProfile",
  description:
    "Show a profile as resolved (extends applied) at a revision, recording nothing (revision.seq is null while the revision is not recorded)",
  readOnly: true,
  params: Schema.Struct({ profile: ProfileSpecSchema }),
  result: Schema.Struct({ id: Schema.String, revision: SeenRevisionSchema, profile: ShownProfileSchema }),
  run: (params) =>
    Effect.gen(function* () {
      const view = yield* (yield* ProfileRepository).inspect(params.profile)
      const { revision } = view
      const profile = {
        ...revision.profile,
        overlay: revision.profile.overlay.map((entry) => ({ ...entry, mode: octalMode(entry.mode) })),
      }
      return { id: revision.profile.id, revision: seenRevisionJson(view), profile }
    }),
})
