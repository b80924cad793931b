import { Effect, type Scope } from "effect"
import type { ArtifactsManifest } from "../artifacts/collectArtifacts.js"
import { AppConfig } from "../config/appConfig.js"
import { ArtifactRecords } from "../db/artifactRecords.js"
import { InternalError, type OwrtError } from "../errors.js"
import { secretsUsed } from "../overlay/stageOverlay.js"
import type { ProfileView } from "../profile/profileRepository.js"
import { revisionLabel } from "../profile/profileRepository.js"
import { raspiosSecrets } from "../profile/raspiosResolve.js"
import { resolveBaseImage } from "../raspios/baseImage.js"
import { collectRaspiosArtifacts } from "../raspios/collectImage.js"
import type { CustomiseParams } from "../raspios/customiseImage.js"
import type { CompiledProfile, CompileFacts } from "./compileGraph.js"
import { readProfileSecrets } from "./compileGraph.js"
import { graphRevision, makeSpec } from "./graph.js"
import { collectArtifactsKind, readManifest } from "./kinds/collectArtifactsNode.js"
import { customiseImageNode } from "./kinds/customiseImageNode.js"
import { fetchBaseImageNode } from "./kinds/fetchBaseImageNode.js"

/*
 * A Raspberry Pi OS profile's graph:
 *
 *   fetch-base-image ──▶ customise-image ──▶ collect-artifacts
 *
 * The base image is resolved first (the OS list entry, or the URL and digests the profile gives); its
 * extracted SHA-256 is fetch-base-image's key. Secrets are read and enter keys as keyed fingerprints only.
 */
export const compileRaspiosGraph = (
  entry: ProfileView,
  facts: Pick<CompileFacts, "storedOnly" | "sealingKey">,
): Effect.Effect<CompiledProfile, OwrtError, AppConfig | Scope.Scope> =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const { revision } = entry
    const p = revision.profile
    const raspios = p.raspios
    if (raspios === undefined) {
      return yield* new InternalError({ cause: `${p.id} is not a raspios profile` })
    }
    const used = [...new Set([...secretsUsed(revision), ...raspiosSecrets(raspios)])].sort()
    const secrets = yield* readProfileSecrets(entry, used, facts.sealingKey)
    const base = yield* resolveBaseImage(raspios.base, {
      osList: config.osList,
      store: config.store,
      offline: config.offline,
      storedOnly: facts.storedOnly === true,
      timeoutSeconds: config.timeouts.stall,
    })
    const baseNode = yield* fetchBaseImageNode(base, { stallSeconds: config.timeouts.stall })
    const params: CustomiseParams = {
      profile: p.id,
      revision: revision.hash,
      raspios,
      files: p.files,
      ...(p.overlay.length > 0 ? { overlay: p.overlay } : {}),
      firstBoot: p.first_boot,
      packages: p.packages,
      initFormat: base.initFormat,
    }
    const image = yield* customiseImageNode({
      baseKey: baseNode.key,
      params,
      secrets: secrets.values,
      fingerprints: secrets.fingerprints,
      readOverlay: revision.readOverlay,
    })
    const manifest = (key: string): Omit<ArtifactsManifest, "images" | "packages" | "sbom"> => ({
      owrt: 1,
      profile: p.id,
      revision: revision.hash,
      inputs: {
        release: base.releaseDate ?? "",
        target: "raspios",
        device: raspios.hostname ?? "",
        packages: p.packages,
        disabledServices: [],
        rootfsSize: null,
      },
      builder: {
        key: baseNode.key,
        archive: base.url.replace(/^.*\//, ""),
        archiveSha256: base.sha256 ?? "",
        signedBy: "",
      },
      keys: { fetchBuilder: baseNode.key, stageOverlay: "", makeImage: image.key, collectArtifacts: key },
      raspios: { base: { url: base.url, extractSha256: base.extractSha256, releaseDate: base.releaseDate } },
    })
    const artifacts = yield* makeSpec({
      kind: collectArtifactsKind,
      name: `${p.id}-artifacts`,
      deps: [image.key],
      keyInputs: { image: image.key, compression: raspios.compression },
      private: secrets.values.size > 0,
      build: ({ key, output, inputs: stored }) =>
        Effect.asVoid(
          collectRaspiosArtifacts({
            imagePath: stored.get(image.key)?.path ?? "",
            output,
            profile: p.id,
            compression: raspios.compression,
            manifest: manifest(key),
            packages: p.packages,
          }),
        ),
      stored: (stored) =>
        Effect.flatMap(readManifest(stored.path), (m) => ArtifactRecords.record(stored.key, m.images)),
    })
    return {
      entry,
      archive: null,
      graph: {
        label: revisionLabel(entry),
        nodes: [baseNode, image, artifacts],
        root: artifacts.key,
        revision: graphRevision(entry),
      },
      keys: { builder: baseNode.key, overlay: null, image: image.key, artifacts: artifacts.key },
    }
  })
