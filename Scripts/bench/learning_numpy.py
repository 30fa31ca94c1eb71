#!/usr/bin/env python3
"""numpy anchor for `lattica-bench learning` (trainer speed): the same 784-128-10 ReLU MLP, softmax
cross-entropy, Adam (lr 1e-3), batch 64, float32, on Fashion-MNIST from the Debian package
dataset-fashion-mnist. Prints one line: samples/s and test accuracy (or JSON with --json)."""
import json, os, sys, time
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fashion_idx import idx  # noqa: E402

X = idx("train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255
Y = idx("train-labels-idx1-ubyte").astype(np.int64)
Xt = idx("t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255
Yt = idx("t10k-labels-idx1-ubyte").astype(np.int64)

rng = np.random.default_rng(1)
def glorot(a, b):
    l = np.sqrt(6 / (a + b)); return rng.uniform(-l, l, (a, b)).astype(np.float32)
P = [glorot(784, 128), np.zeros(128, np.float32), glorot(128, 10), np.zeros(10, np.float32)]
M = [np.zeros_like(p) for p in P]; V = [np.zeros_like(p) for p in P]
B, lr, b1, b2, eps = 64, 1e-3, 0.9, 0.999, 1e-8
epochs = int(os.environ.get("EPOCHS", "2"))
steps = epochs * len(X) // B

def step(t, xb, yb):
    W0, c0, W1, c1 = P
    h = np.maximum(xb @ W0 + c0, 0)
    z = h @ W1 + c1
    z -= z.max(1, keepdims=True)
    e = np.exp(z); p = e / e.sum(1, keepdims=True)
    p[np.arange(len(yb)), yb] -= 1; p /= len(yb)
    g = [None, None, h.T @ p, p.sum(0)]
    dh = p @ W1.T; dh[h <= 0] = 0
    g[0] = xb.T @ dh; g[1] = dh.sum(0)
    c1_, c2_ = 1 - b1 ** t, 1 - b2 ** t
    for i in range(4):
        M[i] *= b1; M[i] += (1 - b1) * g[i]
        V[i] *= b2; V[i] += (1 - b2) * g[i] * g[i]
        P[i] -= lr * np.sqrt(c2_) / c1_ * M[i] / (np.sqrt(V[i]) + eps * np.sqrt(c2_))

order = rng.permutation(len(X)); cur = 0
def batch():
    global order, cur
    if cur + B > len(order): order = rng.permutation(len(X)); cur = 0
    i = order[cur:cur + B]; cur += B
    return X[i], Y[i]
for t in range(1, 21): step(t, *batch())
t0 = time.perf_counter()
for t in range(21, 21 + steps): step(t, *batch())
secs = time.perf_counter() - t0
acc = float(((np.maximum(Xt @ P[0] + P[1], 0) @ P[2] + P[3]).argmax(1) == Yt).mean())
rate = steps * B / secs
if "--json" in sys.argv:
    print(json.dumps({"benchmark": "trainer-numpy", "samples_per_second": round(rate), "test_accuracy": round(acc * 100, 2), "numpy": np.__version__}))
else:
    print(f"numpy {np.__version__}: {rate:.0f} samples/s; test accuracy after {epochs} epochs {acc * 100:.1f}%")
