import { defineConfig } from "owrt/config"

// Project configuration. CLI flags and OWRT_* environment variables override these.
export default defineConfig({
  store: "store",
  profiles: "profiles",
  jobs: 2,
  timeouts: { download: 1800, build: 1800, lock: 3600 },
})
