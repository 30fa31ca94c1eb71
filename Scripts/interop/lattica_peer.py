#!/usr/bin/env python3
"""A controllable real-Lattica peer (rust-libp2p inside) for interop tests and benchmark anchors.

MUST run inside a private network namespace that has only loopback (Scripts/interop/netns-run.sh):
Lattica sends STUN requests to public servers (stun.l.google.com, stun.cloudflare.com) whenever a
node is built, and that cannot be switched off. This script refuses to start when it sees any
network interface other than `lo`.

Line protocol (Docs/INTEROP.md): one JSON object per line on stdout, one JSON command per line on
stdin. Everything else (Lattica's own prints, Rust tracing) goes to stderr.
"""
import argparse
import collections
import hashlib
import json
import os
import pickle
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
import traceback

# Protocol output gets a private copy of fd 1; fd 1 itself is pointed at stderr so that prints
# from Lattica's Python wrapper ("Failed to store value: ...") never corrupt the line protocol.
_PROTO = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def emit(obj):
    _PROTO.write(json.dumps(obj, separators=(",", ":")) + "\n")
    _PROTO.flush()


def log(*a):
    print("[lattica_peer]", *a, file=sys.stderr, flush=True)


def short(e):
    """Error text without the Rust backtrace that Lattica appends."""
    text = str(e).split("\\n\\nStack backtrace")[0].split("\n\nStack backtrace")[0]
    return f"{type(e).__name__}: {text}"


