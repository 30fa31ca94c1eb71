#!/usr/bin/env bash
# The Python client's tests: makes or updates the venv (default .venv-python; $LATTICA_PY_VENV),
# installs the CPU build of torch (a local wheel in /opt/wheels when there is one, else PyPI's
# torch, which runs on CPU), numpy, pytest and the package from Sources/python, then runs
# Tests/python against real daemons. Binaries from $LATTICA_BIN_DIR (default .build/release).
#   Scripts/python-test.sh [--setup-only | --no-setup] [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${LATTICA_PY_VENV:-$PWD/.venv-python}"
setup_only=0 no_setup=0
if [ "${1:-}" = "--setup-only" ]; then setup_only=1; shift; fi
# --no-setup: the venv is ready (made by --setup-only outside a network namespace with no route out).
if [ "${1:-}" = "--no-setup" ]; then no_setup=1; shift; fi
py="${PYTHON:-python3}"
if [ "$no_setup" = 0 ]; then
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  wheel=$(ls /opt/wheels/torch-*cpu*-cp$("$venv/bin/python" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')-*.whl 2>/dev/null | head -1 || true)
  echo "python-test: installing torch (${wheel:-from PyPI}) into $venv"
  if [ -n "$wheel" ]; then "${pip[@]}" install "$wheel"; else "${pip[@]}" install torch; fi
fi
"$venv/bin/python" -c 'import numpy, pytest' 2>/dev/null || "${pip[@]}" install numpy pytest
"${pip[@]}" install --no-deps --force-reinstall ./Sources/python
rm -rf Sources/python/build Sources/python/*.egg-info
fi
[ "$setup_only" = 1 ] && exit 0
export LATTICA_BIN_DIR="${LATTICA_BIN_DIR:-$PWD/.build/release}"
for b in latticad lattica; do
  [ -x "$LATTICA_BIN_DIR/$b" ] || { echo "python-test: $LATTICA_BIN_DIR/$b is missing (swift build -c release, or set LATTICA_BIN_DIR)" >&2; exit 1; }
done
export LATTICA_FIXTURES="${LATTICA_FIXTURES:-$PWD/Tests/Fixtures/learning}"
cd Tests/python  # not the checkout's Sources/python on sys.path: the installed package is tested
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" .
