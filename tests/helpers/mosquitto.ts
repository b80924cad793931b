import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connectAsync, type MqttClient } from "mqtt"
import { freePort } from "./freePort.js"

/** A real Mosquitto broker (Debian `mosquitto`) on 127.0.0.1, with its own config and port. */
export interface TestBroker {
  readonly url: string
  readonly stop: () => Promise<void>
  /** Subscribes to `topic` and resolves with the first message (a retained one arrives at once). */
  readonly firstMessage: (topic: string, timeoutMs?: number) => Promise<{ payload: string; retain: boolean }>
}

const binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].find((path) => existsSync(path)) ?? "mosquitto"

export const startBroker = async (): Promise<TestBroker> => {
  const dir = mkdtempSync(join(tmpdir(), "owrt-mqtt-"))
  const port = await freePort()
  const config = join(dir, "mosquitto.conf")
  writeFileSync(config, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`)
  const child: ChildProcess = spawn(binary, ["-c", config], { stdio: ["ignore", "ignore", "pipe"] })
  let errors = ""
  child.stderr?.on("data", (chunk: Buffer) => (errors += chunk.toString("utf8")))
  const url = `mqtt://127.0.0.1:${port}`
  // Ready once a client connects.
  let ready: MqttClient | undefined
  for (let attempt = 0; attempt < 100 && ready === undefined; attempt++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited ${child.exitCode}: ${errors}`)
    ready = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 }).catch(() => undefined)
    if (ready === undefined) await new Promise((done) => setTimeout(done, 100))
  }
  if (ready === undefined) throw new Error(`mosquitto did not start: ${errors}`)
  await ready.endAsync()
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once("exit", done))
        child.kill("SIGTERM")
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
    firstMessage: async (topic, timeoutMs = 10_000) => {
      const client = await connectAsync(url, { reconnectPeriod: 0 })
      try {
        return await new Promise((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no message on ${topic} within ${timeoutMs} ms`)),
            timeoutMs,
          )
          client.on("message", (_topic, payload, packet) => {
            clearTimeout(timer)
            resolve({ payload: payload.toString("utf8"), retain: packet.retain })
          })
          client.subscribe(topic, { qos: 1 })
        })
      } finally {
        await client.endAsync()
      }
    },
  }
}
