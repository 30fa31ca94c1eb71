#!/bin/sh
# Entry point of the latticad container (docker-compose.yml). As root: when LATTICA_GATEWAY is set
# (a host behind a router container), route everything through it; then run latticad as the
# unprivileged user lattica with the container's arguments.
set -eu
if [ -n "${LATTICA_GATEWAY:-}" ]; then
  ip route replace default via "$LATTICA_GATEWAY"
fi
exec setpriv --reuid=lattica --regid=lattica --init-groups -- \
  latticad --listen /ip4/0.0.0.0/tcp/4001 --metrics-addr 0.0.0.0:9464 "$@"
