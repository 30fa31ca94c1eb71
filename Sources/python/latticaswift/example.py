"""The example: 4 latticad and 4 PyTorch trainers on loopback, one of them an attacker (its daemon
answers pulls with sign-flipped models), train an MLP on the digits fixture; prints the honest
trainers' held-out accuracy beside a single-process baseline trained on the union of their data.

    python -m latticaswift.example [--rounds 30] [--inner-steps 10] [--attack sign-flip]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def build_model(d, c, hidden=64):
    import torch
    return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                               torch.nn.ReLU(), torch.nn.Linear(hidden, c))


def accuracy(model, x, y):
    import torch
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def batches(x, y, batch, seed):
    rng = np.random.default_rng(seed)
    while True:
        idx = rng.permutation(len(y))
        for i in range(0, len(idx) - batch + 1, batch):
            j = idx[i:i + batch]
            yield x[j], y[j]


def train_local(model, opt, x, y, steps, batch, seed, step_fn=None):
    import torch
    lossf = torch.nn.CrossEntropyLoss()
    it = batches(x, y, batch, seed)
    for _ in range(steps):
        xb, yb = next(it)
        opt.zero_grad()
        loss = lossf(model(torch.from_numpy(xb)), torch.from_numpy(yb))
        loss.backward()
        if step_fn is not None:
            step_fn(loss)
        else:
            opt.step()


def worker(args):
    """One trainer process: attach to the run on its daemon and train on its shard."""
    import torch
    import latticaswift.torch as lt
    from latticaswift import data
    torch.set_num_threads(1)
    shards, (xt, yt), c = data.digits(seed=args.seed, shards=args.nodes)
    x, y = shards[args.shard]
    torch.manual_seed(1000 + args.shard)  # deliberately different: θ0 comes from member 0
    model = build_model(x.shape[1], c)
    inner = torch.optim.Adam(model.parameters(), lr=args.lr)
    events = []
    opt = lt.Optimizer(model.parameters(), inner, run=args.run, socket=args.socket, overlap=not args.no_overlap,
                       on_event=lambda e: events.append(e))
    steps = args.rounds * opt.inner_steps
    if args.minutes:  # the soak: train until the time is up (the run's rounds are large)
        end = time.monotonic() + 60 * args.minutes
        def step(loss):
            opt.step(loss=loss)
            if args.step_sleep:
                time.sleep(args.step_sleep)  # rate limit: the soak shares the machine
        it = 0
        while time.monotonic() < end and not opt.finished:
            train_local(model, opt, x, y, opt.inner_steps, args.batch, args.seed + args.shard + it, step_fn=step)
            it += 1
    else:
        train_local(model, opt, x, y, steps, args.batch, args.seed + args.shard, step_fn=lambda loss: opt.step(loss=loss))
    status = opt.finish(accuracy=accuracy(model, xt, yt))
    outer = [e for e in events if e.kind == "outer_step"]
    print(json.dumps({"shard": args.shard, "accuracy": accuracy(model, xt, yt), "outer_steps": len(outer),
                      "partners_last": outer[-1].partners if outer else [], "rejected": status.get("rejected"),
                      "staleness_max": max((e.staleness for e in outer), default=0),
                      "theta0": [e.source for e in events if e.kind == "started"],
                      "handoff_ms_median": float(np.median(opt.handoff_ms)) if opt.handoff_ms else None}), flush=True)


def baseline(args, honest):
    """One process, the same model, optimiser, batch and number of steps, on the union of the honest shards."""
    import torch
    from latticaswift import data
    torch.set_num_threads(1)
    shards, (xt, yt), c = data.digits(seed=args.seed, shards=args.nodes)
    x = np.concatenate([shards[i][0] for i in honest])
    y = np.concatenate([shards[i][1] for i in honest])
    torch.manual_seed(1000)
    model = build_model(x.shape[1], c)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    train_local(model, opt, x, y, args.rounds * args.inner_steps, args.batch, args.seed)
    return accuracy(model, xt, yt)


def run_example(args):
    from latticaswift.testnet import TestNet, run_config
    attackers = set(range(args.nodes - args.attackers, args.nodes))
    honest = [i for i in range(args.nodes) if i not in attackers]
    t0 = time.monotonic()
    with TestNet(args.nodes, attackers=attackers, attack=args.attack, keep=args.keep) as net:
        print(f"example: {args.nodes} latticad on loopback in {net.root}; node(s) {sorted(attackers)} attack with {args.attack}")
        cfg = run_config(nodes=args.nodes, k=args.nodes, rounds=args.rounds, inner_steps=args.inner_steps,
                         aggregator=args.aggregator, seed=args.seed)
        run = net.start_run("torch-digits", cfg)
        procs = []
        for i, d in enumerate(net.daemons):
            cmd = [sys.executable, "-m", "latticaswift.example", "--worker", "--run", run, "--socket", d.socket, "--shard", str(i),
                   "--nodes", str(args.nodes), "--rounds", str(args.rounds), "--seed", str(args.seed), "--lr", str(args.lr),
                   "--batch", str(args.batch)] + (["--no-overlap"] if args.no_overlap else [])
            log = open(os.path.join(d.data_dir, "trainer.log"), "wb")
            procs.append((subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log), log))
        results = {}
        for i, (p, log) in enumerate(procs):
            out, _ = p.communicate(timeout=1800)
            log.close()
            if p.returncode != 0:
                with open(os.path.join(net.daemons[i].data_dir, "trainer.log")) as f:
                    raise SystemExit(f"example: trainer {i} failed ({p.returncode}):\n{f.read()[-3000:]}")
            results[i] = json.loads(out.decode().strip().splitlines()[-1])
        status = {i: net.daemons[i].call("train.status")["runs"] for i in honest}
    base = baseline(args, honest)
    accs = [results[i]["accuracy"] for i in honest]
    print(f"example: {args.rounds} outer steps of {args.inner_steps} inner steps in {time.monotonic() - t0:.0f} s")
    for i in range(args.nodes):
        r = results[i]
        role = "attacker" if i in attackers else "honest"
        print(f"  trainer {i} ({role:8}): held-out accuracy {100 * r['accuracy']:.1f}%  outer steps {r['outer_steps']}  "
              f"θ0 {r['theta0'][0]}  rejected {r['rejected']}  max staleness {r['staleness_max']}")
    for i in honest:
        peers = status[i][0]["peers"] if status[i] else []
        rep = {p["peer_id"][-6:]: round(p["reputation"], 2) for p in peers}
        print(f"  daemon {i}: reputation of peers {rep}")
    mean = float(np.mean(accs))
    print(f"example: honest trainers' mean accuracy {100 * mean:.1f}% (min {100 * min(accs):.1f}%), "
          f"single-process baseline on the union of their data {100 * base:.1f}%, gap {100 * (base - min(accs)):+.1f} points")
    summary = {"honest": accs, "mean": mean, "baseline": base, "gap_points": 100 * (base - min(accs)),
               "attacker_ids": [net.daemons[i].peer_id for i in attackers]}
    print(json.dumps(summary))
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m latticaswift.example", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--attackers", type=int, default=1)
    ap.add_argument("--attack", default="sign-flip")
    ap.add_argument("--aggregator", default="centered-clip")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--inner-steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-overlap", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the daemons' data directories")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--socket", help=argparse.SUPPRESS)
    ap.add_argument("--shard", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--minutes", type=float, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--step-sleep", type=float, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    run_example(args)


if __name__ == "__main__":
    main()
