# Test nets with real NATs, in network namespaces. Sourced by run.sh and matrix.sh (bash).
#
#   "public internet": a bridge in namespace ${TN_P}-pub, 10.200.0.0/24
#       10.200.0.2 boot latticad   10.200.0.3 relay latticad   10.200.0.4 + .5 STUN (coturn)
#       10.200.0.10+i  WAN leg of router i (11.200.0.10+i for upnp)   10.200.0.100+k  host k, preset "none"
#   router i (namespace ${TN_P}-r<i>): eth0 on the public bridge, bridge "lan" 192.168.<i>.1/24
#   host j behind router i: 192.168.<i>.(10+j), default route via 192.168.<i>.1
#
# Every namespace, daemon and temporary file of a run carries the prefix ltn<pid>; tn_teardown
# (installed as an EXIT/INT/TERM trap by tn_init) removes all of it, also on failure.
# Docs/TESTNETS.md describes the presets and the impairments.

TN_PUB_NET=${TN_PUB_NET:-10.200.0}
# miniupnpd (2.3.1) refuses to map ports when its WAN address is private or reserved (RFC 1918,
# RFC 5737 and the other special ranges included), so the WAN legs of upnp routers are on
# 11.200.0.0/24 (not special to miniupnpd), on the same bridge: every public namespace has an
# on-link route to it. Nothing here is routed beyond the test net's namespaces.
TN_UPNP_NET=11.200.0
TN_PRESETS_ALL="none fullcone restricted symmetric upnp"

tn_log() { echo "testnet: $*" >&2; }

# tn_require: exits 77 (skip) with a message when we cannot build test nets here.
tn_require() {
  if [ "$(id -u)" -ne 0 ]; then echo "testnet: SKIP: needs root (network namespaces, iptables)"; exit 77; fi
  for t in ip iptables; do
    command -v "$t" >/dev/null || { echo "testnet: SKIP: $t not found"; exit 77; }
  done
  if ! ip netns add "ltnprobe$$" 2>/dev/null; then echo "testnet: SKIP: cannot create network namespaces"; exit 77; fi
  if ! ip netns exec "ltnprobe$$" iptables -t nat -L >/dev/null 2>&1; then
    ip netns del "ltnprobe$$"; echo "testnet: SKIP: iptables (nat table) does not work in a namespace"; exit 77
  fi
  ip netns del "ltnprobe$$"
}

