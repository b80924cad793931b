#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for owrt: the system tools builds and tests use, then npm packages
# (which also bundles the CLI, so `npx owrt` works from here on).
set -euo pipefail
cd "$(dirname "$0")/.."

# tool -> Debian package
declare -A tools=(
  [git]=git [make]=make [mksquashfs]=squashfs-tools [unsquashfs]=squashfs-tools [sfdisk]=fdisk
  [mkfs.ext4]=e2fsprogs [debugfs]=e2fsprogs [zstd]=zstd [xz]=xz-utils [gzip]=gzip [tar]=tar
  [curl]=curl [losetup]=mount [partx]=util-linux [wipefs]=util-linux [blockdev]=util-linux
  [chromium]=chromium
  # Raspberry Pi OS images are customised without root or loop devices: mtools for the FAT boot partition,
  # debugfs/e2fsck (e2fsprogs above) for the ext4 root; mkfs.vfat builds the test mirror's stand-in image.
  [mcopy]=mtools [mtype]=mtools [mkfs.vfat]=dosfstools
  # The tests check owrt's .bmap files with bmaptool itself.
  [bmaptool]=bmap-tools
  # The shared-cache tests start a real OCI registry (Debian's distribution/registry) with htpasswd auth.
  [docker-registry]=docker-registry [htpasswd]=apache2-utils
  # The OTA tests publish release notices through a real MQTT broker.
  [mosquitto]=mosquitto
  # The Raspberry Pi firewall rules owrt writes are checked with nft itself.
  [nft]=nftables
)
missing=()
for tool in "${!tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${tools[$tool]}")
done
# The build-farm tests start a real PostgreSQL (initdb + postgres in a temp dir); Debian keeps its binaries
# off PATH, in /usr/lib/postgresql/<version>/bin.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# The web UI's browser tests take screenshots for people to read: they need a font.
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
if ((${#missing[@]} > 0)); then
  mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "setup: installing Debian packages: ${packages[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# `npm ci` cannot use this registry's lockfile; `npm install` honours it and the allowScripts block.
npm install --no-audit --no-fund --loglevel=error
