#!/usr/bin/env bash
# Benchmark anchors between real Lattica nodes (rust-libp2p inside) on loopback, inside a private
# network namespace (Lattica sends STUN to public servers otherwise). Prints medians.
#   Scripts/interop/anchors.sh [--rounds 3] [--rr-n 5000] [--window-n 20000] [--windows 100,1000]
#                              [--size 64] [--stream-bytes 268435456] [--dht-n 50]
# ANCHORS_VERBOSE=1 shows the nodes' logs. Every process is torn down with the namespace.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py="${INTEROP_PYTHON:-/work/main/.venv/bin/python}"
if [ ! -x "$py" ] || ! "$py" -c 'import lattica' 2>/dev/null; then
  echo "anchors: no Python with lattica (run Scripts/interop-setup.sh)" >&2
  exit 77
fi
exec "$here/netns-run.sh" "$py" "$here/anchors.py" "$@"
