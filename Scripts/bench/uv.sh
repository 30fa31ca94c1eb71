#!/usr/bin/env bash
# Benchmarks the libuv shell against plain C on libuv: loopback TCP throughput through one
# connection and the median UDP echo round trip, both with client and server on one loop.
# Builds `lattica-bench` in release, compiles Scripts/bench/uv_baseline.c with gcc -O2, runs each
# RUNS times (default 5) alternately, prints the medians side by side and Swift relative to C.
# Target: Swift within 20% of raw libuv. Usage: Scripts/bench/uv.sh [tcp_bytes] [udp_count]
set -euo pipefail
cd "$(dirname "$0")/../.."
tcp_bytes=${1:-1073741824}
udp_count=${2:-20000}
runs=${RUNS:-5}

swift build -c release --product lattica-bench >/dev/null
bin="$(swift build -c release --show-bin-path)/lattica-bench"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
gcc -O2 -Wall -o "$out/uv_baseline" Scripts/bench/uv_baseline.c $(pkg-config --cflags --libs libuv)

for i in $(seq "$runs"); do
    "$out/uv_baseline" "$tcp_bytes" "$udp_count" >>"$out/c.txt"
    "$bin" uv --tcp-bytes "$tcp_bytes" --udp-count "$udp_count" >>"$out/swift.txt"
done

median() {  # median of the values of metric $1 in file $2
    awk -v m="$1" '$1 == m { print $2 }' "$2" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

printf "%-22s %12s %12s %10s  %s\n" metric c swift swift/c verdict
for metric in tcp_callback_gbps udp_callback_rtt_us; do
    c=$(median "$metric" "$out/c.txt")
    s=$(median "$metric" "$out/swift.txt")
    # Throughput: higher is better; latency: lower is better. Within 20% either way passes.
    awk -v m="$metric" -v c="$c" -v s="$s" 'BEGIN {
        r = s / c
        ok = (m ~ /gbps$/) ? (r >= 0.8) : (r <= 1.2)
        printf "%-22s %12.3f %12.3f %10.3f  %s\n", m, c, s, r, ok ? "within 20%" : "OUTSIDE 20%"
    }'
done
echo "($runs runs each; TCP: $tcp_bytes bytes through one connection; UDP: median of $udp_count echoes)"
