import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { Effect } from "effect"
import { isKeyName } from "../cache/signing.js"
import { UsageError } from "../errors.js"

/**
 * Writes a fresh key pair as two files, `<name><secretSuffix>` (mode 0600) and `<name>.pub`, in `directory`
 * (default: here): never over an existing file, and the pair is made only once both names are free. Needs
 * neither the store nor the database (`owrt cache keygen`, `owrt ota keygen`).
 */
export const writeKeyFiles = (
  params: { readonly name: string; readonly directory?: string | undefined },
  secretSuffix: string,
  make: () => { readonly secret: string; readonly public: string },
) =>
  Effect.gen(function* () {
    if (!isKeyName(params.name))
      return yield* new UsageError({
        detail: `\`${params.name}\` is not a key name: letters, digits, . _ - only`,
      })
    const dir = resolve(params.directory ?? ".")
    const secretFile = join(dir, `${params.name}${secretSuffix}`)
    const publicFile = join(dir, `${params.name}.pub`)
    for (const file of [secretFile, publicFile])
      if (existsSync(file))
        return yield* new UsageError({
          detail: `${file} exists; keys are never overwritten (remove it first)`,
        })
    const pair = make()
    yield* Effect.sync(() => {
      mkdirSync(dir, { recursive: true })
      writeFileSync(secretFile, pair.secret, { mode: 0o600, flag: "wx" })
      writeFileSync(publicFile, pair.public, { mode: 0o644, flag: "wx" })
    })
    return { secretFile, publicFile, public: pair.public }
  })
