import { Schema } from "effect"
import { usignPublicKeyId } from "../text/usignKey.js"
import {
  ProfileKind,
  RaspiosBase,
  RaspiosSsh,
  RaspiosUser,
  RaspiosWifi,
  RaspiosWireguard,
  raspiosFields,
} from "./raspiosSchema.js"

/*
 * The profile file format (profiles/<id>.yaml). Field names are snake_case like OpenWrt's own
 * configuration. Every message here is shown to a person next to the file, line and field it concerns,
 * so each says what is expected, not only what is wrong.
 */

export const profileIdPattern = /^[a-z0-9][a-z0-9._-]*$/

/**
 * Limits on what a profile may hold (docs/profiles.md, "Limits"). Generous for real profiles; they keep a
 * hostile or broken file from exhausting memory, the stack or the database. Exceeding one is
 * `profile_too_large`, found before the part concerned is parsed or read further.
 */
export const profileLimits = {
  /** Bytes of one profile file, checked before it is read. */
  fileBytes: 1024 * 1024,
  /** Entries of any list (packages, files, first_boot, disabled_services, tags, extends) and keys of a mapping. */
  listItems: 4096,
  /** Characters of any string (inline file content, first-boot script). */
  stringLength: 64 * 1024,
  /** Characters of `description`. */
  descriptionLength: 4096,
  /** Characters of a mapping key. */
  keyLength: 256,
  /** Levels of nesting in the parsed document (a valid profile uses 4). */
  nesting: 32,
  /** Ancestors in one `extends` chain. */
  extendsDepth: 32,
  /** Characters of a profile id (the file name without .yaml). */
  idLength: 128,
  /** Files and links of a profile's overlay, all overlay directories together. */
  overlayFiles: 10_000,
  /** Bytes of one overlay file. */
  overlayFileBytes: 64 * 1024 * 1024,
  /** Bytes of all overlay files together. */
  overlayBytes: 256 * 1024 * 1024,
} as const

export const ProfileId = Schema.String.pipe(
  Schema.pattern(profileIdPattern, {
    message: (issue) =>
      `\`${String(issue.actual)}\` is not a profile id: use lower-case letters, digits, '.', '_' and '-'`,
  }),
).annotations({
  description: "A profile id: the file name under profiles/ without .yaml (lower case, digits, . _ -)",
})

/** opkg/apk package names are lower case; a leading `-` removes a package. */
export const packageNamePattern = /^-?[a-z0-9][a-z0-9+._-]*$/

export const PackageEntry = Schema.String.pipe(
  Schema.pattern(packageNamePattern, {
    message: (issue) =>
      `invalid package name \`${String(issue.actual)}\`: package names are lower-case letters, digits and + . _ -, with a leading - to remove one`,
  }),
).annotations({
  description: "A package to install, or with a leading - one to remove from the device's defaults",
})

export const releasePattern = /^(?:\d{2}\.\d{2}\.\d+(?:-rc\d+)?|\d{2}\.\d{2}-SNAPSHOT|snapshot|SNAPSHOT)$/

export const Release = Schema.Union(
  Schema.String.pipe(
    Schema.pattern(releasePattern, {
      message: (issue) =>
        `\`${String(issue.actual)}\` is not an OpenWrt release: use a version like "23.05.5", "24.10.0-rc6" or "snapshot"`,
    }),
  ),
  Schema.Number.pipe(
    Schema.filter(
      (n) =>
        `YAML read the release as a number (${n}), which loses digits: put it in quotes, e.g. release: "24.10.0"`,
    ),
  ),
).annotations({ identifier: "Release" })

export const Target = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9_-]+\/[a-z0-9_-]+$/, {
    message: (issue) =>
      `\`${String(issue.actual)}\` is not a target: write <target>/<subtarget>, e.g. ath79/generic`,
  }),
).annotations({ description: "OpenWrt target and subtarget, e.g. ath79/generic or x86/64" })

