import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import {
  fingerprint,
  generateKeyPair,
  parsePublicKey,
  parseSecretKey,
  signEntry,
  verifyEntry,
} from "../../src/cache/signing.js"

const entry = {
  key: "3f9a0c",
  kind: "image",
  treeDigest: "sha256:aa",
  layerDigests: ["sha256:bb", "sha256:cc"],
}

const keys = (name: string) => {
  const pair = generateKeyPair(name)
  return {
    pair,
    secret: Effect.runSync(parseSecretKey(pair.secret, `${name}.sec`)),
    public: Effect.runSync(parsePublicKey(pair.public, `${name}.pub`)),
  }
}

const check = (signature: string | undefined, trusted: ReturnType<typeof keys>["public"][], what = entry) =>
  Effect.runSync(Effect.either(verifyEntry(what, signature, trusted, "oci://r/owrt:3f9a0c")))

const code = (result: Either.Either<unknown, { code: string }>) =>
  Either.isLeft(result) ? result.left.code : "ok"

describe("cache signing (Ed25519, Nix-style name:base64)", () => {
  it("keygen writes name:base64 keys of Nix's sizes, and a signature by a trusted key verifies", () => {
    const ci = keys("ci-1")
    expect(ci.pair.secret).toMatch(/^ci-1:[A-Za-z0-9+/]{86}==$/)
    expect(ci.pair.public).toMatch(/^ci-1:[A-Za-z0-9+/]{43}=$/)
    const signature = signEntry(ci.secret, entry)
    expect(signature.startsWith("ci-1:")).toBe(true)
    expect(code(check(signature, [ci.public]))).toBe("ok")
  })

  it("refuses unsigned, untrusted and altered entries with their codes", () => {
    const ci = keys("ci-1")
    const other = keys("laptop")
    const signature = signEntry(ci.secret, entry)
    expect(code(check(undefined, [ci.public]))).toBe("cache_signature_missing")
    expect(code(check(signature, [other.public]))).toBe("cache_signature_untrusted")
    // Same name, different key: an impostor.
    const impostor = keys("ci-1")
    expect(code(check(signEntry(impostor.secret, entry), [ci.public]))).toBe("cache_signature_invalid")
    // Any field of the fingerprint changed: tree digest, a layer, the kind, the key.
    for (const altered of [
      { ...entry, treeDigest: "sha256:ab" },
      { ...entry, layerDigests: ["sha256:bb"] },
      { ...entry, kind: "builder" },
      { ...entry, key: "3f9a0d" },
    ]) {
      expect(fingerprint(altered)).not.toBe(fingerprint(entry))
      expect(code(check(signature, [ci.public], altered))).toBe("cache_signature_invalid")
    }
    expect(code(check("ci-1:AAAA", [ci.public]))).toBe("cache_signature_invalid")
  })

  it("rejects malformed key files with cache_key_invalid", () => {
    const ci = keys("ci-1")
    const bad = (text: string, parse: typeof parsePublicKey | typeof parseSecretKey) =>
      code(Effect.runSync(Effect.either(parse(text, "key.file"))))
    expect(bad("no-colon", parsePublicKey)).toBe("cache_key_invalid")
    expect(bad("ci-1:not base64!", parsePublicKey)).toBe("cache_key_invalid")
    expect(bad(ci.pair.public, parseSecretKey)).toBe("cache_key_invalid")
    // A secret key whose public half is not its seed's.
    const other = keys("ci-1")
    const mixed = Buffer.concat([Buffer.from(ci.secret.seed), Buffer.from(other.secret.publicKey)])
    expect(bad(`ci-1:${mixed.toString("base64")}`, parseSecretKey)).toBe("cache_key_invalid")
  })
})
