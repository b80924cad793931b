// bench/raspi: customising a Raspberry Pi OS image — `owrt realize --rebuild` of a raspios profile (a private
// copy of the stored base edited through mtools and debugfs, then .img.xz and .bmap) against the same edits
// by hand as root with loop mounts (`cp`, `losetup -P`, `mount`, write the files, `umount`, `losetup -d`),
// with and without the same xz compression, on the stand-in base image of the test mirror. Then the
// realized image flashed to a loop device: with its block map (only the mapped blocks written and read back)
// against `--no-bmap` (every block). Root and loop devices are needed; without them the benchmark says so
// and stops.
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { median } from "./lib/measure.js"
import { makeBenchProject, owrtOk, scratchDir, seconds, startMirror, time } from "./lib/project.js"

const rounds = Number(process.argv[2] ?? 5)
if (process.getuid?.() !== 0) {
  console.log("raspi: skipped (the loop-mount baseline needs root)")
  process.exit(0)
}
try {
  execFileSync("losetup", ["-f"], { stdio: "ignore" })
} catch {
  console.log("raspi: skipped (no free loop device for the baseline)")
  process.exit(0)
}

const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG93cnQtYmVuY2gta2V5LW5vdC1hLXJlYWwtb25l bench@example"
const wg =
  "[Interface]\nPrivateKey = YmVuY2gtb25seS1rZXktZG8tbm90LXVzZS1hbnl3aGVyZTA=\nAddress = 10.9.0.2/32\n"
