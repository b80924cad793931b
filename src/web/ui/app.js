// The owrt web UI: a few pages over the HTTP API (see /openapi.json). No framework and no build step;
// every piece of text from the server goes into the page as text, never as markup.

const tokenKey = "owrt.token"

// A token given once as ?token= is kept for this tab only and taken out of the address bar.
const initial = new URL(location.href)
if (initial.searchParams.has("token")) {
  sessionStorage.setItem(tokenKey, initial.searchParams.get("token") ?? "")
  initial.searchParams.delete("token")
  history.replaceState(null, "", initial)
}
const token = () => sessionStorage.getItem(tokenKey)

class ApiError extends Error {
  constructor(status, error) {
    super(error.message)
    this.status = status
    this.code = error.code
  }
}

async function api(path, options = {}) {
  const headers = { "x-owrt-client": "web" }
  const current = token()
  if (current) headers.authorization = `Bearer ${current}`
  const init = { method: options.method ?? "GET", headers }
  if (init.method !== "GET") {
    headers["content-type"] = "application/json"
    init.body = JSON.stringify(options.body ?? {})
  }
  const response = await fetch(path, init)
  const json = (response.headers.get("content-type") ?? "").includes("application/json")
  const data = json ? await response.json() : await response.text()
  if (!response.ok) {
    throw new ApiError(
      response.status,
      json && data.error ? data.error : { code: `http_${response.status}`, message: String(data) },
    )
  }
  return data
}

/** A URL for what cannot send headers (links, EventSource): the token rides in the query. */
function withToken(path) {
  const current = token()
  if (!current) return path
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(current)}`
}

/**
 * An element with attributes and children. Children nest to any depth (arrays of arrays, as a list of
 * `[term, definition]` pairs gives): every node is appended, everything else becomes text.
 */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value)
    else if (name === "text") element.textContent = value
    else if (value === true) element.setAttribute(name, "")
    else element.setAttribute(name, String(value))
  }
  for (const child of children.flat(Number.POSITIVE_INFINITY)) {
    if (child === undefined || child === null || child === false) continue
    element.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return element
}

const tones = {
  cached: "cached",
  succeeded: "ok",
  done: "ok",
  running: "run",
  queued: "run",
  missing: "idle",
  pending: "idle",
  failed: "bad",
  interrupted: "bad",
}
const labels = { missing: "to build", cached: "cached" }
const badge = (state, label) =>
  h("span", { class: "badge", "data-tone": tones[state] ?? "idle" }, label ?? labels[state] ?? state)

function formatBytes(bytes) {
  const units = ["B", "KB", "MB", "GB"]
  let value = bytes
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit += 1
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`
}

const pad2 = (n) => String(n).padStart(2, "0")

/**
 * A recorded time as the UI shows every time: ISO 8601 to the second in the browser's own zone, with its
 * offset (`2026-12-05T00:32:11+05:30`). In UTC it is exactly what the CLI prints (`2026-12-04T19:02:11Z`).
 */
function formatTime(iso) {
  if (!iso) return "—"
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  const offset = -date.getTimezoneOffset()
  const zone =
    offset === 0
      ? "Z"
      : `${offset > 0 ? "+" : "-"}${pad2(Math.floor(Math.abs(offset) / 60))}:${pad2(Math.abs(offset) % 60)}`
  const day = `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())}`
  return `${day}T${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}${zone}`
}

/** A recorded time as a <time> element; its tooltip gives it in UTC. */
const timeOf = (iso) =>
  iso
    ? h(
        "time",
        { datetime: iso, title: `${new Date(iso).toISOString().slice(0, 19)}Z (UTC)` },
        formatTime(iso),
      )
    : "—"
const formatDuration = (ms) => (ms === null || ms === undefined ? "—" : `${(ms / 1000).toFixed(1)} s`)

function toast(message) {
  const box = document.getElementById("toast")
  box.textContent = message
  clearTimeout(toast.timer)
  toast.timer = setTimeout(() => {
    box.textContent = ""
  }, 6000)
}

