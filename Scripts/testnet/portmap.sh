# run.sh portmap: latticad behind the upnp preset (miniupnpd with NAT-PMP) maps its TCP port:
# the mapping appears in miniupnpd's nftables rules, a public host connects to the mapped
# address, and the mapping is gone after the daemon stops (deleted, not left to expire). A node
# behind a router without NAT-PMP gives up within its bound. Sourced by run.sh.
portmap_scenario() {
  tn_install_tools upnp
  command -v miniupnpd >/dev/null || { check portmap.miniupnpd_installed 0 "apt-get install miniupnpd-nftables failed"; return; }
  tn_init
  tn_public_up
  tn_public_host p1 "$TN_PUB_NET.201"
  tn_router r1 1 upnp
  tn_host h1 r1
  local wan; wan="$(tn_router_wan r1)"
  # miniupnpd answers NAT-PMP once it is up
  local deadline=$((SECONDS + 5))
  until tn_exec h1 python3 "$here/probe.py" natpmp --gateway 192.168.1.1 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { check portmap.miniupnpd_answers 0 "no NAT-PMP answer"; return; }
    sleep 0.2
  done
  local t0=$SECONDS
  tn_daemon h1 h1 --log-level info
  local rules="" ok=0
  deadline=$((SECONDS + 10))
  while [ $SECONDS -lt $deadline ]; do
    rules="$(tn_upnp_rules r1)"
    grep -q "dport 4001 .*192.168.1.11:4001" <<<"$rules" && { ok=1; break; }
    sleep 0.2
  done
  check portmap.mapping_in_miniupnpd_rules "$ok" "$(head -1 <<<"$rules" | tr -s ' \t' ' ')"
  ok=0; grep -q "router maps our port" "$TN_DIR/h1/latticad.log" && ok=1
  check portmap.daemon_logged_the_mapping "$ok" "$(grep -o 'external=[^ ]*' "$TN_DIR/h1/latticad.log" | head -1)"
  local out; out="$(tn_exec p1 python3 "$here/probe.py" tcp --to "$wan:4001" --timeout 1)"
  ok=0; [ "$out" = connected ] && ok=1
  check portmap.public_host_reaches_the_mapped_port "$ok" "$wan:4001_$out"
  tn_stop_daemon h1
  ok=0; deadline=$((SECONDS + 3))
  while [ $SECONDS -lt $deadline ]; do
    tn_upnp_rules r1 | grep -q "dport 4001" || { ok=1; break; }
    sleep 0.1
  done
  check portmap.mapping_removed_after_stop "$ok" "$(tn_upnp_rules r1 | head -1 | tr -s ' \t' ' ')"
  # behind a router without NAT-PMP: gives up quietly, within the bound, with one log line
  tn_router r2 2 restricted
  tn_host h2 r2
  local s0; s0="$(date +%s%3N)"
  tn_daemon h2 h2 --log-level info
  ok=0; deadline=$((SECONDS + 8))
  while [ $SECONDS -lt $deadline ]; do
    grep -q "no NAT-PMP answer" "$TN_DIR/h2/latticad.log" && { ok=1; break; }
    sleep 0.1
  done
  local took=$(( $(date +%s%3N) - s0 ))
  [ "$took" -le 6000 ] || ok=0
  check portmap.gives_up_without_a_router "$ok" "after_${took}ms,_$(grep -c 'port mapping' "$TN_DIR/h2/latticad.log")_log_line(s)"
}
