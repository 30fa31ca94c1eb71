#!/bin/sh
# Entry point of a router container (docker-compose.yml): NAT between its WAN network (the one
# holding $WAN_IP) and its LAN network, as nftables rules, after RFC 4787 (Docs/TESTNETS.md):
#   fullcone    SNAT to the WAN address keeping ports + DNAT of all inbound to $LAN_HOST
#   restricted  masquerade + stateful filter (forward and input): port-restricted cone
#   symmetric   masquerade fully-random + the same filter
# Needs NET_ADMIN and net.ipv4.ip_forward=1 (set by compose). Then sleeps until stopped.
set -eu
preset="$1"
wan_if="$(ip -o -4 addr show | awk -v ip="$WAN_IP" '$4 ~ "^"ip"/" {print $2; exit}')"
[ "${ROUTER_CHECK:-}" = 1 ] && wan_if=eth0   # compose-check.sh: only check the rules (nft -c)
[ -n "$wan_if" ] || { echo "router: no interface holds $WAN_IP" >&2; ip -o -4 addr show >&2; exit 1; }
filter="
table inet ltn_filter {
  chain forward { type filter hook forward priority 0; policy accept;
    iifname \"$wan_if\" ct state established,related accept
    iifname \"$wan_if\" drop; }
  chain input { type filter hook input priority 0; policy accept;
    iifname \"$wan_if\" ct state established,related accept
    iifname \"$wan_if\" drop; }
}"
case "$preset" in
  fullcone) rules="
table ip ltn_nat {
  chain post { type nat hook postrouting priority 100; oifname \"$wan_if\" snat to $WAN_IP; }
  chain pre { type nat hook prerouting priority -100; iifname \"$wan_if\" dnat to $LAN_HOST; }
}" ;;
  restricted) rules="
table ip ltn_nat {
  chain post { type nat hook postrouting priority 100; oifname \"$wan_if\" masquerade; }
}
$filter" ;;
  symmetric) rules="
table ip ltn_nat {
  chain post { type nat hook postrouting priority 100; oifname \"$wan_if\" masquerade fully-random; }
}
$filter" ;;
  *) echo "router: unknown preset $preset" >&2; exit 2 ;;
esac
if [ "${ROUTER_CHECK:-}" = 1 ]; then echo "$rules" | nft -c -f -; exit; fi
echo "$rules" | nft -f -
echo "router: $preset on $wan_if ($WAN_IP)"
nft list ruleset
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