function errorBox(error) {
  return h(
    "div",
    { class: "error-box", role: "alert" },
    error.code ? h("code", {}, error.code) : null,
    error.code ? ": " : null,
    error.message,
  )
}

function table(caption, headings, rows) {
  return h(
    "table",
    {},
    h("caption", { class: "skip" }, caption),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        headings.map((heading) => h("th", { scope: "col" }, heading)),
      ),
    ),
    h("tbody", {}, rows),
  )
}

function page(title, lede, ...content) {
  return h(
    "section",
    { "aria-labelledby": "page-title" },
    h("h1", { id: "page-title" }, title),
    lede ? h("p", { class: "lede" }, lede) : null,
    ...content,
  )
}

async function startRealize(profile) {
  try {
    const { job, joined } = await api("/api/realize", { method: "POST", body: { profile } })
    if (joined && job.state === "succeeded") toast(`${profile} is already built: showing that job`)
    else if (joined) toast(`${profile} is already building: following that job`)
    location.hash = `#/jobs/${job.id}`
  } catch (error) {
    toast(`${profile}: ${error.message}`)
  }
}

const realizeButton = (profile, label) =>
  h(
    "button",
    { type: "button", "aria-label": `Realize ${profile}`, onclick: () => startRealize(profile) },
    label ?? "Realize",
  )

// ---- pages ----

