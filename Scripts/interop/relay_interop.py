#!/usr/bin/env python3
"""Circuit Relay v2 and DCUtR interop between latticad and peers nobody here wrote.

Runs real `latticad` processes (from --bin) next to py-libp2p 0.8.1 (pylibp2p_peer.py --relay/--dcutr)
and the real Lattica (lattica_peer.py --relay-server), all on 127.0.0.1, and checks each scenario:

  py-relay         py-libp2p is the relay (hop); latticad A reserves on it; latticad B dials
                   A through it and pings; B's `peers` shows the connection relayed via the py relay.
  our-relay-py     latticad R is the relay; a py-libp2p client reserves on R; latticad B dials the
                   py client through R and pings; py-libp2p dials latticad A through R and pings/echoes.
  dcutr-py         py-libp2p (DCUtR on) reaches latticad A through latticad R; DCUtR upgrades the
                   connection: A's `peers` shows py-libp2p direct, established by dcutr.
  lattica-relay    latticad R is the relay; a real Lattica node reserves on R (with_relay_servers);
                   latticad B dials Lattica through R and pings it.

Must run inside Scripts/interop/netns-run.sh (the real Lattica sends STUN at start). Prints one
JSON object per scenario and a table; exit status 1 if a scenario that is expected to pass fails.

    Scripts/interop/netns-run.sh .venv/bin/python Scripts/interop/relay_interop.py --bin /work/bin-relay
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from control import Control, stop_process  # noqa: E402
from peerctl import PeerProc  # noqa: E402


class Daemon:
    """A latticad with a config file written from `toml` (text), stopped on close()."""

    def __init__(self, bin_dir, root, name, toml, bootstrap=None):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        cfg = os.path.join(self.dir, "latticad.toml")
        with open(cfg, "w") as f:
            f.write('listen = ["/ip4/127.0.0.1/tcp/0"]\nmetrics_addr = ""\n' + toml)
        args = [os.path.join(bin_dir, "latticad"), "--data-dir", self.dir, "--config", cfg, "--log-level", os.environ.get("RELAY_INTEROP_LOG", "info")]
        for b in bootstrap or []:
            args += ["--bootstrap", b]
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.status = self.call("status")
                break
            except (OSError, EOFError, RuntimeError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"latticad {name} did not start (rc={self.proc.poll()}): {self.tail()}")
                time.sleep(0.05)
        self.peer_id = self.status["peer_id"]
        self.addr = next(a for a in self.status["listen_addrs"] if "/127.0.0.1/" in a)
        if "/p2p/" not in self.addr:
            self.addr += "/p2p/" + self.peer_id

    def call(self, method, **params):
        c = Control(os.path.join(self.dir, "control.sock"))
        try:
            return c.call(method, **params)
        finally:
            c.close()

    def peers(self):
        return {p["peer_id"]: p for p in self.call("peers")["peers"]}

    def tail(self, n=2000):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def close(self):
        stop_process(self.proc)
        self.log.close()


CLIENT = '''[dht]
mode = "client"
[relay]
hop = "off"
reserve = "on"
[dcutr]
enabled = %s
private_addrs = true
'''
RELAY = '''[relay]
hop = "on"
reserve = "off"
[dcutr]
enabled = false
'''


def wait(what, fn, seconds=20, step=0.2):
    """Polls fn() until it returns something truthy; raises with the last value/error otherwise."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - report the last error on timeout
            last = f"{type(e).__name__}: {e}"
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def ok(r, what):
    if not r.get("ok"):
        raise AssertionError(f"{what}: {r.get('error')}")
    return r


def reservation_on(d, relay_id):
    """The reservation `d` holds on `relay_id` (nat.status; older builds: its log line)."""
    try:
        st = d.call("nat.status")
        return next((r for r in st.get("relay_reservations", []) if r["relay"] == relay_id), None)
    except RuntimeError as e:
        if "unknown_method" not in str(e):
            raise
    for line in d.tail(1 << 20).splitlines():
        if "relay reservation" in line and f"relay={relay_id}" in line:
            return {"relay": relay_id, "log": line.split(" info ")[-1]}
    return None


class Scenario:
    def __init__(self, args, root):
        self.args, self.root, self.things = args, root, []
        self.facts = {}

    def daemon(self, name, toml, bootstrap=None):
        d = Daemon(self.args.bin, self.root, name, toml, bootstrap)
        self.things.append(d)
        return d

    def peer(self, kind, *args):
        p = PeerProc(kind, *args, stderr=open(os.path.join(self.root, f"{kind}-{len(self.things)}.log"), "w"))
        self.things.append(p)
        return p

    def close(self):
        for t in reversed(self.things):
            try:
                t.close()
            except Exception:
                pass


