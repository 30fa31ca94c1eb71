#!/usr/bin/env bash
# Brings a test net up, runs one scenario, prints a result table, tears everything down (also on
# failure or Ctrl-C). Needs root; exits 77 (skip) with a message where namespaces or iptables do
# not work. Docs/TESTNETS.md.
#
#   Scripts/testnet/run.sh selfcheck     the NAT presets checked with plain sockets (< 60 s, no latticad)
#   Scripts/testnet/run.sh pair X Y      one host behind preset X, one behind Y: connect, print JSON
#   Scripts/testnet/run.sh train         8 nodes behind 4 NATs train together (digits)
#   Scripts/testnet/run.sh portmap       latticad behind the upnp preset maps its port; gone after stop
#   Scripts/testnet/run.sh shell         the full topology (one host per preset), until Ctrl-C
#
# Options: --keep (leave $TN_DIR with the logs), --loss PCT / --rate R / --delay MS (impair the
# hosts' links in pair and train).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"

scenario="${1:-}"; [ $# -gt 0 ] && shift
IMPAIR=()
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) TN_KEEP=1; shift ;;
    --loss|--rate|--delay) IMPAIR+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
case "$scenario" in
  selfcheck|pair|train|portmap|shell) ;;
  -h|--help|"") sed -n '2,16p' "$0"; exit 0 ;;
  *) echo "run.sh: unknown scenario '$scenario'" >&2; exit 2 ;;
esac
tn_require
PROBE="python3 $here/probe.py"
RESULTS="$(mktemp)"
FAILED=0
check() {  # check NAME OK(0/1) DETAIL
  local v=PASS; [ "$2" = 1 ] || { v=FAIL; FAILED=1; }
  echo "check=$1 result=$v detail=$(printf %s "${3:-}" | tr -s ' \t\n' '_' | cut -c1-70)" >>"$RESULTS"
}
PRINTED=0
finish() {
  PRINTED=1
  tn_table <"$RESULTS"
  rm -f "$RESULTS"
  [ "$FAILED" = 0 ]
}
# A scenario that dies half way still prints what it has (tn_teardown calls this last).
TN_ON_EXIT=on_exit
on_exit() {
  if [ "$PRINTED" = 0 ] && [ -f "$RESULTS" ]; then
    echo "check=scenario.completed result=FAIL detail=aborted_(see_stderr)" >>"$RESULTS"
    FAILED=1; finish || true
  fi
}

