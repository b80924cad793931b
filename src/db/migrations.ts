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
]
