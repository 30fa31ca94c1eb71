#!/usr/bin/env bash
# The NAT matrix: for each unordered pair of presets (and each preset with itself), host A behind
# preset X and host B behind preset Y, each behind its own router, both joined through the
# public bootstrap node (and knowing the relay). Once the bootstrap node has both, A runs
# `lattica connect <B's peer id>` and polls `lattica peers --json` for B: connected, direct or
# relayed, how it was established, the time to connect and to direct. Needs root. Docs/TESTNETS.md.
#
#   Scripts/testnet/matrix.sh [--json] [--runs N] [--presets "none fullcone restricted symmetric upnp"]
#                             [--timeout S] [--pair X Y] [--keep] [--loss PCT] [--rate R] [--delay MS]
#
# --json prints one object per line and pair, e.g.
#   {"a":"restricted","b":"symmetric","connected":true,"direct":false,"ms_to_connect":123,"ms_to_direct":null,"run":1,...}
# and a last line {"summary":...}; without it, a table and the share of direct connections.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"

json=0 runs=1 presets="$TN_PRESETS_ALL" timeout=20 pairs=() IMPAIR=()
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json=1; shift ;;
    --runs) runs="$2"; shift 2 ;;
    --presets) presets="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --pair) pairs+=("$2:$3"); shift 3 ;;
    --keep) TN_KEEP=1; shift ;;
    --loss|--rate|--delay) IMPAIR+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "matrix: unknown option $1" >&2; exit 2 ;;
  esac
done
for p in $presets; do
  case " $TN_PRESETS_ALL " in *" $p "*) ;; *) echo "matrix: unknown preset $p" >&2; exit 2 ;; esac
