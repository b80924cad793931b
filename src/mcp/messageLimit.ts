import { Transform, type TransformCallback } from "node:stream"

/*
 * The stdio transport reads newline-delimited JSON-RPC messages. The SDK's own reader gives up on a message
 * over its buffer limit by closing the transport, and the server then ended as if the client had left: a
 * silent exit 0. This filter sits in front of it and passes on whole messages only; a message over the
 * limit is dropped as it streams in (only a few bytes of it are kept), and the client is told.
 */

/** The largest message `owrt mcp` accepts, in bytes (the SDK's default limit). */
export const maxMessageBytes = 10 * 1024 * 1024

const newline = 0x0a

/** What the filter knows about a message it dropped. */
export interface OversizedMessage {
  /** Bytes seen (at least the limit; the whole message when it ended). */
  readonly bytes: number
  /** The request's id when the message held one at its top level: then it deserves an answer. */
  readonly id: string | number | undefined
}

/**
 * Finds a JSON object's top-level `"id"` in a stream of bytes in one pass, keeping only the id's own text:
 * the SDK writes `id` after `params`, so it can come at the very end of a huge message. Structural
 * characters are ASCII and never occur inside a UTF-8 multi-byte sequence, so bytes can be scanned as is.
 */
class TopLevelIdScanner {
  private depth = 0
  private inString = false
  private escaped = false
  /** At depth 1, before a key: the next string is one. */
  private expectKey = false
  private key: string | undefined
  private readingKey = false
  private keyText = ""
  /** The text of the id's value while it is being read; undefined otherwise. */
  private value: string | undefined
  private valueNested = false
  id: string | number | undefined

  feed(chunk: Buffer, from = 0, to = chunk.length): void {
    for (let i = from; i < to; i++) this.byte(chunk[i] ?? 0)
  }

  private byte(c: number): void {
    if (this.inString) {
      if (this.escaped) this.escaped = false
      else if (c === 0x5c) this.escaped = true
      else if (c === 0x22) {
        this.inString = false
        if (this.readingKey) {
          this.readingKey = false
          this.key = this.keyText
        }
      }
      this.collect(c)
      return
    }
    switch (c) {
      case 0x22: // "
        this.inString = true
        if (this.depth === 1 && this.expectKey) {
          this.expectKey = false
          this.readingKey = true
          this.keyText = ""
        } else this.collect(c)
        return
      case 0x7b: // {
      case 0x5b: // [
        if (this.depth === 1 && this.value !== undefined) this.valueNested = true
        this.depth++
        if (this.depth === 1) this.expectKey = c === 0x7b
        return
      case 0x7d: // }
      case 0x5d: // ]
        if (this.depth === 1) this.endValue()
        this.depth--
        return
      case 0x3a: // :
        if (this.depth === 1 && this.key !== undefined) {
          if (this.key === "id") {
            this.value = ""
            this.valueNested = false
          }
          this.key = undefined
        }
        return
      case 0x2c: // ,
        if (this.depth === 1) {
          this.endValue()
          this.expectKey = true
        }
        return
      default:
        if (c > 0x20) this.collect(c)
    }
  }

  private collect(c: number): void {
    if (this.readingKey && c !== 0x22) {
      if (this.keyText.length < 8) this.keyText += String.fromCharCode(c)
    } else if (this.value !== undefined && this.depth === 1 && this.value.length < 256) {
      this.value += String.fromCharCode(c)
    }
  }

  private endValue(): void {
    if (this.value === undefined) return
    const text = this.value
    this.value = undefined
    if (this.valueNested) return
    try {
      const id: unknown = JSON.parse(text)
      if (typeof id === "number" || typeof id === "string") this.id = id
    } catch {
      // Not an id JSON-RPC allows: the message gets no answer, only the log line.
    }
  }
}

/**
 * A stream filter for newline-delimited messages: whole messages of at most `limit` bytes pass (each as
 * one chunk, newline included); a longer one is dropped and reported to `onOversized` once it ends.
 */
export const boundedMessages = (
  limit: number,
  onOversized: (message: OversizedMessage) => void,
): Transform => {
  let pending: Array<Buffer> = []
  let pendingBytes = 0
  /** Set while a message over the limit streams past. */
  let dropping: { bytes: number; scanner: TopLevelIdScanner } | undefined

  const take = (chunk: Buffer, from: number, to: number) => {
    if (dropping) {
      dropping.bytes += to - from
      dropping.scanner.feed(chunk, from, to)
      return
    }
    if (pendingBytes + (to - from) <= limit) {
      pending.push(chunk.subarray(from, to))
      pendingBytes += to - from
      return
    }
    // Over the limit: from here on only the scanner sees the message.
    const scanner = new TopLevelIdScanner()
    for (const part of pending) scanner.feed(part)
    scanner.feed(chunk, from, to)
    dropping = { bytes: pendingBytes + (to - from), scanner }
    pending = []
    pendingBytes = 0
  }

  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      let start = 0
      for (let end = chunk.indexOf(newline); end !== -1; end = chunk.indexOf(newline, start)) {
        take(chunk, start, end + 1)
        if (dropping) {
          onOversized({ bytes: dropping.bytes, id: dropping.scanner.id })
          dropping = undefined
        } else {
          this.push(pending.length === 1 ? pending[0] : Buffer.concat(pending))
          pending = []
          pendingBytes = 0
        }
        start = end + 1
      }
      if (start < chunk.length) take(chunk, start, chunk.length)
      callback()
    },
    flush(callback: TransformCallback) {
      // A last message without its newline is not a message the transport would read either.
      if (dropping) onOversized({ bytes: dropping.bytes, id: dropping.scanner.id })
      callback()
    },
  })
}
