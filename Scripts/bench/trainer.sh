#!/usr/bin/env bash
# Trainer speed (issue 11, item 8): samples/s of the Fashion-MNIST MLP (784-128-10 ReLU, softmax
# cross-entropy, Adam lr 1e-3, batch 64, float32, 2 epochs), ours (lattica-bench learning --tracks
# trainer) against numpy and PyTorch CPU on this machine, in the same run, alternating, with the
# ratio per round and the medians. The same model, batch, optimiser and data on every side.
#
# Two concurrency settings, each the same on every side (the row label says which):
#   - "1 thread": OPENBLAS_NUM_THREADS=1 for ours and numpy, torch.set_num_threads(1);
#   - "library default": OpenBLAS's and torch's own thread count (2 here).
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE slow OpenBLAS for every side alike: unset here.
#   Scripts/bench/trainer.sh [--rounds N] [--threads 1|default|both] [--no-torch]
# Its figures: Docs/LEARNING.md ("Trainer speed").
set -euo pipefail
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
cd "$(dirname "$0")/../.."
rounds=5 threads=both torch=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --no-torch) torch=0; shift ;;
    *) echo "trainer.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# LATTICA_BIN_DIR: use the binaries there (a build made with other flags) instead of building.
if [ -n "${LATTICA_BIN_DIR:-}" ]; then bin="$LATTICA_BIN_DIR"
else
  swift build -c release --product lattica-bench >&2
  bin="$(swift build -c release --show-bin-path)"
fi
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  (apt-get install -y -q dataset-fashion-mnist >&2 || sudo apt-get install -y -q dataset-fashion-mnist >&2)
fi
py=""
if [ -x .venv/bin/python ] && .venv/bin/python -c "import numpy" 2>/dev/null; then py=.venv/bin/python
else
  [ -x .build/learning-venv/bin/python ] || { python3 -m venv .build/learning-venv >&2 && .build/learning-venv/bin/pip install -q numpy >&2; }
  py=.build/learning-venv/bin/python
fi
tpy="${LATTICA_PY_VENV:-$PWD/.venv-python}/bin/python"
if [ $torch = 1 ] && ! { [ -x "$tpy" ] && "$tpy" -c "import torch" 2>/dev/null; }; then
  echo "trainer.sh: PyTorch anchor skipped (Scripts/python-test.sh --setup-only installs it)" >&2
  torch=0
fi
rate() { grep -o '"samples_per_second": [0-9]*' | grep -o '[0-9]*$'; }
case "$threads" in both) settings="1 default" ;; *) settings="$threads" ;; esac
for setting in $settings; do
  if [ "$setting" = 1 ]; then export OPENBLAS_NUM_THREADS=1 TORCH_THREADS=1; else unset OPENBLAS_NUM_THREADS TORCH_THREADS; fi
  ours=() numpy=() torchs=()
  echo "== $( [ "$setting" = 1 ] && echo "1 thread on every side" || echo "each library's default thread count") =="
  for r in $(seq 1 "$rounds"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    o=$("$bin/lattica-bench" learning --tracks trainer --json | rate)
    n=$("$py" Scripts/bench/learning_numpy.py --json | rate)
    t=""
    [ $torch = 1 ] && t=$("$tpy" Scripts/bench/learning_torch.py --json | rate)
    ours+=("$o"); numpy+=("$n"); [ -n "$t" ] && torchs+=("$t")
    printf 'round %d (load %s): ours %s, numpy %s (ratio %s)%s\n' "$r" "$load" "$o" "$n" \
      "$(python3 -c "print(f'{$o/$n:.2f}')")" "$( [ -n "$t" ] && python3 -c "print(f', torch $t (ratio {$o/$t:.2f})')")"
  done
  python3 - "$setting" "${ours[*]}" "${numpy[*]}" "${torchs[*]:-}" <<'EOF'
import statistics, sys
setting, ours, numpy, torch = sys.argv[1], *[list(map(float, a.split())) for a in sys.argv[2:5]]
label = "1 thread" if setting == "1" else "library default threads"
med = statistics.median
ratios = [o / n for o, n in zip(ours, numpy)]
print(f"trainer, Fashion-MNIST 784-128-10, batch 64, Adam, {label}: ours {med(ours):.0f} samples/s, numpy {med(numpy):.0f} "
      f"(median ratio per round {med(ratios):.2f}, target >= 1.3)" +
      (f", torch {med(torch):.0f} (median ratio {med([o / t for o, t in zip(ours, torch)]):.2f})" if torch else ""))
EOF
done
