import { Counter, Gauge, Histogram, Registry } from "prom-client"
import type { OtaObserver } from "./otaHttpApp.js"

/*
 * The OTA server's Prometheus metrics (text format 0.0.4), with OtaFlux's names (ota.md §5) and owrt's
 * additions: bytes of firmware served, 304s, 206s, devices told they are up to date (204), release notices.
 */
export const makeOtaMetrics = (entries: () => number) => {
  const registry = new Registry()
  new Gauge({
    name: "firmware_cache_entries",
    help: "Firmware blobs held in memory",
    registers: [registry],
    collect() {
      this.set(entries())
    },
  })
  const hits = new Counter({
    name: "firmware_cache_hit_total",
    help: "Firmware requests answered from memory",
    labelNames: ["device_id"],
    registers: [registry],
  })
  const misses = new Counter({
    name: "firmware_cache_miss_total",
    help: "Firmware requests that fetched the blob from the registry (or waited for that fetch)",
    labelNames: ["device_id"],
    registers: [registry],
  })
  const requests = new Counter({
    name: "http_requests_total",
    help: "HTTP requests by method, path and status",
    labelNames: ["method", "path", "status"],
    registers: [registry],
  })
  const durations = new Histogram({
    name: "http_requests_duration_seconds",
    help: "HTTP request durations",
    labelNames: ["method", "path", "status"],
    registers: [registry],
  })
  const bytes = new Counter({
    name: "ota_firmware_bytes_served_total",
    help: "Firmware bytes sent in 200 and 206 answers",
    registers: [registry],
  })
  const notModified = new Counter({
    name: "ota_not_modified_total",
    help: "Answers 304: the device holds this firmware (If-None-Match)",
    registers: [registry],
  })
  const partial = new Counter({
    name: "ota_partial_content_total",
    help: "Answers 206: resumed or ranged downloads",
    registers: [registry],
  })
  const upToDate = new Counter({
    name: "ota_devices_up_to_date_total",
    help: "Answers 204: the device reported (current=) the latest release or newer",
    registers: [registry],
  })
  const notices = new Counter({
    name: "ota_notices_total",
    help: "Release notices published over MQTT after a registry webhook, by result",
    labelNames: ["result"],
    registers: [registry],
  })
  const signatureFailures = new Counter({
    name: "ota_signature_failures_total",
    help: "Releases refused because their cosign signature is missing or invalid, by device and error code",
    labelNames: ["device_id", "code"],
    registers: [registry],
  })
  let releases = 0
  new Gauge({
    name: "ota_releases_published",
    help: "Releases owrt publish recorded in this server's database",
    registers: [registry],
    collect() {
      this.set(releases)
    },
  })
  const observer: OtaObserver = {
    cache: (device, hit) => (hit ? hits : misses).inc({ device_id: device }),
    bytes: (count) => bytes.inc(count),
    request: (method, path, status, seconds) => {
      const labels = { method, path, status: String(status) }
      requests.inc(labels)
      durations.observe(labels, seconds)
      if (status === 304) notModified.inc()
      if (status === 206) partial.inc()
      if (status === 204) upToDate.inc()
    },
  }
  return {
    registry,
    observer,
    notice: (result: "sent" | "none" | "failed") => notices.inc({ result }),
    signatureFailure: (device: string, code: string) => signatureFailures.inc({ device_id: device, code }),
    published: (count: number) => {
      releases = count
    },
  }
}
