"""The soak: 4 latticad and 4 PyTorch trainers (one attacker) train for ``--minutes`` (60); the RSS
of every process (daemons, trainers, this harness) is sampled every ``--interval`` s (60) and
written as JSON lines; at the end the RSS slope of each process (least squares, MiB per hour,
over the samples after the first 10 % of the run) is printed.

    python -m latticaswift.soak [--minutes 60] [--out soak.jsonl]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def slope_per_hour(ts, ys):
    n = len(ts)
    if n < 2:
        return None
    mt, my = sum(ts) / n, sum(ys) / n
    den = sum((t - mt) ** 2 for t in ts)
    return None if den == 0 else sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / den * 3600


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m latticaswift.soak")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--interval", type=float, default=60)
    ap.add_argument("--out", default="soak-python.jsonl")
    ap.add_argument("--step-sleep", type=float, default=0.01, help="seconds each trainer sleeps per inner step (rate limit)")
    args = ap.parse_args(argv)
    # Stop cleanly (daemons and trainers) on SIGTERM, and on SIGINT also when started in the
    # background (where a shell leaves SIGINT ignored).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from latticaswift.testnet import TestNet, run_config
    nodes, attackers = 4, {3}
    out = open(args.out, "w")
    with TestNet(nodes, attackers=attackers, attack="sign-flip") as net:
        cfg = run_config(nodes=nodes, k=nodes, rounds=1_000_000, inner_steps=10)
        run = net.start_run("soak", cfg)
        procs = []
        for i, d in enumerate(net.daemons):
            cmd = [sys.executable, "-m", "latticaswift.example", "--worker", "--run", run, "--socket", d.socket, "--shard", str(i),
                   "--nodes", str(nodes), "--rounds", "1000000", "--seed", "1", "--lr", "0.003", "--batch", "32",
                   "--minutes", str(args.minutes), "--step-sleep", str(args.step_sleep)]
            log = open(os.path.join(d.data_dir, "trainer.log"), "wb")
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log))
        names = {f"latticad-{i}": d.pid for i, d in enumerate(net.daemons)}
        names.update({f"trainer-{i}": p.pid for i, p in enumerate(procs)})
        names["harness"] = os.getpid()
        t0 = time.monotonic()
        samples = {k: [] for k in names}
        end = t0 + 60 * args.minutes
        while True:
            now = time.monotonic()
            row = {"t_s": round(now - t0, 1), "rss_kib": {k: rss_kib(pid) for k, pid in names.items()}}
            try:
                st = net.daemons[0].call("train.status")["runs"]
                row["step"] = st[0]["step"] if st else None
            except Exception as e:  # the sample is still written
                row["status_error"] = str(e)
            out.write(json.dumps(row) + "\n")
            out.flush()
            for k, v in row["rss_kib"].items():
                if v is not None:
                    samples[k].append((now - t0, v / 1024))
            if now >= end or all(p.poll() is not None for p in procs):
                break
            time.sleep(min(args.interval, max(0.0, end - time.monotonic())))
        codes = []
        for p in procs:  # the trainers stop at the same deadline
            try:
                p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                p.kill()
            codes.append(p.returncode)
        dead = [i for i, d in enumerate(net.daemons) if not d.alive()]
    summary = {"minutes": args.minutes, "trainer_exit_codes": codes, "daemons_dead": dead, "slope_mib_per_hour": {}, "rss_mib": {}}
    for k, s in samples.items():
        s2 = [x for x in s if x[0] >= 0.1 * 60 * args.minutes] or s
        summary["slope_mib_per_hour"][k] = slope_per_hour([t for t, _ in s2], [y for _, y in s2])
        summary["rss_mib"][k] = {"first": s[0][1] if s else None, "last": s[-1][1] if s else None, "max": max(y for _, y in s) if s else None}
    out.write(json.dumps({"summary": summary}) + "\n")
    out.close()
    print(json.dumps(summary, indent=1))
    for k in names:
        sl = summary["slope_mib_per_hour"][k]
        r = summary["rss_mib"][k]
        print(f"soak: {k:11} RSS {r['first']:.1f} -> {r['last']:.1f} MiB (max {r['max']:.1f}), slope {sl:+.2f} MiB/h" if sl is not None else f"soak: {k}: too few samples")
    return 0 if all(c == 0 for c in codes) and not dead else 1


if __name__ == "__main__":
    sys.exit(main())
