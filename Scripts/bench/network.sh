#!/usr/bin/env bash
# Transport and DHT benchmarks of latticad beside the real Lattica (rust-libp2p inside), same
# machine, same run, medians over repeated runs, ratios from figures of this run only. Everything
# runs inside a private network namespace with only loopback (Lattica sends STUN to public servers
# otherwise).
#
#   Scripts/bench/network.sh                              # RUNS=5 repetitions by default
#   BASELINE_BIN=/path/to/bin Scripts/bench/network.sh    # also an older build, alternated with ours
#
# Each repetition runs one round of the Lattica anchors (Scripts/interop/anchors.py, two Lattica
# nodes), then ours and the baseline (if any) taking turns step by step (each wire phase with
# polling on, the same with polling off, DHT, idle RSS; the plain-C floor just before the
# polling-off round trips): ours first in odd repetitions, the baseline first in even ones, so
# neither build always runs second. Every figure is the median over the repetitions; ratios to
# the machine's figures and to the baseline are also taken within each repetition.
#
# Like for like (same payload, same count, same concurrency method on both sides):
# - request/response round trip: our Swarm.request (what a protocol handler uses; a new yamux
#   stream per request, length-prefixed) against Lattica's RPC call Bench.echo (pickle, a new
#   request-response substream per call), one at a time, RR_N calls of PAYLOAD bytes, median of
#   issue -> answer. The raw-stream echo (one open stream, no request framing) is its own row and
#   has no Lattica counterpart.
# - requests/s: a sustained window of N outstanding requests on one connection (N = 100 and 1000),
#   WINDOW_N requests of PAYLOAD bytes on both sides; ours issues a new request whenever one
#   completes, Lattica's driver whenever the oldest completes (its futures have no callbacks).
#   Lattica counts successful calls only: rust-libp2p allows 100 concurrent substreams per
#   connection, the rest fail after retries (the count is printed).
# - one stream of STREAM_BYTES: our raw stream with back-pressure, Lattica's RPC stream call.
# Ours is measured with the loops' busy polling off (--busy-poll-us 0) and on (BUSY_POLL_US, the
# daemon default 50). Lattica does not busy-poll, so the ratios against it use polling off; the
# polling-on rows are printed beside them.
# Against the machine: our request/response round trip beside the plain-C floor (two threads
# ping-ponging 64 B over loopback TCP, Scripts/bench/tcp_pingpong.c; polling and sleeping in
# epoll), the stream beside the ChaCha20-Poly1305 seal ceiling of one core.
# With BASELINE_BIN (a directory holding latticad, lattica and lattica-bench built from a commit
# that has this bench code, e.g. .build-baseline/bin): every metric's baseline median, ours, and
# ours/baseline, flagged when ours is worse by more than 10%.
# Knobs: RUNS, PAYLOAD (64), RR_N (5000), RAW_N (20000), WINDOW_N (20000), STREAM_BYTES (256 MiB),
# BUSY_POLL_US (50), DHT_KEYS (20), BIN (our binaries; default: build this tree), ANCHORS=0 (skip
# Lattica, e.g. for a quicker A/B: ANCHORS=0 RUNS=9 BASELINE_BIN=...), KEEP_OUT=dir
# (keep the raw figures there; `python3 Scripts/bench/network_report.py dir` prints the tables again).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${LATTICA_BENCH_INNER:-}" != 1 ]; then
  Scripts/setup.sh; Scripts/interop-setup.sh
  if [ -z "${BIN:-}" ]; then
    swift build -c release --product lattica-bench >/dev/null
    swift build -c release --product latticad >/dev/null
    swift build -c release --product lattica >/dev/null
  fi
  for b in ${BIN:-} ${BASELINE_BIN:-}; do
    for x in latticad lattica lattica-bench; do
      [ -x "$b/$x" ] || { echo "network.sh: $b/$x missing" >&2; exit 64; }
    done
    "$b/lattica-bench" wire --help | grep -q -- --rr-round-trips \
      || { echo "network.sh: $b/lattica-bench predates this bench (no --rr-round-trips)" >&2; exit 64; }
  done
  LATTICA_BENCH_INNER=1 exec Scripts/interop/netns-run.sh "$0" "$@"
fi