def py_relay(s):
    """py-libp2p hop; latticad A reserves on it; latticad B reaches A through it."""
    relay = s.peer("pylibp2p", "--relay", "hop", "--protocol-version", "/lattica/1.0.0")
    a = s.daemon("a", CLIENT % "false", bootstrap=[relay.addr])
    rsv = wait("A's reservation on the py-libp2p relay", lambda: reservation_on(a, relay.peer_id))
    s.facts["reservation"] = rsv
    b = s.daemon("b", CLIENT % "false")
    circuit = f"{relay.addr}/p2p-circuit/p2p/{a.peer_id}"
    s.facts["connect"] = b.call("connect", addr=circuit)
    ping = b.call("ping", peer=a.peer_id, count=3)
    s.facts["ping"] = ping
    e = b.peers()[a.peer_id]
    s.facts["b_sees_a"] = {k: e.get(k) for k in ("transport", "via", "established_by", "agent")}
    assert e["transport"] == "relayed" and e["via"] == relay.peer_id and e["established_by"] == "relay", e
    back = a.peers()[b.peer_id]
    assert back["transport"] == "relayed" and back["via"] == relay.peer_id, back


def our_relay_py(s):
    """latticad R hop; a py-libp2p client reserves on R and is reached through it; py dials A through R."""
    r = s.daemon("r", RELAY)
    py = s.peer("pylibp2p", "--relay", "client", "--protocol-version", "/lattica/1.0.0")
    s.facts["reserve"] = ok(py.call({"cmd": "reserve", "relay": r.addr}), "py-libp2p reserve on latticad")
    # Our reservation voucher passes py-libp2p's envelope checks (go-libp2p's payload type 03 02).
    assert s.facts["reserve"]["voucher"].get("valid"), s.facts["reserve"]["voucher"]
    # latticad B -> py-libp2p through R.
    b = s.daemon("b", CLIENT % "false")
    s.facts["b_connect"] = b.call("connect", addr=f"{r.addr}/p2p-circuit/p2p/{py.peer_id}")
    s.facts["b_ping"] = b.call("ping", peer=py.peer_id, count=3)
    e = b.peers()[py.peer_id]
    s.facts["b_sees_py"] = {k: e.get(k) for k in ("transport", "via", "established_by", "agent")}
    assert e["transport"] == "relayed" and e["via"] == r.peer_id, e
    assert e["agent"].startswith("py-libp2p"), e
    # py-libp2p -> latticad A through R (A reserves on R).
    a = s.daemon("a", CLIENT % "false", bootstrap=[r.addr])
    wait("A's reservation on latticad R", lambda: reservation_on(a, r.peer_id))
    d = ok(py.call({"cmd": "dial_circuit", "addr": f"{r.addr}/p2p-circuit/p2p/{a.peer_id}"}), "py dial circuit")
    s.facts["py_dial"] = {"connect_ms": d["connect_ms"], "agent": d["identify"]["agent_version"]}
    s.facts["py_ping"] = ok(py.call({"cmd": "ping", "peer": a.peer_id, "count": 3}), "py ping through R")["rtts_ms"]
    s.facts["py_echo"] = ok(py.call({"cmd": "echo", "peer": a.peer_id, "data": "through-our-relay"}), "py echo")
    assert s.facts["py_echo"]["match"], s.facts["py_echo"]
    e = a.peers()[py.peer_id]
    assert e["transport"] == "relayed" and e["via"] == r.peer_id, e
    c = ok(py.call({"cmd": "conns", "peer": a.peer_id}), "py conns")
    assert c["relayed"], c


def dcutr_py(s):
    """py-libp2p (DCUtR) reaches latticad A (DCUtR) through latticad R; the punch makes it direct."""
    r = s.daemon("r", RELAY)
    a = s.daemon("a", CLIENT % "true", bootstrap=[r.addr])
    wait("A's reservation on latticad R", lambda: reservation_on(a, r.peer_id))
    py = s.peer("pylibp2p", "--relay", "client", "--dcutr", "--protocol-version", "/lattica/1.0.0")
    ok(py.call({"cmd": "dial_circuit", "addr": f"{r.addr}/p2p-circuit/p2p/{a.peer_id}"}), "py dial circuit")
    t0 = time.monotonic()
    # A accepted the circuit, so A starts DCUtR (and py-libp2p's auto-drive may start one too).
    e = wait("A's connection to py-libp2p to become direct",
             lambda: (lambda p: p if p and p["transport"] == "direct" else None)(a.peers().get(py.peer_id)), 30)
    s.facts["ms_to_direct"] = round((time.monotonic() - t0) * 1000)
    s.facts["a_sees_py"] = {k: e.get(k) for k in ("transport", "via", "established_by", "addr")}
    assert e["established_by"] in ("dcutr", "dial", "accept"), e
    s.facts["py_conns"] = ok(py.call({"cmd": "conns", "peer": a.peer_id}), "py conns")
    assert s.facts["py_conns"]["direct"], s.facts["py_conns"]
    s.facts["py_ping_direct"] = ok(py.call({"cmd": "ping", "peer": a.peer_id, "count": 3}), "py ping")["rtts_ms"]


