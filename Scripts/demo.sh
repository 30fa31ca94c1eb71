#!/usr/bin/env bash
# The main job: builds Lattica-Swift (release) and starts a local network of latticad nodes on
# loopback, each with its own data directory; shows their status and peers until Ctrl-C, then stops
# them cleanly. Options: --nodes N (default 4), --duration SECONDS (stop by itself; 0 = until Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=4 duration=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
Scripts/setup.sh
echo "demo: building (release)..."
swift build -c release --product latticad >/dev/null
swift build -c release --product lattica >/dev/null
swift build -c release --product lattica-bench >/dev/null
bin="$(swift build -c release --show-bin-path)"
root="$PWD/.lattica-demo"
rm -rf "$root"; mkdir -p "$root"
pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "demo: stopping ${#pids[@]} nodes"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "demo: all nodes stopped; data in $root"
}
trap stop INT TERM EXIT

wait_ready() { # the daemon is ready when `lattica status` succeeds
  for _ in $(seq 1 200); do
    "$bin/lattica" --data-dir "$1" status --json >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "demo: node in $1 exited; log:"; cat "$1/latticad.log"; return 1; }
    sleep 0.05
  done
  echo "demo: node in $1 did not become ready"; return 1
}

boot=""
for i in $(seq 1 "$nodes"); do
  d="$root/node-$i"; mkdir -p "$d"
  args=(--data-dir "$d" --listen /ip4/127.0.0.1/tcp/0 --metrics-addr 127.0.0.1:0)
  [ -n "$boot" ] && args+=(--bootstrap "$boot")
  "$bin/latticad" "${args[@]}" 2>"$d/latticad.log" &
  pids+=($!)
  wait_ready "$d" "$!"
  if [ -z "$boot" ]; then
    boot=$("$bin/lattica" --data-dir "$d" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen_addrs"][0])')
  fi
done
echo "demo: $nodes nodes up (bootstrap $boot)"
for i in $(seq 1 "$nodes"); do echo "--- node-$i"; "$bin/lattica" --data-dir "$root/node-$i" status; done
echo "--- node-$nodes peers"
"$bin/lattica" --data-dir "$root/node-$nodes" peers
echo "--- DHT: a signed record put on node-2, read on every node"
"$bin/lattica" --data-dir "$root/node-2" dht put /lattica/demo/greeting "hello from node-2"
for i in $(seq 1 "$nodes"); do printf 'node-%s reads: ' "$i"; "$bin/lattica" --data-dir "$root/node-$i" dht get /lattica/demo/greeting; done
echo "--- node-1 routing table"
"$bin/lattica" --data-dir "$root/node-1" dht table
echo "--- training: 16 simulated nodes learn digits with robust NoLoCo while 4 of them send sign-flipped"
echo "    updates (the learning layer over the simulator; over these sockets in a later release)"
"$bin/lattica-bench" learning --tracks table --rounds 20 --seeds 1 --attacks none,sign-flip \
  --rows "NoLoCo (pairs),centered-clip+reputation" --svg "$root/learning-accuracy.svg" | sed -n '1,20p'
echo "    accuracy chart: $root/learning-accuracy.svg"
start=$(date +%s)
while :; do
  sleep 5
  [ "$duration" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$duration" ] && break
  for i in $(seq 1 "$nodes"); do
    printf 'node-%s: ' "$i"; "$bin/lattica" --data-dir "$root/node-$i" status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["peer_id"][:16]+"…", "peers", s["connected_peers"], "up", int(s["uptime_s"]), "s")'
  done
done