# ---- selfcheck ------------------------------------------------------------------------------
# Plain UDP/TCP sockets through each preset: what RFC 4787 says the preset does, it does.
selfcheck() {
  tn_install_tools conntrack
  tn_init
  tn_public_up
  tn_public_host p1 "$TN_PUB_NET.201"
  tn_public_host p2 "$TN_PUB_NET.202"
  for p in p1 p2; do
    tn_exec "$p" $PROBE echo --port 7000 & TN_PIDS+=($!)
    tn_exec "$p" $PROBE echo --port 7001 & TN_PIDS+=($!)
  done
  local i=0 presets="fullcone restricted symmetric"
  command -v miniupnpd >/dev/null && command -v nft >/dev/null && presets="$presets upnp"
  for preset in $presets; do
    i=$((i + 1))
    tn_router "r$i" "$i" "$preset"
    tn_host "h$i" "r$i"
  done
  # the echo servers answer once they are bound
  local deadline=$((SECONDS + 5))
  until tn_exec h1 $PROBE send --src-port 5999 --to "$TN_PUB_NET.201:7001" --to "$TN_PUB_NET.202:7001" | grep -c reply | grep -q 2; do
    [ $SECONDS -lt $deadline ] || { check echo_servers 0 "not answering"; return; }
    sleep 0.1
  done
  i=0
  for preset in $presets; do
    i=$((i + 1))
    local wan; wan="$(tn_router_wan "r$i")"
    local out; out="$(tn_exec "h$i" $PROBE send --src-port 5000 --to "$TN_PUB_NET.201:7000" --to "$TN_PUB_NET.202:7000")"
    local m1 m2
    m1="$(sed -n "s/^reply $TN_PUB_NET.201:7000 mapped=//p" <<<"$out")"
    m2="$(sed -n "s/^reply $TN_PUB_NET.202:7000 mapped=//p" <<<"$out")"
    local ok=0; [ -n "$m1" ] && [ "${m1%:*}" = "$wan" ] && ok=1
    check "$preset.outbound_mapped_to_wan" "$ok" "$m1"
    case "$preset" in
      symmetric)
        ok=0; [ -n "$m1" ] && [ -n "$m2" ] && [ "$m1" != "$m2" ] && ok=1
        check "$preset.mapping_depends_on_destination" "$ok" "$m1 $m2" ;;
      *)
        ok=0; [ -n "$m1" ] && [ "$m1" = "$m2" ] && ok=1
        check "$preset.mapping_endpoint_independent" "$ok" "$m1 $m2" ;;
    esac
    [ "$preset" = fullcone ] && { ok=0; [ "${m1#*:}" = 5000 ] && ok=1; check "$preset.port_preserved" "$ok" "$m1"; }
    # unsolicited inbound: from p2 port 7002 (never contacted) and from p1 port 7001 (address
    # contacted, port not) to the mapped port, while the host listens on it
    local ready="$TN_DIR/ready-$i" got="$TN_DIR/got-$i"
    rm -f "$ready"
    tn_exec "h$i" $PROBE send --src-port 5000 --to "$TN_PUB_NET.201:7000" --listen 1.0 --ready "$ready" >"$got" &
    local hp=$!
    deadline=$((SECONDS + 3)); while [ ! -e "$ready" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    tn_exec p2 $PROBE poke --src-port 7002 --to "$m1"
    tn_exec p1 $PROBE poke --src-port 7003 --to "$m1"
    wait "$hp" || true
    local from_other=0 from_port=0
    grep -q "^got $TN_PUB_NET.202:7002" "$got" && from_other=1
    grep -q "^got $TN_PUB_NET.201:7003" "$got" && from_port=1
    if [ "$preset" = fullcone ]; then
      check "$preset.accepts_unsolicited_from_any_host" "$from_other" "p2:7002->$m1"
      check "$preset.accepts_unsolicited_from_other_port" "$from_port" "p1:7003->$m1"
    else
      check "$preset.drops_unsolicited_from_other_host" "$((1 - from_other))" "p2:7002->$m1"
      check "$preset.drops_unsolicited_from_other_port" "$((1 - from_port))" "p1:7003->$m1"
      # after an outbound packet to exactly p2:7000, p2:7000 gets in (its echo answer)
      out="$(tn_exec "h$i" $PROBE send --src-port 5000 --to "$TN_PUB_NET.202:7000")"
      ok=0; grep -q "^reply $TN_PUB_NET.202:7000" <<<"$out" && ok=1
      check "$preset.accepts_after_outbound_to_that_ip_port" "$ok" "p2:7000"
      # TCP: an unsolicited connect to the WAN address does not get through (nor to the router)
      out="$(tn_exec p1 $PROBE tcp --to "$wan:4001" --timeout 0.7)"
      ok=0; [[ "$out" == failed* ]] && ok=1
      check "$preset.tcp_unsolicited_refused" "$ok" "$out"
    fi
    if command -v conntrack >/dev/null; then
      local n; n="$(tn_exec "r$i" conntrack -L -p udp 2>/dev/null | grep -c "dport=7000" || true)"
      ok=0; [ "$n" -ge 1 ] && ok=1
      check "$preset.conntrack_has_the_flows" "$ok" "entries=$n"
    fi
    if [ "$preset" = upnp ]; then upnp_check "$i" "$wan"; fi
  done
  impairment_check
}

# upnp: NAT-PMP answers on the LAN side, a mapping lets unsolicited TCP in, the rule is in nft.
upnp_check() {
  local i="$1" wan="$2" out ok
  local deadline=$((SECONDS + 5))
  until out="$(tn_exec "h$i" $PROBE natpmp --gateway "192.168.$i.1" --map-tcp 4001 --lifetime 60 2>&1)"; do
    [ $SECONDS -lt $deadline ] || break; sleep 0.2
  done
  ok=0; grep -q "^external $wan" <<<"$out" && ok=1
  check upnp.natpmp_external_address "$ok" "$(head -1 <<<"$out")"
  local ext; ext="$(sed -n 's/^mapped 4001->\([0-9]*\).*/\1/p' <<<"$out")"
  ok=0; [ -n "$ext" ] && ok=1
  check upnp.natpmp_maps_tcp_port "$ok" "4001->${ext:-none}"
  ok=0; tn_upnp_rules "r$i" | grep -q "dport ${ext:-x}" && ok=1
  check upnp.mapping_in_miniupnpd_rules "$ok" "$(tn_upnp_rules "r$i" | head -1 | tr -s ' ')"
  tn_exec "h$i" $PROBE echo --port 4001 & TN_PIDS+=($!)
  deadline=$((SECONDS + 3)); ok=0
  while [ $SECONDS -lt $deadline ]; do
    out="$(tn_exec p1 $PROBE tcp --to "$wan:${ext:-1}" --timeout 0.5)"
    [ "$out" = connected ] && { ok=1; break; }
    sleep 0.1
  done
  check upnp.mapped_port_accepts_unsolicited_tcp "$ok" "$out"
}

