/*
 * GNU tar's verbose listing (`tar -xvv --numeric-owner --quoting-style=c`), one line per member:
 *   drwxr-xr-x 0/0               0 2024-07-16 09:00 "top/"
 *   lrwxrwxrwx 0/0               0 2024-07-16 09:00 "top/lnk" -> "../d"
 *   hrw-r--r-- 0/0               0 2024-07-16 09:00 "top/h" link to "top/f"
 *   brw-r--r-- 0/0             8,0 2024-07-16 09:00 "top/sda"
 * Names are C-quoted, so any byte in a name is unambiguous.
 */

export interface ListedEntry {
  /** The tar type flag the listing's first column stands for. */
  readonly type: string
  readonly path: string
  readonly linkTarget: string
}

const typeOf: Record<string, string> = { "-": "0", d: "5", l: "2", h: "1", c: "3", b: "4", p: "6" }

const simpleEscapes: Record<string, number> = {
  n: 10,
  t: 9,
  r: 13,
  a: 7,
  b: 8,
  f: 12,
  v: 11,
  "\\": 92,
  '"': 34,
  "?": 63,
}

/** Reads one C-quoted string starting at `start` (the opening quote); returns it and the index after it. */
const readQuoted = (line: string, start: number): { value: string; end: number } | undefined => {
  if (line[start] !== '"') return undefined
  let close = start + 1
  while (close < line.length && line[close] !== '"') close += line[close] === "\\" ? 2 : 1
  if (close >= line.length) return undefined
  const raw = line.slice(start + 1, close)
  // Most names have no escapes: no decoding needed.
  if (!raw.includes("\\")) return { value: raw, end: close + 1 }
  const bytes: Array<number> = []
  for (let i = 0; i < raw.length; ) {
    const backslash = raw.indexOf("\\", i)
    const plainEnd = backslash === -1 ? raw.length : backslash
    if (plainEnd > i) for (const byte of Buffer.from(raw.slice(i, plainEnd), "utf8")) bytes.push(byte)
    if (backslash === -1) break
    const octal = /^[0-7]{1,3}/.exec(raw.slice(backslash + 1, backslash + 4))
    if (octal) {
      bytes.push(Number.parseInt(octal[0], 8))
      i = backslash + 1 + octal[0].length
      continue
    }
    const simple = simpleEscapes[raw[backslash + 1] ?? ""]
    if (simple === undefined) return undefined
    bytes.push(simple)
    i = backslash + 2
  }
  return { value: Buffer.from(bytes).toString("utf8"), end: close + 1 }
}

const head = /^([-dlhcbpsC])[-rwxsStT]{9} \d+\/\d+ +\S+ \d{4}-\d\d-\d\d \d\d:\d\d /

/** One listing line as an entry, or undefined for a line that is not one (tar's other messages). */
export const parseListingLine = (line: string): ListedEntry | undefined => {
  const match = head.exec(line)
  if (!match) return undefined
  const name = readQuoted(line, match[0].length)
  if (!name) return undefined
  const rest = line.slice(name.end)
  let linkTarget = ""
  if (rest.startsWith(" -> ") || rest.startsWith(" link to ")) {
    const target = readQuoted(rest, rest.startsWith(" -> ") ? 4 : 9)
    if (!target) return undefined
    linkTarget = target.value
  }
  return { type: typeOf[match[1] ?? "-"] ?? "0", path: name.value, linkTarget }
}

/** Arguments that make GNU tar print exactly the listing above while it extracts. */
export const listingArguments: ReadonlyArray<string> = ["-v", "-v", "--numeric-owner", "--quoting-style=c"]
