#!/usr/bin/env bash
# Installs what building and running Lattica-Swift needs on Debian 12 (idempotent; root or sudo).
# Swift itself must already be on the PATH.
set -euo pipefail
pkgs=(libuv1-dev libsodium-dev libsqlite3-dev libopenblas-dev pkg-config iproute2 iptables python3-venv)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift is not on the PATH (need Swift 6.x)" >&2; exit 1; }
