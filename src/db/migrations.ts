/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many ran. Append only: a
 * migration that has shipped is never edited, because stores in the field already ran it. One SQL
 * statement per entry (the driver prepares statements one at a time).
 */
export const migrations: ReadonlyArray<{
  readonly name: string
  readonly statements: ReadonlyArray<string>
}> = [
  {
    name: "profile revisions",
    statements: [
      `CREATE TABLE profile_revisions (
        profile     TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        hash        TEXT NOT NULL,
        canonical   TEXT NOT NULL,
        source      TEXT NOT NULL,
        first_seen  TEXT NOT NULL,
        PRIMARY KEY (profile, seq),
        UNIQUE (profile, hash)
      )`,
      "CREATE INDEX profile_revisions_by_hash ON profile_revisions (hash)",
    ],
  },
  {
    name: "builders, upstream resolutions, locks",
    statements: [
      `CREATE TABLE upstream_resolutions (
        upstream        TEXT NOT NULL,
        release         TEXT NOT NULL,
        target          TEXT NOT NULL,
        archive_name    TEXT NOT NULL,
        archive_url     TEXT NOT NULL,
        archive_sha256  TEXT NOT NULL,
        signed_by       TEXT NOT NULL,
        resolved_at     TEXT NOT NULL,
        PRIMARY KEY (upstream, release, target)
      )`,
      `CREATE TABLE builders (
        key             TEXT PRIMARY KEY,
        path            TEXT NOT NULL,
        release         TEXT NOT NULL,
        target          TEXT NOT NULL,
        upstream        TEXT NOT NULL,
        archive_name    TEXT NOT NULL,
        archive_sha256  TEXT NOT NULL,
        signed_by       TEXT NOT NULL,
        files           INTEGER NOT NULL,
        bytes           INTEGER NOT NULL,
        created_at      TEXT NOT NULL,
        last_used_at    TEXT NOT NULL
      )`,
      `CREATE TABLE locks (
        name        TEXT PRIMARY KEY,
        owner       TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        pid_start   TEXT NOT NULL,
        host        TEXT NOT NULL,
        acquired_at TEXT NOT NULL
      )`,
    ],
  },
  {
    name: "store paths, builds, artifacts",
    statements: [
      `CREATE TABLE store_paths (
        key         TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        digest      TEXT NOT NULL,
        listing     TEXT NOT NULL,
        files       INTEGER NOT NULL,
        bytes       INTEGER NOT NULL,
        created_at  TEXT NOT NULL,
        valid       INTEGER NOT NULL DEFAULT 1
      )`,
      `CREATE TABLE builds (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        profile        TEXT NOT NULL,
        revision_seq   INTEGER,
        revision_hash  TEXT NOT NULL,
        builder_key    TEXT,
        overlay_key    TEXT,
        image_key      TEXT,
        artifacts_key  TEXT,
        cache_hit      INTEGER NOT NULL DEFAULT 0,
        requested_by   TEXT NOT NULL,
        status         TEXT NOT NULL,
        error_code     TEXT,
        error_message  TEXT,
        started_at     TEXT NOT NULL,
        finished_at    TEXT,
        duration_ms    INTEGER,
        pid            INTEGER NOT NULL
      )`,
      "CREATE INDEX builds_by_profile ON builds (profile, id)",
      "CREATE INDEX builds_by_builder ON builds (builder_key)",
      `CREATE TABLE builder_info (
        builder_key  TEXT PRIMARY KEY,
        info         TEXT NOT NULL
      )`,
      `CREATE TABLE artifacts (
        artifacts_key  TEXT NOT NULL,
        name           TEXT NOT NULL,
        type           TEXT NOT NULL,
        filesystem     TEXT,
        sha256         TEXT NOT NULL,
        size           INTEGER NOT NULL,
        PRIMARY KEY (artifacts_key, name)
      )`,
    ],
  },
  {
    name: "build owner start time",
    statements: ["ALTER TABLE builds ADD COLUMN pid_start TEXT"],
  },
  {
    name: "package selection checks",
    statements: [
      `CREATE TABLE package_checks (
        key         TEXT PRIMARY KEY,
        manifest    TEXT NOT NULL,
        checked_at  TEXT NOT NULL
      )`,
    ],
  },
  {
    name: "decoded profile documents",
    statements: [
      `CREATE TABLE profile_documents (
        digest    TEXT PRIMARY KEY,
        document  TEXT NOT NULL
      )`,
    ],
  },
  {
    name: "flash records and suspect cards",
    statements: [
      `CREATE TABLE flashes (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        mode              TEXT NOT NULL,
        source            TEXT NOT NULL,
        image_path        TEXT NOT NULL,
        image_bytes       INTEGER NOT NULL,
        image_sha256      TEXT,
        compression       TEXT NOT NULL,
        profile           TEXT,
        revision_hash     TEXT,
        artifacts_key     TEXT,
        artifact_name     TEXT,
        artifact_type     TEXT,
        device_path       TEXT NOT NULL,
        device_requested  TEXT NOT NULL,
        device_model      TEXT,
        device_serial     TEXT,
        device_bytes      INTEGER NOT NULL,
        wipe              INTEGER NOT NULL,
        verify            TEXT NOT NULL,
        status            TEXT NOT NULL,
        error_code        TEXT,
        error_message     TEXT,
        first_bad_offset  INTEGER,
        bad_bytes         INTEGER,
        write_ms          INTEGER,
        verify_ms         INTEGER,
        requested_by      TEXT NOT NULL,
        requested_user    TEXT NOT NULL,
        started_at        TEXT NOT NULL,
        finished_at       TEXT,
        pid               INTEGER NOT NULL,
        pid_start         TEXT
      )`,
      "CREATE INDEX flashes_by_serial ON flashes (device_serial, id)",
      `CREATE TABLE suspect_cards (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        flash_id     INTEGER NOT NULL REFERENCES flashes (id),
        model        TEXT,
        serial       TEXT,
        size_bytes   INTEGER NOT NULL,
        reason       TEXT NOT NULL,
        recorded_at  TEXT NOT NULL
      )`,
    ],
  },
  {
    name: "store uses",
    statements: [
      // Shared holds on store paths and builders by running processes: prune and gc leave them alone.
      `CREATE TABLE store_uses (
        name        TEXT NOT NULL,
        owner       TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        pid_start   TEXT NOT NULL,
        host        TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        PRIMARY KEY (name, owner)
      )`,
    ],
  },
  {
    name: "the key inputs of store paths (plan --explain diffs them)",
    statements: ["ALTER TABLE store_paths ADD COLUMN key_inputs TEXT"],
  },
  {
    name: "ASU build jobs",
    statements: [
      // The ASU job queue (src/asu): one row per request hash, kept until it expires. `id` is the
      // enqueue order that queue positions count.
      `CREATE TABLE asu_jobs (
        id                   INTEGER PRIMARY KEY AUTOINCREMENT,
        request_hash         TEXT NOT NULL UNIQUE,
        request              TEXT NOT NULL,
        bin_dir              TEXT NOT NULL,
        status               TEXT NOT NULL,
        imagebuilder_status  TEXT NOT NULL,
        attempts             INTEGER NOT NULL DEFAULT 0,
        enqueued_at          TEXT NOT NULL,
        started_at           TEXT,
        finished_at          TEXT,
        result_ttl_seconds   INTEGER NOT NULL,
        failure_ttl_seconds  INTEGER NOT NULL,
        expires_at           TEXT,
        result               TEXT,
        detail               TEXT,
        stdout               TEXT,
        stderr               TEXT
      )`,
      "CREATE INDEX asu_jobs_by_status ON asu_jobs (status, id)",
    ],
  },
  {
    name: "builds substituted from a shared cache",
    statements: ["ALTER TABLE builds ADD COLUMN substituted_from TEXT"],
  },
  {
    name: "OTA releases and devices",
    statements: [
      `CREATE TABLE ota_releases (
        repository       TEXT NOT NULL,
        version          TEXT NOT NULL,
        device           TEXT NOT NULL,
        channel          TEXT NOT NULL,
        manifest_digest  TEXT NOT NULL,
        sha256           TEXT NOT NULL,
        size             INTEGER NOT NULL,
        image            TEXT NOT NULL,
        profile          TEXT NOT NULL,
        revision         TEXT NOT NULL,
        artifacts_key    TEXT NOT NULL,
        published_at     TEXT NOT NULL,
        PRIMARY KEY (repository, version)
      )`,
      `CREATE TABLE ota_devices (
        device      TEXT PRIMARY KEY,
        version     TEXT NOT NULL,
        channel     TEXT NOT NULL,
        up_to_date  INTEGER NOT NULL,
        latest      TEXT,
        address     TEXT,
        first_seen  TEXT NOT NULL,
        last_seen   TEXT NOT NULL
      )`,
    ],
  },
  {
    name: "ASU request statistics",
    statements: [
      `CREATE TABLE asu_events (
        id        INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        event     TEXT NOT NULL,
        version   TEXT NOT NULL,
        target    TEXT NOT NULL,
        profile   TEXT NOT NULL,
        packages  TEXT NOT NULL,
        detail    TEXT
      )`,
      "CREATE INDEX asu_events_at ON asu_events (at)",
    ],
  },
]
