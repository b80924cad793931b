import { createPublicKey, verify } from "node:crypto"

/*
 * usign / signify (Ed25519), the format of OpenWrt's `sha256sums.sig` and keyring files:
 * line 1 `untrusted comment: …` (never trusted, never compared), line 2 base64 of
 *   public key: "Ed" + key id (8 bytes) + Ed25519 public key (32 bytes) = 42 bytes
 *   signature:  "Ed" + key id (8 bytes) + Ed25519 signature (64 bytes)  = 74 bytes
 */

export interface UsignPublicKey {
  /** 16 lower-case hex digits; names the key file in a keyring. */
  readonly keyId: string
  readonly key: Uint8Array
}

export interface UsignSignature {
  readonly keyId: string
  readonly signature: Uint8Array
}

/** Why a usign text could not be read, or undefined when it could. */
export type UsignParseResult<A> =
  | { readonly ok: true; readonly value: A }
  | { readonly ok: false; readonly reason: string }

const payload = (text: string, length: number, what: string): UsignParseResult<Uint8Array> => {
  const lines = text.split(/\r?\n/)
  if (!lines[0]?.startsWith("untrusted comment:")) {
    return { ok: false, reason: `${what}: first line is not "untrusted comment: …"` }
  }
  const encoded = (lines[1] ?? "").trim()
  if (!/^[A-Za-z0-9+/]+=*$/.test(encoded)) return { ok: false, reason: `${what}: second line is not base64` }
  const bytes = Buffer.from(encoded, "base64")
  if (bytes.length !== length)
    return { ok: false, reason: `${what}: ${bytes.length} bytes, expected ${length}` }
  if (bytes[0] !== 0x45 || bytes[1] !== 0x64)
    return { ok: false, reason: `${what}: not an Ed25519 ("Ed") ${what}` }
  return { ok: true, value: bytes }
}

export const parsePublicKey = (text: string): UsignParseResult<UsignPublicKey> => {
  const parsed = payload(text, 42, "public key")
  if (!parsed.ok) return parsed
  return {
    ok: true,
    value: {
      keyId: Buffer.from(parsed.value.subarray(2, 10)).toString("hex"),
      key: parsed.value.subarray(10),
    },
  }
}

export const parseSignature = (text: string): UsignParseResult<UsignSignature> => {
  const parsed = payload(text, 74, "signature")
  if (!parsed.ok) return parsed
  return {
    ok: true,
    value: {
      keyId: Buffer.from(parsed.value.subarray(2, 10)).toString("hex"),
      signature: parsed.value.subarray(10),
    },
  }
}

const spkiPrefix = Buffer.from("302a300506032b6570032100", "hex")

/** Plain Ed25519 verification over the exact bytes of the signed file. */
export const verifySignature = (
  message: Uint8Array,
  signature: UsignSignature,
  publicKey: UsignPublicKey,
): boolean => {
  if (signature.keyId !== publicKey.keyId) return false
  const key = createPublicKey({
    key: Buffer.concat([spkiPrefix, publicKey.key]),
    format: "der",
    type: "spki",
  })
  return verify(null, message, key, signature.signature)
}
