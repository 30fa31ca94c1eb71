"""The repository's digits fixture (sklearn's digits, LDS1 format, Docs/LEARNING.md) for the
example, tests and benchmarks: no download."""

import hashlib
import os
import struct

import numpy as np


def find_fixture(name="digits"):
    cands = []
    if os.environ.get("LATTICA_FIXTURES"):
        cands.append(os.environ["LATTICA_FIXTURES"])
    here = os.path.dirname(os.path.abspath(__file__))
    d = os.getcwd()
    while True:  # the checkout holding the working directory
        cands.append(os.path.join(d, "Tests", "Fixtures", "learning"))
        if os.path.dirname(d) == d:
            break
        d = os.path.dirname(d)
    cands.append(os.path.normpath(os.path.join(here, "..", "..", "..", "Tests", "Fixtures", "learning")))
    for d in cands:
        p = os.path.join(d, f"{name}.lds")
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{name}.lds not found in {cands} (run from the checkout or set LATTICA_FIXTURES)")


def load_lds(path):
    """(features float32 [n, d], labels int64 [n], classes)."""
    b = open(path, "rb").read()
    if b[:4] != b"LDS1" or hashlib.sha256(b[:-32]).digest() != b[-32:]:
        raise ValueError(f"{path}: not an intact LDS1 file")
    n, d, c, dtype = struct.unpack_from("<IIIB", b, 4)
    o = 20
    if dtype == 1:
        x = np.frombuffer(b, dtype=np.uint8, count=n * d, offset=o).astype(np.float32)
        o += n * d
    else:
        x = np.frombuffer(b, dtype="<f4", count=n * d, offset=o).astype(np.float32)
        o += 4 * n * d
    y = np.frombuffer(b, dtype=np.uint8, count=n, offset=o).astype(np.int64)
    return x.reshape(n, d), y, c


def digits(seed=1, shards=4, test_fraction=0.25):
    """Digits scaled to [0, 1]: (train shards [(x, y)] (iid), (x_test, y_test), classes)."""
    x, y, c = load_lds(find_fixture("digits"))
    x = x / 16.0
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    nt = int(round(len(y) * test_fraction))
    test, train = perm[:nt], perm[nt:]
    parts = np.array_split(train, shards)
    return [(x[p], y[p]) for p in parts], (x[test], y[test]), c