# tn_install_tools [stun] [upnp] [conntrack]: the apt packages a scenario needs (idempotent).
tn_install_tools() {
  local pkgs=()
  for want in "$@"; do
    case "$want" in
      stun) command -v turnserver >/dev/null || pkgs+=(coturn) ;;
      upnp) command -v miniupnpd >/dev/null || pkgs+=(miniupnpd-nftables) ; command -v nft >/dev/null || pkgs+=(nftables) ;;
      conntrack) command -v conntrack >/dev/null || pkgs+=(conntrack) ;;
    esac
  done
  if [ ${#pkgs[@]} -gt 0 ]; then
    tn_log "installing ${pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${pkgs[@]}" >/dev/null 2>&1 || {
      apt-get update >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y "${pkgs[@]}" >/dev/null
    }
  fi
  # The Debian packages start their daemons as system services; the test nets run their own.
  return 0
}

# tn_bin_dir: where latticad and lattica are ($LATTICA_BIN_DIR, else a release build of this checkout).
tn_bin_dir() {
  if [ -n "${LATTICA_BIN_DIR:-}" ]; then echo "$LATTICA_BIN_DIR"; return; fi
  local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  for d in "$root"/.build*/release; do
    [ -x "$d/latticad" ] && [ -x "$d/lattica" ] && { echo "$d"; return; }
  done
  echo "testnet: no latticad build found; set LATTICA_BIN_DIR or run swift build -c release" >&2
  return 1
}

TN_NS=()        # namespaces we created, deleted in reverse order
TN_PIDS=()      # processes we started (each in its own namespace)
TN_INIT_DONE=0

tn_init() {
  TN_P="ltn$$"
  TN_DIR="$(mktemp -d "/tmp/${TN_P}.XXXXXX")"
  chmod 0755 "$TN_DIR"
  TN_INIT_DONE=1
  trap 'tn_teardown; exit 130' INT
  trap 'tn_teardown; exit 143' TERM
  trap 'rc=$?; tn_teardown; [ "$rc" = 0 ] || exit "$rc"; [ "${FAILED:-0}" = 0 ] || exit 1' EXIT
}

tn_teardown() {
  [ "$TN_INIT_DONE" = 1 ] || return 0
  TN_INIT_DONE=0
  local p
  for p in "${TN_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${TN_PIDS[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  TN_PIDS=()
  local i
  for ((i=${#TN_NS[@]}-1; i>=0; i--)); do
    # anything still running in the namespace (a helper a scenario forgot) goes with it
    local left; left="$(ip netns pids "${TN_NS[$i]}" 2>/dev/null || true)"
    [ -n "$left" ] && kill -KILL $left 2>/dev/null || true
    ip netns del "${TN_NS[$i]}" 2>/dev/null || true
  done
  TN_NS=()
  if [ -n "${TN_KEEP:-}" ]; then tn_log "kept $TN_DIR"; else rm -rf "$TN_DIR"; fi
  "${TN_ON_EXIT:-:}"
}

# tn_mark / tn_release: everything started or created after tn_mark is stopped and deleted by
# tn_release (one matrix pair after another on the same core net).
tn_mark() { TN_MARK_NS=${#TN_NS[@]}; TN_MARK_PIDS=${#TN_PIDS[@]}; }
tn_release() {
  local i p
  for ((i=${#TN_PIDS[@]}-1; i>=TN_MARK_PIDS; i--)); do kill -TERM "${TN_PIDS[$i]}" 2>/dev/null || true; done
  for ((i=${#TN_PIDS[@]}-1; i>=TN_MARK_PIDS; i--)); do
    p="${TN_PIDS[$i]}"
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
    unset "TN_PIDS[$i]"
  done
  for ((i=${#TN_NS[@]}-1; i>=TN_MARK_NS; i--)); do
    local left; left="$(ip netns pids "${TN_NS[$i]}" 2>/dev/null || true)"
    [ -n "$left" ] && kill -KILL $left 2>/dev/null || true
    ip -n "${TN_NS[$i]}" link del eth0 2>/dev/null || true
    ip netns del "${TN_NS[$i]}" 2>/dev/null || true
    unset "TN_NS[$i]"
  done
  TN_PIDS=("${TN_PIDS[@]}"); TN_NS=("${TN_NS[@]}")
}

# tn_ns NAME: a fresh namespace ${TN_P}-NAME with lo up; prints nothing.
tn_ns() {
  local ns="${TN_P}-$1"
  ip netns add "$ns"
  TN_NS+=("$ns")
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
}

tn_exec() { local ns="${TN_P}-$1"; shift; ip netns exec "$ns" "$@"; }

# tn_public_up: the public segment (a bridge in its own namespace).
tn_public_up() {
  tn_ns pub
  ip -n "${TN_P}-pub" link add br0 type bridge
  ip -n "${TN_P}-pub" link set br0 up
}

# tn_link_public NAME IP [IP2]: connects namespace NAME (eth0) to the public bridge.
tn_link_public() {
  TN_LINKS=$(( ${TN_LINKS:-0} + 1 ))
  # unique port names: a deleted namespace's veth disappears asynchronously
  local name="$1" ip="$2" ns="${TN_P}-$1" port="p${TN_LINKS}${1:0:8}"
  ip link add eth0 netns "$ns" type veth peer name "$port" netns "${TN_P}-pub"
  ip -n "${TN_P}-pub" link set "$port" master br0 up
  ip -n "$ns" addr add "$ip/24" dev eth0
  [ -n "${3:-}" ] && ip -n "$ns" addr add "$3/24" dev eth0
  ip -n "$ns" link set eth0 up
  case "$ip" in
    "$TN_PUB_NET".*) ip -n "$ns" route add "$TN_UPNP_NET.0/24" dev eth0 ;;
    *) ip -n "$ns" route add "$TN_PUB_NET.0/24" dev eth0 ;;
  esac
}

# tn_public_host NAME IP: a host directly on the public segment (preset "none", boot, relay).
tn_public_host() { tn_ns "$1"; tn_link_public "$1" "$2"; }

TN_ROUTERS=()
# tn_router NAME INDEX PRESET: router namespace with WAN 10.200.0.(10+INDEX), LAN 192.168.INDEX.1/24.
tn_router() {
  local name="$1" idx="$2" preset="$3" ns="${TN_P}-$1"
  tn_ns "$name"
  local wan="$TN_PUB_NET.$((10 + idx))"
  [ "$preset" = upnp ] && wan="$TN_UPNP_NET.$((10 + idx))"
  tn_link_public "$name" "$wan"
  eval "TN_R_${name}_WAN=$wan"
  ip -n "$ns" link add lan type bridge
  ip -n "$ns" addr add "192.168.$idx.1/24" dev lan
  ip -n "$ns" link set lan up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  # per-router state, read by tn_host and the preset functions
  eval "TN_R_${name}_IDX=$idx TN_R_${name}_PRESET=$preset TN_R_${name}_HOSTS=0"
  TN_ROUTERS+=("$name")
  tn_nat_"$preset" "$name"
}

tn_router_wan() { local v="TN_R_$1_WAN"; echo "${!v}"; }

# tn_host NAME ROUTER: a host on ROUTER's LAN; sets TN_HOST_IP to its LAN address (not in a
# subshell: it records state).
tn_host() {
  local name="$1" router="$2" ns="${TN_P}-$1" rns="${TN_P}-$2"
  local iv="TN_R_${router}_IDX" hv="TN_R_${router}_HOSTS" pv="TN_R_${router}_PRESET"
  local idx="${!iv}" n=$(( ${!hv} + 1 ))
  eval "TN_R_${router}_HOSTS=$n"
  local ip="192.168.$idx.$((10 + n))"
  tn_ns "$name"
  ip link add eth0 netns "$ns" type veth peer name "l$n" netns "$rns"
  ip -n "$rns" link set "l$n" master lan up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "192.168.$idx.1"
  if [ "${!pv}" = fullcone ]; then tn_fullcone_map "$router" "$ip" "$n"; fi
  TN_HOST_IP="$ip"
}

# ---- NAT presets (RFC 4787 terms: mapping / filtering behaviour) ----------------------------

# The stateful firewall of the cone and symmetric presets: unsolicited inbound packets are
# dropped on FORWARD and on the router's own INPUT. Without the INPUT rule an unsolicited packet
# to the WAN address creates a conntrack entry on the router, and the next outbound mapping
# that would collide with it gets another port: the NAT degrades to address-dependent mapping.
tn_stateful_fw() {
  local r="$1"
  tn_exec "$r" iptables -A FORWARD -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  [ "${2:-}" = dnat_ok ] && tn_exec "$r" iptables -A FORWARD -i eth0 -m conntrack --ctstate DNAT -j ACCEPT
  tn_exec "$r" iptables -A FORWARD -i eth0 -j DROP
  tn_exec "$r" iptables -A INPUT -i eth0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  tn_exec "$r" iptables -A INPUT -i eth0 -j DROP
}

# none: no router (hosts sit on the public segment); a router with this preset only forwards.
tn_nat_none() { :; }

# fullcone: endpoint-independent mapping and filtering. SNAT to the WAN address keeps the source
# port; inbound to a port is DNATed to the host that owns it (tn_fullcone_map): the first host
# gets every port, later hosts their own port range 4000+100n..4099+100n.
tn_nat_fullcone() {
  local r="$1"
  tn_exec "$r" iptables -t nat -A POSTROUTING -o eth0 -j SNAT --to-source "$(tn_router_wan "$r")"
}
tn_fullcone_map() {
  local r="$1" ip="$2" n="$3"
  if [ "$n" = 1 ]; then
    tn_exec "$r" iptables -t nat -A PREROUTING -i eth0 -j DNAT --to-destination "$ip"
  else
    local lo=$((4000 + 100 * n)) hi=$((4099 + 100 * n))
    for proto in tcp udp; do
      tn_exec "$r" iptables -t nat -I PREROUTING 1 -i eth0 -p "$proto" --dport "$lo:$hi" -j DNAT --to-destination "$ip"
    done
  fi
}

# restricted (port-restricted cone): endpoint-independent mapping (MASQUERADE keeps the source
# port when it is free), address-and-port-dependent filtering (conntrack).
tn_nat_restricted() {
  local r="$1"
  tn_exec "$r" iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
  tn_stateful_fw "$r"
}

# symmetric: endpoint-dependent mapping (a random port per destination), same filtering.
tn_nat_symmetric() {
  local r="$1"
  tn_exec "$r" iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE --random-fully
  tn_stateful_fw "$r"
}

# upnp: restricted, plus miniupnpd on the LAN side (UPnP-IGD, NAT-PMP and PCP); inbound that a
# mapping DNATs is accepted (ctstate DNAT). miniupnpd's nftables backend keeps its mappings in
# its own table "inet miniupnpd" (chains miniupnpd / prerouting_miniupnpd / postrouting_miniupnpd).
tn_nat_upnp() {
  local r="$1" ns="${TN_P}-$1" idx; local iv="TN_R_$1_IDX"; idx="${!iv}"
  tn_exec "$r" iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
  tn_stateful_fw "$r" dnat_ok
  tn_exec "$r" nft -f - <<EOF
table inet miniupnpd {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
EOF
  local conf="$TN_DIR/miniupnpd-$r.conf"
  cat >"$conf" <<EOF
ext_ifname=eth0
listening_ip=lan
port=0
enable_natpmp=yes
enable_upnp=yes
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
secure_mode=yes
system_uptime=yes
min_lifetime=60
max_lifetime=86400
uuid=3a0f6c1e-13a7-4a3b-9a5e-0000000000$(printf %02d "$idx")
allow 1024-65535 192.168.$idx.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
  ip netns exec "$ns" miniupnpd -d -f "$conf" -P "$TN_DIR/miniupnpd-$r.pid" >"$TN_DIR/miniupnpd-$r.log" 2>&1 &
  TN_PIDS+=($!)
}

# tn_upnp_rules ROUTER: the port mappings miniupnpd holds now (nft rules of its DNAT chain).
tn_upnp_rules() { tn_exec "$1" nft list chain inet miniupnpd prerouting_miniupnpd 2>/dev/null | grep -E 'dnat' || true; }

# ---- link impairments -----------------------------------------------------------------------

# tn_impair NAME DEV [--loss PCT] [--rate RATE] [--delay MS]: on NAME's interface DEV.
#   loss: iptables -m statistic --mode random, inbound on DEV (INPUT and FORWARD);
#   rate: tc tbf on DEV's egress (e.g. 10mbit);
#   delay: every packet leaving through DEV is queued (NFQUEUE) to Scripts/testnet/nfq_delay.py,
#          which holds it for MS ms (python netfilterqueue in a venv; see Docs/TESTNETS.md).
tn_impair() {
  local name="$1" dev="$2"; shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --loss)
        local p; p="$(python3 -c "print($2/100)")"
        tn_exec "$name" iptables -I INPUT 1 -i "$dev" -m statistic --mode random --probability "$p" -j DROP
        tn_exec "$name" iptables -I FORWARD 1 -i "$dev" -m statistic --mode random --probability "$p" -j DROP
        shift 2 ;;
      --rate)
        tn_exec "$name" tc qdisc replace dev "$dev" root tbf rate "$2" burst 32kbit latency 400ms
        shift 2 ;;
      --delay)
        tn_delay "$name" "$dev" "$2"; shift 2 ;;
      *) tn_log "tn_impair: unknown option $1"; return 2 ;;
    esac
  done
}

TN_QUEUE=0
tn_delay() {
  local name="$1" dev="$2" ms="$3" py
  py="$(tn_nfq_python)" || { tn_log "delay needs python netfilterqueue (see Docs/TESTNETS.md)"; return 1; }
  TN_QUEUE=$((TN_QUEUE + 1))
  local q=$TN_QUEUE here; here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  ip netns exec "${TN_P}-$name" "$py" "$here/nfq_delay.py" --queue "$q" --delay-ms "$ms" >"$TN_DIR/nfq-$name-$q.log" 2>&1 &
  TN_PIDS+=($!)
  # wait until the queue is bound (its log says so), then route packets into it
  for _ in $(seq 1 50); do grep -q bound "$TN_DIR/nfq-$name-$q.log" 2>/dev/null && break; sleep 0.1; done
  grep -q bound "$TN_DIR/nfq-$name-$q.log" || { tn_log "nfq_delay did not start: $(cat "$TN_DIR/nfq-$name-$q.log")"; return 1; }
  tn_exec "$name" iptables -t mangle -A POSTROUTING -o "$dev" -j NFQUEUE --queue-num "$q" --queue-bypass
}

# tn_nfq_python: a python with netfilterqueue (a venv in /tmp/ltn-venv, made on first use).
tn_nfq_python() {
  local v=/tmp/ltn-venv
  if [ -x "$v/bin/python" ] && "$v/bin/python" -c 'import netfilterqueue' 2>/dev/null; then echo "$v/bin/python"; return; fi
  dpkg -s libnetfilter-queue-dev >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y libnetfilter-queue1 libnetfilter-queue-dev >/dev/null 2>&1
  /usr/bin/python3 -m venv "$v" >/dev/null 2>&1 && "$v/bin/pip" install -q netfilterqueue==1.1.0 >/dev/null 2>&1
  "$v/bin/python" -c 'import netfilterqueue' 2>/dev/null && echo "$v/bin/python"
}

# ---- servers on the public segment ----------------------------------------------------------

# tn_stun_up: coturn as a STUN-only server on 10.200.0.4 and .5 (ports 3478 and 3479), so that
# it can answer RFC 5780 CHANGE-REQUEST and reports OTHER-ADDRESS.
tn_stun_up() {
  tn_ns stun
  tn_link_public stun "$TN_PUB_NET.4" "$TN_PUB_NET.5"
  # coturn 4.6 answers CHANGE-REQUEST and sends OTHER-ADDRESS only with the `rfc5780` directive,
  # which exists in its config file only (the command line has just --no-rfc5780)
  printf 'rfc5780\nstun-only\nno-cli\nno-tls\nno-dtls\nlistening-port=3478\nalt-listening-port=3479\nlistening-ip=%s\nlistening-ip=%s\nlog-file=stdout\nsimple-log\npidfile=%s\n' \
    "$TN_PUB_NET.4" "$TN_PUB_NET.5" "$TN_DIR/turnserver.pid" >"$TN_DIR/turnserver.conf"
  tn_exec stun turnserver -c "$TN_DIR/turnserver.conf" >"$TN_DIR/turnserver.log" 2>&1 &
  TN_PIDS+=($!)
}

# tn_daemon NAME NSNAME [latticad args...]: starts latticad in namespace NSNAME with data dir
# $TN_DIR/NAME, listening on 0.0.0.0:4001; waits until its control socket answers.
tn_daemon() {
  local name="$1" nsname="$2"; shift 2
  local d="$TN_DIR/$name" bin; bin="$(tn_bin_dir)"
  mkdir -p "$d"
  # hosts get $TN_DIR/host.toml (written by tn_core_up) unless the caller names a config
  case " $* " in *" --config "*) ;; *) [ -s "$TN_DIR/host.toml" ] && set -- --config "$TN_DIR/host.toml" "$@" ;; esac
  ip netns exec "${TN_P}-$nsname" "$bin/latticad" --data-dir "$d" --listen "/ip4/0.0.0.0/tcp/${TN_PORT:-4001}" \
    --metrics-addr "" ${TN_LOG_LEVEL:+--log-level "$TN_LOG_LEVEL"} "$@" 2>"$d/latticad.log" &
  TN_PIDS+=($!)
  eval "TN_D_${name}_PID=$!"
  for _ in $(seq 1 100); do
    "$bin/lattica" --data-dir "$d" status --json >/dev/null 2>&1 && return 0
    kill -0 "$!" 2>/dev/null || break
    sleep 0.05
  done
  tn_log "latticad $name did not start:"; tail -5 "$d/latticad.log" >&2; return 1
}

tn_cli() { local name="$1"; shift; "$(tn_bin_dir)/lattica" --data-dir "$TN_DIR/$name" "$@"; }
tn_peer_id() { tn_cli "$1" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["peer_id"])'; }

# tn_stop_daemon NAME: SIGTERM, wait for the exit.
tn_stop_daemon() {
  local v="TN_D_$1_PID" p; p="${!v}"
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}

# tn_core_up: public segment, STUN, the boot node (publishes its addresses to $TN_DIR/boot.addrs)
# and the relay node (bootstraps from it). Both serve as Circuit Relay v2 hops (`[relay] hop =
# "on"`; the default "auto" waits for AutoNAT to call the node public) when latticad has relay;
# every node gets `[dcutr] private_addrs = true` when latticad has DCUtR.
tn_core_up() {
  tn_public_up
  TN_STUN_UP=""
  if command -v turnserver >/dev/null; then tn_stun_up; TN_STUN_UP=1; fi
  local cfg=() bin; bin="$(tn_bin_dir)"
  : >"$TN_DIR/host.toml"
  # the "public internet" is 10.200.0.0/24 (RFC 1918): DCUtR must be allowed to punch to it
  if grep -qa "/libp2p/dcutr" "$bin/latticad"; then printf '[dcutr]\nprivate_addrs = true\n' >>"$TN_DIR/host.toml"; fi
  # the STUN servers classify each node's NAT (mapping, filtering): the birthday punch needs it
  if [ -n "${TN_STUN_UP:-}" ] && grep -qa "stun.servers\|interval_s" "$bin/latticad"; then
    # (a 100 ms RTO: the filtering tests wait out their silence, 3 requests, on a 0.1 ms LAN)
    printf '[stun]\nservers = ["%s.4:3478"]\nrto_ms = 100\n' "$TN_PUB_NET" >>"$TN_DIR/host.toml"
  fi
  cp "$TN_DIR/host.toml" "$TN_DIR/public.toml"
  if grep -qa "circuit/relay/0.2.0/hop" "$bin/latticad"; then
    printf '[relay]\nhop = "on"\n' >>"$TN_DIR/public.toml"
    TN_HAS_RELAY=1
  fi
  cfg=(--config "$TN_DIR/public.toml")
  tn_public_host boot "$TN_PUB_NET.2"
  tn_daemon boot boot ${cfg[@]+"${cfg[@]}"} --publish-addrs-file "$TN_DIR/boot.addrs"
  tn_public_host relay "$TN_PUB_NET.3"
  tn_daemon relay relay ${cfg[@]+"${cfg[@]}"} --bootstrap-file "$TN_DIR/boot.addrs"
}

# tn_table: reads lines "k=v k=v ..." on stdin, prints them as an aligned table.
tn_table() {
  python3 -c '
import sys
rows=[dict(kv.split("=",1) for kv in l.split()) for l in sys.stdin if l.strip()]
if not rows: sys.exit(0)
cols=list(rows[0].keys())
w={c:max(len(c),*(len(r.get(c,"")) for r in rows)) for c in cols}
print("  ".join(c.ljust(w[c]) for c in cols))
for r in rows: print("  ".join(r.get(c,"").ljust(w[c]) for c in cols))
'
}
