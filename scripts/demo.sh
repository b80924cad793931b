#!/usr/bin/env bash
# The main job, end to end on this machine: start the project's stand-in OpenWrt mirror on 127.0.0.1,
# realize the example profiles against it (fetch + verify the Image Builders, stage overlays, make the
# images, collect and verify the artifacts), then realize again to show that nothing is rebuilt.
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

owrt profiles validate
echo
owrt realize home-ap x86-router --upstream "$upstream" --keyring "$keyring"
echo
echo "again (everything is reused):"
time owrt realize home-ap x86-router --upstream "$upstream" --keyring "$keyring"
echo
owrt plan --all --upstream "$upstream" --keyring "$keyring"
