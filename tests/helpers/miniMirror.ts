import { execFileSync } from "node:child_process"
import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type TarEntry, tarArchive } from "./tarWriter.js"

/**
 * A small download server tree made on the spot — .versions.json, .targets.json and a signed
 * sha256sums naming one Image Builder archive — for tests that need archives the real fixture would never
 * contain (hostile entries, odd compressions) or their own signing key.
 */

export interface UsignKey {
  readonly keyId: string
  readonly publicFile: string
  readonly sign: (message: Uint8Array) => string
}

export const makeUsignKey = (comment = "owrt test key"): UsignKey => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519")
  const raw = (publicKey as KeyObject).export({ format: "der", type: "spki" }).subarray(-32)
  const id = createHash("sha256").update(raw).digest().subarray(0, 8)
  const keyId = id.toString("hex")
  const publicFile = `untrusted comment: ${comment}\n${Buffer.concat([Buffer.from("Ed"), id, raw]).toString("base64")}\n`
  return {
    keyId,
    publicFile,
    sign: (message) =>
      `untrusted comment: signed by key ${keyId}\n${Buffer.concat([
        Buffer.from("Ed"),
        id,
        sign(null, message, privateKey),
      ]).toString("base64")}\n`,
  }
}

export const compress = (data: Uint8Array, kind: "zstd" | "xz" | "gzip"): Buffer =>
  execFileSync(kind, kind === "xz" ? ["-c", "-0"] : kind === "zstd" ? ["-c", "-q", "-1"] : ["-c", "-n"], {
    input: data,
    maxBuffer: 1 << 30,
  })

export const imageBuilderEntries = (
  top: string,
  extra: ReadonlyArray<TarEntry> = [],
  payloadBytes = 0,
): Array<TarEntry> => [
  { name: `${top}/`, type: "dir" },
  { name: `${top}/Makefile`, content: "help:\n\t@echo stand-in\n" },
  { name: `${top}/scripts/`, type: "dir" },
  { name: `${top}/scripts/run.sh`, content: "#!/bin/sh\necho ok\n", mode: 0o755 },
  { name: `${top}/scripts/link`, type: "symlink", linkTarget: "run.sh" },
  ...(payloadBytes > 0 ? [{ name: `${top}/payload.bin`, content: pseudoRandom(payloadBytes) }] : []),
  ...extra,
]

/** Incompressible but reproducible bytes. */
export const pseudoRandom = (length: number, seed = 1): Buffer => {
  const out = Buffer.alloc(length)
  let counter = 0
  for (let offset = 0; offset < length; offset += 32) {
    createHash("sha256").update(`${seed}:${counter++}`).digest().copy(out, offset)
  }
  return out
}

export interface MiniMirror {
  readonly root: string
  readonly keyring: string
  readonly key: UsignKey
  readonly archivePath: string
  readonly archiveSha256: string
}

export const makeMiniMirror = (
  dir: string,
  options: {
    readonly release?: string
    readonly target?: string
    readonly entries?: ReadonlyArray<TarEntry>
    readonly compression?: "zstd" | "xz" | "gzip"
    readonly payloadBytes?: number
  } = {},
): MiniMirror => {
  const release = options.release ?? "24.10.2"
  const target = options.target ?? "x86/64"
  const compression = options.compression ?? "zstd"
  // 23.05 ships .tar.xz, 24.10 and later .tar.zst; other compressions keep the .tar.zst name, to prove the
  // format is read from the content.
  const ext = compression === "xz" && release.startsWith("23.") ? "xz" : "zst"
  const base = `openwrt-imagebuilder-${release}-${target.replace("/", "-")}.Linux-x86_64`
  const archive = compress(
    tarArchive(options.entries ?? imageBuilderEntries(base, [], options.payloadBytes ?? 0)),
    compression,
  )
  const root = join(dir, "mirror")
  const targetDir = join(root, "releases", release, "targets", target)
  mkdirSync(targetDir, { recursive: true })
  writeFileSync(
    join(root, ".versions.json"),
    JSON.stringify({
      stable_version: release,
      oldstable_version: "",
      upcoming_version: "",
      versions_list: [release],
    }),
  )
  writeFileSync(join(root, "releases", release, ".targets.json"), JSON.stringify({ [target]: "x86_64" }))
  const name = `${base}.tar.${ext}`
  writeFileSync(join(targetDir, name), archive)
  const archiveSha256 = createHash("sha256").update(archive).digest("hex")
  const sums = Buffer.from(`${archiveSha256} *${name}\n`)
  const key = makeUsignKey()
  writeFileSync(join(targetDir, "sha256sums"), sums)
  writeFileSync(join(targetDir, "sha256sums.sig"), key.sign(sums))
  const keyring = join(dir, "keyring")
  mkdirSync(keyring, { recursive: true })
  writeFileSync(join(keyring, key.keyId), key.publicFile)
  return { root, keyring, key, archivePath: `/releases/${release}/targets/${target}/${name}`, archiveSha256 }
}
