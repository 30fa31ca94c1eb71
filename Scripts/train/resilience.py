#!/usr/bin/env python3
"""Training that survives a crash and a straggler (issue 11's second acceptance run).

8 latticad on loopback train digits (Dirichlet 0.5), 2 of them attackers. Node 3 is killed with
SIGKILL mid-run and restarted (it rejoins the run and its trainer resumes from its checkpoint);
node 4's trainer is 3x slower than the others ([train] slowdown = 3). Reports the honest nodes'
accuracy, the worst honest node, the slowest outer step of the honest nodes that were neither
killed nor slowed (they must never wait past the round deadline, at most 30 s by design and
typically well under a second here), and the step the restarted node resumed from.

  python3 Scripts/train/resilience.py --bin .build/release [--rounds 40] [--attack sign-flip]
Prints one line "RESULT {...}"; exit status 1 when an honest node failed to finish.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time


def sh(*a, check=True):
    return subprocess.run(a, capture_output=True, text=True, check=check).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release")
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--attack", default="sign-flip")
    ap.add_argument("--kill", type=int, default=3)
    ap.add_argument("--slow", type=int, default=4)
    a = ap.parse_args()
    lattica, latticad = os.path.join(a.bin, "lattica"), os.path.join(a.bin, "latticad")
    tmp = tempfile.mkdtemp(prefix="lattica-resilience-")
    attackers = {a.nodes - 2, a.nodes - 1}
    procs = {}

    def start(i, boot):
        d = f"{tmp}/n{i}"
        os.makedirs(d, exist_ok=True)
        conf = []
        if i in attackers:
            conf.append(f'attack = "{a.attack}"')
        if i == a.slow:
            conf.append("slowdown = 3.0")
        args = [latticad, "--data-dir", d, "--log-level", "warning"]
        if conf:
            open(f"{d}/latticad.toml", "w").write("[train]\n" + "\n".join(conf) + "\n")
            args += ["--config", f"{d}/latticad.toml"]
        if boot:
            args += ["--bootstrap", boot]
        procs[i] = subprocess.Popen(args, stderr=open(f"{d}/latticad.log", "a"))
        for _ in range(200):
            if subprocess.run([lattica, "--data-dir", d, "status"], capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"node {i} did not start")

    def status(i):
        r = subprocess.run([lattica, "--data-dir", f"{tmp}/n{i}", "train", "status", "--json"], capture_output=True, text=True)
        return (json.loads(r.stdout)["runs"] or [None])[0] if r.returncode == 0 else None

    try:
        start(0, None)
        boot = json.loads(sh(lattica, "--data-dir", f"{tmp}/n0", "status", "--json"))["listen_addrs"][0]
        for i in range(1, a.nodes):
            start(i, boot)
        time.sleep(1.5)
        sh(lattica, "--data-dir", f"{tmp}/n0", "train", "start", "--run", "r", "--nodes", str(a.nodes), "--rounds", str(a.rounds),
           "--k", str(a.nodes), "--shard", f"0/{a.nodes}")
        run = status(0)["run"]
        for i in range(1, a.nodes):
            for _ in range(100):
                if subprocess.run([lattica, "--data-dir", f"{tmp}/n{i}", "train", "join", run, "--shard", f"{i}/{a.nodes}"],
                                  capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
        honest = [i for i in range(a.nodes) if i not in attackers]
        killed_at = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            st = {i: status(i) for i in honest}
            if killed_at is None and st.get(a.kill) and st[a.kill]["step"] >= a.rounds // 3:
                killed_at = st[a.kill]["step"]
                procs[a.kill].send_signal(signal.SIGKILL)
                procs[a.kill].wait()
                time.sleep(0.5)
                start(a.kill, boot)  # rejoins the run by itself and resumes from its checkpoint
            if killed_at is not None and all(s and s["trainer"] == "finished" for s in st.values()):
                break
            time.sleep(0.5)
        st = {i: status(i) for i in honest}
        finished = all(s and s["trainer"] == "finished" for s in st.values())
        acc = {i: s["accuracy"] for i, s in st.items() if s}
        steady = [i for i in honest if i not in (a.kill, a.slow)]
        slowest = 0
        for i in steady:
            for line in open(f"{tmp}/n{i}/runs/{run}/trainer.log"):
                m = re.search(r", (\d+) ms$", line.strip())
                if m:
                    slowest = max(slowest, int(m.group(1)))
        resumed = None
        for line in open(f"{tmp}/n{a.kill}/runs/{run}/trainer.log"):
            m = re.search(r"resumed from the checkpoint at step (\d+)", line)
            if m:
                resumed = int(m.group(1))
        res = {"nodes": a.nodes, "attackers": len(attackers), "attack": a.attack, "rounds": a.rounds, "finished": finished,
               "honest_mean_accuracy": round(sum(acc.values()) / max(1, len(acc)), 4), "worst_honest": round(min(acc.values() or [0]), 4),
               "killed_node_accuracy": acc.get(a.kill), "slow_node_accuracy": acc.get(a.slow), "killed_at_step": killed_at,
               "resumed_from_step": resumed, "slowest_outer_step_ms_of_steady_nodes": slowest}
        print("RESULT " + json.dumps(res, sort_keys=True), flush=True)
        sys.exit(0 if finished and resumed is not None else 1)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["pkill", "-f", f"lattica-train --socket {tmp}"], capture_output=True)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
