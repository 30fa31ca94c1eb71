#!/usr/bin/env bash
# Static checks of the container test net (there is no Docker engine in CI): every compose file
# parses and validates (`docker-compose config -q`, Debian's docker-compose 1.29, which needs no
# engine for this), every build target it names is a stage of the Dockerfile, and every file the
# Dockerfile copies from the checkout exists. Exit 1 on the first problem.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v docker-compose >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-compose >/dev/null
fi
status=0
for f in docker-compose*.yml; do
  if docker-compose -f "$f" config -q; then echo "compose-check: $f: valid"; else echo "compose-check: $f: INVALID" >&2; status=1; fi
  # build targets named in the file must be Dockerfile stages
  for t in $(docker-compose -f "$f" config 2>/dev/null | awk '/target:/ {print $2}' | sort -u); do
    grep -qiE "^FROM .* AS $t\$" Dockerfile || { echo "compose-check: $f: target '$t' is not a stage of Dockerfile" >&2; status=1; }
  done
done
for src in $(awk '/^COPY / && !/--from/ {for (i=2;i<NF;i++) print $i}' Dockerfile); do
  [ -e "$src" ] || { echo "compose-check: Dockerfile copies '$src', which does not exist" >&2; status=1; }
done
for s in Scripts/testnet/compose/*.sh; do sh -n "$s" || { echo "compose-check: $s: syntax error" >&2; status=1; }; done
# the routers' nftables rules, checked by nft itself (nft -c, in a throwaway network namespace)
if [ "$(id -u)" -eq 0 ] && command -v nft >/dev/null && command -v unshare >/dev/null; then
  for p in fullcone restricted symmetric; do
    if ROUTER_CHECK=1 WAN_IP=10.200.0.12 LAN_HOST=192.168.1.10 unshare -n sh Scripts/testnet/compose/router-entry.sh "$p"; then
      echo "compose-check: router rules '$p': valid"
    else echo "compose-check: router rules '$p': INVALID" >&2; status=1; fi
  done
else
  echo "compose-check: router rules not checked (needs root and nft)"
fi
exit "$status"