done
if [ ${#pairs[@]} -eq 0 ]; then
  set -- $presets
  list=("$@")
  for ((i=0; i<${#list[@]}; i++)); do for ((j=i; j<${#list[@]}; j++)); do pairs+=("${list[$i]}:${list[$j]}"); done; done
fi
tn_require
tn_install_tools stun upnp conntrack
BIN="$(tn_bin_dir)"
tn_init
tn_core_up
RELAY_ADDR="/ip4/$TN_PUB_NET.3/tcp/4001/p2p/$(tn_peer_id relay)"
BOOT_ID="$(tn_peer_id boot)"
OUT="$TN_DIR/results.jsonl"
: >"$OUT"
now_ms() { date +%s%3N; }

# side NAME INDEX PRESET: host NAME behind a fresh router (or on the public segment for none);
# sets SIDE_ADDR to the address a peer could dial without help (WAN address, port 4001).
side() {
  local name="$1" idx="$2" preset="$3"
  if [ "$preset" = none ]; then
    tn_public_host "$name" "$TN_PUB_NET.$((99 + idx))"
    SIDE_ADDR="$TN_PUB_NET.$((99 + idx))"
  else
    tn_router "r$name" "$idx" "$preset"
    tn_host "$name" "r$name"
    SIDE_ADDR="$(tn_router_wan "r$name")"
  fi
  if [ ${#IMPAIR[@]} -gt 0 ]; then tn_impair "$name" eth0 "${IMPAIR[@]}"; fi
  tn_daemon "$name" "$name" --bootstrap "$RELAY_ADDR" --bootstrap-file "$TN_DIR/boot.addrs"
}

# peer_state DIR PEER: "transport established_by via" of PEER in DIR's `peers --json`, or nothing.
peer_state() {
  "$BIN/lattica" --data-dir "$1" peers --json 2>/dev/null | python3 -c '
import json,sys
try: ps=json.load(sys.stdin).get("peers",[])
except Exception: sys.exit(0)
for p in ps:
    if p.get("peer_id")==sys.argv[1]:
        print(p.get("transport","direct"), p.get("established_by","-"), p.get("via") or "-"); break
' "$2"
}

one_pair() {
  local x="$1" y="$2" run="$3"
  tn_mark
  side a 1 "$x"; local a_pub="$SIDE_ADDR"
  # cold start: from B's daemon starting (A already up) to B direct in A's peers, whoever dialed
  local t_start; t_start="$(now_ms)"
  side b 2 "$y"; local b_pub="$SIDE_ADDR"
  local a_id b_id; a_id="$(tn_peer_id a)"; b_id="$(tn_peer_id b)"
  # both known to the bootstrap node (the DHT's entry point) before A asks for B
  local deadline=$((SECONDS + 10)) joined=0
  while [ $SECONDS -lt $deadline ]; do
    local bp; bp="$(tn_cli boot peers --json 2>/dev/null || true)"
    if grep -q "$a_id" <<<"$bp" && grep -q "$b_id" <<<"$bp"; then joined=1; break; fi
    sleep 0.1
  done
  # B holds a reservation on the relay (its log says so) before A asks, when there is a relay
  local reserved=0
  if [ -n "${TN_HAS_RELAY:-}" ]; then
    deadline=$((SECONDS + 10))
    while [ $SECONDS -lt $deadline ]; do grep -q "relay reservation" "$TN_DIR/b/latticad.log" && { reserved=1; break; }; sleep 0.1; done
  fi
  local t0 t_conn="" t_direct="" t_cold="" state="" dialed=peer_id err="" dials=() pre
  # the daemons may have connected by themselves already (the DHT and the connection keeper dial
  # the /p2p-circuit addresses B advertises): then `connect` reuses that connection
  pre="$(peer_state "$TN_DIR/a" "$b_id")"
  t0="$(now_ms)"
  # connect by peer id (DHT lookup, then direct or /p2p-circuit). A daemon without it refuses the
  # bare id; then A dials what such a lookup would return, all at once, as libp2p does: B's
  # address without help (its WAN address, port 4001) and B's circuit address through the relay.
  if ! err="$(tn_cli a connect "$b_id" 2>&1 >/dev/null)"; then
    if grep -qi "multiaddr\|invalid\|bad_request" <<<"$err"; then
      dialed=addr
      err=""
      tn_cli a connect "/ip4/$b_pub/tcp/4001/p2p/$b_id" >"$TN_DIR/dial-direct.out" 2>&1 & dials+=($!)
      if [ -n "${TN_HAS_RELAY:-}" ]; then
        # the circuit 500 ms later unless the direct dial has connected (go-libp2p delays relay
        # addresses the same way): `connect` reuses any connection, so a circuit that comes
        # first would stand in for a direct connection that was possible
        dialed=addr+circuit
        local relay_at=$(( $(now_ms) + 500 ))
        while [ "$(now_ms)" -lt "$relay_at" ] && [ -z "$(peer_state "$TN_DIR/a" "$b_id")" ]; do sleep 0.05; done
        if [ -z "$(peer_state "$TN_DIR/a" "$b_id")" ]; then
          tn_cli a connect "$RELAY_ADDR/p2p-circuit/p2p/$b_id" >"$TN_DIR/dial-circuit.out" 2>&1 & dials+=($!)
        fi
      fi
    fi
  fi
  local end=$(( $(now_ms) + timeout * 1000 ))
  while [ "$(now_ms)" -lt "$end" ]; do
    state="$(peer_state "$TN_DIR/a" "$b_id")"
    if [ -n "$state" ]; then
      [ -z "$t_conn" ] && t_conn=$(( $(now_ms) - t0 ))
      if [ "${state%% *}" = direct ]; then t_direct=$(( $(now_ms) - t0 )); t_cold=$(( $(now_ms) - t_start )); break; fi
    elif [ -z "$t_conn" ] && [ ${#dials[@]} -gt 0 ]; then
      local running=0 p
      for p in "${dials[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
      [ "$running" = 0 ] && break   # every dial failed; nothing will come later
    fi
    sleep 0.05
  done
  local p
  for p in "${dials[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -z "$t_conn" ] && [ -z "$err" ] && err="$(cat "$TN_DIR"/dial-*.out 2>/dev/null | tr '\n' ' ')"
  rm -f "$TN_DIR"/dial-*.out
  read -r transport established via <<<"${state:-- - -}"
  python3 - "$x" "$y" "$run" "${t_conn:-}" "${t_direct:-}" "$transport" "$established" "$via" "$dialed" "$joined" "${err:-}" "$reserved" "${pre%% *}" "${t_cold:-}" >>"$OUT" <<'EOF'
import json, sys
x, y, run, tc, td, tr, est, via, dialed, joined, err, reserved, pre, tcold = sys.argv[1:]
o = {"a": x, "b": y, "connected": tc != "", "direct": td != "",
     "ms_to_connect": int(tc) if tc else None, "ms_to_direct": int(td) if td else None,
     "ms_cold_to_direct": int(tcold) if tcold else None, "run": int(run),
     "transport": None if tr == "-" else tr, "established_by": None if est == "-" else est,
     "via": None if via == "-" else via, "dialed": dialed, "joined": joined == "1", "b_reserved": reserved == "1",
     "before_connect": pre or None}
if tc == "" and err:
    o["error"] = err.strip()[-300:]
print(json.dumps(o, sort_keys=False))
EOF
  [ "$json" = 1 ] && tail -1 "$OUT"
  if [ -n "${TN_KEEP:-}" ]; then
    cp -r "$TN_DIR/a" "$TN_DIR/a-$x-$y-$run.log.d" 2>/dev/null || true
    cp -r "$TN_DIR/b" "$TN_DIR/b-$x-$y-$run.log.d" 2>/dev/null || true
  fi
  tn_release
  rm -rf "$TN_DIR/a" "$TN_DIR/b"
}

for run in $(seq 1 "$runs"); do
  for p in "${pairs[@]}"; do one_pair "${p%%:*}" "${p##*:}" "$run"; done
done

python3 - "$OUT" "$json" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n = len(rows); conn = sum(r["connected"] for r in rows); direct = sum(r["direct"] for r in rows)
share = 100.0 * direct / n if n else 0.0
anchor = "libp2p DCUtR ~70% (decentralized hole punching, libp2p DCUtR, 4.4 M attempts)"
if sys.argv[2] == "1":
    print(json.dumps({"summary": {"pairs": n, "connected": conn, "direct": direct, "direct_share_pct": round(share, 1),
                                  "anchor": anchor}}))
else:
    cols = ["a", "b", "run", "connected", "direct", "ms_to_connect", "ms_to_direct", "ms_cold_to_direct", "transport", "established_by", "before_connect"]
    fmt = lambda v: "-" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    w = {c: max(len(c), *(len(fmt(r.get(c))) for r in rows)) for c in cols} if rows else {}
    print("  ".join(c.ljust(w[c]) for c in cols))
    for r in rows:
        print("  ".join(fmt(r.get(c)).ljust(w[c]) for c in cols))
    print(f"connected {conn}/{n}; direct {direct}/{n} = {share:.1f}% of all pairs, beside {anchor}")
EOF
