/**
 * The key id (16 lower-case hex digits) of a usign public key given as the base64 line of its `.pub` file
 * ("Ed", 8-byte key id, 32-byte Ed25519 key), or undefined when the line is not one. opkg names a trusted
 * key's file after it.
 */
export const usignPublicKeyId = (line: string): string | undefined => {
  const text = line.trim()
  if (!/^[A-Za-z0-9+/]{56}$/.test(text)) return undefined
  const bytes = Buffer.from(text, "base64")
  return bytes.length === 42 && bytes[0] === 0x45 && bytes[1] === 0x64
    ? bytes.subarray(2, 10).toString("hex")
    : undefined
}
