"""Benchmarks of the Python client (Scripts/bench/python.sh): medians over repeated runs.

1. Hand-off per outer step for a 100 MB model (25 M float32), Python ↔ latticad: a run of one
   member, so that the daemon's outer step is its momentum update alone and everything else is
   hand-off. Blocking: the hand-off is the Python side (the training thread's time at the
   boundary other than waiting for the answer: copying the parameters into shared memory and
   back, the thread hand-over) plus the daemon side (the control call's wall time minus the
   daemon's own outer-step time ``ms``: JSON, reading the file, the checkpoint, writing θ back).
   Overlapped: what the training thread spends at a boundary whose answer is already there (the
   network hidden behind compute): applying the answer and handing over the next θ. The first
   two boundaries of each run are not counted (steady state).
   Beside: one 100 MB memory copy in numpy (the floor of any hand-off).
2. Training throughput of the torch wrapper (overlap on, and off) against plain PyTorch, same
   model, batch and inner optimiser, in a run of two members (the other is a numpy partner that
   averages as fast as it can), torch on one thread on both sides: segments of plain and wrapped
   steps alternate on the same model, so that both see the same load of the shared machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

PARTNER = r'''
import sys, numpy as np
from latticaswift import Session, RunFinished
s = Session(sys.argv[1], socket=sys.argv[2])
theta = s.start(np.zeros(int(sys.argv[3]), dtype=np.float32))
while not s.finished:
    theta = s.average(theta)
s.done()
'''


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def handoff(repeats, steps, count):
    import torch
    import latticaswift.torch as lt
    from latticaswift.testnet import TestNet, run_config
    torch.set_num_threads(1)
    modes = {"zero_copy": (False, True), "copy": (False, False), "overlap": (True, False)}
    out = {"memcpy_ms": []}
    for m in ("zero_copy", "copy"):
        for k in ("wall_ms", "daemon_ms", "overhead_ms", "python_side_ms", "daemon_side_ms"):
            out[f"{m}_{k}"] = []
    out["overlap_wait_ms"] = []
    src = np.ones(count, np.float32)
    dst = np.empty_like(src)
    for _ in range(repeats * steps):
        t = time.perf_counter()
        np.copyto(dst, src)
        out["memcpy_ms"].append(1000 * (time.perf_counter() - t))
    del src, dst
    for rep in range(repeats):
        for mode, (overlap, zero_copy) in modes.items():
            with TestNet(1) as net:
                run = net.start_run(f"handoff-{mode.replace('_', '-')}", run_config(nodes=1, k=1, rounds=steps + 1, inner_steps=1,
                                                                                    aggregator="mean", reputation=False))
                w = torch.nn.Parameter(torch.zeros(count))
                inner = torch.optim.SGD([w], lr=0.0)
                events = []
                opt = lt.Optimizer([w], inner, run=run, socket=net.daemons[0].socket, overlap=overlap, zero_copy=zero_copy,
                                   on_event=events.append)
                w.grad = torch.zeros(count)
                for i in range(steps):
                    if opt.session.pending is not None:
                        opt.session.pending.wait()  # untimed: compute long enough to hide the network
                    n_events = len(events)
                    opt.step()  # inner_steps = 1: every step is a boundary
                    if i < 2:
                        continue  # steady state: the first boundaries touch fresh memory
                    py = opt.handoff_ms[-1]  # the training thread's time at the boundary, the daemon's answer excluded
                    if not overlap:
                        e = events[-1]
                        out[f"{mode}_python_side_ms"].append(py)
                        out[f"{mode}_daemon_side_ms"].append(e.wall_ms - e.daemon_ms)
                        out[f"{mode}_daemon_ms"].append(e.daemon_ms)
                        out[f"{mode}_overhead_ms"].append(py + e.wall_ms - e.daemon_ms)
                        out[f"{mode}_wall_ms"].append(py + e.wall_ms)
                    else:  # applying the last answer (its event's handoff_ms) and handing over the next θ
                        applied = [e for e in events[n_events:] if e.kind == "outer_step"]
                        out["overlap_wait_ms"].append(py + sum(e.handoff_ms for e in applied))
                opt.finish()
                del opt, w, inner
    return {k: med(v) for k, v in out.items()}, {k: len(v) for k, v in out.items()}


def throughput(repeats, steps, hidden, batch, inner_steps):
    """Plain and wrapped segments of ``steps`` steps alternate on the same model in one process,
    ``repeats`` pairs per mode, so that both see the same machine (it is shared): the ratio of
    each pair, and their median."""
    import torch
    import latticaswift.torch as lt
    from latticaswift.testnet import TestNet, run_config
    torch.set_num_threads(1)

    def make():
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, 10))
        return m, torch.optim.Adam(m.parameters(), lr=1e-3)

    g = torch.Generator().manual_seed(0)
    xb = torch.rand(batch, 784, generator=g)
    yb = torch.randint(0, 10, (batch,), generator=g)
    lossf = torch.nn.CrossEntropyLoss()

    def loop(model, opt, n):
        t = time.perf_counter()
        for _ in range(n):
            opt.zero_grad()
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()
        return n / (time.perf_counter() - t)

    res = {"plain": [], "overlap": [], "blocking": [], "overlap_ratio": [], "blocking_ratio": []}
    count = None
    for mode in ("overlap", "blocking"):
        model, inner = make()
        count = sum(p.numel() for p in model.parameters())
        rounds = (repeats * steps) // inner_steps + 4
        with TestNet(2) as net:
            run = net.start_run(f"tp-{mode}", run_config(nodes=2, k=2, rounds=rounds, inner_steps=inner_steps,
                                                         aggregator="mean", reputation=False))
            partner = subprocess.Popen([sys.executable, "-c", PARTNER, run, net.daemons[1].socket, str(count)],
                                       stderr=subprocess.PIPE)
            try:
                opt = lt.Optimizer(model.parameters(), inner, run=run, socket=net.daemons[0].socket, overlap=(mode == "overlap"))
                loop(model, opt, 2 * inner_steps)  # warm-up: the first outer step waits for the partner to attach
                opt.flush()
                for _ in range(repeats):
                    plain = loop(model, inner, steps)
                    wrapped = loop(model, opt, steps)
                    res["plain"].append(plain)
                    res[mode].append(wrapped)
                    res[f"{mode}_ratio"].append(wrapped / plain)
                while not opt.finished:  # the partner waits for the run's end
                    loop(model, opt, inner_steps)
                opt.finish()
            finally:
                partner.wait(300)
    return {k: med(v) for k, v in res.items()}, count, res


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m latticaswift.bench")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--handoff-steps", type=int, default=8, help="outer steps per run (the first 2 not counted)")
    ap.add_argument("--handoff-mb", type=float, default=100)
    ap.add_argument("--steps", type=int, default=200, help="steps per throughput segment")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--inner-steps", type=int, default=50)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--handoff-only", action="store_true", help="skip the throughput benchmark")
    args = ap.parse_args(argv)
    count = int(args.handoff_mb * 1e6 / 4)
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the start")
    h, n = handoff(args.repeats, args.handoff_steps, count)
    print(f"hand-off, {args.handoff_mb:.0f} MB model ({count} float32), medians of {n['copy_overhead_ms']} outer steps "
          f"({args.repeats} runs):")
    for m, what in (("zero_copy", "blocking, zero-copy (the parameters live in shared memory)"),
                    ("copy", "blocking, copying the parameters in and out")):
        print(f"  {what}: boundary {h[m + '_wall_ms']:.1f} ms = daemon's outer step {h[m + '_daemon_ms']:.1f} ms "
              f"+ hand-off {h[m + '_overhead_ms']:.1f} ms (ratio to the 50 ms target {h[m + '_overhead_ms'] / 50:.2f}); of it "
              f"Python side {h[m + '_python_side_ms']:.1f} ms (ratio {h[m + '_python_side_ms'] / 50:.2f}), daemon side "
              f"{h[m + '_daemon_side_ms']:.1f} ms (call wall minus its ms: JSON, file read, checkpoint, write-back)")
    print(f"  overlap: the training thread waits {h['overlap_wait_ms']:.1f} ms per boundary (ratio to target "
          f"{h['overlap_wait_ms'] / 50:.2f})")
    print(f"  one 100 MB numpy copy: {h['memcpy_ms']:.1f} ms (Python side / copy: zero-copy "
          f"{h['zero_copy_python_side_ms'] / h['memcpy_ms']:.2f}x, copying {h['copy_python_side_ms'] / h['memcpy_ms']:.2f}x, "
          f"overlap {h['overlap_wait_ms'] / h['memcpy_ms']:.2f}x)")
    if args.handoff_only:
        print(f"machine: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"handoff": h, "handoff_n": n, "args": vars(args)}, f, indent=1)
        return
    t, tcount, raw = throughput(args.repeats, args.steps, args.hidden, args.batch, args.inner_steps)
    print(f"throughput, MLP 784-{args.hidden}-{args.hidden}-10 ({tcount} parameters, {4 * tcount / 1e6:.1f} MB), batch {args.batch}, "
          f"Adam, H={args.inner_steps}, torch on 1 thread; {args.repeats} pairs of {args.steps}-step segments, plain and wrapped "
          f"alternating on the same model; medians:")
    print(f"  plain PyTorch {t['plain']:.1f} steps/s; wrapper with overlap {t['overlap']:.1f} steps/s: ratio {t['overlap_ratio']:.3f} "
          f"(target >= 0.95); blocking (zero-copy) {t['blocking']:.1f} steps/s: ratio {t['blocking_ratio']:.3f}")
    print(f"machine: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end; throughput ratios of the pairs: "
          f"overlap {', '.join(f'{x:.2f}' for x in raw['overlap_ratio'])}; blocking {', '.join(f'{x:.2f}' for x in raw['blocking_ratio'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"handoff": h, "handoff_n": n, "throughput": t, "throughput_runs": raw, "throughput_params": tcount,
                       "args": vars(args)}, f, indent=1)


if __name__ == "__main__":
    main()
