#!/usr/bin/env python3
"""Plain-socket probes for the test-net self-check (no latticad involved).

  probe.py echo --port P                       UDP: answer every datagram with "seen IP:PORT" (the
                                               sender as this host sees it); TCP on the same port:
                                               write the same line and close.
  probe.py send --src-port S --to IP:P [--to IP:P ...] [--listen S2] [--ready FILE]
                                               UDP from port S to each destination; prints
                                               "reply FROM mapped=IP:PORT" per answer (1 s), then,
                                               with --listen, keeps the socket open S2 seconds and
                                               prints "got FROM" for every other datagram (touches
                                               FILE once it listens).
  probe.py poke --src-port S --to IP:P         one UDP datagram, no answer expected.
  probe.py tcp --to IP:P [--timeout T]         "connected" or "failed REASON".
  probe.py rtt --to IP:P [--n N]               median UDP round trip to an echo server, in ms.
  probe.py blast --to IP:P --n N               N datagrams (loss measurement).
  probe.py count --port P --timeout T          counts datagrams until T s of silence after the first.
  probe.py natpmp --gateway G [--map-tcp PORT --lifetime L]
                                               NAT-PMP (RFC 6886): external address, then a TCP
                                               mapping; prints "external IP" and "mapped INT->EXT life L".
"""
import argparse, os, socket, struct, sys, time


def hostport(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def echo(a):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", a.port))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", a.port))
    t.listen(16)
    t.setblocking(False)
    u.settimeout(0.05)
    while True:
        try:
            data, src = u.recvfrom(2048)
            u.sendto(b"seen %s:%d" % (src[0].encode(), src[1]), src)
        except socket.timeout:
            pass
        try:
            c, src = t.accept()
            c.sendall(b"seen %s:%d\n" % (src[0].encode(), src[1]))
            c.close()
        except BlockingIOError:
            pass


def send(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", a.src_port))
    dests = [hostport(d) for d in a.to]
    for d in dests:
        s.sendto(b"hello", d)
    s.settimeout(0.1)
    end, pending = time.time() + 1.0, set(dests)
    while pending and time.time() < end:
        try:
            data, src = s.recvfrom(2048)
        except socket.timeout:
            continue
        if src in pending and data.startswith(b"seen "):
            pending.discard(src)
            print("reply %s:%d mapped=%s" % (src[0], src[1], data[5:].decode()), flush=True)
        else:
            print("got %s:%d" % src, flush=True)
    for d in pending:
        print("noreply %s:%d" % d, flush=True)
    if a.listen:
        if a.ready:
            open(a.ready, "w").close()
        end = time.time() + a.listen
        while time.time() < end:
            try:
                data, src = s.recvfrom(2048)
                print("got %s:%d" % src, flush=True)
            except socket.timeout:
                pass


def poke(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", a.src_port))
    s.sendto(b"unsolicited", hostport(a.to))


def tcp(a):
    try:
        c = socket.create_connection(hostport(a.to), timeout=a.timeout)
        c.close()
        print("connected")
    except OSError as e:
        print("failed %s" % (e.__class__.__name__,))


def rtt(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    d, rtts = hostport(a.to), []
    for _ in range(a.n):
        t0 = time.monotonic()
        s.sendto(b"rtt", d)
        try:
            s.recvfrom(2048)
            rtts.append((time.monotonic() - t0) * 1000)
        except socket.timeout:
            pass
    rtts.sort()
    print("%.1f" % rtts[len(rtts) // 2] if rtts else "nan")


def blast(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    d = hostport(a.to)
    for i in range(a.n):
        s.sendto(b"%d" % i, d)
        time.sleep(0.001)


def count(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", a.port))
    if a.ready:
        open(a.ready, "w").close()
    s.settimeout(a.timeout)
    n = 0
    try:
        while True:
            s.recvfrom(2048)
            n += 1
            s.settimeout(0.5)
    except socket.timeout:
        pass
    print(n)


def natpmp(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    gw = (a.gateway, 5351)

    def ask(req, want_len):
        for _ in range(4):
            s.sendto(req, gw)
            try:
                data, _ = s.recvfrom(64)
            except socket.timeout:
                continue
            if len(data) >= want_len:
                return data
        return None

    r = ask(b"\x00\x00", 12)
    if r is None:
        print("noanswer")
        sys.exit(1)
    ver, op, rc, _epoch = struct.unpack("!BBHI", r[:8])
    if rc != 0:
        print("error %d" % rc)
        sys.exit(1)
    print("external %s" % socket.inet_ntoa(r[8:12]), flush=True)
    if a.map_tcp:
        req = struct.pack("!BBHHHI", 0, 2, 0, a.map_tcp, a.map_tcp, a.lifetime)
        r = ask(req, 16)
        if r is None:
            print("noanswer")
            sys.exit(1)
        ver, op, rc, _e, internal, external, life = struct.unpack("!BBHIHHI", r[:16])
        if rc != 0:
            print("maperror %d" % rc)
            sys.exit(1)
        print("mapped %d->%d life %d" % (internal, external, life), flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo"); e.add_argument("--port", type=int, required=True); e.set_defaults(f=echo)
    s = sub.add_parser("send"); s.add_argument("--src-port", type=int, required=True)
    s.add_argument("--to", action="append", required=True); s.add_argument("--listen", type=float, default=0)
    s.add_argument("--ready"); s.set_defaults(f=send)
    k = sub.add_parser("poke"); k.add_argument("--src-port", type=int, required=True); k.add_argument("--to", required=True); k.set_defaults(f=poke)
    t = sub.add_parser("tcp"); t.add_argument("--to", required=True); t.add_argument("--timeout", type=float, default=1.0); t.set_defaults(f=tcp)
    r = sub.add_parser("rtt"); r.add_argument("--to", required=True); r.add_argument("--n", type=int, default=5); r.set_defaults(f=rtt)
    b = sub.add_parser("blast"); b.add_argument("--to", required=True); b.add_argument("--n", type=int, default=200); b.set_defaults(f=blast)
    c = sub.add_parser("count"); c.add_argument("--port", type=int, required=True); c.add_argument("--timeout", type=float, default=3)
    c.add_argument("--ready"); c.set_defaults(f=count)
    n = sub.add_parser("natpmp"); n.add_argument("--gateway", required=True); n.add_argument("--map-tcp", type=int, default=0)
    n.add_argument("--lifetime", type=int, default=120); n.set_defaults(f=natpmp)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
