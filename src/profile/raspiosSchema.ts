import { Schema } from "effect"

/*
 * The settings of a `kind: raspios` profile (docs/raspberry-pi.md): the base image it starts from and what
 * is customised in it. Secrets (a password hash kept out of the repository, the Wi-Fi passphrase, the
 * WireGuard configuration) are named by their entry under `secrets:`, never given as values.
 */

/** A name under `secrets:` (as in profileSchema.ts, which imports this module). */
const SecretName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    message: (issue) => `\`${String(issue.actual)}\` is not a secret name: use letters, digits and '_'`,
  }),
)

export const ProfileKind = Schema.Literal("openwrt", "raspios").annotations({
  description:
    "What the profile builds: openwrt (the default) or raspios (a customised Raspberry Pi OS image)",
})

const Sha256 = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{64}$/, {
    message: (issue) => `\`${String(issue.actual)}\` is not a SHA-256: write 64 lower-case hex digits`,
  }),
)

const HttpUrl = Schema.String.pipe(
  Schema.pattern(/^https?:\/\/[^\s]+$/, {
    message: (issue) => `\`${String(issue.actual)}\` is not an http(s) URL`,
  }),
)

export const RaspiosBase = Schema.Struct({
  os_list: Schema.optional(HttpUrl).annotations({
    description:
      "The OS list (rpi-imager's format) `os` is looked up in; default: the osList setting (Raspberry Pi's own list)",
  }),
  os: Schema.optional(Schema.String).annotations({
    description: 'The OS list entry\'s name, e.g. "Raspberry Pi OS Lite (64-bit)"',
  }),
  release_date: Schema.optional(
    Schema.String.pipe(
      Schema.pattern(/^\d{4}-\d{2}-\d{2}$/, {
        message: (issue) => `\`${String(issue.actual)}\` is not a release date: write YYYY-MM-DD (quoted)`,
      }),
    ),
  ).annotations({ description: "The entry's release_date (YYYY-MM-DD): pins the base image" }),
  url: Schema.optional(HttpUrl).annotations({
    description: "Instead of an OS list entry: the compressed image's URL (.img.xz or .img.zst)",
  }),
  sha256: Schema.optional(Sha256).annotations({ description: "With url: SHA-256 of the compressed file" }),
  extract_sha256: Schema.optional(Sha256).annotations({
    description: "With url: SHA-256 of the decompressed .img",
  }),
})
export type RaspiosBase = typeof RaspiosBase.Type

