// bench/cache: the shared cache, side by side in one run against a real registry (Debian's docker-registry):
// 1. `owrt realize` of a profile that is cached remotely, on a fresh store, against the same realize
//    building locally (fetching the builder from the mirror and running make): the speed-up.
// 2. Substituting a large tree — the benchmark-sized Image Builder (~220 MB, ~15,000 files) through
//    `owrt builders ensure` with the cache configured — against a bare `curl | tar -x` of the same blobs
//    from the same registry. owrt also checks the signature, both blob digests, the tar's headers and the
//    unpacked tree's digest, and publishes the tree read-only with its listing.
// 3. The target's case, image-sized nodes: `owrt cache pull` of a Raspberry Pi OS profile (the base image and
//    the customised image, ~109 MiB each, and the compressed artifacts) on a fresh store, against a bare
//    `curl` of the same blobs into files. Target: ≤ 1.3× the bare pull. Beside them, the least a Node.js
//    client does for the same blobs (bench/lib/nodePull.mjs: download, SHA-256, write; no signature, no
//    unpack, no store): on loopback curl moves ~800 MB/s and Node's own start and HTTP client are most of
//    the gap. So the same pair is also timed over a link of OWRT_BENCH_LINK_MBIT (default 1000) Mbit/s and
//    OWRT_BENCH_LINK_RTT (default 2) ms round trip (bench/lib/shapedLink.ts, a shaping proxy in front of the
//    registry), as a registry on another machine is reached.
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { generateKeyPair } from "../src/cache/signing.js"
import { startRegistry } from "../tests/helpers/registry.js"
import { median } from "./lib/measure.js"
import {
  makeBenchProject,
  owrtOk,
  repoRoot,
  scratchDir,
  seconds,
  startMirror,
  startShapedLink,
  time,
} from "./lib/project.js"