export const DeviceId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_,.+-]*$/, {
    message: (issue) =>
      `\`${String(issue.actual)}\` is not a device profile id (see \`make info\`), e.g. tplink_archer-c7-v5`,
  }),
).annotations({
  description:
    "The Image Builder's device profile, e.g. tplink_archer-c7-v5 (owrt builders devices lists them)",
})

export const ServiceName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, {
    message: (issue) => `\`${String(issue.actual)}\` is not an /etc/init.d service name`,
  }),
).annotations({ description: "A service in /etc/init.d, e.g. odhcpd" })

export const Tag = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9_-]*$/, {
    message: (issue) =>
      `\`${String(issue.actual)}\` is not a tag: use lower-case letters, digits, '_' and '-'`,
  }),
).annotations({ description: "A tag to select profiles by (owrt realize --tag)" })

export const secretNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/

export const SecretName = Schema.String.pipe(
  Schema.pattern(secretNamePattern, {
    message: (issue) => `\`${String(issue.actual)}\` is not a secret name: use letters, digits and '_'`,
  }),
)

/** `env:NAME` or `file:PATH`. The value itself never appears in a profile. */
export const SecretReference = Schema.String.pipe(
  Schema.pattern(/^(?:env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, {
    message: (issue) =>
      `\`${String(issue.actual)}\` is not a secret reference: write env:VARIABLE or file:path/to/file (secret values never go in a profile)`,
  }),
)

/** A path inside the image, e.g. /etc/config/wireless. */
export const ImagePath = Schema.String.pipe(
  Schema.pattern(/^\/(?!.*(?:^|\/)\.\.?(?:\/|$))[^\0]*[^/]$/, {
    message: (issue) =>
      `\`${String(issue.actual)}\` is not an absolute file path inside the image (like /etc/banner; no . or .. parts)`,
  }),
)

export const FileMode = Schema.String.pipe(
  Schema.pattern(/^0?[0-7]{3,4}$/, {
    message: (issue) => `\`${String(issue.actual)}\` is not an octal file mode: quote it, e.g. mode: "0600"`,
  }),
)

export const InlineFile = Schema.Struct({
  path: ImagePath.annotations({
    description: "Absolute path of the file inside the image, e.g. /etc/banner",
  }),
  content: Schema.optional(Schema.String).annotations({ description: "The file's text (or use `secret`)" }),
  secret: Schema.optional(SecretName).annotations({
    description: "Name of a secret (under `secrets:`) whose value is the file's content",
  }),
  mode: Schema.optional(FileMode).annotations({
    description: 'Octal file mode as a quoted string, e.g. "0600"',
  }),
})
export type InlineFile = typeof InlineFile.Type

export const FirstBootScript = Schema.Struct({
  name: Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, {
      message: (issue) =>
        `\`${String(issue.actual)}\` is not a uci-defaults script name: use letters, digits, '.', '_' and '-', e.g. 90-wifi`,
    }),
  ).annotations({
    description: "File name under /etc/uci-defaults, e.g. 90-wifi (scripts run in name order)",
  }),
  script: Schema.String.annotations({ description: "Shell script run once at first boot" }),
})
export type FirstBootScript = typeof FirstBootScript.Type

export const FlashPolicy = Schema.Struct({
  image: Schema.optional(Schema.Literal("auto", "sdcard", "combined", "combined-efi", "factory")).annotations(
    {
      description: "Which image `owrt flash` writes to a card (auto: the one card image the target has)",
    },
  ),
  verify: Schema.optional(Schema.Literal("full", "none")).annotations({
    description: "Read the card back after writing and compare (full, the default) or not",
  }),
  wipe: Schema.optional(Schema.Boolean).annotations({
    description: "Zero the rest of the card after the image (default false)",
  }),
})
export type FlashPolicy = typeof FlashPolicy.Type

