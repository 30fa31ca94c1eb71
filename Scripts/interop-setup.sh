#!/usr/bin/env bash
# Creates .venv with the interop peers nobody here wrote (py-libp2p, the real Lattica) and numpy
# for the benchmark anchors. Idempotent; tests that need a peer skip with a message if it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
want=(numpy)
for pkg in "${want[@]}"; do
  "$venv/bin/python" -c "import $pkg" 2>/dev/null || "$venv/bin/pip" install -q "$pkg"
done
