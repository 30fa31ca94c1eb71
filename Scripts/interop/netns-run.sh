#!/usr/bin/env bash
# Runs a command inside a fresh, private network namespace that has only loopback (lo up), and a
# fresh PID namespace: when the command ends (or this script is killed), the kernel kills every
# process left in the namespace, so no peer outlives a test run, also on failure.
#
#   Scripts/interop/netns-run.sh <cmd> [args...]
#   Scripts/interop/netns-run.sh swift test --filter InteropTests
#   Scripts/interop/netns-run.sh bash -c 'latticad ... & Scripts/interop/peerctl.py lattica ...'
#
# The real Lattica sends STUN requests to public servers when a node starts: run it ONLY under this
# script (lattica_peer.py refuses to start when it sees any interface besides lo). Needs root (or
# CAP_SYS_ADMIN) for unshare. Exit status is the command's.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 <cmd> [args...]" >&2
  exit 64
fi

if [ "${LATTICA_INTEROP_NETNS_INNER:-}" != "1" ]; then
  export LATTICA_INTEROP_NETNS_INNER=1
  # --kill-child: if this script dies, the namespace's init (below) is SIGKILLed, which in turn
  # kills every process in the PID namespace.
  exec unshare --net --pid --mount --fork --kill-child --mount-proc "$0" "$@"
fi

# Inside: we are PID 1 of the new PID namespace (bash). Keep bash as PID 1 (it forwards signals;
# a program running as PID 1 would ignore SIGTERM/SIGINT by default) and run the command as a child.
unset LATTICA_INTEROP_NETNS_INNER
ip link set lo up
if [ "$(ls /sys/class/net 2>/dev/null | wc -l)" -gt 1 ] && ip -o link show | grep -qv ': lo:'; then
  echo "netns-run: namespace has interfaces besides lo" >&2
  exit 70
fi
exec 3<&0            # background jobs get /dev/null as stdin unless told otherwise
"$@" <&3 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
set +e
while :; do
  wait "$child"
  rc=$?
  # wait returns >128 when interrupted by a trapped signal; keep waiting while the child lives
  if kill -0 "$child" 2>/dev/null; then continue; fi
  break
done
exit "$rc"
