import { Schema } from "effect"

/** The release and target naming an Image Builder, as `builders ensure|devices|packages` take them. */
export const BuilderTargetFields = {
  release: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)).annotations({
    description: 'OpenWrt release, e.g. 23.05.5 or "snapshot"',
  }),
  target: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)).annotations({
    description: "<target>/<subtarget>, e.g. ath79/generic",
  }),
}