def dcutr_py_initiates(s):
    """latticad B reaches py-libp2p through latticad R; py-libp2p (which accepted the circuit) starts
    DCUtR with its auto-drive loop, without its plain direct dial first; our side answers CONNECT,
    dials on SYNC, and the connection becomes direct."""
    r = s.daemon("r", RELAY)
    py = s.peer("pylibp2p", "--relay", "client", "--dcutr", "--dcutr-no-unilateral",
                "--protocol-version", "/lattica/1.0.0")
    ok(py.call({"cmd": "reserve", "relay": r.addr}), "py-libp2p reserve on latticad")
    b = s.daemon("b", CLIENT % "true")
    b.call("connect", addr=f"{r.addr}/p2p-circuit/p2p/{py.peer_id}")
    t0 = time.monotonic()
    e = wait("B's connection to py-libp2p to become direct",
             lambda: (lambda p: p if p and p["transport"] == "direct" else None)(b.peers().get(py.peer_id)), 30)
    s.facts["ms_to_direct"] = round((time.monotonic() - t0) * 1000)
    s.facts["b_sees_py"] = {k: e.get(k) for k in ("transport", "via", "established_by", "addr")}
    assert e["established_by"] == "dcutr", e
    s.facts["py_conns"] = ok(py.call({"cmd": "conns", "peer": b.peer_id}), "py conns")
    assert s.facts["py_conns"]["direct"], s.facts["py_conns"]
    s.facts["b_ping_direct"] = b.call("ping", peer=py.peer_id, count=3)["rtts_ms"]


def lattica_relay(s):
    """latticad R hop; the real Lattica reserves on R; latticad B dials Lattica through R."""
    r = s.daemon("r", RELAY)
    lat = s.peer("lattica", "--relay-server", r.addr)
    # Lattica's reservation shows on R as a held reservation for its peer id (hop state).
    wait("Lattica connected to R", lambda: lat.peer_id in r.peers())
    b = s.daemon("b", CLIENT % "false")
    circuit = f"{r.addr}/p2p-circuit/p2p/{lat.peer_id}"
    s.facts["b_connect"] = wait("B's circuit to Lattica", lambda: b.call("connect", addr=circuit), 20, 1.0)
    s.facts["b_ping"] = b.call("ping", peer=lat.peer_id, count=3)
    e = b.peers()[lat.peer_id]
    s.facts["b_sees_lattica"] = {k: e.get(k) for k in ("transport", "via", "established_by", "agent", "protocol_version")}
    assert e["transport"] == "relayed" and e["via"] == r.peer_id, e
    assert e["agent"].startswith("rust-libp2p"), e
    # Lattica keeps the relayed peer (protocolVersion matches) and sees it.
    time.sleep(1)
    assert lat.peer_id in b.peers(), "Lattica dropped the relayed connection"
    peers = ok(lat.call({"cmd": "peers"}), "lattica peers")["peers"]
    s.facts["lattica_sees_b"] = next((p for p in peers if p["peer"] == b.peer_id), None)


def lattica_dcutr(s):
    """As lattica-relay, with DCUtR on both sides: Lattica (rust-libp2p dcutr 0.12, the side that
    accepted the circuit) starts the punch; the connection should become direct."""
    r = s.daemon("r", RELAY)
    lat = s.peer("lattica", "--relay-server", r.addr, "--dcutr")
    wait("Lattica connected to R", lambda: lat.peer_id in r.peers())
    b = s.daemon("b", CLIENT % "true")
    circuit = f"{r.addr}/p2p-circuit/p2p/{lat.peer_id}"
    wait("B's circuit to Lattica", lambda: b.call("connect", addr=circuit), 20, 1.0)
    t0 = time.monotonic()
    e = wait("B's connection to Lattica to become direct",
             lambda: (lambda p: p if p and p["transport"] == "direct" else None)(b.peers().get(lat.peer_id)), 30)
    s.facts["ms_to_direct"] = round((time.monotonic() - t0) * 1000)
    s.facts["b_sees_lattica"] = {k: e.get(k) for k in ("transport", "via", "established_by", "addr")}
    s.facts["b_ping_direct"] = b.call("ping", peer=lat.peer_id, count=3)["rtts_ms"]


