# run.sh train: 8 nodes behind 4 different NATs (full cone, port-restricted, symmetric, UPnP; two
# hosts behind each router) train the demo's digits MLP together (as Scripts/demo.sh does on
# loopback, without attackers). Sourced by run.sh; uses its check/finish.
#   TN_TRAIN_ROUNDS (20)  TN_TRAIN_TIMEOUT (600 s)
# Passes when every node finishes and the nodes' mean held-out accuracy is within 3 points of
# the simulator's on the same configuration (lattica-train --simulate: the loopback reference).
train_scenario() {
  local rounds="${TN_TRAIN_ROUNDS:-20}" limit="${TN_TRAIN_TIMEOUT:-600}" nodes=8
  tn_install_tools stun upnp
  local bin; bin="$(tn_bin_dir)"
  [ -x "$bin/lattica-train" ] || { check train.trainer_built 0 "no lattica-train in $bin"; return; }
  tn_init
  tn_core_up
  local relay="/ip4/$TN_PUB_NET.3/tcp/4001/p2p/$(tn_peer_id relay)"
  local i=0 r=0 names=()
  for preset in fullcone restricted symmetric upnp; do
    r=$((r + 1))
    tn_router "r$r" "$r" "$preset"
    for j in 1 2; do
      tn_host "n$i" "r$r"
      # the second host of a router listens on 4200 (the full cone router DNATs 4200-4299 to it)
      TN_PORT=$([ "$j" = 1 ] && echo 4001 || echo 4200) tn_daemon "n$i" "n$i" --log-level warning \
        --bootstrap "$relay" --bootstrap-file "$TN_DIR/boot.addrs"
      if [ ${#IMPAIR[@]} -gt 0 ]; then tn_impair "n$i" eth0 "${IMPAIR[@]}"; fi
      names+=("n$i"); i=$((i + 1))
    done
  done
  # everyone must know everyone before the run starts (directly, relayed or through the DHT)
  local deadline=$((SECONDS + 60)) n=0
  while [ $SECONDS -lt $deadline ]; do
    n="$(tn_cli n0 status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["connected_peers"])')"
    [ "$n" -ge $((nodes - 1 + 2)) ] && break   # 7 others + boot + relay
    sleep 0.5
  done
  check train.n0_connected_to_all "$([ "$n" -ge $((nodes + 1)) ] && echo 1 || echo 0)" "connected_peers=$n"
  tn_cli n0 train start --run digits --nodes "$nodes" --rounds "$rounds" --k "$nodes" --shard "0/$nodes" >/dev/null
  local run; run="$(tn_cli n0 train status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["run"])')"
  for i in $(seq 1 $((nodes - 1))); do
    local joined=0
    for _ in $(seq 1 300); do
      tn_cli "n$i" train join "$run" --shard "$i/$nodes" >/dev/null 2>&1 && { joined=1; break; }
      sleep 0.2
    done
    check "train.n$i.joined" "$joined" "$run"
  done
  "$bin/lattica-train" --simulate --rounds "$rounds" --nodes "$nodes" --byzantine 0 >"$TN_DIR/simulated.json"
  deadline=$((SECONDS + limit))
  local finished=0
  while [ $SECONDS -lt $deadline ]; do
    finished=0
    for i in $(seq 0 $((nodes - 1))); do
      tn_cli "n$i" train status --json >"$TN_DIR/n$i.status.json" 2>/dev/null || true
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["runs"]; sys.exit(0 if r and r[0]["trainer"] in ("finished","exited with 0") else 1)' \
        "$TN_DIR/n$i.status.json" 2>/dev/null && finished=$((finished + 1))
    done
    [ "$finished" -ge "$nodes" ] && break
    sleep 2
  done
  check train.all_finished "$([ "$finished" -ge "$nodes" ] && echo 1 || echo 0)" "${finished}/${nodes}_in_${limit}s"
  local line
  line="$(python3 - "$TN_DIR" "$nodes" <<'EOF'
import json, sys
root, n = sys.argv[1], int(sys.argv[2])
acc = []
for i in range(n):
    try:
        r = json.load(open(f"{root}/n{i}.status.json"))["runs"][0]
        acc.append(r.get("accuracy_before_merge") or r["accuracy"])
    except Exception:
        pass
sim = json.load(open(f"{root}/simulated.json"))["simulated_accuracy_per_round"][-1]
mean = sum(acc) / len(acc) if acc else 0.0
print(f"{1 if acc and mean >= sim - 0.03 else 0} nodes={len(acc)} mean={mean*100:.1f}% worst={min(acc or [0])*100:.1f}% simulator={sim*100:.1f}%")
EOF
)"
  check train.accuracy_within_3_points_of_simulator "${line%% *}" "${line#* }"
  # how the nodes reached each other
  local tr; tr="$(for i in $(seq 0 $((nodes - 1))); do tn_cli "n$i" peers --json 2>/dev/null; done | python3 -c '
import json,sys,collections
c=collections.Counter()
dec=json.JSONDecoder(); s=sys.stdin.read(); i=0
while i < len(s):
    while i < len(s) and s[i].isspace(): i+=1
    if i>=len(s): break
    o,i=dec.raw_decode(s,i)
    for p in o.get("peers",[]): c[p.get("transport","direct")+"/"+p.get("established_by","dial")]+=1
print(" ".join(f"{k}={v}" for k,v in sorted(c.items())))')"
  echo "check=train.connections result=INFO detail=$(tr ' ' ',' <<<"$tr")" >>"$RESULTS"
}
