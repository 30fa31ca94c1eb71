#!/usr/bin/env bash
# The CRDT store beside pycrdt (Yrs), same machine, same run, medians, with ratios (issue 10).
#   Scripts/bench/crdt.sh            # RUNS=3 repetitions, 100,000 deltas each
# Targets: >= 250,000 signed, persisted deltas/s on one node; a fresh node catches up on
# 100,000 deltas from a peer over loopback in <= 1 s.
# Like for like: both sides write the same shape (sets of 10,000 keys) in batches of 100 (one
# signature + one SQLite transaction per batch for us; one transaction for pycrdt). pycrdt is
# unsigned and in memory: the "in memory" and "unsigned" rows of ours separate those two costs.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${RUNS:-3}
n=${DELTAS:-100000}
Scripts/setup.sh >/dev/null; Scripts/interop-setup.sh >/dev/null
.venv/bin/pip show -q pycrdt >/dev/null 2>&1 || .venv/bin/pip install -q pycrdt
swift build -c release --product lattica-bench >/dev/null
bin="$(swift build -c release --show-bin-path)"
out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT
for i in $(seq "$runs"); do
  echo "bench: run $i/$runs" >&2
  "$bin/lattica-bench" crdt --deltas "$n" --batch 100 --catch-up "$n" --runs 1 2>/dev/null | sed 's/^/b100_/' >> "$out/ours.txt"
  "$bin/lattica-bench" crdt --deltas "$n" --batch 1000 --catch-up 0 --runs 1 2>/dev/null | sed 's/^/b1000_/' >> "$out/ours.txt"
  .venv/bin/python Scripts/bench/crdt_pycrdt.py --deltas "$n" --batch 100 --runs 1 >> "$out/ours.txt"
done
python3 - "$out/ours.txt" "$n" <<'PY'
import statistics, sys
v = {}
for line in open(sys.argv[1]):
    k, x = line.split()
    v.setdefault(k, []).append(float(x))
m = {k: statistics.median(x) for k, x in v.items()}
n = int(sys.argv[2])
rows = [  # label, ours, anchor, target
    ("remote apply, batches of 100: signed+persisted vs pycrdt (unsigned, memory)", "b100_remote_signed_persisted_deltas_per_s", "pycrdt_remote_batch100_updates_per_s", ">= 250000"),
    ("  remote apply, batches of 100: signed, in memory (separates SQLite)", "b100_remote_signed_in_memory_deltas_per_s", "pycrdt_remote_batch100_updates_per_s", ""),
    ("remote apply, batches of 1000: signed+persisted", "b1000_remote_signed_persisted_deltas_per_s", None, ">= 250000"),
    ("local writes, batches of 100: signed+persisted vs pycrdt local (unsigned, memory)", "b100_local_signed_persisted_deltas_per_s", "pycrdt_local_batch100_updates_per_s", ""),
    ("  local writes, batches of 100: signed, in memory (separates SQLite)", "b100_local_signed_in_memory_deltas_per_s", "pycrdt_local_batch100_updates_per_s", ""),
    ("  local writes, batches of 100: unsigned, in memory (separates the signature)", "b100_local_unsigned_in_memory_deltas_per_s", "pycrdt_local_batch100_updates_per_s", ""),
    ("local writes, batches of 1000: signed+persisted", "b1000_local_signed_persisted_deltas_per_s", None, ""),
    ("  pycrdt, one set per transaction: local / remote", "pycrdt_local_batch1_updates_per_s", "pycrdt_remote_batch1_updates_per_s", ""),
]
print(f"{'deltas per second (' + format(n, ',') + ' per run)':<84} {'ours':>11} {'anchor':>11} {'ratio':>7}  target")
for label, k, a, t in rows:
    o = m.get(k, float('nan')); an = m.get(a, float('nan')) if a else float('nan')
    r = o / an if an == an else float('nan')
    print(f"{label:<84} {o:>11,.0f} {an:>11,.0f} {r:>7.2f}  {t}")
c = m.get("b100_catch_up_s", float('nan'))
print(f"{'fresh node catches up on ' + format(n, ',') + ' deltas over loopback (s)':<84} {c:>11.3f} {'':>11} {'':>7}  <= 1")
print(f"(medians of {len(v.get('b100_catch_up_s', []))} runs; pycrdt {__import__('subprocess').run(['.venv/bin/pip','show','pycrdt'],capture_output=True,text=True).stdout.split('Version: ')[1].split()[0]})")
PY
