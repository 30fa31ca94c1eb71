#!/usr/bin/env python3
"""Report of Scripts/bench/dadao-network.sh: the network's DADAO against the simulator's.

Reads every node's trainer.log (JSON lines {"dadao": {...}} with t, err, loss, x) and the
simulator's curve (simulated.json), and prints per sample time the network's mean ‖x_i − x*‖²,
loss and consensus distance mean ‖x_i − x̄‖² beside the simulator's, with the ratios."""
import json, sys, glob, os

root, run, nodes = sys.argv[1], sys.argv[2], int(sys.argv[3])
per_node = []
for i in range(nodes):
    rows = []
    with open(os.path.join(root, f"node-{i}", "runs", run, "trainer.log")) as f:
        for line in f:
            if line.startswith('{"dadao"'):
                rows.append(json.loads(line)["dadao"])
    per_node.append(rows)
sim = json.load(open(os.path.join(root, "simulated.json")))["simulated_dadao"]
sim_curve = {round(t, 1): (e, c, a) for t, e, c, a in sim["t_err_consensus_accuracy"]}
times = sorted(sim_curve)
merged = [[r for r in rows if r.get("phase") == "merged"] for rows in per_node]
per_node = [[r for r in rows if r.get("phase", "run") == "run"] for rows in per_node]
softmax = any(r["err"] is None for rows in per_node for r in rows)

def at(rows, t):
    """The node's sample for time t: its first at or after t (a node samples at its first
    gradient event past each sample time, within about one time unit), else its last."""
    for r in rows:
        if r["t"] >= t - 1e-9:
            return r
    return rows[-1] if rows else None

def sampled():
    """(t, every node's sample at t, mean of a key) for the sample times every node reached."""
    for t in times:
        samples = [at(rows, t) for rows in per_node]
        if all(s is not None for s in samples):
            yield t, samples, lambda k: sum(s[k] for s in samples) / nodes

print(f"χ1 = {sim['chi1']:.2f}, λ_mix = {sim['lambda_mix']:.3f}, κ = {sim['kappa']:.0f}; {nodes} daemons")
if softmax:
    # Softmax: held-out accuracy over time, and before/after the final merge.
    print(f"{'t':>7} {'network acc':>12} {'sim acc':>8} {'net loss':>10} {'sim err':>10}")
    for t, samples, mean in sampled():
        acc, loss = mean("accuracy"), mean("loss")
        se, sc, sa = sim_curve[t]
        print(f"{t:7.1f} {100 * acc:12.2f} {100 * sa:8.2f} {loss:10.6f} {se:10.3e}")
    finals = [rows[-1] for rows in per_node]
    before = sum(r["accuracy"] for r in finals) / nodes
    after = sum(rows[-1]["accuracy"] for rows in merged) / nodes if all(merged) else None
    print("per node at the end: " + "  ".join(f"{r['shard']}: acc {100 * r['accuracy']:.2f}, {r['gradients']} grad, {r['gossips']} gossip, {r['failures']} failed, exchange {r.get('exchange_ms', 0):.2f} ms" for r in finals))
    out = {"network_before_merge": before, "network_after_merge": after, "network_worst_before": min(r["accuracy"] for r in finals),
           "network_loss_before": sum(r["loss"] for r in finals) / nodes,
           "network_loss_after": sum(rows[-1]["loss"] for rows in merged) / nodes if all(merged) else None}
    for k in ("accuracy_before_merge", "accuracy_after_merge", "minimiser_accuracy", "central_accuracy", "loss_before_merge", "loss_after_merge", "minimiser_loss"):
        out["sim_" + k] = sim.get(k)
    print(json.dumps(out))
    sys.exit(0)
print(f"{'t':>7} {'network err':>12} {'sim err':>10} {'ratio':>7} {'net consensus':>14} {'sim consensus':>14} {'net loss':>10}")
last = None
for t, samples, mean in sampled():
    err, loss = mean("err"), mean("loss")
    xs = [s["x"] for s in samples]
    d = len(xs[0])
    mean = [sum(x[p] for x in xs) / nodes for p in range(d)]
    cons = sum(sum((x[p] - mean[p]) ** 2 for p in range(d)) for x in xs) / nodes
    se, sc, _ = sim_curve[t]
    print(f"{t:7.1f} {err:12.4e} {se:10.3e} {err / se:7.2f} {cons:14.4e} {sc:14.4e} {loss:10.6f}")
    last = (t, err, se, cons, sc)
finals = [rows[-1] for rows in per_node]
if all(merged):
    print(f"after the final merge: err {sum(rows[-1]['err'] for rows in merged) / nodes:.4e} (before {sum(r['err'] for r in finals) / nodes:.4e})")
print("per node at the end: " + "  ".join(f"{r['shard']}: err {r['err']:.2e}, {r['gradients']} grad, {r['gossips']} gossip, {r['failures']} failed, {r['rejected']} refused, exchange {r.get('exchange_ms', 0):.2f} ms" for r in finals))
for i in range(nodes):
    p = os.path.join(root, f"node-{i}", "dadao-metrics.txt")
    if i == 0 and os.path.exists(p):
        print("node-0 metrics:\n" + open(p).read().strip())
if last:
    print(json.dumps({"t": last[0], "network_err": last[1], "sim_err": last[2], "ratio": last[1] / last[2], "network_consensus": last[3], "sim_consensus": last[4]}))
