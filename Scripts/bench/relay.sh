#!/usr/bin/env bash
# Round trip and throughput over a Circuit Relay v2 circuit against a direct connection, in the
# same run: daemons in one process on loopback (R the relay, A the target, B through R, C direct),
# the same API (Swarm.request echo; one raw stream pumped), payload and size on both rows.
# Runs RUNS times (default 5) and prints the medians, relayed / direct.
# Usage: Scripts/bench/relay.sh [round_trips] [stream_MiB]
set -euo pipefail
cd "$(dirname "$0")/../.."
rt=${1:-2000}
mib=${2:-64}
runs=${RUNS:-5}
if [ -z "${LATTICA_BIN_DIR:-}" ]; then
    swift build -c release --product lattica-bench >/dev/null
    LATTICA_BIN_DIR="$(swift build -c release --show-bin-path)"
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for _ in $(seq "$runs"); do "$LATTICA_BIN_DIR/lattica-bench" relay --round-trips "$rt" --stream-mi-b "$mib" 2>/dev/null >>"$out"; done
median() {
    awk -v m="$1" '$1 == m { print $2 }' "$out" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf "%-40s %12s %12s %9s\n" "metric (median of $runs)" direct relayed relayed/direct
for m in rtt_us_p50_request_64B rtt_us_p99_request_64B "stream_MBps_one_raw_stream_${mib}MiB"; do
    d=$(median "${m}_direct"); r=$(median "${m}_relayed")
    printf "%-40s %12.1f %12.1f %9.2f\n" "$m" "$d" "$r" "$(echo "$r / $d" | bc -l)"
done
