/**
 * What `graph.config.ts` may set. Paths are relative to the directory holding `graph.config.ts`.
 * This module is what `import { defineConfig } from "owrt/config"` resolves to; it must stay free of
 * runtime dependencies so the config file loads fast.
 */
export interface OwrtConfig {
  /** Store directory (immutable outputs, the SQLite database, temporary work). Default `store`. */
  readonly store?: string
  /** Upstream mirror base URL. Default `https://downloads.openwrt.org`. */
  readonly upstream?: string
  /**
   * The Raspberry Pi OS list (rpi-imager's format) a `kind: raspios` profile's `base.os` is looked up in when
   * the profile names none. Default `https://downloads.raspberrypi.com/os_list_imagingutility_v4.json`.
   */
  readonly osList?: string
  /** Directory of usign public keys named by key id. Default: the keyring shipped with owrt. */
  readonly keyring?: string
  /** Directory holding the profile YAML files. Default `profiles`. */
  readonly profiles?: string
  /** Use only what is cached; never contact the upstream. Default false. */
  readonly offline?: boolean
  /** How many builds may run at once. Default: the number of CPUs. */
  readonly jobs?: number
  /** Parallel downloads. Default 4. */
  readonly downloads?: number
  readonly timeouts?: {
    /** Seconds one download may take, retries included. Default 1800. */
    readonly download?: number
    /** Seconds one `make image` may take. Default 1800. */
    readonly build?: number
    /** Seconds to wait for another process holding a lock before failing with exit 10. Default 3600. */
    readonly lock?: number
    /** Seconds a download may go without receiving data before it is retried. Default 60. */
    readonly stall?: number
  }
  /**
   * Secret reference (`env:NAME` or `file:PATH`) to the key that seals secret values into build keys.
   * Share it between machines that must agree on keys; without it each store makes its own.
   */
  readonly secretsKey?: string
  /**
   * Environment variables `make` sees besides its fixed clean environment (PATH, HOME, LC_ALL=C, LANG=C,
   * TZ=UTC): names, or prefixes ending in `*` (`OWRT_FAKE_IB_*`). Nothing else of the caller's environment
   * reaches a build. They are not part of any key: pass only what does not change the image (a proxy, a
   * test stand-in's knobs). `OWRT_MAKE_ENV` (comma-separated) overrides it. Default: none.
   */
  readonly makeEnv?: ReadonlyArray<string>
  readonly flash?: {
    /** Devices MCP and web clients may flash (by path or /dev/disk/by-id name). */
    readonly allowDevices?: ReadonlyArray<string>
  }
  /**
   * Where nodes are built (docs/farm.md): `"local"` (default), or a build farm: `"postgres://…"` or
   * `{ kind: "postgres", url, queue, lockTimeout }` — nodes become jobs that `owrt worker`s claim.
   * `OWRT_EXECUTOR` and `--executor` override it.
   */
  readonly executor?:
    | string
    | {
        readonly kind: "local" | "postgres"
        readonly url?: string
        /** The queue jobs go to (`owrt worker --queue`). Default `default`. */
        readonly queue?: string
        /** Seconds without a worker's heartbeat before its jobs go to another worker. Default 60. */
        readonly lockTimeout?: number
      }
  /**
   * Where the records (profile revisions, builds, artifacts, flashes, ASU jobs, OTA releases) are kept
   * (docs/farm.md): `"sqlite"` (default: the store's own `owrt.db`), or `"postgres://…"` — one database that
   * every owrt user, server and worker of a team shares. The store's index of its own files stays in the
   * store's SQLite file either way. `OWRT_DATABASE` and `--database` override it.
   */
  readonly database?: string
  /** The shared cache (docs/cache.md): OCI registries that hold signed node outputs. */
  readonly cache?: {
    /**
     * Registries asked before a node is built, in order: `oci://host[:port]/repository` (HTTPS; plain HTTP
     * for a loopback host) or `oci+http://…`. `OWRT_SUBSTITUTERS` (comma-separated) overrides it.
     */
    readonly substituters?: ReadonlyArray<string>
    /** Push every node built here to the first substituter (needs `signingKey`). Default false. */
    readonly push?: boolean
    /** Secret key signing pushed nodes, by reference: `file:PATH` or `env:NAME` (`owrt cache keygen`). */
    readonly signingKey?: string
    /** Public keys (`name:base64`) whose signatures are accepted; nothing else is ever substituted. */
    readonly trustedKeys?: ReadonlyArray<string>
    /** Registry credentials by host (`host:port`): a user name and the password by reference. */
    readonly credentials?: Readonly<Record<string, { readonly username: string; readonly password: string }>>
    /** Seconds a registry may stay silent before a call fails. Default 30. */
    readonly timeout?: number
  }
  /** OTA releases (docs/ota.md): where `owrt publish` pushes and `owrt ota serve` reads, signing, notices. */
  readonly ota?: {
    /** `oci://host[:port]`; `OWRT_OTA_REGISTRY` or `--registry` override it. None: releases stay local. */
    readonly registry?: string
    /** Repository prefix before the device id (`fw/`). `OWRT_OTA_PREFIX`, `--prefix`. Default none. */
    readonly prefix?: string
    /** ECDSA P-256 private key (PEM) signing releases cosign-style, by reference: `file:PATH` or `env:NAME`. */
    readonly signingKey?: string
    /** The public key (PEM, cosign.pub) releases must be signed with to be served. `COSIGN_PUB_KEY_PATH`. */
    readonly publicKey?: string
    /** The MQTT broker release notices go to. */
    readonly mqtt?: {
      /** `mqtt[s]://host:port`; `OWRT_MQTT_URL` or `--mqtt-url` override it. */
      readonly url: string
      /** Topic prefix: notices go to `<topic>/<device id>`. Default `firmware`. */
      readonly topic?: string
      readonly username?: string
      /** By reference: `env:NAME` or `file:PATH`. */
      readonly password?: string
      /** PEM files: the broker's CA; the client certificate and key (mTLS). */
      readonly ca?: string
      readonly cert?: string
      readonly key?: string
    }
  }
}

export const defineConfig = (config: OwrtConfig): OwrtConfig => config
