"""Where the sparse epochs beat BLAS on a dense X: one MNIST epoch, sparse=False vs sparse=True,
with the pixels below a threshold zeroed (lower densities), best of 3 fits each.

    python benchmarks/bench_sparse_crossover.py [hidden] [batch] [sgd|momentum|adam] [threads]

Prints, per density, the whole fit's time and the epoch time History reports (without fit's
input checks and the CSR conversion). ``SPARSE_MAX_DENSITY`` in fastnn/backends/numba.py
comes from this. Needs MNIST (``FASTNN_DATA`` or ``~/.cache/fastnn/mnist``).
"""

import sys
import time

import numpy as np

import fastnn as fn
from fastnn.datasets import load_mnist


def main(argv):
    hidden = int(argv[0]) if argv else 256
    bs = int(argv[1]) if len(argv) > 1 else 128
    opt = argv[2] if len(argv) > 2 else "momentum"
    fn.set_num_threads(int(argv[3]) if len(argv) > 3 else fn.config.get_num_threads())
    X0, y, _, _ = load_mnist(download=False)
    make_opt = {"momentum": lambda: fn.SGD(0.05, momentum=0.9), "sgd": lambda: fn.SGD(0.05),
                "adam": lambda: fn.Adam(1e-3)}[opt]
    for thr in (0.0, 0.5, 0.9, 0.99):
        X = np.where(X0 > thr, X0, 0).astype(np.float32)
        if thr == 0.99:  # ~3.5%: 40% of the brightest pixels
            X = X * (X0 > 0.9) * (np.random.default_rng(0).random(X.shape) < 0.4)
        density = np.count_nonzero(X) / X.size
        out = []
        for sparse in (False, True):
            fits, epochs = [], []
            for _ in range(3):
                net = fn.Sequential(fn.Linear(784, hidden), fn.ReLU(), fn.Linear(hidden, 10), seed=0)
                t0 = time.perf_counter()
                h = net.fit(X, y, fn.CrossEntropy(), make_opt(), epochs=1, batch_size=bs, seed=1,
                            backend="numba", sparse=sparse)
                fits.append(time.perf_counter() - t0)
                epochs.append(h.times[0])
            out += [min(fits), min(epochs)]
        print(f"784-{hidden}-10 batch {bs} {opt}, density {density:.3f}: BLAS {out[0]:.3f} s "
              f"(epoch {out[1]:.3f}), sparse {out[2]:.3f} s (epoch {out[3]:.3f}), "
              f"sparse/BLAS {out[2] / out[0]:.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
