"""Sparse input (issue 11): scipy.sparse X on every backend, and the sparse epochs
(kernels/cpu/epoch_sparse.py, SparseRunner) against the NumPy reference.

The reference trains a scipy.sparse X through SciPy's products (``X_batch @ W``,
``X_batch.T @ D``) and equals training on ``X.toarray()``; the numba backend's sparse
epochs must give the reference's float64 weights to TRAIN_RTOL64 at batch sizes 1, 7
and 128 with every optimizer, from a scipy.sparse X and from a dense X with
``sparse=True``.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

import fastnn as fn
from fastnn import config
from fastnn.backends import numba as numba_backend
from fastnn.backends.numba import SparseRunner

from conftest import TRAIN_RTOL64

OPTIMIZERS = {
    "sgd": lambda: fn.SGD(0.3),
    "sgd-wd": lambda: fn.SGD(0.3, weight_decay=1e-3),
    "momentum": lambda: fn.SGD(0.05, momentum=0.9),
    "nesterov-wd": lambda: fn.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: fn.Adam(0.01),
    "adamw": lambda: fn.AdamW(0.01, weight_decay=1e-2),
    "rmsprop": lambda: fn.RMSprop(0.01),
}


def _sparse_data(rng, n=203, f=40, density=0.08):
    """Non-negative sparse inputs with whole zero columns, an all-zero sample and a denser one
    in the last (short) batch; 203 = 29 batches of 7, 1 batch of 128 + 75, 203 of 1."""
    X = rng.uniform(0.05, 1.0, size=(n, f)) * (rng.random((n, f)) < density)
    X[:, :3] = 0
    X[:, -2:] = 0
    X[5] = 0
    X[-1, 3:20] = 1.0
    return X


def _net(f, k, dtype=np.float64, hidden=9):
    return fn.Sequential(fn.Linear(f, hidden), fn.ReLU(), fn.Linear(hidden, 6), fn.Tanh(), fn.Linear(6, k),
                         seed=4, dtype=dtype)


def _spy_runner(monkeypatch):
    """Record the runners the numba backend builds."""
    made = []
    real = numba_backend.NumbaOps.make_runner

    def spy(self, *a, **kw):
        r = real(self, *a, **kw)
        made.append(r)
        return r

    monkeypatch.setattr(numba_backend.NumbaOps, "make_runner", spy)
    return made


def _fit(net, X, y, opt, bs, backend, epochs, **kw):
    net = net.copy()
    h = net.fit(X, y, fn.CrossEntropy(), opt(), epochs=epochs, batch_size=bs, seed=7, backend=backend, **kw)
    return net, h


@pytest.mark.parametrize("bs", [1, 7, 128])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("form", ["csr", "dense-sparse-true"])
def test_sparse_epochs_equal_to_numpy(rng, monkeypatch, bs, opt, form):
    X = _sparse_data(rng)
    y = rng.integers(0, 4, len(X))
    net = _net(X.shape[1], 4)
    epochs = 3 if bs > 1 else 1
    a, ha = _fit(net, X, y, OPTIMIZERS[opt], bs, "numpy", epochs)
    made = _spy_runner(monkeypatch)
    Xin, kw = (sp.csr_matrix(X), {}) if form == "csr" else (X, {"sparse": True})
    b, hb = _fit(net, Xin, y, OPTIMIZERS[opt], bs, "numba", epochs, validation_data=None, **kw)
    assert made and all(isinstance(r, SparseRunner) for r in made), made
    assert not np.allclose(a.params, net.params), "training did not change the weights"
    assert_allclose(b.params, a.params, rtol=TRAIN_RTOL64, atol=TRAIN_RTOL64 * np.abs(a.params).max())
    # the last batch's gradient, on the fast sparse-SGD path too
    assert_allclose(b.grads, a.grads, rtol=TRAIN_RTOL64, atol=TRAIN_RTOL64 * np.abs(a.grads).max())
    for k in ha.history:
        assert_allclose(hb.history[k], ha.history[k], rtol=TRAIN_RTOL64, atol=1e-12, err_msg=k)


def test_reference_on_sparse_equals_dense(rng):
    X = _sparse_data(rng)
    y = rng.integers(0, 4, len(X))
    net = _net(X.shape[1], 4)
    a, ha = _fit(net, X, y, OPTIMIZERS["adam"], 16, "numpy", 2, validation_data=(X, y))
    Xs = sp.csr_matrix(X)
    b, hb = _fit(net, Xs, y, OPTIMIZERS["adam"], 16, "numpy", 2, validation_data=(Xs, y))
    assert_allclose(b.params, a.params, rtol=1e-12, atol=1e-14)
    assert_allclose(hb.history["val_loss"], ha.history["val_loss"], rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_every_scipy_format_and_the_callers_matrix_is_kept(rng, backend):
    X = _sparse_data(rng, n=60, f=12, density=0.3)
    y = rng.integers(0, 3, len(X))
    net = _net(12, 3)
    ref, _ = _fit(net, X, y, OPTIMIZERS["momentum"], 8, "numpy", 2)
    # every entry split in two (duplicates, summed by scipy's products): a non-canonical CSR
    coo = sp.coo_matrix(X)
    r, c, v = coo.row, coo.col, coo.data
    raw = sp.csr_matrix((np.concatenate([v / 2, v / 2]), np.concatenate([c, c]),
                         np.concatenate([[0], np.cumsum(2 * np.bincount(r, minlength=len(X)))])), shape=X.shape)
    order = np.argsort(np.concatenate([r, r]), kind="stable")
    raw = sp.csr_matrix((np.concatenate([v / 2, v / 2])[order], np.concatenate([c, c])[order], raw.indptr),
                        shape=X.shape)
    assert not raw.has_canonical_format
    before = (raw.data.copy(), raw.indices.copy(), raw.indptr.copy())
    forms = [sp.csr_matrix(X), sp.csc_matrix(X), sp.coo_matrix(X), sp.csr_array(X), raw,
             sp.csr_matrix(X.astype(np.float32))]
    for Xs in forms:
        got, _ = _fit(net, Xs, y, OPTIMIZERS["momentum"], 8, backend, 2)
        assert_allclose(got.params, ref.params, rtol=1e-6 if Xs.dtype == np.float32 else TRAIN_RTOL64,
                        atol=1e-7, err_msg=type(Xs).__name__)
    assert all(np.array_equal(a, b) for a, b in zip(before, (raw.data, raw.indices, raw.indptr)))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_predict_and_evaluate_on_sparse(rng, backend):
    X = _sparse_data(rng, n=300, f=30)
    y = rng.integers(0, 4, len(X))
    net = _net(30, 4)
    net.fit(X, y, fn.CrossEntropy(), fn.Adam(0.01), epochs=2, batch_size=32, seed=0, backend="numpy")
    Xs = sp.csr_matrix(X)
    assert_allclose(net.predict(Xs, backend=backend), net.predict(X, backend="numpy"), rtol=1e-12, atol=1e-13)
    assert_allclose(net.predict(Xs, batch_size=7, backend=backend), net.predict(X, backend="numpy"),
                    rtol=1e-12, atol=1e-13)
    ea, eb = net.evaluate(Xs, y, fn.CrossEntropy(), backend=backend), net.evaluate(X, y, fn.CrossEntropy())
    assert eb["accuracy"] == ea["accuracy"] and ea["loss"] == pytest.approx(eb["loss"], rel=1e-12)
    assert net.predict(sp.csr_matrix((0, 30)), backend=backend).shape == (0, 4)


def test_threads_do_not_change_sparse_results(rng, monkeypatch):
    """Threads take blocks of the first layer's outputs: 1 and n threads give the same bits."""
    monkeypatch.setattr(config, "PARALLEL", "1")
    monkeypatch.setattr(numba_backend, "AUTO_SPARSE_THREAD_WORK", 0)
    X = sp.csr_matrix(_sparse_data(rng, n=400, f=50))
    y = rng.integers(0, 4, 400)
    net = _net(50, 4, hidden=33)
    n_threads = config.get_num_threads()
    if n_threads < 2:
        pytest.skip("one thread available here: nothing to compare it with")
    out = []
    try:
        for th in (1, n_threads):
            config.set_num_threads(th)
            for opt in ("sgd", "adam"):
                out.append((th, opt, _fit(net, X, y, OPTIMIZERS[opt], 32, "numba", 2)[0].params))
    finally:
        config.set_num_threads(n_threads)
    by_opt = {}
    for th, opt, p in out:
        by_opt.setdefault(opt, []).append(p)
    assert all(len(ps) == 2 and np.array_equal(ps[0], ps[1]) for ps in by_opt.values())


