"""Fashion-MNIST from the Debian package dataset-fashion-mnist (IDX files, optionally .gz), for the
trainer-speed anchors (learning_numpy.py, learning_torch.py). FASHION_DIR overrides the directory."""
import gzip, os
import numpy as np

DIR = os.environ.get("FASHION_DIR", "/usr/share/datasets/fashion-mnist")

def idx(name):
    p = os.path.join(DIR, name)
    f = open(p, "rb") if os.path.exists(p) else gzip.open(p + ".gz", "rb")
    b = f.read()
    dims = b[3]
    shape = [int.from_bytes(b[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
