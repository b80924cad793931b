import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto"
import { Effect, Either, Option, Schema } from "effect"
import { Descriptor, manifestMediaType } from "../cache/manifest.js"
import type { RegistryClient } from "../cache/registryClient.js"
import { OtaSignatureError, type OwrtError } from "../errors.js"
import { sha256Hex } from "../text/digest.js"

/*
 * Cosign-style release signatures, as OtaFlux verifies them (ota.md §3) and as `cosign sign --key` lays them
 * out: the tag `sha256-<manifest digest hex>.sig` in the release's repository holds an image manifest whose
 * layers are "simple signing" payloads (`application/vnd.dev.cosign.simplesigning.v1+json`), each with the
 * base64 DER ECDSA P-256 / SHA-256 signature over the payload bytes in the layer annotation
 * `dev.cosignproject.cosign/signature`. The payload binds the manifest digest (`docker-manifest-digest`).
 * Keys are PEM: a PKCS#8 (or SEC 1) private key, and the public key as `cosign.pub` holds it (SPKI).
 */

export const simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
export const signatureAnnotation = "dev.cosignproject.cosign/signature"
export const imageConfigMediaType = "application/vnd.oci.image.config.v1+json"
export const payloadType = "cosign container image signature"

/** The tag holding the signatures of the manifest `sha256:<hex>`. */
export const signatureTag = (manifestDigest: string): string => `${manifestDigest.replace(":", "-")}.sig`

const SimpleSigning = Schema.Struct({
  critical: Schema.Struct({
    identity: Schema.Struct({ "docker-reference": Schema.String }),
    image: Schema.Struct({ "docker-manifest-digest": Schema.String }),
    type: Schema.String,
  }),
})
const decodePayload = Schema.decodeUnknownEither(Schema.parseJson(SimpleSigning))

const SignatureManifest = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  layers: Schema.Array(Descriptor),
})
const decodeSignatureManifest = Schema.decodeUnknownOption(Schema.parseJson(SignatureManifest))
/** The layers of a `.sig` manifest; none when it cannot be read. */
const layersOf = (bytes: Uint8Array) =>
  Option.match(decodeSignatureManifest(Buffer.from(bytes).toString("utf8")), {
    onNone: () => [],
    onSome: (manifest) => manifest.layers,
  })

/** The payload cosign signs for `reference` (`host/repository`) at `manifestDigest`. */
export const signingPayload = (reference: string, manifestDigest: string): Uint8Array =>
  new TextEncoder().encode(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": reference },
        image: { "docker-manifest-digest": manifestDigest },
        type: payloadType,
      },
      optional: null,
    }),
  )

const keyInvalid = (subject: string, detail: string) =>
  new OtaSignatureError({ kind: "key_invalid", subject, detail })

const isP256 = (key: KeyObject) =>
  key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1"

/** A PEM key made by `create`, accepted only when it is ECDSA P-256; `subject` names where it came from. */
const parseKey =
  (create: (pem: string) => KeyObject, what: string) =>
  (pem: string, subject: string): Effect.Effect<KeyObject, OtaSignatureError> =>
    Effect.suspend(() => {
      try {
        const key = create(pem)
        return isP256(key)
          ? Effect.succeed(key)
          : Effect.fail(
              keyInvalid(subject, `a ${key.asymmetricKeyType ?? "?"} key; cosign keys are ECDSA P-256`),
            )
      } catch (error) {
        return Effect.fail(keyInvalid(subject, `not a PEM ${what} (${(error as Error).message})`))
      }
    })

/** A PEM private key (PKCS#8 or SEC 1), ECDSA P-256. cosign's password-encrypted format is named as such. */
export const parsePrivateKey = (pem: string, subject: string): Effect.Effect<KeyObject, OtaSignatureError> =>
  pem.includes("ENCRYPTED SIGSTORE PRIVATE KEY") || pem.includes("ENCRYPTED COSIGN PRIVATE KEY")
    ? Effect.fail(
        keyInvalid(
          subject,
          "cosign's password-encrypted key format is not read; make a key with `owrt ota keygen NAME` (cosign import-key-pair takes it)",
        ),
      )
    : parseKey(createPrivateKey, "private key")(pem, subject)

/** A PEM public key (`cosign.pub`), ECDSA P-256. */
export const parsePublicKey = parseKey(createPublicKey, "public key")

/** A fresh ECDSA P-256 key pair as PEM: PKCS#8 private key, SPKI public key (cosign.pub's form). */
export const generateCosignKeyPair = (): { readonly privateKey: string; readonly publicKey: string } => {
  const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
  return {
    privateKey: pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKey: pair.publicKey.export({ format: "pem", type: "spki" }).toString(),
  }
}