def test_float32_sparse_close_to_numpy(rng):
    X = _sparse_data(rng, n=500, f=60)
    y = rng.integers(0, 4, 500)
    net = _net(60, 4, dtype=np.float32)
    a, _ = _fit(net, X, y, OPTIMIZERS["adam"], 32, "numpy", 2)
    b, _ = _fit(net, sp.csr_matrix(X), y, OPTIMIZERS["adam"], 32, "numba", 2)
    assert b.params.dtype == np.float32
    assert_allclose(b.params, a.params, rtol=1e-4, atol=1e-5)


def test_auto_chooses_sparse_epochs_by_density(rng, monkeypatch):
    made = _spy_runner(monkeypatch)
    y = rng.integers(0, 4, 300)
    for density, bs, expect in [(0.05, 64, True), (0.5, 64, False), (0.05, 8, False)]:
        X = _sparse_data(rng, n=300, f=40, density=density)
        X[-1, 3:20] = 0  # keep the density as drawn
        made.clear()
        _fit(_net(40, 4), X, y, OPTIMIZERS["sgd"], bs, "numba", 1)
        assert isinstance(made[0], SparseRunner) == expect, (density, bs)
    made.clear()
    _fit(_net(40, 4), _sparse_data(rng, n=300, f=40, density=0.05), y, OPTIMIZERS["sgd"], 64, "numba", 1,
         sparse=False)
    assert not isinstance(made[0], SparseRunner)


def test_a_matrix_whose_dense_form_would_not_fit_trains(rng):
    """5e4 x 2e6 float32 would be 400 GB dense: every backend must keep it sparse."""
    n, f, per_row = 50_000, 2_000_000, 6
    cols = rng.integers(0, f, size=(n, per_row))
    X = sp.csr_matrix((rng.uniform(0.5, 1.0, n * per_row).astype(np.float32), cols.ravel(),
                       np.arange(0, n * per_row + 1, per_row)), shape=(n, f))
    y = (cols[:, 0] % 2).astype(np.int64)
    for backend in ("numba", "numpy"):
        net = fn.Sequential(fn.Linear(f, 4), fn.ReLU(), fn.Linear(4, 2), seed=0)
        h = net.fit(X[:5000] if backend == "numpy" else X, y[:5000] if backend == "numpy" else y,
                    fn.CrossEntropy(), fn.SGD(0.1), epochs=1, batch_size=256, seed=0, backend=backend)
        assert np.isfinite(h.history["loss"][-1])
        assert net.predict(X[:1000], backend=backend).shape == (1000, 2)
