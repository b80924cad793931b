/** What `owrt publish --json` prints (docs/ota.md). */
export interface Published {
  readonly device: string
  readonly version: string
  readonly channel: string
  readonly image: string
  readonly sha256: string
  readonly size: number
  readonly status: string
  readonly repository: string
  /** null for a release kept in the local store. */
  readonly manifestDigest: string | null
  readonly signature: { readonly status: string; readonly tag: string | null }
}
