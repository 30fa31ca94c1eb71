# Shared by the scripts that start local latticad networks (Scripts/demo.sh,
# Scripts/bench/dadao-network.sh). Source it with $bin set to the binaries and $tag to the
# script's name (for messages).

# wait_ready DATA_DIR PID: the daemon is ready when `lattica status` succeeds.
wait_ready() {
  for _ in $(seq 1 200); do
    "$bin/lattica" --data-dir "$1" status --json >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "$tag: daemon in $1 exited; log:"; cat "$1/latticad.log"; return 1; }
    sleep 0.05
  done
  echo "$tag: daemon in $1 did not become ready"; return 1
}

# listen_addr DATA_DIR: the daemon's first listen address (to bootstrap the others from).
listen_addr() { "$bin/lattica" --data-dir "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen_addrs"][0])'; }

# wait_connected DATA_DIR N: until the daemon is connected to N peers (10 s at most).
wait_connected() {
  for _ in $(seq 1 100); do
    n=$("$bin/lattica" --data-dir "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["connected_peers"])')
    [ "$n" -ge "$2" ] && return 0; sleep 0.1
  done
}
