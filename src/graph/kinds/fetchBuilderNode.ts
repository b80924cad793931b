import { Effect } from "effect"
import { recordBuilder } from "../../builder/builderStore.js"
import { builderPathName, fetchBuilderInto } from "../../builder/fetchBuilder.js"
import type { BuilderArchive } from "../../builder/upstream.js"
import type { NodeKindDefinition } from "../../store/nodeKind.js"
import { makeSpec, type NodeSpec } from "../graph.js"

/*
 * fetch-builder: the official Image Builder, verified and extracted. A fixed-output node: its key is the
 * release, the target and the archive's SHA-256 from the signed sha256sums, so the same archive is the same
 * node on every machine, and what comes out was checked against that digest as it arrived.
 */
export const fetchBuilderKind: NodeKindDefinition = {
  kind: "fetch-builder",
  schema: 1,
  description: "the verified, extracted official Image Builder",
  slot: "download",
  digest: "listing",
  rebuildable: false,
  audited: false,
}

export const fetchBuilderNode = (
  archive: BuilderArchive,
  options: { readonly stallSeconds: number },
): Effect.Effect<NodeSpec> =>
  makeSpec({
    kind: fetchBuilderKind,
    name: builderPathName(archive),
    deps: [],
    keyInputs: { release: archive.release, target: archive.target, archiveSha256: archive.sha256 },
    private: false,
    build: ({ output, work, report }) =>
      Effect.asVoid(
        fetchBuilderInto({
          archive,
          output,
          work,
          stallSeconds: options.stallSeconds,
          onBytes: (bytes, total) => report({ bytes, total }),
        }),
      ),
    // The builders row (archive, signer, last use) that `builders list` and `prune` read.
    stored: (stored) => Effect.asVoid(recordBuilder({ archive, key: stored.key, storePath: stored.path })),
  })
