import { Effect } from "effect"
import { ConfigInvalidError } from "../errors.js"

/** Where a substituter lives: `oci://host[:port]/repository`. */
export interface RegistryLocation {
  /** As configured, `oci://host:port/repo`: what messages and build records name. */
  readonly url: string
  /** `http://host:port` or `https://host:port`. */
  readonly base: string
  readonly host: string
  readonly repository: string
}

const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/

/**
 * Parses `oci://host[:port]/repo` (HTTPS, except plain HTTP for a loopback host) or `oci+http://…` (plain
 * HTTP, for a registry on a trusted network).
 */
export const parseRegistryUrl = (
  text: string,
  source: string,
): Effect.Effect<RegistryLocation, ConfigInvalidError> => {
  const match = /^(oci|oci\+http|oci\+https):\/\/([^/\s]+)\/([a-z0-9]+(?:[._/-][a-z0-9]+)*)\/?$/.exec(text)
  if (!match)
    return Effect.fail(
      new ConfigInvalidError({
        source,
        detail: `\`${text}\` is not oci://host[:port]/repository (lower-case repository path)`,
      }),
    )
  const [, scheme, host = "", repository = ""] = match
  const http = scheme === "oci+http" || (scheme === "oci" && loopback.test(host))
  return Effect.succeed({
    url: `oci://${host}/${repository}`,
    base: `${http ? "http" : "https"}://${host}`,
    host,
    repository,
  })
}
