#!/usr/bin/env bash
# The Python client's soak: 4 latticad + 4 PyTorch trainers (one attacker) train for an hour; the
# RSS of every process is sampled each minute; prints the RSS slope per process (MiB/h).
#   Scripts/python-soak.sh [--minutes 60] [--out bench-out/soak-python.jsonl]
# Binaries from $LATTICA_BIN_DIR (default .build/release); the venv is Scripts/python-test.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${LATTICA_PY_VENV:-$PWD/.venv-python}"
[ -x "$venv/bin/python" ] || Scripts/python-test.sh --setup-only
export LATTICA_BIN_DIR="${LATTICA_BIN_DIR:-$PWD/.build/release}"
mkdir -p bench-out
args=("$@")
[[ " $* " == *" --out "* ]] || args+=(--out bench-out/soak-python.jsonl)
exec nice -n 10 "$venv/bin/python" -m latticaswift.soak "${args[@]}"
