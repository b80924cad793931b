import { Counter, Gauge, Histogram, Registry } from "prom-client"

/*
 * `owrt worker --metrics-port`: the build farm's queue as the database holds it (node jobs by status, live
 * workers; read at each scrape) and what this worker did (jobs by kind and result, and how long they took).
 */
export interface FarmCounts {
  readonly totals: {
    readonly queued: number
    readonly running: number
    readonly done: number
    readonly failed: number
  }
  readonly workers: number
}

export const makeFarmMetrics = () => {
  const registry = new Registry()
  let counts: FarmCounts = { totals: { queued: 0, running: 0, done: 0, failed: 0 }, workers: 0 }
  new Gauge({
    name: "owrt_farm_jobs",
    help: "Node jobs in the farm's database, by status (queued, running, done, failed)",
    labelNames: ["status"],
    registers: [registry],
    collect() {
      for (const [status, n] of Object.entries(counts.totals)) this.set({ status }, n)
    },
  })
  new Gauge({
    name: "owrt_farm_workers",
    help: "Live workers (heartbeat within the lock timeout)",
    registers: [registry],
    collect() {
      this.set(counts.workers)
    },
  })
  const jobs = new Counter({
    name: "owrt_worker_jobs_total",
    help: "Node jobs this worker finished, by node kind and result (done, failed)",
    labelNames: ["kind", "result"],
    registers: [registry],
  })
  const durations = new Histogram({
    name: "owrt_worker_job_duration_seconds",
    help: "How long this worker's node jobs took, by node kind and result",
    labelNames: ["kind", "result"],
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800],
    registers: [registry],
  })
  return {
    registry,
    counts: (next: FarmCounts) => {
      counts = next
    },
    job: (kind: string, result: "done" | "failed", seconds: number) => {
      jobs.inc({ kind, result })
      durations.observe({ kind, result }, seconds)
    },
  }
}
