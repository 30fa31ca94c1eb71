#!/usr/bin/env python3
"""A controllable py-libp2p peer for interop tests (line protocol: see Docs/INTEROP.md).

Ed25519 identity, TCP on 127.0.0.1, Noise only (no TLS/secio/plaintext offered), yamux only
(no mplex offered), identify + identify/push + ping (py-libp2p defaults), optional kad-dht, and two
benchmark protocols of our own (/lattica-interop/echo/1.0.0, /lattica-interop/sink/1.0.0).

stdout: one JSON object per line (the `ready` event, then one answer per command).
stdin:  one JSON command per line. Logs go to stderr.
"""
import argparse
import hashlib
import json
import os
import secrets
import statistics
import sys
import time
import traceback

import multiaddr
import trio

import libp2p
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair as ed25519_key_pair
from libp2p.crypto.serialization import deserialize_public_key
from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.ping import ID as PING_ID
from libp2p.identity.identify import identify as identify_mod
from libp2p.identity.identify.identify import ID as IDENTIFY_ID
from libp2p.identity.identify.pb.identify_pb2 import Identify
from libp2p.io.utils import read_exactly
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.utils.varint import read_length_prefixed_protobuf

ECHO_ID = TProtocol("/lattica-interop/echo/1.0.0")
SINK_ID = TProtocol("/lattica-interop/sink/1.0.0")
CHUNK = 64 * 1024


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(*a):
    print("[pylibp2p_peer]", *a, file=sys.stderr, flush=True)


def ma_str(b):
    try:
        return str(multiaddr.Multiaddr(b))
    except Exception:
        return "0x" + bytes(b).hex()


def key_type_name(pub_bytes):
    try:
        k = deserialize_public_key(pub_bytes)
        return str(k.get_type().name).lower()
    except Exception as e:
        return f"undecodable: {e}"


def identify_to_json(msg):
    return {
        "protocol_version": msg.protocol_version,
        "agent_version": msg.agent_version,
        "protocols": list(msg.protocols),
        "listen_addrs": [ma_str(a) for a in msg.listen_addrs],
        "observed_addr": ma_str(msg.observed_addr) if msg.observed_addr else None,
        "public_key_type": key_type_name(msg.public_key) if msg.public_key else None,
        "signed_peer_record": bool(msg.signedPeerRecord),
    }


def bincode_varint(n):
    # bincode 2 standard config: < 251 one byte; else 0xfb u16 / 0xfc u32 / 0xfd u64 little-endian
    if n < 251:
        return bytes([n])
    for tag, width in ((0xFB, 2), (0xFC, 4), (0xFD, 8)):
        if n < 1 << (8 * width):
            return bytes([tag]) + n.to_bytes(width, "little")
    raise ValueError(n)


def bincode_read_varint(b, i):
    t = b[i]
    if t < 251:
        return t, i + 1
    width = {0xFB: 2, 0xFC: 4, 0xFD: 8}[t]
    return int.from_bytes(b[i + 1:i + 1 + width], "little"), i + 1 + width


def value_bytes(cmd):
    if "value_hex" in cmd:
        return bytes.fromhex(cmd["value_hex"])
    v = cmd.get("value", "")
    return v.encode() if isinstance(v, str) else json.dumps(v).encode()


