/**
 * Writes tar archives entry by entry, including the hostile ones (`../` names, absolute paths, links that
 * lead out, device nodes) that the system tar refuses to create, for tests of archive safety.
 */
export interface TarEntry {
  readonly name: string
  readonly type?: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo"
  readonly content?: string | Uint8Array
  readonly linkTarget?: string
  readonly mode?: number
}

const typeFlag: Record<NonNullable<TarEntry["type"]>, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
}

const octal = (value: number, width: number) => `${value.toString(8).padStart(width - 1, "0")}\0`

const header = (name: string, type: string, size: number, mode: number, link: string): Uint8Array => {
  const block = Buffer.alloc(512)
  const write = (text: string, offset: number, length: number) =>
    block.write(text.slice(0, length), offset, length, "utf8")
  write(name, 0, 100)
  write(octal(mode, 8), 100, 8)
  write(octal(0, 8), 108, 8)
  write(octal(0, 8), 116, 8)
  write(octal(size, 12), 124, 12)
  write(octal(1_700_000_000, 12), 136, 12)
  write("        ", 148, 8)
  write(type, 156, 1)
  write(link, 157, 100)
  write("ustar\0", 257, 6)
  write("00", 263, 2)
  let sum = 0
  for (const byte of block) sum += byte
  write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8)
  return block
}

const pax = (records: Record<string, string>): Uint8Array => {
  let body = ""
  for (const [key, value] of Object.entries(records)) {
    const record = ` ${key}=${value}\n`
    let length = record.length + 1
    while (`${length}${record}`.length !== length) length = `${length}${record}`.length
    body += `${length}${record}`
  }
  return Buffer.from(body, "utf8")
}

const padded = (data: Uint8Array) => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)])

export const tarArchive = (entries: ReadonlyArray<TarEntry>): Buffer => {
  const parts: Array<Uint8Array> = []
  for (const entry of entries) {
    const type = entry.type ?? "file"
    const content =
      entry.content === undefined
        ? Buffer.alloc(0)
        : typeof entry.content === "string"
          ? Buffer.from(entry.content)
          : entry.content
    const mode = entry.mode ?? (type === "dir" ? 0o755 : 0o644)
    let name = entry.name
    if (Buffer.byteLength(name) > 99) {
      const record = pax({ path: name })
      parts.push(header("././@PaxHeader", "x", record.length, 0o644, ""), padded(record))
      name = name.slice(0, 99)
    }
    parts.push(
      header(name, typeFlag[type], type === "file" ? content.length : 0, mode, entry.linkTarget ?? ""),
    )
    if (type === "file") parts.push(padded(content))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}
