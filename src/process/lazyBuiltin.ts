import { createRequire } from "node:module"

const load = createRequire(import.meta.url)

/**
 * A Node built-in module loaded on first use instead of at start-up. `node:http`, `node:https`,
 * `node:child_process`, `node:fs/promises`, `node:readline` and `node:zlib` cost milliseconds to load each, and a command that finds
 * everything in the store uses none of them (owrt starts a fresh process per command).
 */
export const lazyBuiltin = <M>(name: `node:${string}`): (() => M) => {
  let loaded: M | undefined
  return () => {
    loaded ??= load(name) as M
    return loaded
  }
}

export const childProcess = lazyBuiltin<typeof import("node:child_process")>("node:child_process")
export const fsPromises = lazyBuiltin<typeof import("node:fs/promises")>("node:fs/promises")
export const http = lazyBuiltin<typeof import("node:http")>("node:http")
export const https = lazyBuiltin<typeof import("node:https")>("node:https")
export const readline = lazyBuiltin<typeof import("node:readline")>("node:readline")
export const zlib = lazyBuiltin<typeof import("node:zlib")>("node:zlib")
