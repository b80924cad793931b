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

/** A Harbor `PUSH_ARTIFACT` webhook event for `fw/<device>` at `tag` (ota.md §1). */
export const harborPush = (device: string, tag: string) => ({
  type: "PUSH_ARTIFACT",
  occur_at: 1,
  operator: "ci",
  event_data: {
    resources: [{ digest: "sha256:0", tag, resource_url: "x" }],
    repository: { name: device, namespace: "fw", repo_full_name: `fw/${device}`, repo_type: "private" },
  },
})