runs=${RUNS:-5}
payload=${PAYLOAD:-64}
rr_n=${RR_N:-5000}
raw_n=${RAW_N:-20000}
window_n=${WINDOW_N:-20000}
stream_bytes=${STREAM_BYTES:-268435456}
busy_poll=${BUSY_POLL_US:-50}
dht_keys=${DHT_KEYS:-20}
bin="${BIN:-$(swift build -c release --show-bin-path)}"
base="${BASELINE_BIN:-}"
if [ -n "${KEEP_OUT:-}" ]; then out="$KEEP_OUT"; mkdir -p "$out"; rm -f "$out"/*.txt "$out"/*.log
else out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT; fi
gcc -O2 -Wall -pthread -o "$out/tcp_pingpong" Scripts/bench/tcp_pingpong.c

# Figures go to $out/<who>.<repetition>.txt, one "metric value" per line. One step of one build's
# measurements: $1 = step (<wire phase>_on|_off, dht, rss), $2 = bin dir, $3 = output file. The
# wire phases' metric names get .poll_on / .poll_off (the AEAD ceiling, printed with the stream,
# does not depend on polling and keeps its name).
step() {
  local s="$1" b="$2" f="$3" poll=0 tag=poll_off d pid
  local dials=0 raw=0 rr=0 requests=0 in_flight=1 bytes=0
  case "$s" in *_on) poll="$busy_poll"; tag=poll_on ;; esac
  case "$s" in
    dial_*) dials=200 ;;
    raw_*) raw="$raw_n" ;;
    rr_*) rr="$rr_n" ;;
    window100_*) requests="$window_n" in_flight=100 ;;
    window1000_*) requests="$window_n" in_flight=1000 ;;
    stream_*) bytes="$stream_bytes" ;;
  esac
  case "$s" in
    dial_* | raw_* | rr_* | window*_* | stream_*)
      "$b/lattica-bench" wire --busy-poll-us "$poll" --payload "$payload" --dials "$dials" \
        --round-trips "$raw" --rr-round-trips "$rr" --requests "$requests" --in-flight "$in_flight" \
        --stream-bytes "$bytes" | awk -v t="$tag" 'NF == 2 { print ($1 ~ /^aead_/ ? $1 : $1 "." t), $2 }' >> "$f" ;;
    dht) "$b/lattica-bench" dht --keys "$dht_keys" --lattica >> "$f" ;;
    rss)
      d="$out/idle.$RANDOM"; mkdir -p "$d"
      "$b/latticad" --data-dir "$d" --log-level error & pid=$!
      for _ in $(seq 100); do "$b/lattica" --data-dir "$d" status >/dev/null 2>&1 && break; sleep 0.05; done
      sleep 2
      echo "idle_rss_mb $(awk '/VmRSS/ { print $2 / 1024 }' /proc/$pid/status)" >> "$f"
      kill -TERM $pid; wait $pid || true
      rm -rf "$d" ;;
  esac
}

for i in $(seq "$runs"); do
  if [ "${ANCHORS:-1}" != 0 ]; then
    echo "bench: run $i/$runs: Lattica anchors..." >&2
    if .venv/bin/python Scripts/interop/anchors.py --rounds 1 --size "$payload" --rr-n "$rr_n" \
         --window-n "$window_n" --windows 100,1000 --stream-bytes "$stream_bytes" --dht-n "$dht_keys" \
         2>/dev/null > "$out/anchors.$i.log"; then
      sed -n 's/^ANCHORS //p' "$out/anchors.$i.log" | python3 -c '
import json, sys
for k, v in json.load(sys.stdin).items():
    if isinstance(v, (int, float)) and not isinstance(v, bool): print(k, v)' > "$out/lattica.$i.txt"
    else
      echo "bench: Lattica anchors failed in run $i (log kept in $out/anchors.$i.log)" >&2
    fi
  fi
  # ours and the baseline take turns step by step, so both see the same machine; the order
  # flips every repetition.
  order="ours base"; [ $((i % 2)) = 0 ] && order="base ours"
  [ -n "$base" ] || order=ours
  echo "bench: run $i/$runs: latticad ($order)..." >&2
  # One phase per step (a few seconds at most), so that the machine's state (on this VM the
  # wake-up cost flips between ~15 and ~70 us with the other load) changes rarely between the
  # two builds' figures of one metric.
  for s in dial_on raw_on rr_on window1000_on window100_on stream_on \
           dial_off raw_off rr_off window1000_off window100_off stream_off dht rss; do
    # The C floor right before the polling-off round trips, whose figures depend on the same
    # wake-up cost.
    [ "$s" = raw_off ] && "$out/tcp_pingpong" > "$out/machine.$i.txt"
    for who in $order; do
      if [ "$who" = ours ]; then step "$s" "$bin" "$out/ours.$i.txt"; else step "$s" "$base" "$out/base.$i.txt"; fi
    done
  done
done

cat > "$out/settings" <<EOF
runs=$runs payload=$payload rr_n=$rr_n window_n=$window_n stream_bytes=$stream_bytes busy_poll=$busy_poll
lattica_version=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("lattica"))' 2>/dev/null || echo '?')
base=$base
EOF
python3 Scripts/bench/network_report.py "$out"
