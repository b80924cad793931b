import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { coreLayer } from "../../src/app/appLayer.js"
import { AppConfig } from "../../src/config/appConfig.js"
import { silentProgress } from "../../src/progress/progress.js"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { testConfig } from "./testLayers.js"

/**
 * The real core, in-process, over a scratch project: the profiles given (id → YAML) in a temporary
 * directory with its own store, and the stand-in mirror served on 127.0.0.1 as upstream (its keyring too).
 * Everything is removed when the layer is released.
 */
export const mirrorProjectLayer = (profiles: Record<string, string>) =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const built = yield* Effect.promise(() => buildMirror())
      const mirror = yield* Effect.acquireRelease(
        Effect.promise(() => serveMirror(built.root)),
        (served) => Effect.promise(() => served.close()),
      )
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "owrt-project-"))),
        (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true })),
      )
      mkdirSync(join(dir, "profiles"))
      for (const [id, text] of Object.entries(profiles))
        writeFileSync(join(dir, "profiles", `${id}.yaml`), text)
      const config = testConfig(join(dir, "store"), {
        projectRoot: dir,
        profiles: join(dir, "profiles"),
        upstream: mirror.url,
        keyring: built.keyring,
      })
      return coreLayer(Layer.succeed(AppConfig, config), silentProgress)
    }),
  )
