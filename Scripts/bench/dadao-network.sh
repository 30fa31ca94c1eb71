#!/usr/bin/env bash
# DADAO over the network against the simulator (Docs/LEARNING.md, "DADAO over the network"):
# starts N latticad daemons on loopback (8 by default), node-0 starts a `dadao` run (ridge on
# breast_cancer, rows sorted by label; or softmax on digits in Dirichlet(0.5) shards; the others join), every daemon's lattica-train runs its
# Poisson gradient clock and the daemons gossip over /lattica/dadao/1.0.0. Prints, per sample
# time, the network's mean ‖x_i − x*‖², loss and consensus distance beside the simulator's DADAO
# (`lattica-train --simulate --method dadao`, complete graph) on the same data, nodes, κ and seed,
# with the ratio. Needs LATTICA_BIN_DIR (the release binaries).
#   --nodes N (8)  --horizon T (1500 time units)  --unit-ms U (10)  --kappa K (1709)  --seed S (1)
#   --model M (ridge:KAPPA; or softmax[:L2], then --dataset digits and --split dirichlet:0.5 by default)
#   --dataset D  --split S  --no-final-merge
#   --kill I --kill-at T (kill -9 node I's daemon and trainer at run time T, restart it from its
#     data dir 0.5 s later: it rejoins the run and resumes from runs/<run>/dadao.state)
set -euo pipefail
cd "$(dirname "$0")/../.."
nodes=8 horizon=1500 unit=10 kappa=1709 seed=1 model="" dataset="" split="dirichlet:0.5" merge=--final-merge kill="" killat=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --dataset) dataset="$2"; shift 2 ;;
    --split) split="$2"; shift 2 ;;
    --no-final-merge) merge=--no-final-merge; shift ;;
    --kill) kill="$2"; shift 2 ;;
    --kill-at) killat="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --horizon) horizon="$2"; shift 2 ;;
    --unit-ms) unit="$2"; shift 2 ;;
    --kappa) kappa="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "dadao-network: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ -z "$model" ] && model="ridge:$kappa"
case "$model" in softmax*) dataset="${dataset:-digits}" ;; *) dataset="${dataset:-breast-cancer}" ;; esac
if [ -n "$kill" ] && [ -z "$killat" ]; then echo "dadao-network: --kill needs --kill-at" >&2; exit 2; fi
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
start_daemon() {  # start_daemon I: node I's daemon (again, after a kill: the same data dir)
  local d="$root/node-$1"; mkdir -p "$d"
  local args=(--data-dir "$d" --listen /ip4/127.0.0.1/tcp/0 --metrics-addr 127.0.0.1:0 --log-level warning)
  [ -n "$boot" ] && args+=(--bootstrap "$boot")
  "$bin/latticad" "${args[@]}" 2>>"$d/latticad.log" &
  pids[$1]=$!
  wait_ready "$d" "$!"
}
for i in $(seq 0 $((nodes - 1))); do
  start_daemon "$i"
  [ -z "$boot" ] && boot=$(listen_addr "$root/node-$i")
done
wait_connected "$root/node-0" $((nodes - 1))
echo "dadao-network: $nodes daemons up; $model on $dataset ($split), horizon $horizon units of $unit ms, seed $seed${kill:+, kill -9 node $kill at t = $killat}"
"$bin/lattica" --data-dir "$root/node-0" train start --run dadao --method dadao --model "$model" --dataset "$dataset" --split "$split" "$merge" \
  --nodes "$nodes" --rounds "$horizon" --time-unit-ms "$unit" --seed "$seed" --shard "0/$nodes" >/dev/null
run=$("$bin/lattica" --data-dir "$root/node-0" train status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')
for i in $(seq 1 $((nodes - 1))); do
  for _ in $(seq 1 100); do
    "$bin/lattica" --data-dir "$root/node-$i" train join "$run" --shard "$i/$nodes" >/dev/null 2>&1 && break; sleep 0.1
  done
done
started=$(date +%s.%N)
dirichlet=0.5; case "$split" in dirichlet:*) dirichlet="${split#dirichlet:}" ;; esac
killed=""
while :; do  # until every trainer has said trainer.done
  if [ -n "$kill" ] && [ -z "$killed" ] && python3 -c "import sys,time; sys.exit(0 if (time.time() - $started) * 1000 / $unit >= $killat else 1)"; then
    # kill -9: the daemon and its trainer (its child), no goodbye; restarted from the same data dir.
    trainer=$(pgrep -P "${pids[$kill]}" || true)
    kill -9 "${pids[$kill]}" $trainer 2>/dev/null || true
    wait "${pids[$kill]}" 2>/dev/null || true
    echo "dadao-network: killed node-$kill (daemon ${pids[$kill]}, trainer ${trainer:-none}) at wall t = $(python3 -c "import time; print(round((time.time() - $started) * 1000 / $unit, 1))")"
    sleep 0.5
    start_daemon "$kill"
    killed=1
    echo "dadao-network: node-$kill restarted (pid ${pids[$kill]})"
  fi
  left=0
  for i in $(seq 0 $((nodes - 1))); do
    s=$("$bin/lattica" --data-dir "$root/node-$i" train status --json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(r[0]["trainer"] if r else "-")')
    case "$s" in finished|"exited with 0") ;; starting|attached|"not started"|-) left=$((left + 1)) ;; *) echo "dadao-network: node-$i trainer: $s"; cat "$root/node-$i/runs/$run/trainer.log" | tail -5; exit 1 ;; esac
  done
  [ "$left" = 0 ] && break
  sleep 0.2
done
for i in $(seq 0 $((nodes - 1))); do curl -s "http://$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metrics_addr"])' <("$bin/lattica" --data-dir "$root/node-$i" status --json) 2>/dev/null)/metrics" 2>/dev/null | grep '^lattica_train_dadao' > "$root/node-$i/dadao-metrics.txt" || true; done
# The simulator after the network run, not beside it: on 2 shared cores it would take the
# trainers' and loops' time, and DADAO diverges when its exchanges fall behind (Docs/DADAO.md).
"$bin/lattica-train" --simulate --method dadao --dataset "$dataset" --model "$model" --dirichlet "$dirichlet" --nodes "$nodes" --rounds "$horizon" --seed "$seed" > "$root/simulated.json"
python3 Scripts/bench/dadao_report.py "$root" "$run" "$nodes"
