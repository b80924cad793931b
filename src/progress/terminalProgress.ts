import { Layer } from "effect"
import { Progress, type ProgressEvent } from "./progress.js"

const units = ["B", "KB", "MB", "GB", "TB"]
export const formatBytes = (bytes: number): string => {
  let value = bytes
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit += 1
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`
}

const formatSeconds = (seconds: number): string =>
  seconds < 60
    ? `${Math.ceil(seconds)}s`
    : `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, "0")}s`

/**
 * A live status line on stderr (only when stderr is a terminal): bytes, rate and time left for downloads,
 * the current step otherwise. Redrawn at most ten times a second.
 */
export const terminalProgress = (stream: NodeJS.WriteStream = process.stderr): Layer.Layer<Progress> => {
  if (!stream.isTTY) return Layer.succeed(Progress, { report: () => undefined })
  const started = new Map<string, number>()
  let lastDraw = 0
  let shown = false
  const draw = (text: string, force: boolean) => {
    const now = Date.now()
    if (!force && now - lastDraw < 100) return
    lastDraw = now
    // A terminal that does not say its width (0 columns) is taken as 80 wide, not cut to a stub.
    const width = Math.max(20, (stream.columns || 80) - 1)
    stream.write(`\r\u001b[2K${text.length > width ? `${text.slice(0, width - 1)}…` : text}`)
    shown = true
  }
  const report = (event: ProgressEvent) => {
    if (!started.has(event.task)) started.set(event.task, Date.now())
    const elapsed = (Date.now() - (started.get(event.task) ?? Date.now())) / 1000
    if (event.kind === "bytes") {
      const rate = elapsed > 0 ? event.bytes / elapsed : 0
      const total = event.total ? ` / ${formatBytes(event.total)}` : ""
      const eta = event.total && rate > 0 ? `  ETA ${formatSeconds((event.total - event.bytes) / rate)}` : ""
      draw(`${event.task}  ${formatBytes(event.bytes)}${total}  ${formatBytes(rate)}/s${eta}`, false)
    } else if (event.kind === "node") {
      if (event.bytes !== undefined) {
        const rate = elapsed > 0 ? event.bytes / elapsed : 0
        const total = event.total ? ` / ${formatBytes(event.total)}` : ""
        const eta =
          event.total && rate > 0 ? `  ETA ${formatSeconds((event.total - event.bytes) / rate)}` : ""
        draw(
          `${event.task}  ${event.node}  ${formatBytes(event.bytes)}${total}  ${formatBytes(rate)}/s${eta}`,
          false,
        )
      } else if (event.state === "building" || event.state === "substituting") {
        draw(
          `${event.task}  ${event.node}${event.line ? `: ${event.line}` : ""}  (${formatSeconds(elapsed)})`,
          event.line === undefined,
        )
      }
    } else if (event.kind === "step") {
      draw(`${event.task}  ${event.message}  (${formatSeconds(elapsed)})`, true)
    } else {
      if (shown) stream.write("\r\u001b[2K")
      shown = false
      if (event.message) stream.write(`${event.task}  ${event.message}\n`)
    }
  }
  return Layer.succeed(Progress, { report })
}
