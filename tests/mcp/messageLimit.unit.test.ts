import { Readable } from "node:stream"
import { describe, expect, it } from "vitest"
import { boundedMessages, type OversizedMessage } from "../../src/mcp/messageLimit.js"

/** Runs `chunks` through the filter: the messages it passes and the ones it dropped. */
const filter = async (limit: number, chunks: ReadonlyArray<string>) => {
  const dropped: Array<OversizedMessage> = []
  const passed: Array<string> = []
  const stream = Readable.from(chunks.map((c) => Buffer.from(c))).pipe(
    boundedMessages(limit, (message) => dropped.push(message)),
  )
  for await (const chunk of stream) passed.push((chunk as Buffer).toString("utf8"))
  return { passed, dropped }
}

describe("the MCP message size filter", () => {
  it("passes whole messages however they are split, and drops one over the limit", async () => {
    const small = '{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
    const big = `{"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{"x":"${"a".repeat(500)}"}},"id":7}\n`
    const text = small + big + small
    const { passed, dropped } = await filter(200, [text.slice(0, 10), text.slice(10, 300), text.slice(300)])
    expect(passed.join("")).toBe(small + small)
    expect(dropped).toEqual([{ bytes: big.length, id: 7 }])
  })

  it("finds the request id at the top level only, first or last, number or string", async () => {
    const pad = "b".repeat(300)
    const cases: ReadonlyArray<[string, string | number | undefined]> = [
      [`{"id":"req \\"one\\"","method":"m","params":{"p":"${pad}"}}`, 'req "one"'],
      [`{"method":"m","params":{"id":5,"p":"${pad}"},"id":9}`, 9],
      [`{"method":"m","params":{"id":5,"p":"${pad}"}}`, undefined],
      [`{"method":"m","params":{"p":"${pad}"},"id":{"not":"an id"}}`, undefined],
      [`{"method":"m","params":{"p":"\\"id\\":3,${pad}"}}`, undefined],
    ]
    for (const [message, id] of cases) {
      const { dropped } = await filter(100, [`${message}\n`])
      expect(dropped, message).toEqual([{ bytes: message.length + 1, id }])
    }
  })
})
