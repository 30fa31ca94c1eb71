#!/usr/bin/env bash
# A multi-host test net on one machine: N network namespaces (lt<RUN>-n1..nN), each with its own
# latticad, joined through a bridge that lives in a private "switch" namespace (nothing is added to
# the host's own network). Node i has 10.77.0.i/24. Node 1 is the bootstrap node.
#
#   Scripts/netns/testnet.sh [--nodes N] [--duration S] [--bin DIR] [--loss PCT]
#
# --loss drops PCT% of each node's inbound packets (iptables -m statistic). Prints each node's
# status, runs for S seconds (default: until Ctrl-C), and always tears everything down. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
nodes=3 duration=0 bin="" loss=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --loss) loss="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "testnet: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "testnet: needs root (network namespaces)" >&2; exit 1; }
if [ -z "$bin" ]; then
  swift build -c release --product latticad >/dev/null && swift build -c release --product lattica >/dev/null
  bin="$(swift build -c release --show-bin-path)"
fi
run="lt$$"
sw="${run}-sw"
root="$(mktemp -d /tmp/lattica-testnet.XXXXXX)"
pids=()
teardown() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for i in $(seq 1 "$nodes"); do ip netns del "${run}-n$i" 2>/dev/null || true; done
  ip netns del "$sw" 2>/dev/null || true
  rm -rf "$root"
  echo "testnet: torn down"
}
trap teardown INT TERM EXIT

ip netns add "$sw"
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
ip -n "$sw" link set lo up
for i in $(seq 1 "$nodes"); do
  ns="${run}-n$i"
  ip netns add "$ns"
  ip link add "v${run}n$i" type veth peer name "s${run}n$i"
  ip link set "v${run}n$i" netns "$ns"
  ip link set "s${run}n$i" netns "$sw"
  ip -n "$sw" link set "s${run}n$i" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "v${run}n$i" name eth0
  ip -n "$ns" addr add "10.77.0.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  if [ "$loss" != "0" ]; then
    ip netns exec "$ns" iptables -A INPUT -i eth0 -m statistic --mode random --probability "$(echo "$loss/100" | bc -l)" -j DROP
  fi
done

wait_ready() {
  for _ in $(seq 1 200); do
    ip netns exec "$1" "$bin/lattica" --data-dir "$2" status --json >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "testnet: node in $1 not ready; log:" >&2; cat "$2/latticad.log" >&2; return 1
}

boot=""
for i in $(seq 1 "$nodes"); do
  ns="${run}-n$i" d="$root/n$i"
  mkdir -p "$d"
  args=(--data-dir "$d" --listen "/ip4/10.77.0.$i/tcp/4001" --metrics-addr 127.0.0.1:9464)
  [ -n "$boot" ] && args+=(--bootstrap "$boot")
  ip netns exec "$ns" "$bin/latticad" "${args[@]}" 2>"$d/latticad.log" &
  pids+=($!)
  wait_ready "$ns" "$d"
  [ -z "$boot" ] && boot=$(ip netns exec "$ns" "$bin/lattica" --data-dir "$d" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen_addrs"][0])')
done
echo "testnet: $nodes nodes up; bootstrap $boot"
for i in $(seq 1 "$nodes"); do
  echo "--- node $i (netns ${run}-n$i)"
  ip netns exec "${run}-n$i" "$bin/lattica" --data-dir "$root/n$i" status
done
if [ "$duration" -gt 0 ]; then sleep "$duration"; else echo "testnet: Ctrl-C to stop"; while :; do sleep 3600; done; fi