# Impairments on a public link: loss (iptables statistic), rate (tc tbf), delay (NFQUEUE).
impairment_check() {
  tn_public_host lossy "$TN_PUB_NET.203"
  tn_impair lossy eth0 --loss 50
  local ready="$TN_DIR/count-ready" n ok
  tn_exec lossy $PROBE count --port 7100 --timeout 3 --ready "$ready" >"$TN_DIR/count" &
  local cp=$!
  local deadline=$((SECONDS + 3)); while [ ! -e "$ready" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  tn_exec p1 $PROBE blast --to "$TN_PUB_NET.203:7100" --n 400
  wait "$cp" || true
  n="$(cat "$TN_DIR/count")"
  ok=0; [ "$n" -ge 120 ] && [ "$n" -le 280 ] && ok=1
  check impair.loss_50pct "$ok" "received=$n/400"
  tn_impair lossy eth0 --rate 4mbit
  ok=0; tn_exec lossy tc qdisc show dev eth0 | grep -q "tbf.*rate 4Mbit" && ok=1
  check impair.rate_tbf_installed "$ok" "$(tn_exec lossy tc qdisc show dev eth0 | head -1 | tr -s ' ')"
  if py="$(tn_nfq_python)"; then
    tn_public_host slow "$TN_PUB_NET.204"
    tn_exec slow $PROBE echo --port 7000 & TN_PIDS+=($!)
    local before after
    before="$(tn_exec p1 $PROBE rtt --to "$TN_PUB_NET.204:7000")"
    tn_impair slow eth0 --delay 100
    after="$(tn_exec p1 $PROBE rtt --to "$TN_PUB_NET.204:7000")"
    ok=0; python3 -c "import sys; sys.exit(0 if 95 <= float('${after:-0}') - float('${before:-0}') <= 200 else 1)" && ok=1
    check impair.delay_nfqueue_100ms "$ok" "rtt_ms_before=$before after=$after"
  else
    echo "check=impair.delay_nfqueue result=SKIP detail=no_python_netfilterqueue" >>"$RESULTS"
  fi
}

# ---- pair: one connection attempt between a host behind X and one behind Y ------------------
pair() {
  exec "$here/matrix.sh" --json --pair "${ARGS[0]:-restricted}" "${ARGS[1]:-restricted}" ${IMPAIR[@]+"${IMPAIR[@]}"} ${TN_KEEP:+--keep}
}

case "$scenario" in
  selfcheck)
    start=$SECONDS
    selfcheck
    echo "check=selfcheck.duration result=INFO detail=$((SECONDS - start))s" >>"$RESULTS"
    finish ;;
  pair) pair ;;
  train) . "$here/train.sh"; train_scenario; finish ;;
  portmap) . "$here/portmap.sh"; portmap_scenario; finish ;;
  shell)
    tn_install_tools stun upnp
    tn_init
    tn_core_up
    i=0
    for preset in fullcone restricted symmetric upnp; do
      i=$((i + 1)); tn_router "r$i" "$i" "$preset"; tn_host "h$i" "r$i"
      tn_daemon "h$i" "h$i" --bootstrap-file "$TN_DIR/boot.addrs"
    done
    tn_public_host h0 "$TN_PUB_NET.100"; tn_daemon h0 h0 --bootstrap-file "$TN_DIR/boot.addrs"
    echo "test net up in $TN_DIR (namespaces ${TN_P}-*); e.g.:"
    echo "  $(tn_bin_dir)/lattica --data-dir $TN_DIR/h1 peers"
    echo "  ip netns exec ${TN_P}-h2 bash"
    echo "Ctrl-C to tear down"
    PRINTED=1; rm -f "$RESULTS"
    while :; do sleep 3600 & wait $!; done ;;   # wait: a trap runs at once, not after the sleep
esac
