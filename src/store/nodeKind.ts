/*
 * What the store and the executor need to know about a kind of node, whatever it builds. Each domain
 * declares its kinds (builder/, overlay/, image/, artifacts/); the graph's table lists them
 * (graph/nodeKinds.ts), so a new kind is one module plus one entry there.
 */

export interface NodeKindDefinition {
  /** Its name in keys, store rows, plans and progress: `make-image`. */
  readonly kind: string
  /**
   * Version of how this kind encodes its key inputs: bumped when the same inputs would now build something
   * else, so old outputs are not reused.
   */
  readonly schema: number
  readonly description: string
  /** The limit its builds wait for: a download slot, a build slot (make), or none. */
  readonly slot: "download" | "build" | "none"
  /**
   * How its stored output is digested. `content`: every file's SHA-256 (`store verify` re-checks them).
   * `listing`: paths, modes and sizes only, for fixed-output nodes whose content was verified as it arrived
   * (an archive checked against a signed digest): hashing a 200 MB tree again would only repeat that.
   */
  readonly digest: "content" | "listing"
  /** `realize --rebuild` builds it again even when stored (false for fixed outputs and staged inputs). */
  readonly rebuildable: boolean
  /** `audit` rebuilds it into a scratch store and compares (the nodes whose reproducibility is in question). */
  readonly audited: boolean
}
