#!/usr/bin/env bash
# The main job, end to end on this machine: start the project's stand-in OpenWrt mirror on 127.0.0.1,
# realize the example profiles against it (fetch + verify the Image Builders, stage overlays, make the
# images, collect and verify the artifacts) and a Raspberry Pi OS profile against the mirror's stand-in base
# image (customised without root or loop mounts), then realize again to show that nothing is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
owrt() { node bin/owrt.cjs "$@"; }

log=$(mktemp)
# In its own process group, so that stopping it stops tsx's child too.
setsid npx --no-install tsx scripts/test-mirror.ts --port 0 >"$log" 2>&1 &
mirror=$!
trap 'kill -- -"$mirror" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
  grep -q '^keyring: ' "$log" && break
  kill -0 "$mirror" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
upstream=$(sed -n 's/^upstream: //p' "$log")
keyring=$(sed -n 's/^keyring: //p' "$log")
echo "stand-in mirror: $upstream (keyring $keyring)"
echo
# The Raspberry Pi OS list of the mirror, and the demo's secrets (values by reference, never in profiles).
export OWRT_OS_LIST="$upstream/raspios/os_list_imagingutility_v4.json"
export HIVE_WIFI_PSK="demo-hive-passphrase"
export HIVE_WG0_CONF=$'[Interface]\nPrivateKey = ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWFueXdoZXJlMA==\nAddress = 10.9.0.17/32\n'

owrt profiles validate
echo
owrt realize home-ap x86-router sensor-hive-17 --upstream "$upstream" --keyring "$keyring"
echo
echo "again (everything is reused):"
time owrt realize home-ap x86-router sensor-hive-17 --upstream "$upstream" --keyring "$keyring"
echo
owrt plan --all --upstream "$upstream" --keyring "$keyring"