def lattica_dials_us(s):
    """The real Lattica reaches latticad A through latticad R: A reserves on R, Lattica is given the
    circuit address as a bootstrap peer (its Python API has no dial(); it dials bootstraps at start
    and every 30 s), with R as its relay server so that its relay transport is on."""
    r = s.daemon("r", RELAY)
    a = s.daemon("a", CLIENT % "false", bootstrap=[r.addr])
    wait("A's reservation on latticad R", lambda: reservation_on(a, r.peer_id))
    circuit = f"{r.addr}/p2p-circuit/p2p/{a.peer_id}"
    lat = s.peer("lattica", "--relay-server", r.addr, "--bootstrap", circuit)
    e = wait("Lattica's circuit to A, identified",
             lambda: (lambda p: p if p and p["agent"] else None)(a.peers().get(lat.peer_id)), 40, 0.5)
    s.facts["a_sees_lattica"] = {k: e.get(k) for k in ("transport", "via", "established_by", "direction", "agent")}
    assert e["transport"] == "relayed" and e["via"] == r.peer_id and e["direction"] == "inbound", e
    assert e["agent"].startswith("rust-libp2p"), e
    s.facts["a_ping"] = a.call("ping", peer=lat.peer_id, count=3)["rtts_ms"]
    time.sleep(1)
    assert lat.peer_id in a.peers(), "Lattica dropped the relayed connection after identify"


def refusals(s):
    """A circuit to a peer without a reservation is refused with NO_RESERVATION, both ways."""
    pyr = s.peer("pylibp2p", "--relay", "hop", "--protocol-version", "/lattica/1.0.0")
    r = s.daemon("r", RELAY)
    t = s.daemon("t", '[relay]\nhop = "off"\nreserve = "off"\n', bootstrap=[pyr.addr, r.addr])
    b = s.daemon("b", CLIENT % "false")
    try:
        b.call("connect", addr=f"{pyr.addr}/p2p-circuit/p2p/{t.peer_id}")
        raise AssertionError("the py-libp2p relay bridged a circuit to a peer without a reservation")
    except RuntimeError as e:
        s.facts["py_relay_refuses"] = str(e)[:300]
        assert "noReservation" in str(e) or "204" in str(e), e
    py = s.peer("pylibp2p", "--relay", "client", "--protocol-version", "/lattica/1.0.0")
    d = py.call({"cmd": "dial_circuit", "addr": f"{r.addr}/p2p-circuit/p2p/{t.peer_id}"})
    s.facts["our_relay_refuses"] = d.get("error", "")[:300]
    assert not d["ok"] and ("204" in d["error"] or "NO_RESERVATION" in d["error"]), d


SCENARIOS = {"py-relay": py_relay, "our-relay-py": our_relay_py, "dcutr-py": dcutr_py, "dcutr-py-initiates": dcutr_py_initiates,
             "lattica-relay": lattica_relay,
             "lattica-dcutr": lattica_dcutr, "lattica-dials-us": lattica_dials_us, "refusals": refusals}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory with latticad and lattica")
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after the run")
    args = ap.parse_args()
    results = []
    for name in args.only.split(","):
        root = tempfile.mkdtemp(prefix=f"relay-interop-{name}-")
        s = Scenario(args, root)
        t0 = time.monotonic()
        res = {"scenario": name}
        try:
            SCENARIOS[name](s)
            res["ok"] = True
        except Exception as e:  # noqa: BLE001 - one scenario's failure must not stop the others
            res["ok"] = False
            res["error"] = f"{type(e).__name__}: {e}"
            traceback.print_exc(file=sys.stderr)
        finally:
            s.close()
        res["s"] = round(time.monotonic() - t0, 1)
        res["facts"] = s.facts
        if not res["ok"] or args.keep:
            res["logs"] = root
        else:
            shutil.rmtree(root, ignore_errors=True)
        print(json.dumps(res), flush=True)
        results.append(res)
    print("\n%-16s %-6s %s" % ("scenario", "result", "seconds"))
    for r in results:
        print("%-16s %-6s %s%s" % (r["scenario"], "ok" if r["ok"] else "FAIL", r["s"],
                                   "" if r["ok"] else "  " + r["error"][:160]))
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
