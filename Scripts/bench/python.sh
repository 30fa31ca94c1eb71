#!/usr/bin/env bash
# Benchmarks of the Python client (latticaswift.bench): hand-off per outer step for a 100 MB model
# (target <= 50 ms) and torch training throughput with the wrapper against plain PyTorch
# (target >= 95% with overlap on); medians over repeated runs, with ratios. OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE are unset for both sides. Options go to the benchmark (--repeats 3, --steps 300, ...).
# Binaries from $LATTICA_BIN_DIR (default .build/release); the venv is Scripts/python-test.sh's.
set -euo pipefail
cd "$(dirname "$0")/../.."
export LATTICA_BIN_DIR="${LATTICA_BIN_DIR:-$PWD/.build/release}"
Scripts/python-test.sh --setup-only
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
mkdir -p bench-out
exec nice -n 10 "${LATTICA_PY_VENV:-$PWD/.venv-python}/bin/python" -m latticaswift.bench --json bench-out/python.json "$@"
