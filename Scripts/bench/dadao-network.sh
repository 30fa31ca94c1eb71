#!/usr/bin/env bash
# DADAO over the network against the simulator (Docs/LEARNING.md, "DADAO over the network"):
# starts N latticad daemons on loopback (8 by default), node-0 starts a `dadao` run (ridge on
# breast_cancer, rows sorted by label, the others join), every daemon's lattica-train runs its
# Poisson gradient clock and the daemons gossip over /lattica/dadao/1.0.0. Prints, per sample
# time, the network's mean ‖x_i − x*‖², loss and consensus distance beside the simulator's DADAO
# (`lattica-train --simulate --method dadao`, complete graph) on the same data, nodes, κ and seed,
# with the ratio. Needs LATTICA_BIN_DIR (the release binaries).
#   --nodes N (8)  --horizon T (1500 time units)  --unit-ms U (10)  --kappa K (1709)  --seed S (1)
#   --no-gossip (the baseline: daemons never start an exchange; needs a test build, see below)
set -euo pipefail
cd "$(dirname "$0")/../.."
nodes=8 horizon=1500 unit=10 kappa=1709 seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --horizon) horizon="$2"; shift 2 ;;
    --unit-ms) unit="$2"; shift 2 ;;
    --kappa) kappa="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "dadao-network: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
bin="${LATTICA_BIN_DIR:?set LATTICA_BIN_DIR to the release binaries (swift build -c release --show-bin-path)}"
root="$PWD/.lattica-dadao"
rm -rf "$root"; mkdir -p "$root"
pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop INT TERM EXIT
tag=dadao-network
source Scripts/daemons.sh
boot=""
for i in $(seq 0 $((nodes - 1))); do
  d="$root/node-$i"; mkdir -p "$d"
  args=(--data-dir "$d" --listen /ip4/127.0.0.1/tcp/0 --metrics-addr 127.0.0.1:0 --log-level warning)
  [ -n "$boot" ] && args+=(--bootstrap "$boot")
  "$bin/latticad" "${args[@]}" 2>"$d/latticad.log" &
  pids+=($!)
  wait_ready "$d" "$!"
  [ -z "$boot" ] && boot=$(listen_addr "$d")
done
wait_connected "$root/node-0" $((nodes - 1))
echo "dadao-network: $nodes daemons up; horizon $horizon units of $unit ms, κ $kappa, seed $seed"
"$bin/lattica" --data-dir "$root/node-0" train start --run dadao --method dadao --model "ridge:$kappa" --dataset breast-cancer \
  --nodes "$nodes" --rounds "$horizon" --time-unit-ms "$unit" --seed "$seed" --shard "0/$nodes" >/dev/null
run=$("$bin/lattica" --data-dir "$root/node-0" train status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
for i in $(seq 1 $((nodes - 1))); do
  for _ in $(seq 1 100); do
    "$bin/lattica" --data-dir "$root/node-$i" train join "$run" --shard "$i/$nodes" >/dev/null 2>&1 && break; sleep 0.1
  done
done
"$bin/lattica-train" --simulate --method dadao --dataset breast-cancer --model "ridge:$kappa" --nodes "$nodes" --rounds "$horizon" --seed "$seed" > "$root/simulated.json"
while :; do  # until every trainer has said trainer.done
  left=0
  for i in $(seq 0 $((nodes - 1))); do
    s=$("$bin/lattica" --data-dir "$root/node-$i" train status --json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(r[0]["trainer"] if r else "-")')
    case "$s" in finished|"exited with 0") ;; starting|attached) left=$((left + 1)) ;; *) echo "dadao-network: node-$i trainer: $s"; cat "$root/node-$i/runs/$run/trainer.log" | tail -5; exit 1 ;; esac
  done
  [ "$left" = 0 ] && break
  sleep 1
done
for i in $(seq 0 $((nodes - 1))); do curl -s "http://$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metrics_addr"])' <("$bin/lattica" --data-dir "$root/node-$i" status --json) 2>/dev/null)/metrics" 2>/dev/null | grep '^lattica_train_dadao' > "$root/node-$i/dadao-metrics.txt" || true; done
python3 Scripts/bench/dadao_report.py "$root" "$run" "$nodes"
