#!/usr/bin/env python3
"""pycrdt (Yrs, the Rust port of Yjs) beside `lattica-bench crdt`: the same workload shape,
LWW-ish map sets over 10,000 keys, unsigned and in memory (pycrdt has neither signatures nor
persistence). Prints `name value` lines, medians of --runs.

  local_*: sets on a Map, one transaction per set, or `--batch` sets per transaction.
  remote_*: the updates of those transactions applied to a second document (what a peer does).
"""
import argparse
import statistics
import time

from pycrdt import Doc, Map


def local(n, batch):
    d = Doc()
    m = d.get("m", type=Map)
    ups = []
    sub = d.observe(lambda e: ups.append(e.update))
    t0 = time.perf_counter()
    if batch == 1:
        for i in range(n):
            m[f"kv/bench/{i % 10000}"] = i
    else:
        for s in range(0, n, batch):
            with d.transaction():
                for i in range(s, min(n, s + batch)):
                    m[f"kv/bench/{i % 10000}"] = i
    dt = time.perf_counter() - t0
    d.unobserve(sub)
    return n / dt, ups


def remote(n, ups):
    d2 = Doc()
    t0 = time.perf_counter()
    for u in ups:
        d2.apply_update(u)
    dt = time.perf_counter() - t0
    m = d2.get("m", type=Map)
    assert len(m) == min(n, 10000), len(m)
    return n / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deltas", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    res = {}
    for b in (1, a.batch):
        lo, re = [], []
        for _ in range(a.runs):
            r, ups = local(a.deltas, b)
            lo.append(r)
            re.append(remote(a.deltas, ups))
        res[f"pycrdt_local_batch{b}_updates_per_s"] = statistics.median(lo)
        res[f"pycrdt_remote_batch{b}_updates_per_s"] = statistics.median(re)
    for k, v in res.items():
        print(k, v)


if __name__ == "__main__":
    main()
