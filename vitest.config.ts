import { defineConfig } from "vitest/config"

/*
 * Two projects: `unit` (`*.unit.test.ts`) runs the core in-process and needs no bundle; `cli` drives the
 * real, bundled CLI, servers and browser, so its global setup bundles the CLI and builds the stand-in
 * mirror once before any of its files. `npx vitest run --project unit` runs the first alone.
 */
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // CLI tests spawn real processes; two cores do not gain from more workers.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    projects: [
      { extends: true, test: { name: "unit", include: ["tests/**/*.unit.test.ts"] } },
      {
        extends: true,
        test: {
          name: "cli",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/**/*.unit.test.ts"],
          globalSetup: ["tests/helpers/globalSetup.ts"],
        },
      },
    ],
  },
})