def only_loopback():
    return sorted(name for _, name in socket.if_nameindex()) == ["lo"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def bincode_varint(n):
    """bincode 2 `config::standard()` unsigned varint (used for lengths)."""
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfb" + struct.pack("<H", n)
    if n < 1 << 32:
        return b"\xfc" + struct.pack("<I", n)
    return b"\xfd" + struct.pack("<Q", n)


def value_with_time(value, expiration):
    """bincode(ValueWithTime{value: Vec<u8>, expiration_time: f64}) as Lattica builds it."""
    return bincode_varint(len(value)) + value + struct.pack("<d", expiration)


def ed25519_keyfile(seed_text, path):
    """Write libp2p's protobuf PrivateKey{Type=Ed25519, Data=secret(32)||public(32)} (p2p.key)."""
    from nacl.signing import SigningKey
    sk = SigningKey(hashlib.sha256(f"lattica-peer-{seed_text}".encode()).digest())
    data = bytes(sk) + bytes(sk.verify_key)
    with open(path, "wb") as f:
        f.write(b"\x08\x01\x12\x40" + data)


def peer_info_json(info):
    if info is None:
        return None
    return {
        "protocol_version": info.protocol_version,
        "agent_version": info.agent_version,
        "protocols": list(info.protocols),
        "listen_addrs": list(info.listen_addresses),
        "addresses": list(info.addresses),
        "rtt_ms": info.rtt_ms,
        "observed_addr": None,  # not exposed by Lattica's Python API
    }


def value_of(cmd):
    if "value_hex" in cmd:
        return bytes.fromhex(cmd["value_hex"])
    return cmd.get("value", "")


class Peer:
    def __init__(self, args):
        from lattica import ConnectionHandler, Lattica, rpc_method, rpc_stream

        class Bench(ConnectionHandler):
            """RPC service `Bench`: methods `Bench.echo` (req/resp) and `Bench.sink` (stream)."""

            @rpc_method
            def echo(self, data):
                return data

            @rpc_stream
            def sink(self, data):
                return len(data)

        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="lattica-peer-")
        if args.seed is not None:
            ed25519_keyfile(args.seed, os.path.join(self.tmp, "p2p.key"))
        self.port = args.listen_port or free_port()
        listen = [f"/ip4/127.0.0.1/tcp/{self.port}"]
        if args.quic:
            listen.append(f"/ip4/127.0.0.1/udp/{free_port()}/quic-v1")
        b = (Lattica.builder()
             .with_listen_addrs(listen)
             .with_mdns(False).with_upnp(False).with_autonat(False).with_dcutr(bool(args.dcutr))
             .with_key_path(self.tmp)
             .with_storage_path(os.path.join(self.tmp, "blocks"))
             .with_dht_db_path(os.path.join(self.tmp, "dht")))
        if args.bootstrap:
            b = b.with_bootstraps(args.bootstrap)
        if args.protocol_version:
            b = b.with_protocol(args.protocol_version)
        if args.relay_server:
            # rust-libp2p relay *client* (Lattica has no relay server): listen_on(<relay>/p2p-circuit),
            # i.e. a reservation on each relay, renewed by rust-libp2p; redialled every 30 s.
            b = b.with_relay_servers(args.relay_server)
        self.node = b.build()
        self.sdk = self.node._lattica_instance
        self.bench = Bench(self.node)
        self.peer_id = self.node.peer_id()
        deadline = time.monotonic() + 15
        while True:  # Lattica gives no listen event to Python: wait until the port accepts
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Lattica did not listen on 127.0.0.1:{self.port}")
                time.sleep(0.02)
        self.listen = [f"{a}/p2p/{self.peer_id}" for a in listen]

    def close(self):
        try:
            self.node.close()
        except Exception:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- commands ------------------------------------------------------------------------
    def wait_info(self, peer, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.sdk.get_peer_info(peer)
            if info is not None and info.protocol_version:
                return info
            time.sleep(0.01)
        return self.sdk.get_peer_info(peer)

    def cmd_dial(self, cmd):
        addr = cmd["addr"]
        if "/p2p/" not in addr:
            raise ValueError("addr needs a /p2p/<peer id> suffix")
        peer = addr.rsplit("/p2p/", 1)[1]
        t0 = time.perf_counter()
        if peer not in self.sdk.get_all_peers():
            # Lattica's Python API has no dial(multiaddr): connect(peer_id) dials the addresses
            # Kademlia already knows (bootstrap nodes, identify listen addrs of peers).
            try:
                self.sdk.connect(peer)
            except Exception as e:
                raise RuntimeError(f"{short(e)}; Lattica's Python API can only dial peers whose address "
                                   f"it already knows: start with --bootstrap {addr}")
        info = self.wait_info(peer, float(cmd.get("timeout", 10)))
        ms = (time.perf_counter() - t0) * 1000
        if info is None:
            raise RuntimeError("no connection/identify info for peer (disconnected after identify? "
                               "Lattica drops peers whose identify protocolVersion differs)")
        return {"peer": peer, "connect_ms": ms, "identify": peer_info_json(info)}

    def cmd_ping(self, cmd):
        peer = cmd["peer"]
        rtt = self.sdk.get_peer_rtt(peer)  # seconds, from rust-libp2p ping (every 15 s)
        if rtt is None:
            raise RuntimeError("no ping RTT recorded yet (Lattica pings each peer every 15 s)")
        return {"rtts_ms": [rtt * 1000], "median_ms": rtt * 1000,
                "note": "last RTT of Lattica's own /ipfs/ping/1.0.0 (interval 15 s); count ignored"}

    def cmd_peers(self, cmd):
        out = []
        for p in self.sdk.get_all_peers():
            out.append({"peer": p, **(peer_info_json(self.sdk.get_peer_info(p)) or {})})
        return {"peers": out}

    def cmd_put(self, cmd):
        value = value_of(cmd)
        ttl = float(cmd.get("ttl", 600))
        expiration = float(cmd.get("expiration", time.time() + ttl))
        payload = value if cmd.get("raw") and isinstance(value, bytes) else pickle.dumps(value)
        if cmd.get("raw") and not isinstance(value, bytes):
            payload = value.encode() if isinstance(value, str) else payload
        t0 = time.perf_counter()
        self.sdk.store_with_subkey(cmd["key"], payload, expiration, cmd.get("subkey"))
        ms = (time.perf_counter() - t0) * 1000
        out = {"ms": ms, "expiration": expiration, "stored_value_hex": payload.hex()}
        if not cmd.get("subkey"):
            out["record_value_hex"] = value_with_time(payload, expiration).hex()
        return out

    def cmd_get(self, cmd):
        t0 = time.perf_counter()
        res = self.sdk.get_with_subkey(cmd["key"])
        ms = (time.perf_counter() - t0) * 1000
        if res is None:
            return {"found": False, "ms": ms}

        def one(raw, exp):
            raw = bytes(raw)
            d = {"value_hex": raw.hex(), "expiration": exp,
                 "record_value_hex": value_with_time(raw, exp).hex()}
            try:
                v = pickle.loads(raw)
                d["value"] = v.hex() if isinstance(v, bytes) else v
                d["pickled"] = True
            except Exception:
                d["pickled"] = False
            return d

        if isinstance(res, dict):
            return {"found": True, "ms": ms, "subkeys": {k: one(*v) for k, v in res.items()}}
        return {"found": True, "ms": ms, **one(*res)}

    def cmd_bench_rr(self, cmd):
        """RPC `Bench.echo` of `size` random bytes, `n` calls. inflight = 1: one call at a time,
        each sample issue -> result (median_ms, p99_ms). inflight = K > 1, method "waves"
        (default): K concurrent calls, wait for all, repeat. method "window": a sustained window
        of K outstanding calls, a new call issued as soon as the oldest completes (Lattica's
        LFuture has only result() and __await__, no completion callback: harvesting the oldest
        is the cheapest window Python can keep)."""
        stub = self.bench.get_stub(cmd["peer"])
        n, size = int(cmd.get("n", 1000)), int(cmd.get("size", 64))
        inflight = int(cmd.get("inflight", 1))
        method = cmd.get("method", "waves")
        if method not in ("waves", "window"):
            raise ValueError(f"method must be waves or window, not {method!r}")
        payload = os.urandom(size)
        stub.echo(payload).result(timeout=60)  # warm-up: connection check + stream setup
        rtts = []
        errors, last_error = 0, None

        def harvest(f):
            # rust-libp2p request-response allows 100 concurrent substreams per connection by
            # default, so calls beyond that fail with "max sub-streams reached" after Lattica's
            # 3 retries: they are counted, not fatal.
            nonlocal errors, last_error
            try:
                ok = f.result(timeout=180) == payload
            except RuntimeError as e:
                ok = False
                last_error = short(e)[:200]
            if not ok:
                errors += 1

        t0 = time.perf_counter()
        if inflight <= 1:
            for _ in range(n):
                t = time.perf_counter()
                back = stub.echo(payload).result(timeout=60)
                rtts.append((time.perf_counter() - t) * 1000)
                if back != payload:
                    raise ValueError("echo mismatch")
        elif method == "waves":
            done = 0
            while done < n:
                k = min(inflight, n - done)
                futs = [stub.echo(payload) for _ in range(k)]
                for f in futs:
                    harvest(f)
                done += k
        else:
            window, sent = collections.deque(), 0
            while sent < n or window:
                while sent < n and len(window) < inflight:
                    window.append(stub.echo(payload))
                    sent += 1
                harvest(window.popleft())
        wall = time.perf_counter() - t0
        out = {"n": n, "size": size, "inflight": inflight, "ok_count": n - errors,
               "method": "sequential" if inflight <= 1 else method,
               "errors": errors, "req_per_s": (n - errors) / wall, "wall_s": wall}
        if errors:
            out["last_error"] = last_error
        if rtts:
            out["median_ms"] = statistics.median(rtts)
            out["p99_ms"] = sorted(rtts)[min(len(rtts) - 1, int((len(rtts) - 1) * 0.99 + 0.5))]
        return out

    def cmd_bench_stream(self, cmd):
        stub = self.bench.get_stub(cmd["peer"])
        total = int(cmd.get("bytes", 50_000_000))
        data = os.urandom(total)
        t0 = time.perf_counter()
        got = stub.sink(data).result(timeout=int(cmd.get("timeout", 600)))
        wall = time.perf_counter() - t0
        if got != total:
            raise ValueError(f"sink counted {got} of {total} bytes")
        return {"bytes": total, "wall_s": wall, "mb_per_s": total / wall / 1e6}

    def cmd_rss(self, cmd):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return {"rss_kb": int(line.split()[1])}
        raise RuntimeError("no VmRSS")

    def serve(self):
        emit({"event": "ready", "impl": "lattica", "version": "1.0.21", "peer_id": self.peer_id,
              "listen_addrs": self.listen,
              "agent": "rust-libp2p/0.45.0",  # libp2p-identify default, seen by peers
              "protocol_version": self.args.protocol_version or "/lattica/1.0.0",
              "protocols": ["/ipfs/id/1.0.0", "/ipfs/id/push/1.0.0", "/ipfs/ping/1.0.0",
                            self.args.protocol_version or "/lattica/1.0.0", "/rpc/req-resp/1.0.0",
                            "/rpc/stream/1.0.0", "/meshsub/1.1.0", "/meshsub/1.0.0",
                            "/ipfs/bitswap/1.2.0"]})
        handlers = {n[4:]: getattr(self, n) for n in dir(self) if n.startswith("cmd_")}
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
            except ValueError as e:
                emit({"ok": False, "error": f"bad json: {e}"})
                continue
            name = cmd.get("cmd")
            tag = {"cmd": name, **({"id": cmd["id"]} if "id" in cmd else {})}
            if name == "quit":
                emit({**tag, "ok": True})
                return
            h = handlers.get(name)
            if h is None:
                emit({**tag, "ok": False, "error": f"unsupported command {name!r}"})
                continue
            try:
                emit({**tag, "ok": True, **h(cmd)})
            except Exception as e:
                log(traceback.format_exc())
                emit({**tag, "ok": False, "error": short(e)})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--seed", help="deterministic Ed25519 key (any string)")
    ap.add_argument("--bootstrap", action="append", default=[], help="multiaddr with /p2p/ (repeatable)")
    ap.add_argument("--protocol-version", help="identify protocolVersion and Kademlia protocol id "
                    "(Lattica default /lattica/1.0.0)")
    ap.add_argument("--quic", action="store_true", help="also listen on /udp/PORT/quic-v1")
    ap.add_argument("--relay-server", action="append", default=[],
                    help="relay multiaddr with /p2p/ to reserve on (with_relay_servers; repeatable)")
    ap.add_argument("--dcutr", action="store_true", help="turn on Lattica's DCUtR (with_dcutr)")
    args = ap.parse_args()
    if not only_loopback():
        emit({"event": "error", "error": "refusing to start Lattica outside a loopback-only network "
              "namespace (it sends STUN to public servers); use Scripts/interop/netns-run.sh"})
        sys.exit(2)
    peer = None
    rc = 0
    try:
        peer = Peer(args)
        peer.serve()
    except KeyboardInterrupt:
        pass
    except Exception as e:
        log(traceback.format_exc())
        emit({"event": "error", "error": f"{type(e).__name__}: {e}"})
        rc = 1
    finally:
        if peer is not None:
            peer.close()
    _PROTO.flush()
    os._exit(rc)  # Lattica's tokio runtime threads would otherwise keep the process alive


if __name__ == "__main__":
    main()