class Peer:
    def __init__(self, args):
        self.args = args
        if args.seed is not None:
            seed = hashlib.sha256(f"pylibp2p-peer-{args.seed}".encode()).digest()
            self.key_pair = ed25519_key_pair(seed)
        else:
            self.key_pair = ed25519_key_pair()
        if args.protocol_version:
            # py-libp2p hard-codes identify protocolVersion "ipfs/0.1.0" in a module constant;
            # Lattica disconnects peers whose protocolVersion differs from its own ("/lattica/1.0.0").
            identify_mod.PROTOCOL_VERSION = args.protocol_version
        noise = NoiseTransport(self.key_pair, noise_privkey=x25519_key_pair().private_key)
        self.host = new_host(
            key_pair=self.key_pair,
            sec_opt={NOISE_PROTOCOL_ID: noise},  # Noise only: no TLS, secio or plaintext
            muxer_opt={YAMUX_PROTOCOL_ID: Yamux},  # yamux only: no mplex
            enable_mDNS=False,
            enable_upnp=False,
        )
        self.dht = None
        self.relay = None  # CircuitV2Protocol (hop with --relay hop; stop always with --relay)
        self.relay_transport = None  # CircuitV2Transport: dials /p2p-circuit addresses
        self.dcutr = None  # DCUtRProtocol with --dcutr
        self.identified = {}  # peer id -> identify info (py-libp2p's peerstore keeps no agent)
        self.host.set_stream_handler(ECHO_ID, self.handle_echo)
        self.host.set_stream_handler(SINK_ID, self.handle_sink)

    # ---- benchmark protocol handlers ------------------------------------------------------
    async def handle_echo(self, stream):
        # frames: 4-byte big-endian length, then payload; answered with the same frame.
        try:
            while True:
                hdr = await read_exactly(stream, 4)
                n = int.from_bytes(hdr, "big")
                body = await read_exactly(stream, n) if n else b""
                await stream.write(hdr + body)
        except Exception:
            pass
        finally:
            try:
                await stream.close()
            except Exception:
                pass

    async def handle_sink(self, stream):
        # reads everything until EOF, then answers with the 8-byte big-endian count.
        total = 0
        try:
            while True:
                try:
                    data = await stream.read(CHUNK)
                except StreamEOF:
                    break
                if not data:
                    break
                total += len(data)
        except Exception:
            pass
        try:
            await stream.write(total.to_bytes(8, "big"))
            await stream.close()
        except Exception:
            pass

    # ---- commands ------------------------------------------------------------------------
    def listen_addrs(self):
        pid = self.host.get_id().to_string()
        out = []
        for a in self.host.get_addrs():
            s = str(a)
            if "/p2p/" not in s:
                s += "/p2p/" + pid
            out.append(s)
        return out

    async def identify(self, peer_id):
        stream = await self.host.new_stream(peer_id, [IDENTIFY_ID])
        try:
            with trio.fail_after(10):
                data = await read_length_prefixed_protobuf(stream, use_varint_format=True)
        finally:
            try:
                await stream.close()
            except Exception:
                pass
        msg = Identify()
        msg.ParseFromString(data)
        return msg

    async def cmd_dial(self, cmd):
        info = info_from_p2p_addr(multiaddr.Multiaddr(cmd["addr"]))
        t0 = time.perf_counter()
        with trio.fail_after(cmd.get("timeout", 20)):
            await self.host.connect(info)
        connect_ms = (time.perf_counter() - t0) * 1000
        msg = await self.identify(info.peer_id)
        self.identified[info.peer_id.to_string()] = identify_to_json(msg)
        conns = self.host.get_network().get_connections(info.peer_id)
        extra = {}
        if conns:
            c = conns[0]
            extra["muxer"] = type(getattr(c, "muxed_conn", None)).__name__
            sec = getattr(getattr(c, "muxed_conn", None), "secured_conn", None)
            extra["security"] = type(sec).__name__ if sec is not None else None
        if self.dht is not None:
            try:
                await self.dht.add_peer(info.peer_id, skip_server_mode_check=True)
            except Exception as e:
                log("dht add_peer failed:", e)
        return {"peer": info.peer_id.to_string(), "connect_ms": connect_ms,
                "identify": identify_to_json(msg), **extra}

    async def cmd_ping(self, cmd):
        peer = ID.from_base58(cmd["peer"])
        count = int(cmd.get("count", 1))
        stream = await self.host.new_stream(peer, [PING_ID])
        rtts = []
        try:
            for _ in range(count):
                payload = secrets.token_bytes(32)
                t0 = time.perf_counter()
                with trio.fail_after(10):
                    await stream.write(payload)
                    pong = await read_exactly(stream, 32)
                rtts.append((time.perf_counter() - t0) * 1000)
                if pong != payload:
                    raise ValueError("pong payload mismatch")
        finally:
            try:
                await stream.close()
            except Exception:
                pass
        return {"rtts_ms": rtts, "median_ms": statistics.median(rtts)}

    async def cmd_peers(self, cmd):
        ps = self.host.get_peerstore()
        out = []
        for pid in self.host.get_connected_peers():
            entry = {"peer": pid.to_string()}
            try:
                entry["protocols"] = list(ps.get_protocols(pid))
            except Exception:
                entry["protocols"] = []
            ident = self.identified.get(pid.to_string())
            if ident:
                entry["agent_version"] = ident["agent_version"]
                entry["protocol_version"] = ident["protocol_version"]
            try:
                entry["addrs"] = [str(a) for a in ps.addrs(pid)]
            except Exception:
                pass
            out.append(entry)
        return {"peers": out}

    async def cmd_put(self, cmd):
        if self.dht is None:
            raise RuntimeError("unsupported: start with --dht")
        t0 = time.perf_counter()
        await self.dht.put_value(cmd["key"], value_bytes(cmd))
        return {"ms": (time.perf_counter() - t0) * 1000}

    async def cmd_get(self, cmd):
        if self.dht is None:
            raise RuntimeError("unsupported: start with --dht")
        t0 = time.perf_counter()
        v = await self.dht.get_value(cmd["key"])
        ms = (time.perf_counter() - t0) * 1000
        if v is None:
            return {"found": False, "ms": ms}
        out = {"found": True, "ms": ms, "value_hex": bytes(v).hex()}
        try:
            out["value"] = bytes(v).decode()
        except UnicodeDecodeError:
            pass
        return out

    async def kad_rpc(self, cmd, msg):
        # One raw Kademlia exchange on any protocol id (Lattica uses /lattica/1.0.0): uvarint
        # length + protobuf Message, answered the same way. Returns the response's exact bytes.
        from libp2p.kad_dht.pb.kademlia_pb2 import Message
        from libp2p.utils.varint import encode_uvarint
        peer = ID.from_base58(cmd["peer"])
        proto = TProtocol(cmd.get("protocol", "/lattica/1.0.0"))
        req = msg.SerializeToString()
        stream = await self.host.new_stream(peer, [proto])
        try:
            t0 = time.perf_counter()
            with trio.fail_after(10):
                await stream.write(encode_uvarint(len(req)) + req)
                data = await read_length_prefixed_protobuf(stream, use_varint_format=True)
            ms = (time.perf_counter() - t0) * 1000
        finally:
            try:
                await stream.close()
            except Exception:
                pass
        resp = Message()
        resp.ParseFromString(data)
        out = {"ms": ms, "request_hex": req.hex(), "response_hex": bytes(data).hex(),
               "type": int(resp.type), "closer_peers": [
                   {"id": ID(p.id).to_string(), "addrs": [ma_str(a) for a in p.addrs],
                    "connection": int(p.connection)} for p in resp.closerPeers]}
        if resp.HasField("record"):
            r = resp.record
            out["record"] = {"key_hex": r.key.hex(), "value_hex": r.value.hex(),
                             "time_received": r.timeReceived, "author_hex": r.author.hex(),
                             "signature_hex": r.signature.hex()}
        return out

    def kad_key(self, cmd):
        return bytes.fromhex(cmd["key_hex"]) if "key_hex" in cmd else cmd["key"].encode()

    async def cmd_kad_get(self, cmd):
        from libp2p.kad_dht.pb.kademlia_pb2 import Message
        msg = Message(type=Message.GET_VALUE, key=self.kad_key(cmd))
        return await self.kad_rpc(cmd, msg)

    async def cmd_kad_put(self, cmd):
        from libp2p.kad_dht.pb.kademlia_pb2 import Message, Record
        key = self.kad_key(cmd)
        msg = Message(type=Message.PUT_VALUE, key=key, record=Record(key=key, value=value_bytes(cmd)))
        return await self.kad_rpc(cmd, msg)

    async def cmd_kad_find_node(self, cmd):
        from libp2p.kad_dht.pb.kademlia_pb2 import Message
        msg = Message(type=Message.FIND_NODE, key=self.kad_key(cmd))
        return await self.kad_rpc(cmd, msg)

    async def cmd_lattica_rpc(self, cmd):
        # Lattica's /rpc/req-resp/1.0.0: the request is bincode(RpcMessage::Request(RpcRequest{
        # id, method, data, compression: None})) with bincode 2 standard config, then the writer
        # closes its side; the answer is bincode(RpcMessage::Response|Error) read to EOF.
        def bstr(b):
            return bincode_varint(len(b)) + b
        req_id = cmd.get("req_id", "00000000-0000-4000-8000-000000000000").encode()
        data = bytes.fromhex(cmd["data_hex"]) if "data_hex" in cmd else __import__("pickle").dumps(
            cmd.get("data", b"ping"))
        req = b"\x00" + bstr(req_id) + bstr(cmd["method"].encode()) + bstr(data) + b"\x00"
        peer = ID.from_base58(cmd["peer"])
        stream = await self.host.new_stream(peer, [TProtocol("/rpc/req-resp/1.0.0")])
        t0 = time.perf_counter()
        with trio.fail_after(30):
            await stream.write(req)
            await stream.close()  # half-close: Lattica's codec reads the request to EOF
            resp = b""
            while True:
                try:
                    chunk = await stream.read(CHUNK)
                except StreamEOF:
                    break
                if not chunk:
                    break
                resp += chunk
        ms = (time.perf_counter() - t0) * 1000
        out = {"ms": ms, "request_hex": req.hex(), "response_hex": resp.hex(),
               "variant": resp[0] if resp else None}
        try:  # decode Response{id, data, compression}: variant 1
            i = 1
            fields = []
            for _ in range(2):
                n, i = bincode_read_varint(resp, i)
                fields.append(resp[i:i + n])
                i += n
            out["response_id"] = fields[0].decode()
            out["response_data_hex"] = fields[1].hex()
            if resp[0] == 1:
                out["response_data"] = repr(__import__("pickle").loads(fields[1]))
            else:
                out["error_text"] = fields[1].decode(errors="replace")
        except Exception as e:
            out["decode_error"] = str(e)
        return out

    async def cmd_bench_rr(self, cmd):
        peer = ID.from_base58(cmd["peer"])
        n, size = int(cmd.get("n", 1000)), int(cmd.get("size", 64))
        inflight = int(cmd.get("inflight", 1))
        payload = os.urandom(size)
        frame = len(payload).to_bytes(4, "big") + payload
        rtts = []

        async def worker(k):
            stream = await self.host.new_stream(peer, [ECHO_ID])
            try:
                for _ in range(k):
                    t0 = time.perf_counter()
                    await stream.write(frame)
                    back = await read_exactly(stream, len(frame))
                    rtts.append((time.perf_counter() - t0) * 1000)
                    if back != frame:
                        raise ValueError("echo mismatch")
            finally:
                await stream.close()

        t0 = time.perf_counter()
        per = [n // inflight + (1 if i < n % inflight else 0) for i in range(inflight)]
        async with trio.open_nursery() as nursery:
            for k in per:
                if k:
                    nursery.start_soon(worker, k)
        wall = time.perf_counter() - t0
        return {"n": n, "size": size, "inflight": inflight, "median_ms": statistics.median(rtts),
                "req_per_s": n / wall, "wall_s": wall}

    async def cmd_bench_stream(self, cmd):
        peer = ID.from_base58(cmd["peer"])
        total = int(cmd.get("bytes", 10 * 1024 * 1024))
        chunk = os.urandom(CHUNK)
        stream = await self.host.new_stream(peer, [SINK_ID])
        t0 = time.perf_counter()
        sent = 0
        while sent < total:
            k = min(CHUNK, total - sent)
            await stream.write(chunk[:k])
            sent += k
        await stream.close()  # half-close: the sink sees EOF and answers with its count
        got = int.from_bytes(await read_exactly(stream, 8), "big")
        wall = time.perf_counter() - t0
        if got != total:
            raise ValueError(f"sink counted {got} of {total} bytes")
        return {"bytes": total, "wall_s": wall, "mb_per_s": total / wall / 1e6}

    # ---- Circuit Relay v2 and DCUtR (py-libp2p's own implementation) ---------------------
    def need_relay(self):
        if self.relay is None:
            raise RuntimeError("unsupported: start with --relay hop|client")

    async def cmd_reserve(self, cmd):
        # py-libp2p's client reservation (CircuitV2Transport._make_reservation) on a relay.
        self.need_relay()
        from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP_ID
        info = info_from_p2p_addr(multiaddr.Multiaddr(cmd["relay"]))
        with trio.fail_after(cmd.get("timeout", 20)):
            await self.host.connect(info)
            stream = await self.host.new_stream(info.peer_id, [HOP_ID])
            try:
                ok = await self.relay_transport._make_reservation(stream, info.peer_id)
            finally:
                try:
                    await stream.close()
                except Exception:
                    pass
        if not ok:
            raise RuntimeError("reservation refused or failed (py-libp2p logs the reason on stderr)")
        expire = self.relay_transport._reservations.get(info.peer_id, 0)
        proof = self.relay_transport._reservation_proofs.get(info.peer_id)
        return {"relay": info.peer_id.to_string(), "expire": expire, "ttl_s": expire - int(time.time()),
                "voucher": self.check_voucher(bytes(proof.voucher) if proof else b"", info.peer_id, expire)}

    def check_voucher(self, raw, relay, expire):
        # The checks py-libp2p's relay applies to a voucher (RelayResourceManager._verify_voucher):
        # a signed envelope in domain libp2p-relay-rsvp, payload type bytes 03 02, Voucher{relay,
        # peer, expiration}, signed by the relay.
        from libp2p.peer.envelope import unmarshal_envelope
        from libp2p.relay.circuit_v2.pb.circuit_pb2 import Voucher
        from libp2p.relay.circuit_v2.resources import RELAY_RSVP_DOMAIN, VOUCHER_PAYLOAD_TYPE
        if not raw:
            return {"present": False}
        out = {"present": True, "bytes": len(raw)}
        try:
            env = unmarshal_envelope(raw)
            out["payload_type_hex"] = bytes(env.payload_type).hex()
            env.validate(RELAY_RSVP_DOMAIN)
            out["signature_ok"] = True
            v = Voucher()
            v.ParseFromString(bytes(env.raw_payload))
            out["relay_ok"] = ID(v.relay) == relay
            out["peer_ok"] = ID(v.peer) == self.host.get_id()
            out["expiration_ok"] = int(v.expiration) == int(expire)
            out["signer_ok"] = ID.from_pubkey(env.public_key) == relay
            out["payload_type_ok"] = bytes(env.payload_type) == VOUCHER_PAYLOAD_TYPE
        except Exception as e:  # noqa: BLE001 - reported to the test
            out["error"] = f"{type(e).__name__}: {e}"
        out["valid"] = all(out.get(k) for k in ("signature_ok", "relay_ok", "peer_ok", "expiration_ok",
                                                 "signer_ok", "payload_type_ok"))
        return out

    async def cmd_dial_circuit(self, cmd):
        # Dials <relay>/p2p-circuit/p2p/<target> with py-libp2p's CircuitV2Transport, then identifies.
        self.need_relay()
        ma = multiaddr.Multiaddr(cmd["addr"])
        t0 = time.perf_counter()
        with trio.fail_after(cmd.get("timeout", 30)):
            conn = await self.relay_transport.dial(ma)
        connect_ms = (time.perf_counter() - t0) * 1000
        peer = ID.from_base58(ma.get_peer_id())
        out = {"peer": peer.to_string(), "connect_ms": connect_ms, "conn": type(conn).__name__}
        if cmd.get("identify", True):
            msg = await self.identify(peer)
            self.identified[peer.to_string()] = identify_to_json(msg)
            out["identify"] = identify_to_json(msg)
        return out

    async def cmd_conns(self, cmd):
        # Every connection to a peer with its transport addresses: relayed if one has /p2p-circuit.
        peer = ID.from_base58(cmd["peer"])
        conns = self.host.get_network().get_connections(peer) or []
        out = []
        for c in conns:
            try:
                addrs = [str(a) for a in (c.get_transport_addresses() or [])]
            except Exception as e:
                addrs = [f"? {e}"]
            out.append({"addrs": addrs, "relayed": any("/p2p-circuit" in a for a in addrs)})
        direct = any(not c["relayed"] and c["addrs"] for c in out)
        return {"conns": out, "direct": direct, "relayed": any(c["relayed"] for c in out)}

    async def cmd_punch(self, cmd):
        # py-libp2p as the DCUtR initiator (DCUtRProtocol.initiate_hole_punch) on a relayed peer.
        if self.dcutr is None:
            raise RuntimeError("unsupported: start with --dcutr")
        peer = ID.from_base58(cmd["peer"])
        t0 = time.perf_counter()
        with trio.fail_after(cmd.get("timeout", 40)):
            ok = await self.dcutr.initiate_hole_punch(peer)
        return {"punched": bool(ok), "ms": (time.perf_counter() - t0) * 1000}

    async def cmd_echo(self, cmd):
        # One request on latticad's /lattica/echo/1.0.0 (swarm framing: uvarint length + bytes).
        from libp2p.utils.varint import encode_uvarint
        from libp2p.utils.varint import decode_uvarint_from_stream
        peer = ID.from_base58(cmd["peer"])
        data = cmd.get("data", "hello").encode()
        stream = await self.host.new_stream(peer, [TProtocol(cmd.get("protocol", "/lattica/echo/1.0.0"))])
        try:
            with trio.fail_after(10):
                await stream.write(encode_uvarint(len(data)) + data)
                n = await decode_uvarint_from_stream(stream)
                back = await read_exactly(stream, n) if n else b""
        finally:
            try:
                await stream.close()
            except Exception:
                pass
        return {"data": back.decode(errors="replace"), "match": back == data}

    async def cmd_rss(self, cmd):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return {"rss_kb": int(line.split()[1])}
        raise RuntimeError("no VmRSS")

    async def run(self):
        listen = multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{self.args.listen_port}")
        async with self.host.run(listen_addrs=[listen]), trio.open_nursery() as nursery:
            if self.args.dht:
                from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
                from libp2p.tools.anyio_service import background_trio_service
                self.dht = KadDHT(self.host, DHTMode.SERVER)
                await nursery.start(self._run_dht, background_trio_service)
            if self.args.relay:
                from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
                from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
                from libp2p.relay.circuit_v2.resources import RelayLimits
                from libp2p.relay.circuit_v2.transport import CircuitV2Transport
                from libp2p.tools.anyio_service import background_trio_service
                hop = self.args.relay == "hop"
                limits = RelayLimits(duration=3600, data=1 << 30, max_circuit_conns=8, max_reservations=8)
                self.relay = CircuitV2Protocol(self.host, limits=limits, allow_hop=hop)
                await nursery.start(self._run_service, background_trio_service, self.relay)
                roles = RelayRole.STOP | RelayRole.CLIENT | (RelayRole.HOP if hop else RelayRole(0))
                self.relay_transport = CircuitV2Transport(self.host, self.relay, RelayConfig(roles=roles, limits=limits))
            if self.args.dcutr:
                from libp2p.relay.circuit_v2.dcutr import DCUtRProtocol
                from libp2p.tools.anyio_service import background_trio_service
                self.dcutr = DCUtRProtocol(self.host)
                if self.args.dcutr_no_unilateral:
                    # Skip DCUtR's step 0 (a plain direct dial to the peer's identify addresses, which
                    # always works on loopback) so that the CONNECT/SYNC exchange itself is exercised.
                    async def no_unilateral(peer_id):
                        return False
                    self.dcutr._try_unilateral_upgrade = no_unilateral
                await nursery.start(self._run_service, background_trio_service, self.dcutr)
            emit({"event": "ready", "impl": "py-libp2p", "version": libp2p.__version__
                  if hasattr(libp2p, "__version__") else "0.8.1",
                  "peer_id": self.host.get_id().to_string(),
                  "listen_addrs": self.listen_addrs(),
                  "agent": identify_mod.AGENT_VERSION,
                  "protocol_version": identify_mod.PROTOCOL_VERSION,
                  "protocols": [str(p) for p in self.host.get_mux().get_protocols() if p]})
            handlers = {"dial": self.cmd_dial, "ping": self.cmd_ping, "peers": self.cmd_peers,
                        "put": self.cmd_put, "get": self.cmd_get, "bench_rr": self.cmd_bench_rr,
                        "bench_stream": self.cmd_bench_stream, "kad_get": self.cmd_kad_get,
                        "kad_put": self.cmd_kad_put, "kad_find_node": self.cmd_kad_find_node,
                        "rss": self.cmd_rss, "lattica_rpc": self.cmd_lattica_rpc,
                        "reserve": self.cmd_reserve, "dial_circuit": self.cmd_dial_circuit,
                        "conns": self.cmd_conns, "punch": self.cmd_punch, "echo": self.cmd_echo}
            while True:
                line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
                if not line:
                    break
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
                    break
                h = handlers.get(name)
                if h is None:
                    emit({**tag, "ok": False, "error": f"unsupported command {name!r}"})
                    continue
                try:
                    res = await h(cmd)
                    emit({**tag, "ok": True, **res})
                except BaseException as e:  # noqa: BLE001 - report everything, keep serving
                    if isinstance(e, (KeyboardInterrupt, SystemExit)):
                        raise
                    log(traceback.format_exc())
                    emit({**tag, "ok": False, "error": f"{type(e).__name__}: {e}"})
            nursery.cancel_scope.cancel()

    async def _run_service(self, background_trio_service, service, task_status=trio.TASK_STATUS_IGNORED):
        async with background_trio_service(service):
            task_status.started()
            await trio.sleep_forever()

    async def _run_dht(self, background_trio_service, task_status=trio.TASK_STATUS_IGNORED):
        async with background_trio_service(self.dht):
            task_status.started()
            await trio.sleep_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--seed", help="deterministic Ed25519 key (any string)")
    ap.add_argument("--protocol-version", help="identify protocolVersion to announce "
                    "(default py-libp2p's 'ipfs/0.1.0'; use /lattica/1.0.0 to stay connected to Lattica)")
    ap.add_argument("--dht", action="store_true", help="run py-libp2p kad-dht (/ipfs/kad/1.0.0) in server mode")
    ap.add_argument("--relay", choices=["hop", "client"], help="run py-libp2p's Circuit Relay v2: "
                    "hop = serve as a relay (and accept circuits), client = reserve/dial/accept circuits")
    ap.add_argument("--dcutr", action="store_true", help="run py-libp2p's DCUtR (/libp2p/dcutr), "
                    "which also starts punches on its own for relayed peers (auto-drive every 2 s)")
    ap.add_argument("--dcutr-no-unilateral", action="store_true", help="with --dcutr: skip py-libp2p's "
                    "direct dial before the hole punch (spec step 0), so the punch itself is tested")
    args = ap.parse_args()
    if args.relay or args.dcutr:
        # py-libp2p's relay and DCUtR modules report what they do (and why they fail) at INFO.
        import logging
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        for name in ("libp2p.relay", "libp2p.relay.circuit_v2", "libp2p.relay.circuit_v2.dcutr"):
            lg = logging.getLogger(name)
            lg.setLevel(logging.DEBUG if os.environ.get("PYLIBP2P_RELAY_DEBUG") else logging.INFO)
            lg.addHandler(h)
            lg.propagate = False
    try:
        trio.run(Peer(args).run)
    except KeyboardInterrupt:
        pass
    # trio may leave abandoned stdin threads behind; exit hard so the process never lingers.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
