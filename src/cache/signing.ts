import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto"
import { Effect } from "effect"
import { CacheSignatureError } from "../errors.js"

/*
 * Ed25519 keys and signatures for the shared cache, in Nix's text form: a secret key is
 * `name:base64(seed ‖ public key)` (64 bytes), a public key `name:base64(public key)` (32 bytes), a
 * signature `name:base64(signature)` (64 bytes). The name says which trusted key to check against.
 */

export interface SecretKey {
  readonly name: string
  readonly seed: Uint8Array
  readonly publicKey: Uint8Array
}

export interface PublicKey {
  readonly name: string
  readonly publicKey: Uint8Array
}

/** What a signature covers: everything that decides a substituted node's content. */
export interface Fingerprinted {
  readonly key: string
  readonly kind: string
  readonly treeDigest: string
  readonly layerDigests: ReadonlyArray<string>
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url")

/** The exact bytes signed: one line, fields in a fixed order, so every signer and checker agrees. */
export const fingerprint = (entry: Fingerprinted): string =>
  `owrt-node-v1;${entry.key};${entry.kind};${entry.treeDigest};${entry.layerDigests.join(",")}`

export const isKeyName = (name: string): boolean => namePattern.test(name)

/** A fresh key pair named `name`, as the two text lines to write to the secret and public key files. */
export const generateKeyPair = (name: string): { readonly secret: string; readonly public: string } => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519")
  const jwk = privateKey.export({ format: "jwk" })
  const seed = Buffer.from(jwk.d ?? "", "base64url")
  const pub = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url")
  return {
    secret: `${name}:${Buffer.concat([seed, pub]).toString("base64")}`,
    public: `${name}:${pub.toString("base64")}`,
  }
}

const splitKey = (text: string, subject: string, size: number) =>
  Effect.gen(function* () {
    const trimmed = text.trim()
    const colon = trimmed.indexOf(":")
    const name = colon > 0 ? trimmed.slice(0, colon) : ""
    const fail = (detail: string) =>
      Effect.fail(new CacheSignatureError({ kind: "key_invalid", subject, detail }))
    if (!isKeyName(name)) return yield* fail("missing or bad `name:` prefix")
    const body = trimmed.slice(colon + 1)
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return yield* fail("the part after `:` is not base64")
    const bytes = new Uint8Array(Buffer.from(body, "base64"))
    if (bytes.length !== size) return yield* fail(`${bytes.length} bytes, expected ${size}`)
    return { name, bytes }
  })

export const parseSecretKey = (text: string, subject: string) =>
  Effect.gen(function* () {
    const { name, bytes } = yield* splitKey(text, subject, 64)
    const key: SecretKey = { name, seed: bytes.slice(0, 32), publicKey: bytes.slice(32) }
    // The stored public half must be the seed's: a mismatched file would sign what nobody can verify.
    const derived = publicKeyOf(key)
    if (Buffer.compare(Buffer.from(derived), Buffer.from(key.publicKey)) !== 0)
      return yield* new CacheSignatureError({
        kind: "key_invalid",
        subject,
        detail: "its public half does not belong to its seed",
      })
    return key
  })

export const parsePublicKey = (text: string, subject: string) =>
  Effect.map(splitKey(text, subject, 32), ({ name, bytes }): PublicKey => ({ name, publicKey: bytes }))

// PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows it.
const pkcs8Prefix = Buffer.from("302e020100300506032b657004220420", "hex")

const privateKeyObject = (key: SecretKey) =>
  createPrivateKey({ key: Buffer.concat([pkcs8Prefix, key.seed]), format: "der", type: "pkcs8" })

const publicKeyOf = (key: SecretKey): Uint8Array =>
  new Uint8Array(
    Buffer.from(createPublicKey(privateKeyObject(key)).export({ format: "jwk" }).x ?? "", "base64url"),
  )

/** `name:base64(signature)` over the entry's fingerprint. */
export const signEntry = (key: SecretKey, entry: Fingerprinted): string =>
  `${key.name}:${sign(null, Buffer.from(fingerprint(entry)), privateKeyObject(key)).toString("base64")}`

/**
 * Checks `signature` (`name:base64`) over the entry against the trusted keys. Fails closed: no signature,
 * a key name not trusted, or a signature that does not verify are each a `CacheSignatureError`.
 */
export const verifyEntry = (
  entry: Fingerprinted,
  signature: string | undefined,
  trusted: ReadonlyArray<PublicKey>,
  subject: string,
): Effect.Effect<PublicKey, CacheSignatureError> =>
  Effect.gen(function* () {
    if (signature === undefined || signature.trim() === "")
      return yield* new CacheSignatureError({ kind: "missing", subject })
    const colon = signature.indexOf(":")
    const keyName = colon > 0 ? signature.slice(0, colon) : undefined
    const body = colon > 0 ? Buffer.from(signature.slice(colon + 1), "base64") : Buffer.alloc(0)
    if (keyName === undefined || body.length !== 64)
      return yield* new CacheSignatureError({
        kind: "invalid",
        subject,
        keyName,
        detail: "malformed signature",
      })
    const candidates = trusted.filter((key) => key.name === keyName)
    if (candidates.length === 0)
      return yield* new CacheSignatureError({ kind: "untrusted", subject, keyName })
    const data = Buffer.from(fingerprint(entry))
    for (const key of candidates) {
      const publicKey = createPublicKey({
        key: { kty: "OKP", crv: "Ed25519", x: b64url(key.publicKey) },
        format: "jwk",
      })
      if (verify(null, data, publicKey, body)) return key
    }
    return yield* new CacheSignatureError({ kind: "invalid", subject, keyName })
  })