async function profilesPage() {
  const [{ profiles, errors = [] }, plan] = await Promise.all([
    api("/api/profiles"),
    api("/api/plan?all=true").catch((error) => ({ error })),
  ])
  const status = new Map((plan.profiles ?? []).map((p) => [p.profile, p.status]))
  const rows = profiles.map((p) =>
    h(
      "tr",
      {},
      h(
        "td",
        {},
        h("a", { href: `#/profiles/${encodeURIComponent(p.id)}` }, p.id),
        p.description ? h("div", { class: "muted" }, p.description) : null,
      ),
      h("td", {}, [p.release, p.target, p.device].filter(Boolean).join(" · ") || "—"),
      h(
        "td",
        { class: "mono" },
        p.revision.seq === null ? "not recorded " : `#${p.revision.seq} `,
        h("span", { class: "muted" }, p.revision.hash.slice(0, 12)),
      ),
      h(
        "td",
        {},
        p.abstract
          ? badge("abstract", "abstract")
          : status.has(p.id)
            ? badge(status.get(p.id))
            : badge("unknown", "unknown"),
      ),
      h("td", {}, p.abstract ? null : realizeButton(p.id)),
    ),
  )
  // Profiles that do not resolve: listed with their located error, so one broken file hides no other.
  const brokenRows = errors.map((e) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/profiles/${encodeURIComponent(e.profile)}` }, e.profile)),
      h(
        "td",
        { colspan: 2 },
        h("code", {}, e.code),
        e.message.split("\n").map((line) => h("div", { class: "mono" }, line)),
      ),
      h("td", {}, badge("failed", "invalid")),
      h("td", {}),
    ),
  )
  const allRows = [...rows, ...brokenRows]
  return page(
    "Profiles",
    "Each profile compiles into a task graph; cached profiles are realized instantly from the store.",
    plan.error ? errorBox(plan.error) : null,
    allRows.length === 0
      ? h("p", { class: "muted" }, "No profiles yet: add YAML files under profiles/.")
      : table("Profiles", ["Profile", "Target", "Revision", "Status", ""], allRows),
  )
}

async function profilePage(id) {
  const [shown, history, plan] = await Promise.all([
    api(`/api/profiles/${encodeURIComponent(id)}`),
    api(`/api/profiles/${encodeURIComponent(id)}/history`),
    api(`/api/plan?profiles=${encodeURIComponent(id)}`).catch((error) => ({ error })),
  ])
  const p = shown.profile
  const planned = plan.profiles?.[0]
  const list = (items, separator = ", ") => (items.length > 0 ? items.join(separator) : "—")
  const secrets = Object.keys(p.secrets)
  const facts = [
    ["Release", p.release],
    ["Target", p.target],
    ["Device", p.device],
    ["Packages", list(p.packages, " ")],
    ["Extends", list(p.parents, " → ")],
    [
      "Overlay",
      p.overlay.length === 0 ? "—" : `${p.overlay.length} file${p.overlay.length === 1 ? "" : "s"}`,
    ],
    ["Files", list(p.files.map((f) => `${f.path}${f.secret ? " (secret)" : ""}`))],
    ["First boot", list(p.first_boot.map((s) => s.name))],
    ["Disabled services", list(p.disabled_services)],
    ["Root file system", p.rootfs_size === null ? "the builder's default size" : `${p.rootfs_size} MB`],
    ["Secrets", list(secrets)],
    ["Tags", list(p.tags)],
    ["Flash", `${p.flash.image} image, verify ${p.flash.verify}${p.flash.wipe ? ", wipe first" : ""}`],
  ]
  return page(
    shown.revision.seq === null ? `${p.id} (not recorded)` : `${p.id}@${shown.revision.seq}`,
    p.description,
    h(
      "div",
      { class: "row" },
      p.abstract
        ? badge("abstract", "abstract (a parent only)")
        : realizeButton(`${p.id}`, "Realize current revision"),
      planned ? badge(planned.status) : null,
    ),
    h("h2", {}, "Resolved profile"),
    h(
      "dl",
      { class: "card" },
      facts.map(([term, value]) => [h("dt", { class: "muted" }, term), h("dd", {}, value ?? "—")]),
    ),
    planned
      ? [
          h("h2", {}, "Task graph"),
          table(
            "Task graph",
            ["Node", "Key", "Status"],
            planned.nodes.map((n) =>
              h(
                "tr",
                {},
                h("td", {}, n.kind),
                h("td", { class: "mono" }, n.key ?? "known once the builder is fetched"),
                h("td", {}, badge(n.status)),
              ),
            ),
          ),
        ]
      : plan.error
        ? errorBox(plan.error)
        : null,
    h("h2", {}, "Revision history"),
    history.revisions.length === 0
      ? h("p", { class: "muted" }, "No revision recorded yet: realizing the profile records it.")
      : table(
          "Revisions",
          ["Revision", "Hash", "Source", "First seen", ""],
          history.revisions
            .slice()
            .reverse()
            .map((r) =>
              h(
                "tr",
                {},
                h("td", {}, `#${r.seq}`),
                h("td", { class: "hash" }, r.hash.slice(0, 16)),
                h("td", {}, r.source),
                h("td", {}, timeOf(r.firstSeen)),
                h("td", {}, p.abstract ? null : realizeButton(`${id}@${r.seq}`, `Realize #${r.seq}`)),
              ),
            ),
        ),
  )
}

/** A node kind as it is spelled everywhere: `fetch-builder` for the JSON field `fetchBuilder`. */
const nodeName = (field) => field.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)

const nodeClasses = {
  "fetch-builder": "n-fetch",
  "stage-overlay": "n-stage",
  "make-image": "n-make",
  "collect-artifacts": "n-collect",
}

function artifactRows(artifacts, profileOf) {
  return artifacts.map((a) => {
    const key = a.key
    return h(
      "tr",
      {},
      h(
        "td",
        {},
        h("div", { class: "mono" }, a.name),
        h("div", { class: "muted" }, [a.type, a.filesystem].filter(Boolean).join(" · ")),
      ),
      profileOf ? h("td", {}, profileOf(a)) : null,
      h("td", { class: "nowrap" }, formatBytes(a.size)),
      h("td", { class: "hash", title: "SHA-256" }, a.sha256),
      h(
        "td",
        {},
        h(
          "a",
          {
            class: "button secondary",
            href: withToken(`/api/artifacts/${key}/${encodeURIComponent(a.name)}`),
            download: a.name,
            "aria-label": `Download ${a.name}`,
          },
          "Download",
        ),
      ),
    )
  })
}