const rounds = Number(process.argv[2] ?? 3)
const linkMbit = Number(process.env["OWRT_BENCH_LINK_MBIT"] ?? 1000)
const linkRtt = Number(process.env["OWRT_BENCH_LINK_RTT"] ?? 2)
process.stderr.write("building the large fixture if needed (once per fixture change, ~15 s)…\n")
const mirror = await startMirror(true)
const registry = await startRegistry()
let stopLink: (() => Promise<void>) | undefined
try {
  const keys = generateKeyPair("bench-1")
  const substituter = `oci://${registry.host}/owrt/bench`
  const profile = 'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [luci]\n'
  const pi = [
    "kind: raspios",
    "base:",
    "  os: Raspberry Pi OS Lite (64-bit)",
    '  release_date: "2025-05-13"',
    "hostname: pi-bench",
    "users:",
    "  - name: bench",
    '    password_hash: "$6$owrtdemo$kAnvyz0igbym3WbXFDJWGtR7.hgkyfz/7R0iY4m/I/I.xlOGM3hIab5tJ4PyRC.xmKQ/WwoTeQeN2TnPAL3bG/"',
    "",
  ].join("\n")
  const project = makeBenchProject("cache", { "profiles/ap.yaml": profile, "profiles/pi.yaml": pi })
  writeFileSync(join(project.dir, "bench-1.sec"), `${keys.secret}\n`)
  const base = {
    OWRT_UPSTREAM: mirror.url,
    OWRT_KEYRING: mirror.keyring,
    OWRT_OS_LIST: `${mirror.url}/raspios/os_list_imagingutility_v4.json`,
  }
  const cached = {
    ...base,
    OWRT_SUBSTITUTERS: substituter,
    OWRT_TRUSTED_KEYS: keys.public,
    OWRT_SIGNING_KEY: `file:${join(project.dir, "bench-1.sec")}`,
  }
  // Fill the registry: a realize with push (the small profile) and the large builder.
  const seed = scratchDir("cache-seed")
  owrtOk(["realize", "ap", "pi", "--store", join(seed, "store")], project.dir, {
    ...cached,
    OWRT_CACHE_PUSH: "1",
  })
  const release = "24.10.2"
  const target = "mediatek/filogic"
  owrtOk(["builders", "ensure", release, target, "--store", join(seed, "store")], project.dir, {
    ...cached,
    OWRT_CACHE_PUSH: "1",
  })

  // The builder node's blobs, for the bare pull.
  const listing = JSON.parse(
    owrtOk(["cache", "ls", "--json", "--store", join(seed, "store")], project.dir, cached),
  ) as { registries: Array<{ entries: Array<{ key: string; kind: string; size: number }> }> }
  const builderEntry = (listing.registries[0]?.entries ?? [])
    .filter((e) => e.kind === "fetch-builder")
    .sort((a, b) => b.size - a.size)[0]
  if (!builderEntry) throw new Error("the large builder was not pushed")
  const manifest = JSON.parse(
    execFileSync("curl", [
      "-s",
      "-H",
      "accept: application/vnd.oci.image.manifest.v1+json",
      `${registry.url}/v2/owrt/bench/manifests/${builderEntry.key}`,
    ]).toString("utf8"),
  ) as { layers: Array<{ digest: string; size: number }> }
  const blobUrls = manifest.layers.map((l) => `${registry.url}/v2/owrt/bench/blobs/${l.digest}`)
  // The Raspberry Pi profile's nodes and their blobs.
  const piKeys = Object.values(
    (
      JSON.parse(
        readFileSync(
          join(
            JSON.parse(
              owrtOk(["store", "path", "pi", "--json", "--store", join(seed, "store")], project.dir, cached),
            ).path,
            "owrt-manifest.json",
          ),
          "utf8",
        ),
      ) as { keys: Record<string, string> }
    ).keys,
  )
  const piBlobs: Array<{ digest: string; size: number }> = []
  for (const key of piKeys.filter((k) => k !== "")) {
    const layers = (
      JSON.parse(
        execFileSync("curl", [
          "-s",
          "-H",
          "accept: application/vnd.oci.image.manifest.v1+json",
          `${registry.url}/v2/owrt/bench/manifests/${key}`,
        ]).toString("utf8"),
      ) as { layers: Array<{ digest: string; size: number }> }
    ).layers
    piBlobs.push(...layers)
  }
  const piSize = piBlobs.reduce((sum, l) => sum + l.size, 0)
  rmSync(seed, { recursive: true, force: true })
  const link = await startShapedLink(registry.host, linkMbit, linkRtt)
  stopLink = link.close
  const linked = { ...cached, OWRT_SUBSTITUTERS: `oci://${link.host}/owrt/bench` }
  const curlInto = (base: string, dir: string) => {
    mkdirSync(dir)
    execFileSync("curl", [
      "-s",
      "--fail",
      ...piBlobs.flatMap((l, i) => [`${base}/v2/owrt/bench/blobs/${l.digest}`, "-o", join(dir, String(i))]),
    ])
  }

  const local: Array<number> = []
  const remote: Array<number> = []
  const curl: Array<number> = []
  const pull: Array<number> = []
  const piCurl: Array<number> = []
  const piPull: Array<number> = []
  const piNode: Array<number> = []
  const linkCurl: Array<number> = []
  const linkPull: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const scratch = scratchDir("cache")
    const runs = [
      () =>
        local.push(
          time(() => owrtOk(["realize", "ap", "--store", join(scratch, "local")], project.dir, base)),
        ),
      () =>
        remote.push(
          time(() => owrtOk(["realize", "ap", "--store", join(scratch, "remote")], project.dir, cached)),
        ),
      () => {
        // The bare pull of a tree: its tar unpacked by GNU tar as it downloads, the metadata blob read.
        const dir = join(scratch, "curl-tar")
        mkdirSync(dir)
        const [tree, ...rest] = blobUrls
        curl.push(
          time(() =>
            execFileSync("bash", [
              "-o",
              "pipefail",
              "-c",
              `curl -s --fail '${tree}' | tar -xf - -C '${dir}' && curl -s --fail ${rest.map((u) => `'${u}' -o /dev/null`).join(" ")}`,
            ]),
          ),
        )
      },
      () =>
        pull.push(
          time(() =>
            owrtOk(
              ["builders", "ensure", release, target, "--store", join(scratch, "pull")],
              project.dir,
              cached,
            ),
          ),
        ),
      () => piCurl.push(time(() => curlInto(registry.url, join(scratch, "curl-pi")))),
      () => {
        const dir = join(scratch, "node-pi")
        mkdirSync(dir)
        piNode.push(
          time(() =>
            execFileSync(process.execPath, [
              join(repoRoot, "bench", "lib", "nodePull.mjs"),
              dir,
              ...piBlobs.map((l) => `${registry.url}/v2/owrt/bench/blobs/${l.digest}@${l.digest}`),
            ]),
          ),
        )
      },
      () => linkCurl.push(time(() => curlInto(`http://${link.host}`, join(scratch, "link-curl-pi")))),
      () =>
        linkPull.push(
          time(() =>
            owrtOk(["cache", "pull", "pi", "--store", join(scratch, "link-pull-pi")], project.dir, linked),
          ),
        ),
      () =>
        piPull.push(
          time(() =>
            owrtOk(["cache", "pull", "pi", "--store", join(scratch, "pull-pi")], project.dir, cached),
          ),
        ),
    ]
    for (const run of round % 2 === 0 ? runs : [...runs].reverse()) run()
    rmSync(scratch, { recursive: true, force: true })
  }
  const size = manifest.layers.reduce((sum, l) => sum + l.size, 0)
  console.log(`\ncache (${rounds} rounds, median; registry ${registry.url})`)
  console.log(`  realize ap, fresh store, building here        ${seconds(median(local))}`)
  console.log(
    `  realize ap, fresh store, substituted          ${seconds(median(remote))}  speed-up ${(median(local) / median(remote)).toFixed(1)}×`,
  )
  console.log(
    `  curl | tar -x of the builder node (${(size / 1e6).toFixed(0)} MB)  ${seconds(median(curl))}  1.00×`,
  )
  const ratio = median(pull) / median(curl)
  console.log(
    `  builders ensure, substituted (verify+unpack)  ${seconds(median(pull))}  ${ratio.toFixed(2)}×`,
  )
  console.log(
    `  curl of a Raspberry Pi profile's blobs into files (${piBlobs.length}, ${(piSize / 1e6).toFixed(0)} MB)  ${seconds(median(piCurl))}  1.00×`,
  )
  const piRatio = median(piPull) / median(piCurl)
  console.log(
    `  cache pull of that profile (fresh store)      ${seconds(median(piPull))}  ${piRatio.toFixed(2)}×  target ≤ 1.3×  ${piRatio <= 1.3 ? "met" : "MISSED"}`,
  )
  console.log(
    `  the same blobs by a minimal Node client        ${seconds(median(piNode))}  ${(median(piNode) / median(piCurl)).toFixed(2)}×  (download, SHA-256, write: nothing else)`,
  )
  console.log(`  over a ${linkMbit} Mbit/s link, ${linkRtt} ms round trip (bench/lib/shapedLink.ts):`)
  console.log(`  curl of the profile's blobs into files         ${seconds(median(linkCurl))}  1.00×`)
  const linkRatio = median(linkPull) / median(linkCurl)
  console.log(
    `  cache pull of that profile (fresh store)      ${seconds(median(linkPull))}  ${linkRatio.toFixed(2)}×  target ≤ 1.3×  ${linkRatio <= 1.3 ? "met" : "MISSED"}`,
  )
  project.cleanup()
} finally {
  await stopLink?.()
  await registry.stop()
  await mirror.close()
}
