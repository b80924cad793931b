import { join } from "node:path"
import { Effect } from "effect"
import { PackageCheckRecords } from "../../db/packageCheckRecords.js"
import { StorePathRecords } from "../../db/storePathRecords.js"
import { InternalError } from "../../errors.js"
import type { BuilderInfo } from "../../image/builderInfo.js"
import {
  type MakeImageParams,
  makeImageSchema,
  packageSelectionKey,
  runMakeImage,
} from "../../image/makeImage.js"
import { redactSecrets } from "../../profile/secrets.js"
import type { NodeKindDefinition } from "../../store/nodeKind.js"
import { parseListing } from "../../store/treeDigest.js"
import { makeSpec, type NodeSpec } from "../graph.js"

/*
 * make-image: `make manifest`, then `make image` in a private instance of the builder, FILES= the staged
 * overlay plus the build marker. Its key covers the builder and overlay keys, the device (aliases
 * resolved), packages, disabled services, rootfs size, and the profile id and revision the marker names.
 */
export const makeImageKind: NodeKindDefinition = {
  kind: "make-image",
  schema: makeImageSchema,
  description: "BIN_DIR of `make image` and the build log",
  slot: "build",
  digest: "content",
  rebuildable: true,
  audited: true,
}

export interface MakeImageNodeInputs {
  readonly params: MakeImageParams
  readonly secrets: ReadonlyMap<string, string>
  /** The builder's device profiles, for "did you mean" when make does not know the device. */
  readonly builderInfo: BuilderInfo
  readonly timeoutSeconds: number
  /** The caller's environment variables make sees too (the `makeEnv` setting); not part of the key. */
  readonly makeEnv: ReadonlyArray<string>
  /** Where the log is kept when the build fails (the work directory goes away). */
  readonly failureLog?: string | undefined
  /** The build record that keeps it, named by package errors. */
  readonly buildId?: number | undefined
}

export const makeImageNode = (inputs: MakeImageNodeInputs): Effect.Effect<NodeSpec> =>
  makeSpec({
    kind: makeImageKind,
    name: `${inputs.params.profile}-image`,
    deps: [inputs.params.builderKey, inputs.params.overlayKey],
    keyInputs: { ...inputs.params },
    private: inputs.secrets.size > 0,
    build: ({ key, output, work, inputs: stored, report }) =>
      Effect.gen(function* () {
        const { params } = inputs
        const checkKey = yield* packageSelectionKey(params)
        const checks = yield* PackageCheckRecords
        const checked = yield* checks.checked(checkKey).pipe(Effect.orElseSucceed(() => false))
        const overlay = yield* StorePathRecords.find(params.overlayKey)
        if (overlay === undefined) {
          return yield* new InternalError({
            cause: `the staged overlay ${params.overlayKey} has no store row`,
          })
        }
        // Every line of make's output, as the stored log has it (secrets redacted), in whole lines.
        let partial = ""
        const lines = (text: string) => {
          const parts = (partial + text).split("\n")
          partial = parts.pop() ?? ""
          for (const line of parts) report({ line: redactSecrets(line.replace(/\r$/, ""), inputs.secrets) })
        }
        const flush = Effect.sync(() => {
          if (partial !== "") report({ line: redactSecrets(partial, inputs.secrets) })
          partial = ""
        })
        yield* runMakeImage(
          {
            params,
            key,
            manifestChecked: checked,
            onManifestPassed: (manifest) => checks.record(checkKey, manifest).pipe(Effect.ignore),
            builderPath: stored.get(params.builderKey)?.path ?? "",
            overlayPath: stored.get(params.overlayKey)?.path ?? "",
            overlayListing: parseListing(overlay.listing),
            timeoutSeconds: inputs.timeoutSeconds,
            makeEnv: inputs.makeEnv,
            secrets: inputs.secrets,
            builderInfo: inputs.builderInfo,
            failureLog: inputs.failureLog,
            buildId: inputs.buildId,
            onOutput: lines,
          },
          output,
          work,
        ).pipe(Effect.ensuring(flush))
      }),
  })

/** Where a failed build's log is kept: `store/logs/build-<id>.log`. */
export const failureLogPath = (store: string, buildId: number) => join(store, "logs", `build-${buildId}.log`)