/** The store directory of an artifact (`<key>-<name>`), from its absolute path `…/<dir>/images/<file>`. */
const storeDirOf = (path) => path.split("/").slice(-3)[0]

let closeCurrent = () => {}

async function jobPage(id) {
  const job = await api(`/api/jobs/${encodeURIComponent(id)}`)
  const state = h("span", {}, badge(job.state))
  const nodes = new Map(
    job.nodes.map((n) => [
      n.kind,
      h(
        "li",
        { class: `node ${nodeClasses[n.kind]}`, "data-state": "pending", "aria-label": `${n.kind}: pending` },
        h("div", { class: "kind" }, n.kind),
        h("div", { class: "state" }, "pending"),
      ),
    ]),
  )
  const graph = h(
    "ol",
    { class: "graph", "aria-label": "Task graph" },
    nodes.get("fetch-builder"),
    nodes.get("stage-overlay"),
    h("li", { class: "arrow a1", "aria-hidden": "true" }, "→"),
    nodes.get("make-image"),
    h("li", { class: "arrow a2", "aria-hidden": "true" }, "→"),
    nodes.get("collect-artifacts"),
  )
  const log = h("pre", { class: "log", role: "log", "aria-label": "Build log", tabindex: "0" })
  const outcome = h("div", { "aria-live": "polite" })
  const setNode = (kind, value) => {
    const node = nodes.get(kind)
    if (!node) return
    node.dataset.state = value
    node.setAttribute("aria-label", `${kind}: ${value}`)
    node.querySelector(".state").textContent = value
  }
  const appendLog = (line) => {
    const follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 24
    log.append(`${line}\n`)
    if (follow) log.scrollTop = log.scrollHeight
  }
  const showResult = (result) => {
    outcome.replaceChildren(
      h("h2", {}, "Artifacts"),
      h(
        "p",
        { class: "muted" },
        result.cacheHit ? "Cache hit: nothing was built. " : "Built and verified. ",
        result.buildId ? h("a", { href: `#/builds/${result.buildId}` }, `Build #${result.buildId}`) : null,
        " · ",
        h(
          "a",
          { href: withToken(`/api/store/${result.storePath.split("/").pop()}/owrt-manifest.json`) },
          "owrt-manifest.json",
        ),
      ),
      table(
        "Artifacts",
        ["Image", "Size", "SHA-256", ""],
        artifactRows(result.artifacts.map((a) => ({ ...a, key: result.key }))),
      ),
    )
  }
  // Replayed from the first event: the stream alone rebuilds the whole picture, also after a reconnect.
  const source = new EventSource(withToken(`/api/jobs/${encodeURIComponent(id)}/events`))
  const on = (type, handle) => source.addEventListener(type, (event) => handle(JSON.parse(event.data)))
  on("state", (e) => state.replaceChildren(badge(e.state)))
  on("node", (e) => setNode(e.kind, e.state))
  on("log", (e) => appendLog(e.line))
  on("result", (e) => showResult(e.result))
  on("failure", (e) => outcome.replaceChildren(errorBox(e.error)))
  on("end", () => source.close())
  closeCurrent = () => source.close()
  return page(
    `${job.profile}@${job.rev}`,
    null,
    h(
      "div",
      { class: "row" },
      h("span", {}, "Job ", h("span", { class: "mono" }, job.id)),
      state,
      job.rebuild ? badge("rebuild", "rebuild") : null,
      h("span", { class: "muted hash" }, job.revision.slice(0, 16)),
    ),
    h("h2", {}, "Task graph"),
    graph,
    outcome,
    h("h2", {}, "Log"),
    log,
  )
}

