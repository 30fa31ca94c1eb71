#!/usr/bin/env python3
"""Converts scikit-learn's bundled `digits` and `breast_cancer` data sets into the small binary
fixtures committed under Tests/Fixtures/learning/ (format "LDS1", Docs/LEARNING.md).

Provenance: both data sets ship inside the scikit-learn wheel (sklearn/datasets/data/*.csv.gz and
sklearn/datasets/descr/*.rst); nothing is downloaded from elsewhere. Run once:

    python3 -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install scikit-learn
    /tmp/skvenv/bin/python Scripts/make-learning-fixtures.py

The venv is throwaway; only the .lds files are committed. The output is deterministic.

LDS1 layout (little-endian): magic "LDS1" | u32 count | u32 features | u32 classes |
u8 dtype (1 = uint8 features, 2 = float32 features) | 3 zero bytes | features (count*features) |
labels (count bytes, u8) | 32-byte SHA-256 of everything before it.
"""
import hashlib, os, struct, sys
import numpy as np
import sklearn
from sklearn.datasets import load_digits, load_breast_cancer

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "learning")
os.makedirs(out, exist_ok=True)

def write(name, X, y, classes, dtype):
    n, d = X.shape
    body = b"LDS1" + struct.pack("<III", n, d, classes) + bytes([dtype, 0, 0, 0])
    if dtype == 1:
        assert X.min() >= 0 and X.max() <= 255 and np.all(X == np.round(X))
        body += X.astype(np.uint8).tobytes()
    else:
        body += X.astype("<f4").tobytes()
    body += y.astype(np.uint8).tobytes()
    body += hashlib.sha256(body).digest()
    path = os.path.join(out, name)
    with open(path, "wb") as f:
        f.write(body)
    print(f"{path}: {n} x {d}, {classes} classes, sha256 {hashlib.sha256(body).hexdigest()[:16]}… (scikit-learn {sklearn.__version__})")

digits = load_digits()          # 1797 x 64, pixel values 0..16, labels 0..9
write("digits.lds", digits.data, digits.target, 10, 1)
bc = load_breast_cancer()       # 569 x 30 float features, labels 0/1
write("breast_cancer.lds", bc.data, bc.target, 2, 2)
