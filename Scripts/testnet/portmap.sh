# run.sh portmap: latticad behind the upnp preset (miniupnpd 2.3.1: UPnP-IGD, NAT-PMP and PCP)
# maps its TCP port with each protocol on its own (`[portmap] protocols = ["pcp"]`, then
# ["natpmp"], then ["upnp"]): the mapping appears in miniupnpd's nftables rules, miniupnpd's log
# names the protocol, `lattica nat` shows the method, a public host connects to the mapped
# address, and the mapping is gone after the daemon stops (deleted, not left to expire). A node
# behind a router without any of them gives up within its bound. Sourced by run.sh.

# portmap_one PROTO NAT_METHOD MINIUPNPD_MAPPED_PATTERN MINIUPNPD_REMOVED_PATTERN
portmap_one() {
  local proto="$1" method="$2" pattern="$3" removed="$4" wan; wan="$(tn_router_wan r1)"
  local cfg="$TN_DIR/portmap-$proto.toml"
  printf '[portmap]\nprotocols = ["%s"]\nlifetime_s = 60\n' "$proto" >"$cfg"
  local logs0; logs0="$(grep -c . "$TN_DIR/miniupnpd-r1.log" 2>/dev/null || echo 0)"
  local t0; t0="$(date +%s%3N)"
  tn_daemon "h1$proto" h1 --config "$cfg" --log-level info
  local rules="" ok=0 deadline=$((SECONDS + 10))
  while [ $SECONDS -lt $deadline ]; do
    rules="$(tn_upnp_rules r1)"
    grep -q "dport 4001 .*192.168.1.11:4001" <<<"$rules" && { ok=1; break; }
    sleep 0.1
  done
  local took=$(( $(date +%s%3N) - t0 ))
  check "portmap.$proto.mapping_in_miniupnpd_rules" "$ok" "after_${took}ms_$(head -1 <<<"$rules" | tr -s ' \t' ' ')"
  ok=0; tail -n +"$((logs0 + 1))" "$TN_DIR/miniupnpd-r1.log" | grep -q "$pattern" && ok=1
  check "portmap.$proto.miniupnpd_logged_the_mapping" "$ok" "$(tail -n +"$((logs0 + 1))" "$TN_DIR/miniupnpd-r1.log" | grep -m1 "$pattern" | cut -c1-60)"
  ok=0; grep "router maps our port" "$TN_DIR/h1$proto/latticad.log" | grep -q " method=$method " && ok=1
  check "portmap.$proto.daemon_logged_the_mapping" "$ok" "$(grep -o 'external=[^ ]*' "$TN_DIR/h1$proto/latticad.log" | head -1)"
  local nat; nat="$(tn_cli "h1$proto" nat 2>&1 | grep -A1 '^port mappings' | tail -1)"
  ok=0; grep -q "^  $method  /ip4/0.0.0.0/tcp/4001 -> /ip4/$wan/tcp/4001" <<<"$nat" && ok=1
  check "portmap.$proto.lattica_nat_shows_the_method" "$ok" "$nat"
  local out; out="$(tn_exec p1 python3 "$here/probe.py" tcp --to "$wan:4001" --timeout 1)"
  ok=0; [ "$out" = connected ] && ok=1
  check "portmap.$proto.public_host_reaches_the_mapped_port" "$ok" "$wan:4001_$out"
  # renewal at half the lifetime (60 s, miniupnpd's min_lifetime): 35 s after the mapping,
  # miniupnpd saw the request a second time and our lease has more than 40 s left again
  local mapped_at=$((t0 / 1000 + took / 1000))
  while [ "$(date +%s)" -lt $((mapped_at + 35)) ]; do sleep 1; done
  local n; n="$(tail -n +"$((logs0 + 1))" "$TN_DIR/miniupnpd-r1.log" | grep -c "$pattern" || true)"
  nat="$(tn_cli "h1$proto" nat --json 2>/dev/null | python3 -c 'import json,sys; m=json.load(sys.stdin)["port_mappings"]; print(int(m[0]["lifetime_s"]) if m else -1)' 2>&1)"
  ok=0; [ "$n" -ge 2 ] && [ "$nat" -gt 40 ] 2>/dev/null && tn_upnp_rules r1 | grep -q "dport 4001" && ok=1
  check "portmap.$proto.renewed_at_half_the_lifetime" "$ok" "${n}_requests_in_miniupnpd_log,_${nat}s_left_after_35s"
  tn_stop_daemon "h1$proto"
  ok=0; deadline=$((SECONDS + 3))
  while [ $SECONDS -lt $deadline ]; do
    tn_upnp_rules r1 | grep -q "dport 4001" || { ok=1; break; }
    sleep 0.1
  done
  check "portmap.$proto.mapping_removed_after_stop" "$ok" "$(tn_upnp_rules r1 | head -1 | tr -s ' \t' ' ')"
  # removed by our delete over the same protocol, not by expiry
  ok=0; tail -n +"$((logs0 + 1))" "$TN_DIR/miniupnpd-r1.log" | grep -q "$removed" && ok=1
  check "portmap.$proto.miniupnpd_logged_the_delete" "$ok" "$(tail -n +"$((logs0 + 1))" "$TN_DIR/miniupnpd-r1.log" | grep -m1 "$removed" | cut -c1-60)"
  # a mapping left behind would make the next protocol's check pass for the wrong reason
  [ "$ok" = 1 ] || tn_exec r1 nft flush chain inet miniupnpd prerouting_miniupnpd
}

portmap_scenario() {
  tn_install_tools upnp
  command -v miniupnpd >/dev/null || { check portmap.miniupnpd_installed 0 "apt-get install miniupnpd-nftables failed"; return; }
  tn_init
  tn_public_up
  tn_public_host p1 "$TN_PUB_NET.201"
  tn_router r1 1 upnp
  tn_host h1 r1
  # miniupnpd answers NAT-PMP once it is up
  local deadline=$((SECONDS + 5))
  until tn_exec h1 python3 "$here/probe.py" natpmp --gateway 192.168.1.1 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { check portmap.miniupnpd_answers 0 "no NAT-PMP answer"; return; }
    sleep 0.2
  done
  portmap_one pcp pcp "PCP MAP: added mapping TCP 4001" "PCP: TCP port 4001 mapping removed"
  portmap_one natpmp nat-pmp "NAT-PMP port mapping request : 4001->" "NAT-PMP TCP port 4001 mapping removed"
  portmap_one upnp upnp "AddPortMapping: ext port 4001" "DeletePortMapping: external port: 4001"
  # behind a router without PCP, NAT-PMP or UPnP: gives up quietly, within the bound
  # (3.75 s PCP + 3.75 s NAT-PMP + 3 s SSDP), one line per protocol and one at the end
  tn_router r2 2 restricted
  tn_host h2 r2
  local s0; s0="$(date +%s%3N)"
  tn_daemon h2 h2 --log-level info
  local ok=0; deadline=$((SECONDS + 15))
  while [ $SECONDS -lt $deadline ]; do
    grep -q "no router answer offered a mapping" "$TN_DIR/h2/latticad.log" && { ok=1; break; }
    sleep 0.1
  done
  local took=$(( $(date +%s%3N) - s0 ))
  [ "$took" -le 12000 ] || ok=0
  check portmap.gives_up_without_a_router "$ok" "after_${took}ms,_$(grep -c 'port mapping' "$TN_DIR/h2/latticad.log")_log_line(s)"
}
