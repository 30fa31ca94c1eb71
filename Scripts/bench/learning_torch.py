#!/usr/bin/env python3
"""PyTorch (CPU) anchor for `lattica-bench learning` (trainer speed), like for like with ours and
learning_numpy.py: the same 784-128-10 ReLU MLP, softmax cross-entropy, Adam (lr 1e-3), batch 64,
float32, on Fashion-MNIST from the Debian package dataset-fashion-mnist, 2 epochs after 20 warm-up
steps, torch's default intra-op threads (as OpenBLAS's default threads on our side and numpy's),
or TORCH_THREADS of them (Scripts/bench/trainer.sh sets 1 with OPENBLAS_NUM_THREADS=1).
Eager mode, the plain training loop a PyTorch user writes. Prints one line (or JSON with --json)."""
import json, os, sys, time
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fashion_idx import idx  # noqa: E402

torch.manual_seed(1)
if os.environ.get("TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["TORCH_THREADS"]))
X = torch.from_numpy(idx("train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
Y = torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
Xt = torch.from_numpy(idx("t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255)
Yt = torch.from_numpy(idx("t10k-labels-idx1-ubyte").astype(np.int64))
model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.CrossEntropyLoss()
B = 64
epochs = int(os.environ.get("EPOCHS", "2"))
steps = epochs * len(X) // B
g = torch.Generator().manual_seed(1)
order, cur = torch.randperm(len(X), generator=g), 0
def batch():
    global order, cur
    if cur + B > len(order): order, cur = torch.randperm(len(X), generator=g), 0
    i = order[cur:cur + B]; cur += B
    return X[i], Y[i]
def step(xb, yb):
    opt.zero_grad(set_to_none=True)
    loss_fn(model(xb), yb).backward()
    opt.step()
for _ in range(20): step(*batch())
t0 = time.perf_counter()
for _ in range(steps): step(*batch())
secs = time.perf_counter() - t0
with torch.no_grad(): acc = float((model(Xt).argmax(1) == Yt).float().mean())
rate = steps * B / secs
if "--json" in sys.argv:
    print(json.dumps({"benchmark": "trainer-torch", "samples_per_second": round(rate), "test_accuracy": round(acc * 100, 2),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))
else:
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads): {rate:.0f} samples/s; test accuracy after {epochs} epochs {acc * 100:.1f}%")