async function jobsPage() {
  const { jobs } = await api("/api/jobs")
  return page(
    "Jobs",
    "Realize jobs on this server since it started. Identical requests share one job.",
    jobs.length === 0
      ? h("p", { class: "muted" }, "No jobs yet: realize a profile from the Profiles page.")
      : table(
          "Jobs",
          ["Job", "Profile", "State", "Requests", "Created"],
          jobs.map((j) =>
            h(
              "tr",
              {},
              h("td", {}, h("a", { href: `#/jobs/${j.id}`, class: "mono" }, j.id)),
              h("td", {}, `${j.profile}@${j.rev}`),
              h("td", {}, badge(j.state)),
              h("td", {}, j.requests),
              h("td", {}, timeOf(j.createdAt)),
            ),
          ),
        ),
  )
}

async function buildsPage() {
  const { builds } = await api("/api/builds?limit=100")
  return page(
    "Builds",
    "Every realization recorded in the store, newest first, whoever asked.",
    builds.length === 0
      ? h("p", { class: "muted" }, "No builds yet.")
      : table(
          "Builds",
          ["Build", "Profile", "Status", "Cache", "By", "Started", "Time", "Error"],
          builds.map((b) =>
            h(
              "tr",
              {},
              h("td", {}, h("a", { href: `#/builds/${b.id}` }, `#${b.id}`)),
              h("td", {}, `${b.profile}@${b.rev ?? "?"}`),
              h("td", {}, badge(b.status)),
              h("td", {}, b.cacheHit ? badge("cached", "hit") : "—"),
              h("td", {}, b.requestedBy),
              h("td", {}, timeOf(b.startedAt)),
              h("td", {}, formatDuration(b.durationMs)),
              h("td", { class: "mono" }, b.error?.code ?? ""),
            ),
          ),
        ),
  )
}

async function buildPage(id) {
  const b = await api(`/api/builds/${encodeURIComponent(id)}?logLines=200`)
  return page(
    `Build #${b.id}`,
    [`${b.profile}@${b.rev ?? "?"}, asked by ${b.requestedBy}, started `, timeOf(b.startedAt)],
    h(
      "div",
      { class: "row" },
      badge(b.status),
      b.cacheHit ? badge("cached", "cache hit") : null,
      h("span", { class: "muted" }, formatDuration(b.durationMs)),
    ),
    b.error ? errorBox(b.error) : null,
    h("h2", {}, "Node keys"),
    table(
      "Node keys",
      ["Node", "Key"],
      Object.entries(b.keys).map(([kind, key]) =>
        h("tr", {}, h("td", {}, nodeName(kind)), h("td", { class: "mono" }, key ?? "—")),
      ),
    ),
    h("h2", {}, "Artifacts"),
    b.artifacts.length > 0
      ? table("Artifacts", ["Image", "Size", "SHA-256", ""], artifactRows(b.artifacts))
      : h(
          "p",
          { class: "muted" },
          b.status === "running"
            ? "No images yet: the build is running."
            : "No images: this build made none.",
        ),
    b.logTail === null
      ? null
      : [
          h(
            "h2",
            {},
            "Log ",
            h("a", { href: withToken(`/api/builds/${b.id}/log`), class: "muted" }, "(whole log)"),
          ),
          h("pre", { class: "log", role: "log", "aria-label": "Build log", tabindex: "0" }, b.logTail),
        ],
  )
}

