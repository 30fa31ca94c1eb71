#!/usr/bin/env bash
# Creates .venv with the interop peers nobody here wrote (py-libp2p, the real Lattica) and numpy
# for the benchmark anchors. Idempotent; tests that need a peer skip with a message if it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
want=(numpy libp2p lattica)
for pkg in "${want[@]}"; do
  "$venv/bin/pip" show -q "$pkg" >/dev/null 2>&1 || "$venv/bin/pip" install -q "$pkg"
done
