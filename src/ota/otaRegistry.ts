import { Effect } from "effect"
import { registryCredentials } from "../cache/ociSubstituter.js"
import type { ResolvedConfig } from "../config/appConfig.js"
import { ConfigInvalidError, type OwrtError } from "../errors.js"
import type { FirmwareRegistry } from "./firmwareSource.js"

const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/

/**
 * The OTA registry from `oci://host[:port]` (HTTPS, plain HTTP to a loopback host; `oci+http://` forces
 * plain HTTP) and the repository prefix (`fw/`, `fleet-`: the device id follows it). Credentials for the
 * host are the shared cache's (`cache.credentials`), by reference.
 */
export const firmwareRegistry = (
  config: ResolvedConfig,
  url: string,
  prefix: string,
): Effect.Effect<FirmwareRegistry, OwrtError> =>
  Effect.gen(function* () {
    const match = /^(oci|oci\+http|oci\+https):\/\/([^/\s]+)\/?$/.exec(url)
    if (!match)
      return yield* new ConfigInvalidError({
        source: "--registry",
        detail: `\`${url}\` is not oci://host[:port] (the repository is <prefix><device id>)`,
      })
    if (!/^([a-z0-9]+(?:[._/-][a-z0-9]+)*[._/-]?)?$/.test(prefix))
      return yield* new ConfigInvalidError({
        source: "--prefix",
        detail: `\`${prefix}\` is not a repository prefix (lower-case letters, digits, . _ - /)`,
      })
    const [, scheme, host = ""] = match
    const http = scheme === "oci+http" || (scheme === "oci" && loopback.test(host))
    return {
      base: `${http ? "http" : "https"}://${host}`,
      host,
      prefix,
      credentials: yield* registryCredentials(config, host),
      timeoutSeconds: config.cache.timeout,
    }
  })
