import { JSONSchema } from "effect"
import { ProfileDocument } from "./profileSchema.js"

/** JSON Schema of the profile format, for editors (yaml-language-server) and other tools. */
export const profileJsonSchema = (): object => ({
  ...JSONSchema.make(ProfileDocument),
  $id: "https://owrt.dev/schema/profile.json",
})
