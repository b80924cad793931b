// A network link of a given rate and round-trip time in front of a local server, for benchmarks that
// compare against a bare client over the same link: a TCP proxy on 127.0.0.1 whose two directions each
// share one token bucket (a full-duplex link: parallel downloads share the rate, as on a real link) and
// hold each chunk half the round trip. Run as its own process (a benchmark times commands synchronously,
// which would stall a proxy in its own event loop):
//   node --import tsx bench/lib/shapedLink.ts --target 127.0.0.1:5000 --mbit 1000 --rtt 2
// prints `link: 127.0.0.1:PORT` once it listens.
import { connect, createServer, type Socket } from "node:net"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    target: { type: "string" },
    mbit: { type: "string", default: "1000" },
    rtt: { type: "string", default: "0" },
  },
})
const [targetHost, targetPort] = (values.target ?? "").split(":")
if (!targetHost || !targetPort) throw new Error("--target host:port")
const bytesPerMs = (Number(values.mbit) * 1e6) / 8 / 1000
const delayMs = Number(values.rtt) / 2
// A bucket holds 2 ms of the rate: bursts no larger than a real link's queue would pass at once.
const burst = Math.max(64 * 1024, Math.round(bytesPerMs * 2))
// Buffered per direction before the sender is paused (a socket's own window does the rest).
const highWater = 4 * 1024 * 1024

interface Pending {
  readonly to: Socket
  /** When it may leave: half a round trip after it came. */
  readonly due: number
  chunk: Buffer
}

/** One direction of the link: chunks wait their turn in order, sent as the rate allows. */
const makeDirection = () => {
  let tokens = burst
  let last = performance.now()
  let queued = 0
  let timer: NodeJS.Timeout | undefined
  const queue: Array<Pending> = []
  const paused = new Set<Socket>()
  const pump = () => {
    timer = undefined
    const now = performance.now()
    tokens = Math.min(burst, tokens + (now - last) * bytesPerMs)
    last = now
    while (queue.length > 0 && tokens >= 1) {
      const head = queue[0] as Pending
      if (head.due > now) break
      const n = Math.min(head.chunk.length, Math.floor(tokens))
      if (!head.to.destroyed) head.to.write(head.chunk.subarray(0, n))
      tokens -= n
      queued -= n
      if (n === head.chunk.length) queue.shift()
      else head.chunk = head.chunk.subarray(n)
    }
    if (queued < highWater)
      for (const from of paused) {
        paused.delete(from)
        from.resume()
      }
    const next = queue[0]
    if (next !== undefined) timer = setTimeout(pump, Math.max(1, Math.ceil(next.due - now)))
  }
  return {
    send: (from: Socket, to: Socket, chunk: Buffer) => {
      queue.push({ to, chunk, due: performance.now() + delayMs })
      queued += chunk.length
      if (queued >= highWater) {
        from.pause()
        paused.add(from)
      }
      if (timer === undefined) pump()
    },
    /** Ends `to` once everything queued for it has gone. */
    end: (to: Socket) => {
      const finish = () => (queue.some((p) => p.to === to) ? setTimeout(finish, 1) : to.destroyed || to.end())
      finish()
    },
  }
}

const down = makeDirection()
const up = makeDirection()
// Half-open kept: a client that ends its side still gets what is queued for it.
const server = createServer({ allowHalfOpen: true }, (client) => {
  const upstream = connect({ port: Number(targetPort), host: targetHost, allowHalfOpen: true })
  client.setNoDelay(true)
  upstream.setNoDelay(true)
  client.on("data", (chunk: Buffer) => up.send(client, upstream, chunk))
  upstream.on("data", (chunk: Buffer) => down.send(upstream, client, chunk))
  client.on("end", () => up.end(upstream))
  upstream.on("end", () => down.end(client))
  client.on("error", () => upstream.destroy())
  upstream.on("error", () => client.destroy())
  client.on("close", () => upstream.destroy())
})
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  if (address && typeof address === "object") process.stdout.write(`link: 127.0.0.1:${address.port}\n`)
})
process.on("SIGTERM", () => process.exit(0))
