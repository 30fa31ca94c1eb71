#!/usr/bin/env bash
# The main job: builds Lattica-Swift (release) and starts a local network of latticad daemons on
# loopback (8 by default, each with its own data directory), 2 of them attackers. They find each
# other (bootstrap + DHT), replicate a run's config through the CRDT store, and train a digits MLP
# together: each daemon's trainer (lattica-train) trains on its own Dirichlet(0.5) shard, and the
# daemons average robustly with random peers over /lattica/avg/1.0.0. Prints the honest nodes'
# held-out accuracy per outer step beside a centrally trained baseline and the simulator on the
# same configuration, writes the chart, and stops cleanly (also on Ctrl-C).
#   --nodes N (8)  --attackers M (2)  --attack sign-flip|ALIE|gaussian|IPM|label-flip|free-rider
#   --rounds R (40)  --method robust|noloco|diloco (robust)  --keep (leave the network running after training, until Ctrl-C)
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=8 attackers=2 attack=sign-flip rounds=40 keep=0 method=robust
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --attackers) attackers="$2"; shift 2 ;;
    --attack) attack="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --method) method="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
Scripts/setup.sh
if [ -n "${LATTICA_BIN_DIR:-}" ]; then  # binaries built already (e.g. by Scripts/test.sh)
  bin="$LATTICA_BIN_DIR"
else
  echo "demo: building (release)..."
  for p in latticad lattica lattica-train; do
    out=$(swift build -c release --product "$p" 2>&1) || { echo "$out"; echo "demo: the build failed" >&2; exit 1; }
  done
  bin="$(swift build -c release --show-bin-path)"
fi
root="$PWD/.lattica-demo"
rm -rf "$root"; mkdir -p "$root"
pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "demo: stopping ${#pids[@]} daemons"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "demo: all daemons stopped; data and logs in $root"
}
trap stop INT TERM EXIT

tag=demo
source Scripts/daemons.sh

boot=""
for i in $(seq 0 $((nodes - 1))); do
  d="$root/node-$i"; mkdir -p "$d"
  args=(--data-dir "$d" --listen /ip4/127.0.0.1/tcp/0 --metrics-addr 127.0.0.1:0 --log-level warning)
  if [ "$i" -ge $((nodes - attackers)) ]; then  # the last ones attack (test nets and demos only)
    printf '[train]\nattack = "%s"\n' "$attack" > "$d/latticad.toml"
    args+=(--config "$d/latticad.toml")
  fi
  [ -n "$boot" ] && args+=(--bootstrap "$boot")
  "$bin/latticad" "${args[@]}" 2>"$d/latticad.log" &
  pids+=($!)
  wait_ready "$d" "$!"
  if [ -z "$boot" ]; then
    boot=$(listen_addr "$d")
  fi
done
echo "demo: $nodes daemons up (bootstrap $boot); node-$((nodes - attackers))..node-$((nodes - 1)) attack with $attack"
wait_connected "$root/node-0" $((nodes - 1))  # the connection keeper and the DHT connect everyone
"$bin/lattica" --data-dir "$root/node-0" peers | tail -n +1 | head -3

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }  # KiB
for p in "${pids[@]}"; do rss "$p"; done > "$root/rss-idle.txt"  # idle: connected, no run yet
declare -A peak=()

echo "--- node-0 starts run 'digits' (config in the CRDT store), the others join"
"$bin/lattica" --data-dir "$root/node-0" train start --run digits --nodes "$nodes" --rounds "$rounds" --k "$nodes" --method "$method" --shard "0/$nodes"
run=$("$bin/lattica" --data-dir "$root/node-0" train status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
for i in $(seq 1 $((nodes - 1))); do
  for _ in $(seq 1 100); do  # until the run's config has replicated here
    "$bin/lattica" --data-dir "$root/node-$i" train join "$run" --shard "$i/$nodes" >/dev/null 2>&1 && break; sleep 0.1
  done
done
"$bin/lattica" --data-dir "$root/node-1" meta get "run/$run/config"

echo "--- baselines on the same split and held-out set"
"$bin/lattica-train" --central --rounds "$rounds" > "$root/central.json"
"$bin/lattica-train" --simulate --rounds "$rounds" --nodes "$nodes" --byzantine "$attackers" --attack "$attack" --method "$method" > "$root/simulated.json"

echo "--- training (honest nodes' mean held-out accuracy per outer step)"
honest=$((nodes - attackers))
while :; do
  done_count=0
  for i in $(seq 0 $((honest - 1))); do
    "$bin/lattica" --data-dir "$root/node-$i" train status --json > "$root/node-$i/status.json" 2>/dev/null || true
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["runs"]; sys.exit(0 if r and r[0]["trainer"] in ("finished","exited with 0") else 1)' "$root/node-$i/status.json" && done_count=$((done_count + 1))
  done
  step=$(python3 -c 'import json,sys; print(min(json.load(open(f))["runs"][0]["step"] for f in sys.argv[1:]))' "$root"/node-[0-$((honest - 1))]/status.json 2>/dev/null || echo 0)
  for p in "${pids[@]}"; do r=$(rss "$p"); [ "$r" -gt "${peak[$p]:-0}" ] && peak[$p]=$r; done
  printf '\r    step %s/%s, %s of %s honest trainers finished' "$step" "$rounds" "$done_count" "$honest"
  [ "$done_count" -ge "$honest" ] && break
  sleep 1
done
echo
for p in "${pids[@]}"; do echo "${peak[$p]:-0}"; done > "$root/rss-train.txt"  # peak while training
for i in $(seq "$honest" $((nodes - 1))); do "$bin/lattica" --data-dir "$root/node-$i" status --json > "$root/node-$i/node.json"; done
python3 Scripts/demo_report.py "$root" "$honest" "$nodes" "$attack"
if [ "$keep" = 1 ]; then
  echo "demo: the network keeps running; Ctrl-C stops it"
  while :; do sleep 5; done
fi
