"""Compile the common kernels ahead of time: ``fn.warmup()`` and ``fastnn warmup``.

The compiled epoch kernels take the activation, cost and optimizer as numbers, so one
compile per training path and dtype covers every plain MLP: the per-sample path (batch
1, plain SGD), the row-blocked minibatch path (batches 2-3), the BLAS path (batch 4 and
more) and inference. ``warmup`` trains a tiny network once on each (every cost and
optimizer, so each path's branches run too); the kernels land in the on-disk cache
(``fastnn info`` shows where) and later fits of any size load them in a fraction of a second.
"""

import time

import numpy as np

#: (path, batch size): one fit each compiles that path's epoch kernel.
PATHS = (("per-sample", 1), ("minibatch", 2), ("BLAS", 8))


def warmup(dtypes=("float32",), report=None):
    """Compile (or load) the numba backend's kernels for ``dtypes``.

    Parameters
    ----------
    dtypes : sequence of str or numpy dtypes
        ``"float32"`` (the default dtype of networks) and/or ``"float64"``.
    report : callable, optional
        Called with one line of text per path as it finishes (``print`` shows progress).

    Returns
    -------
    dict
        ``{(dtype name, path): seconds}``.
    """
    import fastnn as fn

    rng = np.random.default_rng(0)
    out = {}
    for dt in dtypes:
        dt = np.dtype(dt)
        X = rng.normal(size=(16, 5)).astype(dt)
        y = rng.integers(0, 3, 16)
        for path, bs in PATHS:
            t0 = time.perf_counter()
            costs = ((fn.CrossEntropy(), y, []), (fn.MSE(), y, [fn.Sigmoid()]),
                     (fn.BCE(), np.eye(3)[y], [fn.Sigmoid()]))
            optimizers = [lambda: fn.SGD(0.1)] if bs == 1 else [
                lambda: fn.SGD(0.1), lambda: fn.SGD(0.1, momentum=0.9), lambda: fn.SGD(0.1, momentum=0.9, nesterov=True),
                lambda: fn.Adam(0.01)]
            for cost, Y, last in costs:
                for make in optimizers:
                    net = fn.Sequential(fn.Linear(5, 4), fn.ReLU(), fn.Linear(4, 3), *last, seed=0, dtype=dt)
                    net.fit(X, Y, cost, make(), epochs=1, batch_size=bs, backend="numba")
            net.predict(X, backend="numba")
            out[(dt.name, path)] = secs = time.perf_counter() - t0
            if report:
                report(f"{dt.name} {path} path: ready in {secs:.1f} s")
    return out
