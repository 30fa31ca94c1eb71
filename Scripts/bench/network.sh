#!/usr/bin/env bash
# Transport and DHT benchmarks of latticad beside the real Lattica (rust-libp2p inside), same
# machine, same run, medians over repeated runs, with ratios. Everything runs inside a private
# network namespace with only loopback (Lattica sends STUN to public servers otherwise).
#   Scripts/bench/network.sh            # RUNS=3 by default
# Targets (issues 3 and 4): 64 B round trip <= 60 us; >= 50,000 req/s with 1,000 in flight;
# >= 800 MB/s on one stream; connect+Noise+yamux+identify <= 2 ms; idle RSS <= 20 MB;
# DHT put/get at most half of Lattica's latency. DHT: 20 keys (our per-peer limits: a burst of 20
# PUTs and 32 records per remote peer).
# Beside the round trip: the same with the loops' busy polling off, and the floor in plain C (two
# threads ping-ponging 64 B over loopback TCP, sleeping in epoll / polling it).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-3}
if [ "${LATTICA_BENCH_INNER:-}" != 1 ]; then
  Scripts/setup.sh; Scripts/interop-setup.sh
  swift build -c release --product lattica-bench >/dev/null
  swift build -c release --product latticad >/dev/null
  swift build -c release --product lattica >/dev/null
  LATTICA_BENCH_INNER=1 exec Scripts/interop/netns-run.sh "$0" "$@"
fi
bin="$(swift build -c release --show-bin-path)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
gcc -O2 -Wall -pthread -o "$out/tcp_pingpong" Scripts/bench/tcp_pingpong.c

echo "bench: Lattica anchors (3 rounds inside)..." >&2
.venv/bin/python Scripts/interop/anchors.py --rounds 3 --dht-n 20 2>/dev/null | grep '^ANCHORS ' | sed 's/^ANCHORS //' > "$out/lattica.json"

for i in $(seq "$runs"); do
  echo "bench: latticad run $i/$runs..." >&2
  "$bin/lattica-bench" wire --dials 200 --round-trips 20000 --requests 50000 --in-flight 1000 --stream-bytes 1073741824 >> "$out/swift.txt"
  "$bin/lattica-bench" wire --dials 0 --round-trips 1 --requests 20000 --in-flight 100 --stream-bytes 1 | grep requests_per_s >> "$out/swift.txt"
  "$bin/lattica-bench" wire --dials 0 --round-trips 20000 --requests 1 --in-flight 1 --stream-bytes 1 --busy-poll-us 0 \
    | sed -n 's/^rtt_64B_median_us /rtt_64B_median_us_no_busy_poll /p' >> "$out/swift.txt"
  "$out/tcp_pingpong" >> "$out/swift.txt"
  "$bin/lattica-bench" dht --keys 20 --lattica >> "$out/swift.txt"
  d="$out/idle$i"; mkdir -p "$d"
  "$bin/latticad" --data-dir "$d" --log-level error & pid=$!
  for _ in $(seq 100); do "$bin/lattica" --data-dir "$d" status >/dev/null 2>&1 && break; sleep 0.05; done
  sleep 2
  echo "idle_rss_mb $(awk '/VmRSS/ { print $2 / 1024 }' /proc/$pid/status)" >> "$out/swift.txt"
  kill -TERM $pid; wait $pid || true
done

python3 - "$out/swift.txt" "$out/lattica.json" <<'PY'
import json, statistics, sys
ours = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    ours.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in ours.items()}
lat = json.load(open(sys.argv[2])) if open(sys.argv[2]).read().strip() else {}
rows = [  # (label, our metric, scale to display unit, Lattica metric, higher is better, target text)
    ("64 B round trip on an open stream (ms)", "rtt_64B_median_us", 1e-3, "rr_median_ms", False, "<= 0.060"),
    ("  same, busy polling off (ms)", "rtt_64B_median_us_no_busy_poll", 1e-3, "rr_median_ms", False, ""),
    ("  floor: C, 2 threads, TCP, sleeping (ms)", "c_tcp_pingpong_blocking_us", 1e-3, None, False, ""),
    ("  floor: C, 2 threads, TCP, polling (ms)", "c_tcp_pingpong_polling_us", 1e-3, None, False, ""),
    ("requests/s, 100 in flight", "requests_per_s_100_in_flight", 1, "rr_inflight100_req_per_s", True, ""),
    ("requests/s, 1000 in flight", "requests_per_s_1000_in_flight", 1, "rr_inflight1000_req_per_s", True, ">= 50000"),
    ("one stream (MB/s; Lattica: 50 MB RPC stream)", "stream_MBps", 1, "stream_mb_per_s", True, ">= 800"),
    ("  ceiling: ChaCha20-Poly1305 seal, 1 core (MB/s)", "aead_seal_MBps_one_core", 1, None, True, ""),
    ("connect+Noise+yamux+identify (ms)", "connect_identified_ms", 1, None, False, "<= 2"),
    ("idle RSS (MB; Lattica includes Python)", "idle_rss_mb", 1, "idle_rss_mb", False, "<= 20"),
    ("DHT put, median (ms)", "dht_put_median_ms", 1, "dht_put_median_ms", False, "<= 0.5 x Lattica"),
    ("DHT get, median (ms)", "dht_get_median_ms", 1, "dht_get_median_ms", False, "<= 0.5 x Lattica"),
    ("DHT get from a late joiner (ms)", "dht_get_late_joiner_median_ms", 1, "dht_get_late_joiner_median_ms", False, "<= 0.5 x Lattica"),
]
print(f"{'metric':<46} {'latticad':>12} {'Lattica':>12} {'ours/Lattica':>13}  target")
for label, k, scale, lk, higher, target in rows:
    o = med.get(k, float("nan")) * scale
    l = lat.get(lk, float("nan")) if lk else float("nan")
    r = o / l if l == l and l else float("nan")
    print(f"{label:<46} {o:>12.4g} {l:>12.4g} {r:>13.3g}  {target}")
print(f"(medians of {len(next(iter(ours.values())))} runs of ours; Lattica: medians of 3 rounds)")
PY
