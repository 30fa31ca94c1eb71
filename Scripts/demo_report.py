#!/usr/bin/env python3
"""The demo's report: the honest daemons' held-out accuracy per outer step (from `lattica train
status --json`), beside the centralised baseline and the simulator on the same configuration;
writes an SVG chart (no external assets)."""
import json
import sys

root, honest, nodes, attack = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
runs = [json.load(open(f"{root}/node-{i}/status.json"))["runs"][0] for i in range(honest)]
# accuracy_per_step[s] is θ's held-out accuracy before outer step s (after step s-1); the final
# one is the status's `accuracy` (after the final merge: `accuracy_before_merge`).
def final(r):
    return r["accuracy_before_merge"] if r.get("accuracy_before_merge") is not None else r["accuracy"]
curves = [r["accuracy_per_step"][1:] + [final(r)] for r in runs]
merged = [r["accuracy"] for r in runs if r.get("merged")]
n = min(len(c) for c in curves)
mean = [sum(c[s] for c in curves) / len(curves) for s in range(n)]
worst = min(c[n - 1] for c in curves)
central = json.load(open(f"{root}/central.json"))["central_accuracy_per_round"]
sim = json.load(open(f"{root}/simulated.json"))
simc = sim["simulated_accuracy_per_round"]
print(f"{'step':>5} {'network (honest mean)':>22} {'simulator':>10} {'central':>8}")
for s in list(range(4, n, 5)) + ([n - 1] if (n - 1) % 5 != 4 else []):
    print(f"{s + 1:>5} {mean[s] * 100:>21.1f}% {simc[s] * 100 if s < len(simc) else float('nan'):>9.1f}% {central[s] * 100 if s < len(central) else float('nan'):>7.1f}%")
rej = sum(r["rejected"] for r in runs)
print(f"\nafter {n} outer steps, {honest} honest of {nodes} daemons ({nodes - honest} attacking with {attack}):")
print(f"  network: mean {mean[-1] * 100:.1f}%, worst honest node {worst * 100:.1f}%")
print(f"  simulator, same configuration: mean {simc[n - 1] * 100:.1f}% (worst {sim['simulated_worst'] * 100:.1f}%); difference {abs(mean[-1] - simc[n - 1]) * 100:.1f} points")
if merged:
    sa, sw = sim.get("simulated_after_merge"), sim.get("simulated_worst_after_merge")
    print(f"  final merge (every member's final model, once, merged robustly) on {len(merged)} of {honest} honest nodes: "
          f"mean {mean[-1] * 100:.1f}% -> {sum(merged) / len(merged) * 100:.1f}%, worst {min(merged) * 100:.1f}%"
          + (f"; simulator {simc[n - 1] * 100:.1f}% -> {sa * 100:.1f}% (worst {sw * 100:.1f}%)" if sa is not None else ""))
print(f"  central baseline: {central[n - 1] * 100:.1f}%")
try:
    idle = [int(x) / 1024 for x in open(f"{root}/rss-idle.txt").read().split()]
    train = [int(x) / 1024 for x in open(f"{root}/rss-train.txt").read().split()]
    print(f"  latticad RSS: idle (connected, before the run) median {sorted(idle)[len(idle) // 2]:.1f} MiB, max {max(idle):.1f}; "
          f"training (peak per daemon, sampled each second) median {sorted(train)[len(train) // 2]:.1f} MiB, max {max(train):.1f}")
except (OSError, ValueError):
    pass
print(f"  contributions rejected by honest nodes: {rej}; node-0's view of its peers:")
attackers = {json.load(open(f"{root}/node-{i}/node.json"))["peer_id"] for i in range(honest, nodes)}
for p in sorted(runs[0]["peers"], key=lambda p: p["reputation"]):
    tag = "attacker" if p["peer_id"] in attackers else "honest"
    print(f"    …{p['peer_id'][-12:]}  {tag:<8}  reputation {p['reputation']:.2f}  rejected {p['rejected']}")

# SVG chart
W, H, L, B = 640, 360, 50, 40
def xy(s, a):
    return L + (W - L - 20) * s / max(1, n - 1), H - B - (H - B - 20) * a
def poly(c, color, label, dy):
    pts = " ".join(f"{xy(s, a)[0]:.1f},{xy(s, a)[1]:.1f}" for s, a in enumerate(c[:n]))
    return (f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>'
            f'<text x="{W - 220}" y="{40 + dy}" fill="{color}" font-size="12">{label}</text>')
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{L}" y="14" font-size="13">Held-out accuracy per outer step: {honest} honest daemons, {nodes - honest} x {attack}</text>']
for t in range(0, 11, 2):
    y = xy(0, t / 10)[1]
    svg.append(f'<line x1="{L}" x2="{W - 20}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="8" y="{y + 4}" font-size="11">{t * 10}%</text>')
svg += [poly(mean, "#1f77b4", "network, honest mean", 0), poly(simc, "#ff7f0e", "simulator, same config", 16),
        poly(central, "#2ca02c", "central baseline", 32),
        f'<text x="{W / 2 - 40}" y="{H - 8}" font-size="11">outer step (1..{n})</text></svg>']
open(f"{root}/accuracy.svg", "w").write("".join(svg))
print(f"  chart: {root}/accuracy.svg")