async function artifactsPage() {
  const { artifacts } = await api("/api/artifacts?limit=200")
  return page(
    "Artifacts",
    "Verified images in the store. Downloads carry the SHA-256 as their ETag and resume with Range.",
    artifacts.length === 0
      ? h("p", { class: "muted" }, "No artifacts yet: realize a profile.")
      : table(
          "Artifacts",
          ["Image", "Profile", "Size", "SHA-256", ""],
          artifactRows(artifacts, (a) =>
            h(
              "span",
              {},
              a.profile ? `${a.profile}@${a.rev ?? "?"}` : "—",
              " ",
              h(
                "a",
                {
                  href: withToken(`/api/store/${storeDirOf(a.path)}/owrt-manifest.json`),
                  class: "muted",
                  "aria-label": `Manifest of ${a.name}`,
                },
                "manifest",
              ),
            ),
          ),
        ),
  )
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * How far the card write to `device` has got, polled from the server while the write request is open:
 * what it is doing (writing, reading back) and the bytes done, as a progress bar and in words.
 */
function writingProgress(device) {
  const bar = h("progress", { "aria-label": "Card write progress" })
  // Announced once when it appears (the result is a live region), not at every update.
  const status = h("p", { "aria-live": "off" }, "Starting…")
  const element = h(
    "div",
    { class: "card" },
    h("p", {}, h("strong", {}, `Writing ${device}: do not remove the card.`)),
    bar,
    status,
  )
  let polling = true
  const show = (running) => {
    if (running.bytes === null || !running.total) {
      status.textContent = running.task ?? "Starting…"
      bar.removeAttribute("value")
      return
    }
    bar.max = running.total
    bar.value = running.bytes
    const percent = Math.floor((running.bytes / running.total) * 100)
    status.textContent = `${running.task}: ${formatBytes(running.bytes)} of ${formatBytes(running.total)} (${percent}%)`
  }
  void (async () => {
    while (polling) {
      try {
        const { flashes } = await api("/api/flash/progress")
        const running = flashes.find((f) => f.device === device)
        if (running && polling) show(running)
      } catch {
        // The answer to the write itself says what went wrong.
      }
      await sleep(250)
    }
  })()
  const stop = () => {
    polling = false
  }
  closeCurrent = stop
  return { element, stop }
}

async function flashPage(server) {
  if (!server.allowFlash) {
    return page(
      "Flash",
      null,
      h(
        "p",
        { class: "muted" },
        "Flashing is disabled on this server. Start it with owrt serve --allow-flash.",
      ),
    )
  }
  // Card images only (never sysupgrade, kernel or rootfs), each build's in the order owrt flash prefers.
  const [{ artifacts }, { devices }] = await Promise.all([
    api("/api/artifacts?card=true&limit=200"),
    api("/api/flash/devices"),
  ])
  const image = h(
    "select",
    { id: "flash-image" },
    artifacts.map((a) =>
      h(
        "option",
        { value: `${a.key}/${a.name}` },
        `${a.profile ?? "?"}@${a.rev ?? "?"} — ${a.name} (${[a.type, a.filesystem].filter(Boolean).join(", ")}, ${formatBytes(a.size)})`,
      ),
    ),
  )
  const device = h(
    "select",
    { id: "flash-device" },
    devices.map((d) =>
      h(
        "option",
        { value: d.path },
        `${d.path} — ${formatBytes(d.sizeBytes)}${d.model ? ` ${d.model}` : ""}${d.isLoop ? " (loop)" : ""}`,
      ),
    ),
  )
  const wipe = h("input", { type: "checkbox", id: "flash-wipe" })
  const result = h("div", { "aria-live": "polite" })
  const request = () => ({ source: image.value, device: device.value, wipe: wipe.checked })

  // The write repeats exactly the request that was planned, whatever the form shows by then.
  const confirmStep = (plan, planned) => {
    const typed = h("input", { id: "flash-confirm", autocomplete: "off", spellcheck: "false" })
    const go = h("button", { type: "button", class: "danger", disabled: true }, "Write the card")
    typed.addEventListener("input", () => {
      go.disabled = typed.value !== plan.device.path
    })
    go.addEventListener("click", async () => {
      go.disabled = true
      const writing = writingProgress(plan.device.path)
      result.replaceChildren(writing.element)
      try {
        const done = await api("/api/flash", {
          method: "POST",
          body: { ...planned, device: plan.device.path, confirm: typed.value },
        }).finally(writing.stop)
        result.replaceChildren(
          h(
            "div",
            { class: "card" },
            h(
              "p",
              {},
              badge("succeeded"),
              ` Written and ${done.verify === "full" ? "verified" : "not read back"}.`,
            ),
            h(
              "p",
              { class: "muted" },
              `${formatBytes(done.image.bytes)} to ${done.device.path}`,
              done.writeMs === undefined ? "" : `, written in ${formatDuration(done.writeMs)}`,
              done.verifyMs === undefined ? "" : `, read back in ${formatDuration(done.verifyMs)}`,
            ),
            h("p", { class: "hash" }, done.writtenSha256 ?? ""),
          ),
        )
      } catch (error) {
        result.replaceChildren(errorBox(error))
      }
    })
    return h(
      "div",
      { class: "card" },
      h("h2", {}, "Plan"),
      h(
        "ol",
        { class: "steps" },
        plan.steps.map((s) => h("li", {}, s)),
      ),
      h("label", { for: "flash-confirm" }, `Type the device path to confirm (${plan.device.path})`),
      typed,
      h("p", {}, go),
    )
  }

  const planButton = h(
    "button",
    {
      type: "button",
      disabled: devices.length === 0 || artifacts.length === 0,
      onclick: async () => {
        try {
          const planned = request()
          result.replaceChildren(
            confirmStep(await api("/api/flash", { method: "POST", body: planned }), planned),
          )
        } catch (error) {
          result.replaceChildren(errorBox(error))
        }
      },
    },
    "Plan",
  )
  return page(
    "Flash a card",
    "Only devices that pass the safety checks and are listed in flash.allowDevices are offered. Nothing is written until you type the device path.",
    h(
      "div",
      { class: "card" },
      h("label", { for: "flash-image" }, "Image"),
      artifacts.length === 0
        ? h(
            "p",
            { class: "muted" },
            "No card image in the store: realize a profile whose target makes an SD-card, combined or factory image (a sysupgrade image is for a running device, not a card).",
          )
        : image,
      h("label", { for: "flash-device" }, "Device"),
      device,
      devices.length === 0 ? h("p", { class: "muted" }, "No eligible device.") : null,
      h("label", { class: "row" }, wipe, "Wipe old partition tables first"),
      h("p", {}, planButton),
    ),
    result,
  )
}

function tokenPage(retry) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off" })
  return page(
    "Access token",
    "This server needs the token it was started with (owrt serve --token).",
    h(
      "form",
      {
        class: "card",
        onsubmit: (event) => {
          event.preventDefault()
          sessionStorage.setItem(tokenKey, input.value)
          retry()
        },
      },
      h("label", { for: "token" }, "Token"),
      input,
      h("p", {}, h("button", { type: "submit" }, "Continue")),
    ),
  )
}

// ---- router ----

let server = null

async function render() {
  closeCurrent()
  closeCurrent = () => {}
  const main = document.getElementById("main")
  const [, section = "profiles", id] = (location.hash || "#/profiles").split("/").map(decodeURIComponent)
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page")
    else link.removeAttribute("aria-current")
  }
  try {
    if (!server) {
      server = await api("/api/server")
      document.getElementById("version").textContent = `v${server.version}`
      document.getElementById("flash-nav").hidden = !server.allowFlash
    }
    const pages = {
      profiles: () => (id ? profilePage(id) : profilesPage()),
      jobs: () => (id ? jobPage(id) : jobsPage()),
      builds: () => (id ? buildPage(id) : buildsPage()),
      artifacts: () => artifactsPage(),
      flash: () => flashPage(server),
    }
    const content = await (pages[section] ?? pages.profiles)()
    main.replaceChildren(content)
    document.title = `${main.querySelector("h1")?.textContent ?? "owrt"} · owrt`
  } catch (error) {
    if (error.status === 401) main.replaceChildren(tokenPage(render))
    else main.replaceChildren(page("Something went wrong", null, errorBox(error)))
  }
}

window.addEventListener("hashchange", render)
render()
