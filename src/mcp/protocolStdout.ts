import { Writable } from "node:stream"
import { Effect, type Scope } from "effect"

/**
 * Claims stdout for the MCP protocol: returns a stream that writes to the real stdout, and sends
 * everything else written there (a stray console.log anywhere in the core or a library) to stderr
 * instead, where it cannot corrupt the message stream. Restored when the scope closes.
 */
export const claimStdout: Effect.Effect<Writable, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const original = process.stdout.write
    const writeToStdout = original.bind(process.stdout)
    process.stdout.write = process.stderr.write.bind(process.stderr)
    const protocol = new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        writeToStdout(chunk, (error) => callback(error ?? null))
      },
    })
    return { protocol, original }
  }),
  ({ original }) =>
    Effect.sync(() => {
      process.stdout.write = original
    }),
).pipe(Effect.map(({ protocol }) => protocol))