const RootfsSize = Schema.Int.pipe(
  Schema.between(16, 65536, {
    message: (issue) =>
      `rootfs_size is in MB and must be a whole number from 16 to 65536, got ${String(issue.actual)}`,
  }),
)

/** Root file system types an Image Builder can be asked for (`ROOTFS_FILESYSTEM`), as ASU names them. */
export const rootfsFilesystems = [
  "squashfs",
  "ext4",
  "ubifs",
  "erofs",
  "jffs2",
  "jffs2-nand",
  "targz",
  "cpiogz",
] as const

const RootfsFilesystem = Schema.Literal(...rootfsFilesystems).annotations({
  message: (issue) =>
    `\`${String(issue.actual)}\` is not a root file system type: use one of ${rootfsFilesystems.join(", ")}`,
})

/** The placeholder in `image_name` for upstream ASU's package hash (first 12 hex of the manifest names' SHA-256). */
export const manifestHashPlaceholder = "{manifest_hash}"

/** `EXTRA_IMAGE_NAME`: letters, digits, . _ - and the `{manifest_hash}` placeholder, at most 64 characters. */
const imageNameMessage = (actual: unknown) =>
  `\`${String(actual)}\` is not an image name: letters, digits, . _ - and {manifest_hash}, at most 64 characters`
const ImageName = Schema.String.pipe(
  Schema.pattern(/^(?:[A-Za-z0-9._-]|\{manifest_hash\})+$/, {
    message: (issue) => imageNameMessage(issue.actual),
  }),
  Schema.maxLength(64, { message: (issue) => imageNameMessage(issue.actual) }),
)

/** A package feed added to the Image Builder's (repositories.conf `src/gz <name> <url>`, apk: the URL). */
const repositoryMessage = (actual: unknown) =>
  `\`${String(actual)}\` is not a feed: name (letters, digits, . _ -, not dots alone) and url (http:// or https://, no spaces)`
/** A feed name: the package manager names its list file after it, so `.` and `..` are no names. */
export const feedNamePattern = /^(?!\.+$)[\w.-]+$/u
export const Repository = Schema.Struct({
  name: Schema.String.pipe(
    Schema.pattern(feedNamePattern, { message: (issue) => repositoryMessage(issue.actual) }),
    Schema.maxLength(64, { message: (issue) => repositoryMessage(issue.actual) }),
  ),
  url: Schema.String.pipe(
    Schema.pattern(/^https?:\/\/\S+$/u, { message: (issue) => repositoryMessage(issue.actual) }),
    Schema.maxLength(2048, { message: (issue) => repositoryMessage(issue.actual) }),
  ),
}).annotations({ message: () => "a feed is {name: …, url: http(s)://…}" })

/** How a profile's feeds meet the builder's own: after them, or instead of its remote ones. */
export const RepositoriesMode = Schema.Literal("append", "replace").annotations({
  message: (issue) => `\`${String(issue.actual)}\` is not a repositories mode: append or replace`,
})

/**
 * A feed's signing key: a usign public key (the base64 line of a `.pub` file: "Ed", key id, key) for opkg
 * feeds, or a PEM public key for apk feeds.
 */
const isPemKey = (text: string) =>
  /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/.test(text)
export const RepositoryKey = Schema.String.pipe(
  Schema.filter((text) => usignPublicKeyId(text) !== undefined || isPemKey(text.trim()), {
    message: () =>
      "a repository key is a usign public key (the base64 line of its .pub file) or a PEM public key (apk)",
  }),
)

/** A profile's feeds as resolved (extends applied): what make-image writes into the builder's instance. */
export const ResolvedRepositories = Schema.Struct({
  mode: Schema.Literal("append", "replace"),
  feeds: Schema.Array(Schema.Struct({ name: Schema.String, url: Schema.String })),
  keys: Schema.Array(Schema.String),
})
export type ResolvedRepositories = typeof ResolvedRepositories.Type

/** A profile file as written, before `extends:` is applied. */
const described = <S extends Schema.Schema.Any>(schema: S, description: string) =>
  Schema.optional(schema).annotations({ description })

