#!/usr/bin/env bash
# Runs every test of Lattica-Swift from a fresh clone on Debian 12: installs what is missing,
# checks the layering rule, builds (release, with testing enabled, so the simulations run at
# full speed), and runs `swift test`. Extra arguments go to `swift test` (e.g. --filter DHT).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
Scripts/interop-setup.sh
Scripts/check-layering.sh
flags=(-c release -Xswiftc -enable-testing)
swift build "${flags[@]}" --build-tests
# Integration tests start the real binaries from here.
export LATTICA_BIN_DIR="$(swift build "${flags[@]}" --show-bin-path)"
swift test "${flags[@]}" --skip-build "$@"