const signPayload = (key: KeyObject, payload: Uint8Array) =>
  sign("sha256", payload, { key, dsaEncoding: "der" }).toString("base64")

const verifies = (key: KeyObject, payload: Uint8Array, signature: string) => {
  try {
    return verify("sha256", payload, { key, dsaEncoding: "der" }, Buffer.from(signature, "base64"))
  } catch {
    return false
  }
}

/**
 * Signs the manifest `manifestDigest` of `client`'s repository: uploads the payload and a cosign-style config,
 * and writes the `.sig` manifest — keeping the signatures already there (cosign appends), and leaving it as it
 * is when it holds this key's signature of this payload already.
 */
export const signRelease = (
  client: RegistryClient,
  key: KeyObject,
  manifestDigest: string,
): Effect.Effect<{ readonly tag: string; readonly status: "signed" | "present" }, OwrtError> =>
  Effect.gen(function* () {
    const tag = signatureTag(manifestDigest)
    const reference = `${client.location.host}/${client.location.repository}`
    const payload = signingPayload(reference, manifestDigest)
    const payloadDigest = `sha256:${sha256Hex(payload)}`
    const existing = yield* client.getManifest(tag)
    const kept = existing === undefined ? [] : layersOf(existing)
    const publicKey = createPublicKey(key)
    if (
      kept.some(
        (layer) =>
          layer.digest === payloadDigest &&
          verifies(publicKey, payload, layer.annotations?.[signatureAnnotation] ?? ""),
      )
    )
      return { tag, status: "present" as const }
    const layers = [
      ...kept.filter((layer) => layer.mediaType === simpleSigningMediaType),
      {
        mediaType: simpleSigningMediaType,
        digest: payloadDigest,
        size: payload.length,
        annotations: { [signatureAnnotation]: signPayload(key, payload) },
      },
    ]
    // cosign's config: an image config whose rootfs lists the payloads.
    const config = new TextEncoder().encode(
      JSON.stringify({
        architecture: "",
        created: "0001-01-01T00:00:00Z",
        history: [{ created: "0001-01-01T00:00:00Z" }],
        os: "",
        rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.digest) },
        config: {},
      }),
    )
    const configDigest = `sha256:${sha256Hex(config)}`
    yield* client.uploadBlob(payloadDigest, payload.length, payload)
    yield* client.uploadBlob(configDigest, config.length, config)
    const manifest = {
      schemaVersion: 2,
      mediaType: manifestMediaType,
      config: { mediaType: imageConfigMediaType, digest: configDigest, size: config.length },
      layers,
    }
    yield* client.putManifest(tag, new TextEncoder().encode(JSON.stringify(manifest)))
    return { tag, status: "signed" as const }
  })

/**
 * Checks that the release `manifestDigest` of `client`'s repository carries a signature `key` verifies, whose
 * payload binds that digest. Fails `ota_signature_missing` (no `.sig` tag, no signed layer) or
 * `ota_signature_invalid` (no layer verifies; a payload for another manifest); registry errors pass through.
 */
export const verifyRelease = (
  client: RegistryClient,
  key: KeyObject,
  subject: string,
  manifestDigest: string,
): Effect.Effect<void, OwrtError> =>
  Effect.gen(function* () {
    const tag = signatureTag(manifestDigest)
    const bytes = yield* client.getManifest(tag)
    if (bytes === undefined)
      return yield* new OtaSignatureError({
        kind: "missing",
        subject,
        detail: `the registry has no tag ${tag}`,
      })
    const signed = layersOf(bytes).filter((layer) => layer.annotations?.[signatureAnnotation] !== undefined)
    if (signed.length === 0)
      return yield* new OtaSignatureError({
        kind: "missing",
        subject,
        detail: `${tag} holds no layer with a ${signatureAnnotation} annotation`,
      })
    let why = ""
    for (const layer of signed) {
      // A small blob, checked against its digest by the client.
      const payload = yield* client.getBlob(layer)
      if (!verifies(key, payload, layer.annotations?.[signatureAnnotation] ?? "")) {
        why ||= "the signature does not verify with the configured public key"
        continue
      }
      const decoded = decodePayload(Buffer.from(payload).toString("utf8"))
      if (Either.isLeft(decoded)) {
        why ||= "the signed payload is not a simple-signing document"
        continue
      }
      const bound = decoded.right.critical.image["docker-manifest-digest"]
      if (bound !== manifestDigest) {
        why ||= `the signed payload binds ${bound}, not the release's manifest ${manifestDigest}`
        continue
      }
      return
    }
    return yield* new OtaSignatureError({ kind: "invalid", subject, detail: why })
  })
