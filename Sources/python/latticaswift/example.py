"""The example: 4 latticad and 4 PyTorch trainers on loopback, one of them an attacker (its daemon
answers pulls with sign-flipped models), train an MLP on the digits fixture; prints the honest
trainers' held-out accuracy beside a single-process baseline trained on the union of their data,
and beside a control run of the honest trainers alone (how far the attacker moved them).

    python -m latticaswift.example [--rounds 30] [--inner-steps 10] [--attack sign-flip]
"""

import argparse
import collections
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
    events = collections.deque(maxlen=1000)  # the soak runs for an hour: keep the last ones
    first = []
    opt = lt.Optimizer(model.parameters(), inner, run=args.run, socket=args.socket, overlap=not args.no_overlap,
                       on_event=lambda e: (events.append(e), e.kind == "started" and first.append(e)))
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
    print(json.dumps({"shard": args.shard, "accuracy": accuracy(model, xt, yt), "outer_steps": opt.session.step,
                      "partners_last": outer[-1].partners if outer else [], "rejected": status.get("rejected"),
                      "staleness_max": max((e.staleness for e in outer), default=0),
                      "theta0": [e.source for e in first],
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


def train_network(args, attackers, members):
    """The network part: ``members`` daemons, a run, one trainer process per daemon; trainer i
    trains on shard i of the data split in ``args.nodes``. Returns (results per trainer,
    reputations of peers seen by the honest daemons, peer ids)."""
    from latticaswift.testnet import TestNet, run_config
    honest = [i for i in range(members) if i not in attackers]
    with TestNet(members, attackers=attackers, attack=args.attack, keep=args.keep) as net:
        what = f"node(s) {sorted(attackers)} attack with {args.attack}" if attackers else "the honest trainers alone (the control run)"
        print(f"example: {members} latticad on loopback in {net.root}; {what}", flush=True)
        cfg = run_config(nodes=members, k=members, rounds=args.rounds, inner_steps=args.inner_steps,
                         aggregator=args.aggregator, seed=args.seed, reputation=not args.no_reputation)
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
        reputation = {}
        for i in honest:
            runs = net.daemons[i].call("train.status")["runs"]
            reputation[i] = {p["peer_id"]: p["reputation"] for p in (runs[0]["peers"] if runs else [])}
        ids = [d.peer_id for d in net.daemons]
    return results, reputation, ids


def run_example(args):
    attackers = set(range(args.nodes - args.attackers, args.nodes))
    honest = [i for i in range(args.nodes) if i not in attackers]
    t0 = time.monotonic()
    results, reputation, ids = train_network(args, attackers, args.nodes)
    print(f"example: {args.rounds} outer steps of {args.inner_steps} inner steps in {time.monotonic() - t0:.0f} s")
    for i in range(args.nodes):
        r = results[i]
        role = "attacker" if i in attackers else "honest"
        print(f"  trainer {i} ({role:8}): held-out accuracy {100 * r['accuracy']:.1f}%  outer steps {r['outer_steps']}  "
              f"θ0 {r['theta0'][0]}  rejected {r['rejected']}  max staleness {r['staleness_max']}")
    for i in honest:
        rep = "  ".join(f"node-{ids.index(p)}{' (attacker)' if ids.index(p) in attackers else ''} {v:.2f}"
                        for p, v in sorted(reputation[i].items(), key=lambda kv: ids.index(kv[0])))
        print(f"  daemon {i} rates its peers: {rep}")
    accs = [results[i]["accuracy"] for i in honest]
    summary = {"honest": accs, "mean": float(np.mean(accs)), "attackers": sorted(attackers),
               "attacker_reputation": [reputation[i].get(ids[a]) for i in honest for a in attackers]}
    if attackers and not args.no_control:
        control, _, _ = train_network(args, set(), len(honest))  # the honest trainers alone, on the same shards
        caccs = [control[i]["accuracy"] for i in honest]
        summary["control_honest"] = caccs
        summary["attack_shift_points"] = 100 * (float(np.mean(caccs)) - summary["mean"])
    base = baseline(args, honest)
    summary["baseline"] = base
    summary["gap_points"] = 100 * (base - min(accs))
    print(f"example: honest trainers' accuracy {', '.join(f'{100 * a:.1f}%' for a in accs)} (mean {100 * summary['mean']:.1f}%); "
          f"single-process baseline on the union of their data {100 * base:.1f}%: gap {summary['gap_points']:+.1f} points (worst honest)")
    if "control_honest" in summary:
        print(f"example: the honest trainers alone (a run of {len(honest)}, same shards, no attacker): mean {100 * np.mean(summary['control_honest']):.1f}%; "
              f"the attacker moved them by {summary['attack_shift_points']:+.1f} points")
    print(json.dumps(summary))
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m latticaswift.example", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--attackers", type=int, default=1)
    ap.add_argument("--attack", default="sign-flip")
    ap.add_argument("--aggregator", default="centered-clip")
    ap.add_argument("--no-reputation", action="store_true", help="without the daemons' reputation (with --aggregator mean: "
                    "what the attack does to an undefended run)")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--inner-steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-overlap", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the daemons' data directories")
    ap.add_argument("--no-control", action="store_true", help="skip the control run of the honest trainers alone")
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
