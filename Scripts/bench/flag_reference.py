#!/usr/bin/env python3
"""Known answers for the Flag aggregator test (Tests/LatticaLearningTests/AggregationTests.swift),
from the algorithm of the reference (hamidralmasi/FlagAggregator, aggregators/flag.py and
center_algorithms_torch.py), written out here in numpy:
  x̂_i = x_i/‖x_i‖;  Y0 = top-r left singular vectors of [x̂_1 … x̂_k] (the unweighted flag mean);
  one IRLS step: w_i = (|1 − ‖Y0ᵀx̂_i‖²| + 1e-7)^(−1/4), Y = top-r left singular vectors of [w_i·x̂_i];
  reference output Σ_i Y·Yᵀ·x̂_i / r (no scale).
Ours (`.flag(r:, iterations: 1)`) is r × that, times the lower median of ‖x_i‖ over k.
(The reference starts from a random Y; in its dimension (millions) ‖Yᵀx̂_i‖² ≈ r/n ≈ 0, so its one
step has w_i ≈ 1 and *is* the unweighted flag mean, our starting point.)"""
import numpy as np

X = np.array([
    [1.0, 0.2, 0.1, 0.0, 0.3],
    [0.9, 0.1, 0.2, 0.1, 0.2],
    [1.1, 0.3, 0.0, 0.1, 0.4],
    [0.8, 0.2, 0.1, 0.2, 0.3],
    [30.0, -40.0, 10.0, 5.0, 0.0],
    [-20.0, 10.0, 45.0, -5.0, 10.0],
    [5.0, 5.0, -10.0, 50.0, -30.0],
    [-10.0, -30.0, 0.0, 10.0, 40.0],
]).T  # n × k, columns are the inputs
r = 2
k = X.shape[1]
norms = np.linalg.norm(X, axis=0)
Xh = X / norms
Y0 = np.linalg.svd(Xh, full_matrices=False)[0][:, :r]
p = np.sum((Y0.T @ Xh) ** 2, axis=0)
w = (np.abs(1 - p) + 1e-7) ** -0.25
Y = np.linalg.svd(Xh * w, full_matrices=False)[0][:, :r]
ref = (Y @ (Y.T @ Xh)).sum(axis=1) / r
lower_median = np.sort(norms)[(k - 1) // 2]
ours = ref * r * lower_median / k
np.set_printoptions(precision=7, suppress=True)
print("reference output (no scale):", ref.tolist())
print("lower median norm:", lower_median, " averaging median:", np.median(norms))
print("ours:", [round(v, 7) for v in ours.tolist()])
print("ours with the averaging median (before the fix):", (ref * r * np.median(norms) / k).tolist())
