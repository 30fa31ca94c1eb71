#!/usr/bin/env bash
# The Python client's example in one command: 4 latticad and 4 PyTorch trainers on loopback, one
# of them an attacker (its daemon answers with sign-flipped models), train an MLP on the digits
# fixture; prints the honest trainers' accuracy beside a single-process baseline on the union of
# their data and beside a control run of the honest trainers alone. Options go to the example:
#   Scripts/torch-example.sh [--rounds 30] [--inner-steps 10] [--attack sign-flip|ALIE|gaussian|IPM] [--no-control]
# Binaries from $LATTICA_BIN_DIR, else .build/release (built when missing); the venv is Scripts/python-test.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
export LATTICA_BIN_DIR="${LATTICA_BIN_DIR:-$PWD/.build/release}"
if [ ! -x "$LATTICA_BIN_DIR/latticad" ]; then
  echo "torch-example: building latticad (release)..."
  swift build -c release --product latticad >/dev/null
fi
Scripts/python-test.sh --setup-only
export LATTICA_FIXTURES="${LATTICA_FIXTURES:-$PWD/Tests/Fixtures/learning}"
exec "${LATTICA_PY_VENV:-$PWD/.venv-python}/bin/python" -m latticaswift.example "$@"
