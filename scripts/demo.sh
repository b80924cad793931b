#!/usr/bin/env bash
# The main job, end to end on this machine: check the example profiles and show what they resolve to.
set -euo pipefail
cd "$(dirname "$0")/.."
owrt() { node bin/owrt.cjs "$@"; }
owrt profiles validate
echo
owrt profiles list
echo
owrt profiles show home-ap