export const ProfileDocument = Schema.Struct({
  description: described(
    Schema.String,
    "What this profile is for (shown in listings; at most 4096 characters)",
  ),
  extends: described(
    Schema.Union(ProfileId, Schema.Array(ProfileId)),
    "Parent profile(s) this one starts from: later values win, lists merge (docs/profiles.md, Merge rules)",
  ),
  abstract: described(Schema.Boolean, "A parent only: never built (realize --all skips it)"),
  kind: Schema.optional(ProfileKind).annotations({
    description:
      "What the profile builds: openwrt (default) or raspios (docs/raspberry-pi.md); a profile and its parents agree",
  }),
  release: described(Release, 'OpenWrt release, quoted: "23.05.5", "24.10.0-rc6" or "snapshot"'),
  target: described(Target, "OpenWrt target/subtarget, e.g. ath79/generic"),
  device: described(DeviceId, "The Image Builder device profile, e.g. tplink_archer-c7-v5"),
  packages: described(
    Schema.Array(PackageEntry),
    "Packages to add; -name removes one of the device's defaults (at most 4096 entries)",
  ),
  overlay: described(
    Schema.String,
    "Directory (relative to the profile) copied into the image's root file system",
  ),
  files: described(Schema.Array(InlineFile), "Files written into the image, inline or from a secret"),
  first_boot: described(Schema.Array(FirstBootScript), "uci-defaults scripts run once at first boot"),
  disabled_services: described(Schema.Array(ServiceName), "Services in /etc/init.d not started at boot"),
  rootfs_size: described(
    RootfsSize,
    "Root file system size in MB (16 to 65536); the builder's default if absent",
  ),
  filesystem: described(
    RootfsFilesystem,
    "Only this root file system type (ROOTFS_FILESYSTEM), e.g. ext4; all the target builds if absent",
  ),
  image_name: described(
    ImageName,
    "Added to the image file names (EXTRA_IMAGE_NAME); {manifest_hash} stands for the first 12 hex digits of the SHA-256 of the sorted package names of the image's manifest, as ASU names its images",
  ),
  repositories: described(
    Schema.Array(Repository),
    "Package feeds added to the builder's (opkg: src/gz name url; apk: the url); merged by name with the parents'",
  ),
  repositories_mode: described(
    RepositoriesMode,
    "append (default): the feeds come after the builder's own; replace: instead of its remote feeds (its local packages/ stays)",
  ),
  repository_keys: described(
    Schema.Array(RepositoryKey),
    "Keys the feeds are signed with: usign public keys (base64) or PEM keys (apk), put in the builder's keys/",
  ),
  tags: described(Schema.Array(Tag), "Tags for selecting profiles (owrt realize --tag T)"),
  secrets: described(
    Schema.Record({ key: SecretName, value: SecretReference }),
    "Secret name → env:VARIABLE or file:PATH; values are read at build time and never stored in the profile",
  ),
  flash: described(FlashPolicy, "How `owrt flash` writes this profile's image to a card"),
  ...raspiosFields,
}).annotations({
  identifier: "OwrtProfile",
  title: "owrt profile",
  description: "An owrt device profile (profiles/<id>.yaml). See docs/profiles.md.",
})
export type ProfileDocument = typeof ProfileDocument.Type

/** Known keys per object kind, for "did you mean" hints on unknown keys. */
export const knownKeys = {
  profile: Object.keys(ProfileDocument.fields),
  files: Object.keys(InlineFile.fields),
  first_boot: Object.keys(FirstBootScript.fields),
  flash: Object.keys(FlashPolicy.fields),
  base: Object.keys(RaspiosBase.fields),
  users: Object.keys(RaspiosUser.fields),
  ssh: Object.keys(RaspiosSsh.fields),
  wifi: Object.keys(RaspiosWifi.fields),
  wireguard: Object.keys(RaspiosWireguard.fields),
} as const
