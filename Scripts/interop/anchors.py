#!/usr/bin/env python3
"""Benchmark anchors between two (three) real Lattica nodes on loopback. Run via anchors.sh,
which puts this inside a private network namespace. Prints one JSON summary line at the end
(prefixed "ANCHORS ") and a human-readable table before it."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerctl import PeerProc, python  # noqa: E402


def must(ans):
    if not ans.get("ok"):
        raise RuntimeError(f"{ans.get('cmd')}: {ans.get('error')}")
    return ans


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def baseline_rss_kb():
    """RSS of the same Python interpreter after `import lattica` but without building a node."""
    code = ("import lattica,sys\n"
            "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])")
    return int(subprocess.check_output([python(), "-c", code], text=True).strip())


def dial(peer, addr):
    """Dial; a peer that its bootstrap already connected (or is connecting) counts as success."""
    ans = peer.call({"cmd": "dial", "addr": addr})
    if not ans.get("ok") and "already connected or dial is in progress" not in str(ans.get("error")):
        must(ans)
    time.sleep(0.5)
    return ans


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rr-n", type=int, default=5000, help="sequential RPC calls per round")
    ap.add_argument("--window-n", type=int, default=20000,
                    help="RPC calls per round in each sustained-window test")
    ap.add_argument("--windows", default="100,1000", help="window sizes (calls outstanding)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--stream-bytes", type=int, default=256 << 20)
    ap.add_argument("--dht-n", type=int, default=50)
    args = ap.parse_args()
    windows = [int(w) for w in args.windows.split(",") if w]
    res = {}
    quiet = open(os.devnull, "w") if not os.environ.get("ANCHORS_VERBOSE") else None

    with PeerProc("lattica", "--seed", "anchor-a", stderr=quiet) as a:
        time.sleep(2.0)
        res["idle_rss_mb"] = rss_kb(a.pid) / 1024
        res["python_import_lattica_rss_mb"] = baseline_rss_kb() / 1024
        with PeerProc("lattica", "--seed", "anchor-b", "--bootstrap", a.addr, stderr=quiet) as b:
            dial(b, a.addr)
            time.sleep(1.0)
            res["idle_rss_one_peer_mb"] = rss_kb(a.pid) / 1024

            # Sequential RPC calls (one at a time), the same as our Swarm.request round trip.
            meds, p99s, rps = [], [], []
            for _ in range(args.rounds):
                r = must(b.call({"cmd": "bench_rr", "peer": a.peer_id, "n": args.rr_n,
                                 "size": args.size}, timeout=600))
                meds.append(r["median_ms"])
                p99s.append(r["p99_ms"])
                rps.append(r["req_per_s"])
            res["rr_median_ms"] = statistics.median(meds)
            res["rr_p99_ms"] = statistics.median(p99s)
            res["rr_sequential_req_per_s"] = statistics.median(rps)
            res["rr_n"] = args.rr_n

            # One RPC stream call of --stream-bytes, before the windows (a window of 1,000 makes
            # Lattica close connections). A call that fails or stalls is counted, not fatal.
            mbs, stall_s = [], max(120, args.stream_bytes // 2_000_000)
            for _ in range(args.rounds):
                r = b.call({"cmd": "bench_stream", "peer": a.peer_id, "bytes": args.stream_bytes,
                            "timeout": stall_s}, timeout=stall_s + 60)
                if r.get("ok"):
                    mbs.append(r["mb_per_s"])
                else:
                    res["stream_failures"] = res.get("stream_failures", 0) + 1
                    print(f"anchors: stream call failed: {r.get('error')}", file=sys.stderr)
            if mbs:
                res["stream_mb_per_s"] = statistics.median(mbs)
                res["stream_mb_per_s_all"] = mbs
            res["stream_bytes"] = args.stream_bytes

            # A sustained window of K outstanding calls, the same method as ours.
            for k in windows:
                vals, errs, err = [], [], None
                for _ in range(args.rounds):
                    r = must(b.call({"cmd": "bench_rr", "peer": a.peer_id, "n": args.window_n,
                                     "size": args.size, "inflight": k, "method": "window"},
                                    timeout=900))
                    vals.append(r["req_per_s"])
                    errs.append(r["errors"])
                    err = r.get("last_error", err)
                res[f"rr_window{k}_req_per_s"] = statistics.median(vals)
                res[f"rr_window{k}_errors"] = statistics.median(errs)
                if err:
                    res[f"rr_window{k}_error"] = err
            res["window_n"] = args.window_n

            puts, gets, keys = [], [], [f"anchor-key-{i}" for i in range(args.dht_n)]
            for k in keys:
                puts.append(must(b.call({"cmd": "put", "key": k, "value": f"v-{k}"}))["ms"])
            for k in keys:
                g = must(a.call({"cmd": "get", "key": k}))
                if not g["found"] or g.get("value") != f"v-{k}":
                    raise RuntimeError(f"get {k} on A: {g}")
                gets.append(g["ms"])
            res["dht_put_median_ms"] = statistics.median(puts)
            res["dht_get_median_ms"] = statistics.median(gets)

            with PeerProc("lattica", "--seed", "anchor-c", "--bootstrap", a.addr,
                          stderr=quiet) as c:
                dial(c, a.addr)
                late = []
                for k in keys:
                    g = must(c.call({"cmd": "get", "key": k}))
                    if not g["found"] or g.get("value") != f"v-{k}":
                        raise RuntimeError(f"late get {k}: {g}")
                    late.append(g["ms"])
                res["dht_get_late_joiner_median_ms"] = statistics.median(late)
                res["dht_get_late_joiner_first_ms"] = late[0]

    rows = [(f"RPC round trip, sequential, {args.size} B (median)", f"{res['rr_median_ms']:.3f} ms"),
            *[(f"RPC calls/s, sustained window of {k} (successful only)",
               f"{res[f'rr_window{k}_req_per_s']:.0f}  ({res[f'rr_window{k}_errors']:.0f}"
               f" of {args.window_n} failed)") for k in windows],
            (f"RPC stream call, {args.stream_bytes / 2**20:.0f} MiB",
             f"{res.get('stream_mb_per_s', float('nan')):.1f} MB/s"),
            ("idle RSS of a node (python + lattica)", f"{res['idle_rss_mb']:.1f} MB"),
            ("  of which python + import lattica", f"{res['python_import_lattica_rss_mb']:.1f} MB"),
            ("DHT put (median)", f"{res['dht_put_median_ms']:.3f} ms"),
            ("DHT get (median)", f"{res['dht_get_median_ms']:.3f} ms"),
            ("DHT get from a late joiner (median)", f"{res['dht_get_late_joiner_median_ms']:.3f} ms")]
    for k, v in rows:
        print(f"{k:<48} {v}")
    print("ANCHORS " + json.dumps(res, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