const mirror = await startMirror()
try {
  const osList = `${mirror.url}/raspios/os_list_imagingutility_v4.json`
  const project = makeBenchProject("raspi", {
    "profiles/pi.yaml": [
      "kind: raspios",
      "base:",
      "  os: Raspberry Pi OS Lite (64-bit)",
      '  release_date: "2025-05-13"',
      "hostname: bench-pi",
      "users:",
      "  - name: bench",
      `    ssh_authorized_keys: ["${key}"]`,
      "ssh: { enabled: true }",
      "secrets: { wg: env:BENCH_WG }",
      "wireguard: { config_secret: wg }",
      "files:",
      "  - { path: /etc/bench/id, content: '2' }",
      "",
    ].join("\n"),
  })
  const env = { OWRT_OS_LIST: osList, BENCH_WG: wg }
  // The base image is fetched once; every round customises and collects again.
  const realized = JSON.parse(owrtOk(["realize", "pi", "--json"], project.dir, env)) as {
    results: Array<{ storePath: string }>
  }
  const store = join(realized.results[0]?.storePath ?? "", "..")
  const baseDir = readdirSync(store).find((name) => name.includes("-raspios-base-")) ?? ""
  const base = join(store, baseDir, "base.img")

  const byHand = (scratch: string, compress: boolean) => {
    const image = join(scratch, "work.img")
    const inputs = join(scratch, "in")
    mkdirSync(inputs, { recursive: true })
    writeFileSync(join(inputs, "wg0.conf"), wg)
    writeFileSync(join(inputs, "authorized_keys"), `${key}\n`)
    const script = `
      set -e
      cp --reflink=auto --sparse=always "$1" "$2"
      loop=$(losetup -P -f --show "$2")
      made=""
      trap 'umount -q "$3/boot" "$3/root" 2>/dev/null || true; losetup -d "$loop"; [ -z "$made" ] || rm -f $made' EXIT
      # Without udev (a container) the partition nodes are made from sysfs.
      name=$(basename "$loop")
      partx -a "$loop" 2>/dev/null || true
      for i in $(seq 50); do [ -e "/sys/block/$name/\${name}p2/dev" ] && break; sleep 0.1; done
      for p in 1 2; do
        if [ ! -b "\${loop}p$p" ]; then
          mknod "\${loop}p$p" b $(tr ':' ' ' < "/sys/block/$name/\${name}p$p/dev"); made="$made \${loop}p$p"
        fi
      done
      mkdir -p "$3/boot" "$3/root"
      mount "\${loop}p2" "$3/root"
      echo 'bench:!' > "$3/userconf.txt"
      if grep -qw vfat /proc/filesystems; then
        mount "\${loop}p1" "$3/boot"; cp "$3/userconf.txt" "$3/boot/"; umount "$3/boot"
      else
        # This kernel has no vfat: the boot partition's one file goes in with mcopy (as owrt writes it).
        MTOOLS_SKIP_CHECK=1 mcopy -o -i "\${loop}p1" "$3/userconf.txt" :: 2>"$3/mcopy.err" || { cat "$3/mcopy.err" >&2; exit 1; }
      fi
      echo bench-pi > "$3/root/etc/hostname"
      sed -i 's/^127.0.1.1.*/127.0.1.1\\tbench-pi/' "$3/root/etc/hosts"
      install -d -m 700 -o 1000 -g 1000 "$3/root/home/pi/.ssh"
      install -m 600 -o 1000 -g 1000 "$4/authorized_keys" "$3/root/home/pi/.ssh/authorized_keys"
      ln -sf /lib/systemd/system/ssh.service "$3/root/etc/systemd/system/multi-user.target.wants/ssh.service"
      ln -sf /lib/systemd/system/ssh.service "$3/root/etc/systemd/system/sshd.service"
      install -d -m 700 "$3/root/etc/wireguard"
      install -m 600 "$4/wg0.conf" "$3/root/etc/wireguard/wg0.conf"
      ln -sf /lib/systemd/system/wg-quick@.service "$3/root/etc/systemd/system/multi-user.target.wants/wg-quick@wg0.service"
      install -d "$3/root/etc/bench"; printf 2 > "$3/root/etc/bench/id"
      echo '{"owrt":1}' > "$3/root/etc/owrt-build"
      umount "$3/root"
      ${compress ? 'xz -6 -T2 --block-size=16MiB --no-adjust -c "$2" > "$2.xz"' : ""}
    `
    execFileSync("sh", ["-c", script, "sh", base, image, join(scratch, "mnt"), inputs], { stdio: "inherit" })
  }

  const hand: Array<number> = []
  const handXz: Array<number> = []
  const ours: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const scratch = scratchDir("raspi")
    const steps = [
      () => hand.push(time(() => byHand(join(scratch, "a"), false))),
      () => handXz.push(time(() => byHand(join(scratch, "b"), true))),
      () => ours.push(time(() => owrtOk(["realize", "pi", "--rebuild"], project.dir, env))),
    ]
    for (const step of round % 2 === 0 ? steps : [...steps].reverse()) step()
    rmSync(scratch, { recursive: true, force: true })
  }
  const a = median(hand)
  const b = median(handXz)
  const o = median(ours)
  console.log(`\nraspi: customise the stand-in base image (~108 MiB) (${rounds} rounds, median)`)
  console.log(`  by hand, loop mounts as root (baseline)      ${seconds(a)}  1.00×`)
  console.log(`  by hand, then xz as owrt compresses           ${seconds(b)}  ${(b / a).toFixed(2)}×`)
  console.log(
    `  owrt realize --rebuild (rootless, .xz, .bmap)  ${seconds(o)}  ${(o / a).toFixed(2)}× (${(o / b).toFixed(2)}× of by hand + xz)`,
  )

  // Flashing the realized .img.xz (mostly empty: a stand-in of a fresh Raspberry Pi OS image) both ways.
  const artifacts = JSON.parse(owrtOk(["realize", "pi", "--json"], project.dir, env)) as {
    results: Array<{ artifacts: Array<{ name: string; path: string }> }>
  }
  const xz = artifacts.results[0]?.artifacts.find((a) => a.name.endsWith(".img.xz"))?.path ?? ""
  const card = join(project.dir, "card.img")
  execFileSync("truncate", ["-s", "256M", card])
  const device = execFileSync("losetup", ["-f", "--show", card], { encoding: "utf8" }).trim()
  try {
    const full: Array<number> = []
    const mapped: Array<number> = []
    let plan = { mappedBytes: 0, bytes: 0 }
    for (let round = 0; round < rounds; round++) {
      const steps = [
        () =>
          full.push(
            time(() =>
              owrtOk(["flash", xz, device, "--allow-loop", "--force", "--no-bmap"], project.dir, env),
            ),
          ),
        () =>
          mapped.push(
            time(() => {
              const report = JSON.parse(
                owrtOk(["flash", xz, device, "--allow-loop", "--force", "--json"], project.dir, env),
              ) as { image: { bytes: number; bmap?: { mappedBytes: number } } }
              plan = { mappedBytes: report.image.bmap?.mappedBytes ?? 0, bytes: report.image.bytes }
            }),
          ),
      ]
      for (const step of round % 2 === 0 ? steps : [...steps].reverse()) step()
    }
    const f = median(full)
    const m = median(mapped)
    console.log(
      `\nraspi: flash the realized image (${(plan.bytes / 2 ** 20).toFixed(0)} MiB, ${(plan.mappedBytes / 2 ** 20).toFixed(1)} MiB mapped) to a loop device, write + verify (${rounds} rounds, median)`,
    )
    console.log(`  owrt flash --no-bmap (every block, baseline)  ${seconds(f)}  1.00×`)
    console.log(`  owrt flash with the block map                 ${seconds(m)}  ${(m / f).toFixed(2)}×`)
  } finally {
    execFileSync("losetup", ["-d", device])
  }
  project.cleanup()
} finally {
  await mirror.close()
}