/** RFC 1123 host name label: what /etc/hostname of a Raspberry Pi holds. */
export const hostnamePattern = /^(?=.{1,63}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/

export const Hostname = Schema.String.pipe(
  Schema.pattern(hostnamePattern, {
    message: (issue) =>
      `\`${String(issue.actual)}\` is not a valid host name: 1 to 63 lower-case letters, digits and '-', not starting or ending with '-'`,
  }),
).annotations({ description: "The device's host name (/etc/hostname), e.g. sensor-hive-17" })

/** userconf-pi's rule for the first user's name. */
export const UserName = Schema.String.pipe(
  Schema.pattern(/^[a-z][a-z0-9-]{0,31}$/, {
    message: (issue) =>
      `\`${String(issue.actual)}\` is not a user name Raspberry Pi OS accepts: 1 to 32 lower-case letters, digits and '-', starting with a letter`,
  }),
  Schema.filter((name) => name !== "root" || "the first user cannot be root"),
)

/** A crypt(3) hash: SHA-512 `$6$` (openssl passwd -6), SHA-256 `$5$`, yescrypt `$y$`, bcrypt `$2b$`. */
export const cryptHashPattern = /^\$(?:5|6|y|gy|2[aby]|7)\$[./A-Za-z0-9$=,+-]{8,}$/

export const PasswordHash = Schema.String.pipe(
  Schema.pattern(cryptHashPattern, {
    message: () =>
      "not a crypt(3) password hash: make one with `openssl passwd -6` or `mkpasswd -m yescrypt`",
  }),
)

const ClearTextPassword = Schema.Unknown.pipe(
  Schema.filter(
    () =>
      "clear-text passwords are refused (secrets are references): give password_hash (`openssl passwd -6`) or password_secret naming an entry under secrets:",
  ),
)

const AuthorizedKey = Schema.String.pipe(
  Schema.pattern(
    /^(?:ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+(?: [^\n]*)?$/,
    {
      message: () => "not an SSH public key line: e.g. `ssh-ed25519 AAAAC3… user@host`",
    },
  ),
)

export const RaspiosUser = Schema.Struct({
  name: UserName.annotations({ description: "The user's name (the image's uid 1000 is renamed to it)" }),
  password_hash: Schema.optional(PasswordHash).annotations({
    description: "crypt(3) hash of the password (openssl passwd -6); without one the password stays locked",
  }),
  password_secret: Schema.optional(SecretName).annotations({
    description: "Name of a secret (under secrets:) whose value is the crypt(3) hash",
  }),
  password: Schema.optional(ClearTextPassword).annotations({
    description: "Refused: a clear-text password never goes in a profile",
  }),
  ssh_authorized_keys: Schema.optional(Schema.Array(AuthorizedKey)).annotations({
    description: "SSH public keys written to ~/.ssh/authorized_keys (mode 0600)",
  }),
  sudo: Schema.optional(Schema.Boolean).annotations({
    description: "Member of the sudo group (default true, as Raspberry Pi OS's first user is)",
  }),
})
export type RaspiosUser = typeof RaspiosUser.Type

export const RaspiosSsh = Schema.Struct({
  enabled: Schema.optional(Schema.Boolean).annotations({ description: "Start sshd at boot (default false)" }),
  password_authentication: Schema.optional(Schema.Boolean).annotations({
    description: "Allow password logins (default: only when no authorized key is given)",
  }),
  port: Schema.optional(
    Schema.Int.pipe(
      Schema.between(1, 65535, {
        message: (issue) => `port must be 1 to 65535, got ${String(issue.actual)}`,
      }),
    ),
  ).annotations({ description: "sshd's port (default 22)" }),
})

export const RaspiosWifi = Schema.Struct({
  country: Schema.String.pipe(
    Schema.pattern(/^[A-Z]{2}$/, {
      message: (issue) =>
        `\`${String(issue.actual)}\` is not a country code: two upper-case letters, e.g. DE`,
    }),
  ).annotations({ description: "Regulatory domain (ISO 3166 code): Wi-Fi stays blocked without it" }),
  ssid: Schema.String.pipe(
    Schema.filter(
      (s) => (Buffer.byteLength(s) >= 1 && Buffer.byteLength(s) <= 32) || "an SSID has 1 to 32 bytes",
    ),
  ).annotations({ description: "The network's name" }),
  psk_secret: SecretName.annotations({
    description: "Name of the secret (under secrets:) holding the passphrase",
  }),
  hidden: Schema.optional(Schema.Boolean).annotations({
    description: "The network does not broadcast its name",
  }),
})

export const RaspiosWireguard = Schema.Struct({
  config_secret: SecretName.annotations({
    description: "Name of the secret (under secrets:) whose value is the whole wg0.conf",
  }),
})

/** `1883`, `1883/tcp`, `51820/udp` or a range `60000-61000/udp`: tcp when no protocol is named. */
export const portRulePattern = /^([0-9]{1,5})(?:-([0-9]{1,5}))?(?:\/(tcp|udp))?$/

/** A port rule in its canonical form (`1883/tcp`, `60000-61000/udp`), or undefined when it is not one. */
export const canonicalPortRule = (rule: string | number): string | undefined => {
  const match = portRulePattern.exec(String(rule))
  if (!match) return undefined
  const from = Number(match[1])
  const to = match[2] === undefined ? from : Number(match[2])
  if (from < 1 || to > 65535 || to < from) return undefined
  return `${from === to ? from : `${from}-${to}`}/${match[3] ?? "tcp"}`
}

const PortRule = Schema.Union(Schema.Number, Schema.String)
  .pipe(
    Schema.filter((rule) => canonicalPortRule(rule) !== undefined, {
      message: (issue) =>
        `\`${String(issue.actual)}\` is not a port rule: a port 1 to 65535 or a range, and /tcp or /udp (tcp when left out), e.g. 1883/tcp`,
    }),
  )
  .annotations({
    description: "A port or range open to incoming connections, e.g. 1883, 1883/tcp, 51820/udp",
  })

export const RaspiosFirewall = Schema.Struct({
  enabled: Schema.optional(Schema.Boolean).annotations({
    description:
      "Filter incoming traffic (default true once a firewall section is given; false turns it off)",
  }),
  allow: Schema.optional(Schema.Array(PortRule)).annotations({
    description:
      "Ports open to incoming connections (the SSH port is added when SSH is enabled); merged across extends",
  }),
})

const simpleText = (pattern: RegExp, what: string, example: string) =>
  Schema.String.pipe(
    Schema.pattern(pattern, {
      message: (issue) => `\`${String(issue.actual)}\` is not a ${what}, e.g. ${example}`,
    }),
  )

export const Timezone = simpleText(
  /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/,
  "time zone",
  "Europe/Berlin",
)
export const Locale = simpleText(/^(?:C|[a-z]{2,3}_[A-Z]{2})\.UTF-8$/, "UTF-8 locale", "en_GB.UTF-8")
export const KeyboardLayout = simpleText(/^[a-z]{2,8}$/, "keyboard layout", "de")

export const PythonPackage = simpleText(
  /^[A-Za-z0-9][A-Za-z0-9._-]*(?:[<>=!~]=?[A-Za-z0-9.*+!_-]+)?$/,
  "Python package",
  "paho-mqtt==2.1.0",
)

/** The raspios fields of a profile document, and what the schema says of each. */
export const raspiosFields = {
  base: Schema.optional(RaspiosBase).annotations({
    description:
      "raspios: the base image, by OS list entry (os, release_date) or by url with sha256 and extract_sha256",
  }),
  hostname: Schema.optional(Hostname).annotations({ description: "raspios: the host name" }),
  timezone: Schema.optional(Timezone).annotations({ description: "raspios: time zone, e.g. Europe/Berlin" }),
  locale: Schema.optional(Locale).annotations({ description: "raspios: LANG, e.g. en_GB.UTF-8" }),
  keyboard: Schema.optional(KeyboardLayout).annotations({ description: "raspios: keyboard layout, e.g. de" }),
  users: Schema.optional(Schema.Array(RaspiosUser)).annotations({
    description:
      "raspios: the first user (Raspberry Pi OS configures one user at first boot; merged by name)",
  }),
  ssh: Schema.optional(RaspiosSsh).annotations({ description: "raspios: SSH server settings" }),
  wifi: Schema.optional(RaspiosWifi).annotations({ description: "raspios: a Wi-Fi network to join" }),
  wireguard: Schema.optional(RaspiosWireguard).annotations({
    description:
      "raspios: a WireGuard interface wg0 (its configuration by secret reference), enabled at boot",
  }),
  firewall: Schema.optional(RaspiosFirewall).annotations({
    description:
      "raspios: an nftables firewall: incoming traffic dropped except loopback, replies, ICMP and the ports allowed",
  }),
  python_packages: Schema.optional(Schema.Array(PythonPackage)).annotations({
    description: "raspios: Python packages pip installs at first boot",
  }),
  compression: Schema.optional(Schema.Array(Schema.Literal("xz", "zst"))).annotations({
    description: "raspios: the compressed images made, .img.xz and/or .img.zst (default [xz])",
  }),
} as const

export const raspiosOnlyFields = Object.keys(raspiosFields) as ReadonlyArray<keyof typeof raspiosFields>

/** The raspios section of a resolved profile: `extends` applied, defaults filled in. */
export const ResolvedRaspios = Schema.Struct({
  base: Schema.Struct({
    os_list: Schema.NullOr(Schema.String).annotations({ description: "null: the osList setting" }),
    os: Schema.NullOr(Schema.String),
    release_date: Schema.NullOr(Schema.String),
    url: Schema.NullOr(Schema.String),
    sha256: Schema.NullOr(Schema.String),
    extract_sha256: Schema.NullOr(Schema.String),
  }),
  hostname: Schema.NullOr(Schema.String),
  timezone: Schema.NullOr(Schema.String),
  locale: Schema.NullOr(Schema.String),
  keyboard: Schema.NullOr(Schema.String),
  users: Schema.Array(
    Schema.Struct({
      name: Schema.String,
      password_hash: Schema.NullOr(Schema.String),
      password_secret: Schema.NullOr(Schema.String),
      ssh_authorized_keys: Schema.Array(Schema.String),
      sudo: Schema.Boolean,
    }),
  ),
  ssh: Schema.Struct({
    enabled: Schema.Boolean,
    password_authentication: Schema.Boolean,
    port: Schema.Number,
  }),
  wifi: Schema.NullOr(
    Schema.Struct({
      country: Schema.String,
      ssid: Schema.String,
      psk_secret: Schema.String,
      hidden: Schema.Boolean,
    }),
  ),
  wireguard: Schema.NullOr(Schema.Struct({ config_secret: Schema.String })),
  /** Absent without a firewall section (so that the keys of profiles without one stay as they were). */
  firewall: Schema.optional(
    Schema.Struct({
      allow: Schema.Array(Schema.String).annotations({
        description: "Canonical port rules, sorted (the SSH port included when SSH is enabled)",
      }),
    }),
  ),
  python_packages: Schema.Array(Schema.String),
  compression: Schema.Array(Schema.String),
})
export type ResolvedRaspios = typeof ResolvedRaspios.Type
