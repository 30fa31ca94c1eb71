#!/usr/bin/env bash
# The learning layer's experiments and benchmarks (Docs/LEARNING.md):
#   - the main table of /work/shared/ALGORITHMS.md (digits, 16 nodes, Dirichlet(0.5), 4 Byzantine,
#     60 outer rounds, H = 10, 3 seeds) with the anchor numbers beside ours, accuracy per outer
#     round and an SVG chart (.build/learning-accuracy.svg);
#   - the Bristle and DADAO tracks beside their anchors;
#   - trainer samples/s on Fashion-MNIST, ours vs numpy and PyTorch (CPU) on this machine, and aggregation of
#     k = 8 vectors of 25 M float32 (Flag, median, CenteredClip, Multi-Krum).
# Options are passed through to `lattica-bench learning` (see --help), e.g.
#   Scripts/bench/learning.sh --nodes 16 --byzantine 4 --rounds 60 --seeds 1,2,3 --alpha 0.5
#   Scripts/bench/learning.sh --json > cells.jsonl
#   Scripts/bench/learning.sh --tracks table --rows "NoLoCo (pairs),flag" --attacks none,sign-flip
# Fashion-MNIST comes from the Debian package dataset-fashion-mnist (apt-get install it); numpy from
# .venv (Scripts/interop-setup.sh) or a private venv made here; torch from the Python client's venv
# (.venv-python: Scripts/python-test.sh --setup-only makes it). OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE slow OpenBLAS for every side alike: unset here, for all of them.
set -euo pipefail
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
cd "$(dirname "$0")/../.."
swift build -c release --product lattica-bench >&2
# The trainer benchmark's data set, from Debian (installed here when missing, as the setup does).
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
  (apt-get install -y -q dataset-fashion-mnist >&2 || sudo apt-get install -y -q dataset-fashion-mnist >&2) || true
fi
json=0
for a in "$@"; do [ "$a" = "--json" ] && json=1; done
tracks="table,bristle,dadao,perf"
prev=""
for a in "$@"; do [ "$prev" = "--tracks" ] && tracks="$a"; prev="$a"; done
.build/release/lattica-bench learning "$@"
if [[ ",$tracks," == *",perf,"* ]]; then
  py=""
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import numpy" 2>/dev/null; then py=.venv/bin/python
  else
    if [ ! -x .build/learning-venv/bin/python ]; then python3 -m venv .build/learning-venv >&2 && .build/learning-venv/bin/pip install -q numpy >&2; fi
    py=.build/learning-venv/bin/python
  fi
  if [ -d /usr/share/datasets/fashion-mnist ]; then
    if [ $json = 1 ]; then "$py" Scripts/bench/learning_numpy.py --json; else "$py" Scripts/bench/learning_numpy.py; fi
    tpy="${LATTICA_PY_VENV:-$PWD/.venv-python}/bin/python"
    if [ -x "$tpy" ] && "$tpy" -c "import torch" 2>/dev/null; then
      if [ $json = 1 ]; then "$tpy" Scripts/bench/learning_torch.py --json; else "$tpy" Scripts/bench/learning_torch.py; fi
    else
      echo "PyTorch anchor skipped: Scripts/python-test.sh --setup-only installs torch into .venv-python" >&2
    fi
  else
    echo "numpy anchor skipped: apt-get install dataset-fashion-mnist" >&2
  fi
fi
