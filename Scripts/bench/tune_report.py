#!/usr/bin/env python3
"""Selection and tables of Scripts/bench/tune.sh from `lattica-bench learning --json` lines.
  select FILE: rank the tuning configurations by the stated criterion (worst case over the
               columns of the mean honest accuracy; ties within 0.2 by the mean); last line = chosen spec.
  table FILE:  markdown tables (one per Byzantine count): mean honest accuracy [worst honest node]."""
import json, sys
from collections import defaultdict

def cells(path):
    out = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{") and '"attack"' in line:
            out.append(json.loads(line))
    return out

def select(path):
    by = defaultdict(dict)
    for c in cells(path):
        by[c["aggregator"]][(c["byzantine"], c["attack"])] = c["accuracy"]
    cols = sorted({k for v in by.values() for k in v})
    ranked = []
    for spec, v in by.items():
        if len(v) != len(cols):
            continue
        vals = [v[k] for k in cols]
        ranked.append((min(vals), sum(vals) / len(vals), spec, vals))
    ranked.sort(key=lambda t: (-t[0], -t[1]))
    best_worst = ranked[0][0]
    near = [t for t in ranked if t[0] >= best_worst - 0.2]
    chosen = max(near, key=lambda t: t[1])
    print("rank | worst column | mean | spec | worst column name")
    for i, (w, m, s, vals) in enumerate(ranked):
        print(f"{i + 1:3d} | {w:5.1f} | {m:5.1f} | {s} | {cols[vals.index(w)]}")
    print(f"chosen (worst {chosen[0]:.1f}, mean {chosen[1]:.1f}):")
    print(chosen[2])

def table(path):
    order = ["none", "sign-flip", "gaussian", "label-flip", "ALIE", "IPM", "free-rider",
             "min-max", "min-sum", "mimic", "drift", "scaled", "sleeper"]
    rows = defaultdict(dict)
    names = []
    for c in cells(path):
        key = (c["byzantine"], c["method"])
        if c["method"] not in names:
            names.append(c["method"])
        rows[key][c["attack"]] = c
    for b in sorted({k[0] for k in rows}):
        print(f"\n| {b} of 16 Byzantine | " + " | ".join("clean" if a == "none" else a for a in order) + " | worst column |")
        print("|---" * (len(order) + 2) + "|")
        for n in names:
            r = rows.get((b, n))
            if not r:
                continue
            line = []
            for a in order:
                c = r.get(a)
                line.append(f"{c['accuracy']:.1f} [{c['worst_node_accuracy']:.1f}]" if c else "")
            worst = min((c["accuracy"], a) for a, c in r.items())
            print(f"| {n} | " + " | ".join(line) + f" | {worst[0]:.1f} ({'clean' if worst[1] == 'none' else worst[1]}) |")

if __name__ == "__main__":
    {"select": select, "table": table}[sys.argv[1]](sys.argv[2])
