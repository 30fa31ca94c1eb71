#!/usr/bin/env python3
"""Concurrent writes to the same keys and sets on real nodes, and what survives (issue 10).

  latticad: N daemons on loopback write concurrently for S seconds to the same LWW registers,
  one OR-set and one counter, over their control sockets. Meanwhile node 1 is killed with
  SIGKILL and restarted K times. Afterwards every node must show zero lag, the same state hash,
  and every acknowledged write must be present or superseded by a later write (LWW order:
  hybrid-logical-clock time, then author) of the same key.

  lattica: the same writers against the real Lattica's subkey store (store_with_subkey on one
  key, each write a new subkey), which keeps an index record by read-modify-write. Every node
  reads the key back at the end; acknowledged subkeys that no node sees are lost. No kills (its
  store lives in memory, a restart would lose everything by design).

Prints one JSON line per target ("RESULT {...}") and a side-by-side table. The real Lattica sends
STUN at start, so run this inside the private namespace:

  Scripts/interop/netns-run.sh .venv/bin/python Scripts/crdt/concurrent_writes.py --bin .build/release
Exit status 1 when latticad lost a write or did not converge.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COMPACT_INTERVAL_S = 0  # set from --compact-interval
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "interop"))
from control import Control, stop_process  # noqa: E402


def clock_key(clock, author):
    wall, logical = clock.split(".")
    return (int(wall), int(logical), author)


class Daemon:
    def __init__(self, bin_dir, data_dir, bootstrap=None):
        self.bin_dir, self.data_dir, self.bootstrap = bin_dir, data_dir, bootstrap
        self.proc = None
        self.start()

    def start(self):
        args = [os.path.join(self.bin_dir, "latticad"), "--data-dir", self.data_dir, "--log-level", "error"]
        if COMPACT_INTERVAL_S:
            # Log compaction every few seconds (Docs/CRDT.md §6.1), so that the kills land before,
            # during and after compactions and the check covers compacted logs.
            os.makedirs(self.data_dir, exist_ok=True)
            cfg = os.path.join(self.data_dir, "compact.toml")
            with open(cfg, "w") as f:
                f.write(f"[crdt]\ncompact_interval_s = {COMPACT_INTERVAL_S}\ncompact_min_batches = 8\n")
            args += ["--config", cfg]
        if self.bootstrap:
            args += ["--bootstrap", self.bootstrap]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = os.path.join(self.data_dir, "control.sock")
        deadline = time.monotonic() + 20
        while True:
            try:
                c = Control(sock)
                self.status = c.call("status")
                c.close()
                return
            except (OSError, EOFError, RuntimeError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"latticad in {self.data_dir} did not start (rc={self.proc.poll()})")
                time.sleep(0.05)

    @property
    def sock(self):
        return os.path.join(self.data_dir, "control.sock")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        stop_process(self.proc)


def writer(i, node, seconds, keys, acked, attempted, stop, seed):
    rng = random.Random(seed * 1000 + i)
    c = None
    n = 0
    mine_in_set = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        n += 1
        r = rng.random()
        if r < 0.5:
            op = ("set", f"kv/shared/k{rng.randrange(keys)}", f"n{i}-{n}")
        elif r < 0.8:
            op = ("add", "kv/common-set", f"n{i}-{n}")
        elif r < 0.9 and mine_in_set:
            op = ("remove", "kv/common-set", mine_in_set.pop(rng.randrange(len(mine_in_set))))
        else:
            op = ("incr", "kv/total", 1)
        try:
            if c is None:
                c = Control(node.sock, timeout=5)
            if op[0] == "set":
                res = c.call("meta.set", path=op[1], value=op[2])
            elif op[0] == "incr":
                res = c.call("meta.incr", path=op[1], by=op[2])
            else:
                res = c.call("meta." + op[0], path=op[1], element=op[2])
            acked.append((i, op, res["author"], res["clock"]))
            if op[0] == "add":
                mine_in_set.append(op[2])
        except (ConnectionRefusedError, FileNotFoundError):
            # The node is down (killed) or restarting: the write never reached it.
            c = None
            time.sleep(0.05)
        except (OSError, EOFError, RuntimeError, ValueError):
            # Sent, but no answer (killed while writing): in doubt, may have been applied.
            attempted.append((i, op))
            if c:
                c.close()
            c = None
            time.sleep(0.05)
    if c:
        c.close()


def run_latticad(args):
    tmp = tempfile.mkdtemp(prefix="crdt-concurrency-")
    nodes = []
    try:
        nodes.append(Daemon(args.bin, os.path.join(tmp, "n0")))
        boot = nodes[0].status["listen_addrs"][0]
        for k in range(1, args.nodes):
            nodes.append(Daemon(args.bin, os.path.join(tmp, f"n{k}"), bootstrap=boot))
        time.sleep(1.0)  # identify and the first exchanges (not a correctness condition)
        acked, attempted, stop = [], [], threading.Event()
        threads = [threading.Thread(target=writer, args=(i, nodes[i], args.seconds, args.keys, acked, attempted, stop, args.seed))
                   for i in range(args.nodes)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        kills = 0
        for k in range(args.kills):
            time.sleep(max(0, t0 + args.seconds * (k + 1) / (args.kills + 1) - time.monotonic()))
            victim = nodes[1]
            victim.kill9()
            kills += 1
            victim.start()
        for t in threads:
            t.join()
        wrote_s = time.monotonic() - t0
        # Convergence: rounds with every peer until every node has zero lag and one state hash.
        t1 = time.monotonic()
        converged = False
        while time.monotonic() - t1 < args.converge_timeout:
            views = []
            for nd in nodes:
                c = Control(nd.sock)
                views.append(c.call("sync", now=True))
                c.close()
            hashes = {v["state_hash"] for v in views}
            lags = [p["lag"] for v in views for p in v["peers"]]
            if len(hashes) == 1 and all(l == 0 for l in lags) and all(len(v["peers"]) == args.nodes - 1 for v in views):
                converged = True
                break
            time.sleep(0.2)
        converge_s = time.monotonic() - t1
        lost, checked = check(nodes, acked, attempted, args.keys)
        res = {"target": "latticad", "nodes": args.nodes, "seconds": round(wrote_s, 1), "kills": kills,
               "in_doubt_writes": len(attempted), "acked_writes": len(acked), "lost_writes": lost,
               "checked": checked, "converged": converged, "converge_s": round(converge_s, 2),
               "state_hashes": len({v["state_hash"] for v in views}), "max_lag": max(lags or [0]),
               # Log compaction (since the daemons' last start): compactions, and the log each node
               # holds against the deltas in its store.
               "compactions": sum(v.get("compactions") or 0 for v in views),
               "log_deltas": [v.get("log_deltas") for v in views], "deltas": views[0]["deltas"] if views else 0}
        return res
    finally:
        for nd in nodes:
            nd.stop()
        subprocess.run(["rm", "-rf", tmp])


def check(nodes, acked, attempted, keys):
    """Lost acknowledged writes, as seen on every node."""
    lost = 0
    why = {"registers": 0, "set_adds": 0, "set_removes": 0, "increments": 0}
    views = []
    for nd in nodes:
        c = Control(nd.sock)
        v = {"keys": {k: c.call("meta.get", path=f"kv/shared/k{k}") for k in range(keys)},
             "set": set(c.call("meta.get", path="kv/common-set")["elements"]),
             "total": c.call("meta.get", path="kv/total")}
        views.append(v)
        c.close()
    # Registers: the visible value is the acknowledged write with the greatest (clock, author).
    winners = {}
    for (_, op, author, clock) in acked:
        if op[0] == "set":
            k = int(op[1].rsplit("k", 1)[1])
            cand = (clock_key(clock, author), op[2])
            if k not in winners or cand[0] > winners[k][0]:
                winners[k] = cand
    adds = {op[2] for (_, op, _, _) in acked if op[0] == "add"}
    removes = {op[2] for (_, op, _, _) in acked if op[0] == "remove"}
    # A remove that was sent but not acknowledged (its node was killed before it answered) may
    # have been applied: its element may be gone.
    maybe_removed = removes | {op[2] for (_, op) in attempted if op[0] == "remove"}
    incrs = sum(1 for (_, op, _, _) in acked if op[0] == "incr")
    for v in views:
        for k, (key, value) in winners.items():
            got = v["keys"][k]
            # A write applied and persisted but killed before its ack may win too: it is later.
            if got.get("value") != value:
                later = got.get("clock") and clock_key(got["clock"], got["author"]) > key
                if not later:
                    why["registers"] += 1
        why["set_adds"] += len((adds - maybe_removed) - v["set"])  # acknowledged adds never removed must be there
        why["set_removes"] += len(v["set"] & removes)       # acknowledged removes must hold (unique elements)
        why["increments"] += max(0, incrs - int(v["total"].get("value") or 0))
    lost = sum(why.values())
    if lost and os.environ.get("CRDT_DEBUG"):
        print("lost by kind:", why, file=sys.stderr)
        for e in sorted((adds - maybe_removed) - views[0]["set"]):
            print("missing", e, [(i, op, a[-8:], c) for (i, op, a, c) in acked if op[2] == e], file=sys.stderr)
    return lost, {"registers": len(winners), "set_adds": len(adds), "set_removes": len(removes), "increments": incrs,
                  "unacknowledged_removes": len(maybe_removed - removes), "lost_by_kind": why}


def run_kill_loop(args):
    """One writer node killed with SIGKILL at random instants, restarted each time; a peer syncs
    from it. After each restart the node must start (its store restores), and at the end every
    acknowledged write is on both nodes and they agree."""
    tmp = tempfile.mkdtemp(prefix="crdt-killloop-")
    rng = random.Random(args.seed)
    a = b = None
    try:
        a = Daemon(args.bin, os.path.join(tmp, "a"))
        b = Daemon(args.bin, os.path.join(tmp, "b"), bootstrap=a.status["listen_addrs"][0])
        acked, doubt, stop = [], [], threading.Event()

        def w():
            c, n = None, 0
            while not stop.is_set():
                n += 1
                try:
                    if c is None:
                        c = Control(a.sock, timeout=5)
                    c.call("meta.set", path=f"kv/loop/k{n}", value=str(n))
                    acked.append(n)
                except (ConnectionRefusedError, FileNotFoundError):
                    c = None
                    time.sleep(0.01)
                except (OSError, EOFError, RuntimeError, ValueError):
                    doubt.append(n)
                    c = None
        t = threading.Thread(target=w)
        t.start()
        restarts = 0
        for _ in range(args.kill_loop):
            time.sleep(rng.uniform(0.1, 0.8))
            a.kill9()
            a.start()  # raises when the store does not restore
            restarts += 1
        stop.set()
        t.join()
        lost = 0
        for nd in (a, b):
            c = Control(nd.sock)
            deadline = time.monotonic() + args.converge_timeout
            while nd is b and time.monotonic() < deadline:
                if c.call("sync", now=True)["state_hash"] == Control(a.sock).call("sync")["state_hash"]:
                    break
                time.sleep(0.2)
            paths = set(c.call("meta.list", prefix="kv/loop/")["paths"])
            lost += sum(1 for n in acked if f"kv/loop/k{n}" not in paths)
            c.close()
        ha, hb = Control(a.sock).call("sync")["state_hash"], Control(b.sock).call("sync")["state_hash"]
        return {"target": "latticad-kill-loop", "nodes": 2, "seconds": 0, "kills": restarts, "acked_writes": len(acked),
                "in_doubt_writes": len(doubt), "lost_writes": lost, "converged": ha == hb}
    finally:
        for nd in (a, b):
            if nd:
                nd.stop()
        subprocess.run(["rm", "-rf", tmp])


def run_lattica(args):
    from peerctl import PeerProc  # noqa: E402  (the interop venv)
    quiet = open(os.devnull, "w")
    peers = []
    try:
        peers.append(PeerProc("lattica", "--seed", "crdt-0", stderr=quiet))
        for k in range(1, args.nodes):
            p = PeerProc("lattica", "--seed", f"crdt-{k}", "--bootstrap", peers[0].addr, stderr=quiet)
            peers.append(p)
        time.sleep(2.0)
        acked, lock = [], threading.Lock()
        stop_at = time.monotonic() + args.seconds
        # PeerProc is one pipe per peer: one writer thread per peer.

        def w(i):
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                sub = f"n{i}-{n}"
                r = peers[i].call({"cmd": "put", "key": "common-set", "value": sub, "subkey": sub}, timeout=60)
                if r.get("ok"):
                    with lock:
                        acked.append(sub)
        threads = [threading.Thread(target=w, args=(i,)) for i in range(args.nodes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(2.0)
        lost_on = []
        for p in peers:
            g = p.call({"cmd": "get", "key": "common-set"}, timeout=60)
            seen = set((g.get("subkeys") or {}).keys()) if g.get("found") else set()
            lost_on.append(len(set(acked) - seen))
        return {"target": "lattica", "nodes": args.nodes, "seconds": args.seconds, "kills": 0,
                "acked_writes": len(acked), "lost_writes": min(lost_on), "lost_writes_per_node": lost_on}
    finally:
        for p in peers:
            p.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release")
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--converge-timeout", type=float, default=60)
    ap.add_argument("--kill-loop", type=int, default=8, help="SIGKILLs of the writer in the kill-loop target")
    ap.add_argument("--targets", default="latticad,kill-loop,lattica")
    ap.add_argument("--compact-interval", type=float, default=2.0, help="crdt.compact_interval_s of the daemons (0: the default config)")
    args = ap.parse_args()
    global COMPACT_INTERVAL_S
    COMPACT_INTERVAL_S = args.compact_interval
    results = []
    for t in args.targets.split(","):
        r = {"latticad": run_latticad, "lattica": run_lattica, "kill-loop": run_kill_loop}[t](args)
        print("RESULT " + json.dumps(r, sort_keys=True), flush=True)
        results.append(r)
    print(f"\n{'target':<10} {'nodes':>5} {'s':>5} {'kill -9':>7} {'acked':>7} {'lost':>6}")
    for r in results:
        print(f"{r['target']:<10} {r['nodes']:>5} {r['seconds']:>5} {r['kills']:>7} {r['acked_writes']:>7} {r['lost_writes']:>6}")
    bad = [r for r in results if r["target"].startswith("latticad") and (r["lost_writes"] or not r["converged"])]
    if bad:
        print(f"FAILED: {bad}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
