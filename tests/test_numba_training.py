"""Training with backend="numba" (fused kernels) equals backend="numpy" from the same seed.

One network is built from a seed and deep-copied; one copy trains on each backend with
the same fit seed, in float64, for about 200 optimizer steps. Weights must agree to
TRAIN_RTOL64 and the History values too.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from fastnn import config
from fastnn.backends import get_ops
from fastnn.backends import numba as numba_backend
from fastnn.backends.numba import MinibatchRunner, OnlineRunner

from conftest import TRAIN_RTOL64


@pytest.fixture(autouse=True)
def _fused_kernels_only(monkeypatch):
    """This file tests the per-sample and row-blocked minibatch epochs (kernels/cpu/epoch_online.py,
    epoch_minibatch.py), which the backend uses for batches below BLAS_MIN_BATCH or without
    SciPy; keep every batch size on them here. tests/test_numba_gemm.py covers the BLAS path."""
    monkeypatch.setattr(numba_backend, "BLAS_MIN_BATCH", 1 << 30)
    monkeypatch.setattr(numba_backend, "SPARSE_MIN_BATCH", 1 << 30)  # tests/test_sparse.py covers those

OPTIMIZERS = {
    "sgd": lambda: fn.SGD(0.2),
    "sgd-wd": lambda: fn.SGD(0.2, weight_decay=1e-3),
    "momentum": lambda: fn.SGD(0.05, momentum=0.9),
    "nesterov-wd": lambda: fn.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: fn.Adam(0.01),
    "adam-wd": lambda: fn.Adam(0.01, weight_decay=1e-3),
}


def _epochs_for(n, bs, steps=200):
    return max(1, -(-steps // -(-n // bs)))


def _compare(net, X, Y, cost, make_opt, bs, epochs, validation=None, rtol=TRAIN_RTOL64):
    a, b = net.copy(), net.copy()
    ha = a.fit(X, Y, cost, make_opt(), epochs=epochs, batch_size=bs, seed=7, backend="numpy",
               validation_data=validation)
    hb = b.fit(X, Y, cost, make_opt(), epochs=epochs, batch_size=bs, seed=7, backend="numba",
               validation_data=validation)
    assert not np.allclose(a.params, net.params), "training did not change the weights"
    assert_allclose(b.params, a.params, rtol=rtol, atol=rtol * np.abs(a.params).max())
    assert ha.history.keys() == hb.history.keys()
    for k in ha.history:
        assert_allclose(hb.history[k], ha.history[k], rtol=rtol, atol=1e-12, err_msg=k)
    return a, b


def _circles_case(cost_name):
    X, y = fn.datasets.circles(200, seed=0, dtype=np.float64)
    last = {"ce": [], "mse": [fn.Sigmoid()], "bce": [fn.Sigmoid()]}[cost_name]
    k = 1 if cost_name == "bce" else 2
    net = fn.Sequential(fn.Linear(2, 8), fn.Tanh(), fn.Linear(8, 6), fn.ReLU(), fn.Linear(6, k), *last,
                        seed=1, dtype=np.float64)
    cost = {"ce": fn.CrossEntropy(), "mse": fn.MSE(), "bce": fn.BCE()}[cost_name]
    Y = y.astype(np.float64).reshape(-1, 1) if cost_name == "bce" else y
    return net, X, Y, cost


@pytest.mark.parametrize("bs", [1, 7, 128])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("cost_name", ["mse", "ce", "bce"])
def test_circles_equal_to_numpy(bs, opt, cost_name):
    net, X, Y, cost = _circles_case(cost_name)
    _compare(net, X, Y, cost, OPTIMIZERS[opt], bs, _epochs_for(len(X), bs))


@pytest.mark.parametrize("bs, opt, cost_name", [
    (1, "sgd", "mse"), (1, "adam-wd", "ce"), (7, "momentum", "ce"), (7, "nesterov-wd", "bce"),
    (128, "adam", "ce"), (128, "sgd-wd", "mse")])
def test_mnist_subset_equal_to_numpy(mnist, bs, opt, cost_name):
    """Sparse input (the CSR first layer) and the threaded minibatch kernels."""
    Xtr, ytr, Xte, yte = mnist
    n = 600 if bs == 1 else 1500
    X = Xtr[:n].reshape(n, -1).astype(np.float64)
    X /= X.max()
    y = ytr[:n].astype(np.int64)
    Xv, yv = Xte[:300].reshape(300, -1).astype(np.float64) / 255.0, yte[:300].astype(np.int64)
    last = [fn.Sigmoid()] if cost_name in ("mse", "bce") else []
    net = fn.Sequential(fn.Linear(784, 32), fn.ReLU(), fn.Linear(32, 10), *last, seed=3, dtype=np.float64)
    cost = {"ce": fn.CrossEntropy(), "mse": fn.MSE(), "bce": fn.BCE()}[cost_name]
    Y, Yv = (y, yv) if cost_name != "bce" else (np.eye(10)[y], np.eye(10)[yv])
    epochs = _epochs_for(n, bs, steps=200 if bs > 1 else 600)
    _compare(net, X, Y, cost, OPTIMIZERS[opt], bs, epochs, validation=(Xv, Yv))


def test_fused_runner_is_used_and_sparse(mnist):
    Xtr, ytr, _, _ = mnist
    X = Xtr[:256].reshape(256, -1).astype(np.float32) / 255
    net = fn.Sequential(fn.Linear(784, 16), fn.Sigmoid(), fn.Linear(16, 10), seed=0)
    opt = fn.SGD(0.1)
    opt.ensure_setup(net)
    ops = get_ops("numba")
    r = ops.make_runner(net, fn.CrossEntropy(), opt, X, fn.CrossEntropy().prepare(ytr[:256], 10, np.float32), 1)
    assert isinstance(r, OnlineRunner)
    r = ops.make_runner(net, fn.CrossEntropy(), opt, X, fn.CrossEntropy().prepare(ytr[:256], 10, np.float32), 32)
    assert isinstance(r, MinibatchRunner) and r.sparse


def _sparse_like_mnist(rng, n, f, density=0.2):
    """Non-negative sparse inputs with whole zero columns (MNIST's borders) and an all-zero sample."""
    X = rng.uniform(0.05, 1.0, size=(n, f)) * (rng.random((n, f)) < density)
    X[:, :3] = 0
    X[:, -2:] = 0
    X[5] = 0
    X[-1, 3:10] = 1.0  # a denser sample in the last (short) batch
    return X


@pytest.mark.parametrize("bs", [1, 10])
@pytest.mark.parametrize("case", ["mse-sigmoid", "ce-relu"])
def test_sparse_sgd_paths_equal_to_numpy(rng, bs, case):
    """Plain SGD on sparse input: batch 1 updates W in place from the non-zero inputs
    (epoch_online), small batches apply the first layer's update sample by sample from
    the non-zero inputs (sgd_sparse_rows) instead of a dense gradient."""
    n, f = 203, 40  # 203 = 20 batches of 10 + a short one of 3
    X = _sparse_like_mnist(rng, n, f)
    y = rng.integers(0, 4, n)
    if case == "mse-sigmoid":
        net = fn.Sequential(fn.Linear(f, 9), fn.Sigmoid(), fn.Linear(9, 4), fn.Sigmoid(), seed=4, dtype=np.float64)
        cost = fn.MSE()
    else:
        net = fn.Sequential(fn.Linear(f, 9), fn.ReLU(), fn.Linear(9, 4), seed=4, dtype=np.float64)
        cost = fn.CrossEntropy()
    opt = fn.SGD(0.3)
    opt.ensure_setup(net)
    r = get_ops("numba").make_runner(net.copy(), cost, opt, X, cost.prepare(y, 4, np.float64), bs)
    if bs == 1:
        assert isinstance(r, OnlineRunner)
    else:
        assert isinstance(r, MinibatchRunner) and r.sparse and r.sparse_sgd_ok
    a, b = _compare(net, X, y, cost, lambda: fn.SGD(0.3), bs, _epochs_for(n, bs, 300))
    if bs > 1:  # grads hold the last batch's gradient on both backends
        assert_allclose(b.grads, a.grads, rtol=TRAIN_RTOL64, atol=TRAIN_RTOL64 * np.abs(a.grads).max())
    # weight decay and momentum keep the dense update on the same sparse input
    _compare(net, X, y, cost, OPTIMIZERS["sgd-wd"], bs, 3)
    _compare(net, X, y, cost, OPTIMIZERS["momentum"], bs, 3)


def test_sparsity_pattern(rng):
    from fastnn.kernels.cpu import sparse as fused

    X = _sparse_like_mnist(rng, 50, 30)
    ptr, idx = fused.csr_of(X, 0.5)
    assert idx.dtype == np.int32 and ptr.dtype == np.int64
    assert_allclose(ptr, np.concatenate([[0], np.cumsum(np.count_nonzero(X, axis=1))]))
    for i in range(len(X)):
        assert np.array_equal(idx[ptr[i]:ptr[i + 1]], np.flatnonzero(X[i]))
    assert ptr[6] == ptr[5]  # the all-zero sample
    assert fused.csr_of(np.ones((4, 3)), 0.5) is None  # too dense for CSR
    assert fused.csr_of(np.eye(4)[:, :3], 0.5) is not None  # 3 of 12 non-zero
    ptr, idx = fused.csr_of(np.zeros((0, 3)), 0.5)
    assert list(ptr) == [0] and len(idx) == 0


# ----------------------------------------------------------------- awkward shapes


@pytest.mark.parametrize("bs", [1, 7, 128])
def test_awkward_shapes(rng, bs):
    """1x1 layers, no bias, LeakyReLU and a hidden Softmax, N < batch_size, a short last batch."""
    X = rng.normal(size=(30, 1))
    Y = np.tanh(X) * 0.5
    net = fn.Sequential(fn.Linear(1, 1), fn.Sigmoid(), fn.Linear(1, 3, bias=False), fn.LeakyReLU(0.1),
                        fn.Linear(3, 3), fn.Softmax(), fn.Linear(3, 1), seed=2, dtype=np.float64)
    for opt in ("sgd-wd", "adam"):
        _compare(net, X, Y, fn.MSE(), OPTIMIZERS[opt], bs, _epochs_for(len(X), bs, 100))
    # a single sample
    _compare(net, X[:1], Y[:1], fn.MSE(), OPTIMIZERS["momentum"], bs, 20)


def test_onehot_cross_entropy_and_mse_labels(rng):
    X = rng.normal(size=(50, 3))
    y = rng.integers(0, 4, 50)
    net = fn.Sequential(fn.Linear(3, 5), fn.Tanh(), fn.Linear(5, 4), seed=0, dtype=np.float64)
    _compare(net, X, np.eye(4)[y], fn.CrossEntropy(), OPTIMIZERS["momentum"], 7, 30)
    _compare(net, X, y, fn.MSE(), OPTIMIZERS["sgd"], 7, 30)  # one-hot targets, accuracy from labels


def test_float32_close_to_numpy(rng):
    X, y = fn.datasets.circles(200, seed=0)
    net = fn.Sequential(fn.Linear(2, 8), fn.Tanh(), fn.Linear(8, 2), seed=1)
    for bs in (1, 16):
        a, b = net.copy(), net.copy()
        # few, gentle steps: float32 rounding differences grow with training
        ha = a.fit(X, y, fn.CrossEntropy(), fn.SGD(0.02, momentum=0.5), epochs=1, batch_size=bs, seed=0,
                   backend="numpy")
        hb = b.fit(X, y, fn.CrossEntropy(), fn.SGD(0.02, momentum=0.5), epochs=1, batch_size=bs, seed=0,
                   backend="numba")
        assert b.params.dtype == np.float32
        assert_allclose(b.params, a.params, rtol=1e-3, atol=1e-4)
        assert_allclose(hb["loss"], ha["loss"], rtol=1e-4)


def test_chunked_runs_equal_whole_epoch(rng):
    """run(order, b0, b1) over pieces (callbacks that want batches) equals one run."""
    X = rng.normal(size=(100, 4))
    y = rng.integers(0, 3, 100)
    net = fn.Sequential(fn.Linear(4, 6), fn.ReLU(), fn.Linear(6, 3), seed=0, dtype=np.float64)
    ops, cost = get_ops("numba"), fn.CrossEntropy()
    order = rng.permutation(100).astype(np.int64)
    results = []
    for pieces in ([(0, 15)], [(0, 4), (4, 5), (5, 15)]):
        n2, opt = net.copy(), fn.Adam(0.01)
        opt.ensure_setup(n2)
        r = ops.make_runner(n2, cost, opt, X, cost.prepare(y, 3, np.float64), 7)
        tot = [0.0, 0]
        for b0, b1 in pieces:
            ls, c, bad = r.run(order, b0, b1)
            assert bad == -1
            tot[0] += ls
            tot[1] += c
        results.append((n2.params.copy(), tot, opt.t))
    assert_allclose(results[1][0], results[0][0], rtol=1e-13)
    assert results[1][1][0] == pytest.approx(results[0][1][0], rel=1e-13)
    assert results[1][1][1] == results[0][1][1] and results[0][2] == results[1][2] == 15


def test_threads_do_not_change_results(mnist, monkeypatch):
    monkeypatch.setattr(config, "PARALLEL", "1")  # threaded kernels whenever 2+ threads
    Xtr, ytr, _, _ = mnist
    X = Xtr[:512].reshape(512, -1).astype(np.float64) / 255
    net = fn.Sequential(fn.Linear(784, 64), fn.ReLU(), fn.Linear(64, 10), seed=0, dtype=np.float64)
    n_threads = config.get_num_threads()
    out = []
    try:
        for th in sorted({1, n_threads}):
            config.set_num_threads(th)
            n2 = net.copy()
            n2.fit(X, ytr[:512], fn.CrossEntropy(), fn.SGD(0.1, momentum=0.9), epochs=2, batch_size=128,
                   seed=0, backend="numba")
            out.append(n2.params)
    finally:
        config.set_num_threads(n_threads)
    assert all(np.array_equal(out[0], o) for o in out[1:])


def test_auto_threads_equals_numpy(mnist, monkeypatch):
    """The "auto" mode with a crossover low enough that this fit runs threaded."""
    monkeypatch.setattr(config, "PARALLEL", "auto")
    monkeypatch.setattr(config, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(numba_backend, "AUTO_THREAD_WORK", 0)
    Xtr, ytr, _, _ = mnist
    X = Xtr[:640].reshape(640, -1).astype(np.float64) / 255
    net = fn.Sequential(fn.Linear(784, 24), fn.Tanh(), fn.Linear(24, 10), seed=0, dtype=np.float64)
    a, b = _compare(net, X, ytr[:640].astype(np.int64), fn.CrossEntropy(), OPTIMIZERS["nesterov-wd"], 16, 5)


# --------------------------------------------------------------------- fallbacks


def test_non_plain_mlp_falls_back_to_the_python_loop(rng):
    X = rng.normal(size=(40, 3))
    y = rng.integers(0, 2, 40)
    net = fn.Sequential(fn.Linear(3, 4), fn.Tanh(), fn.Sigmoid(), fn.Linear(4, 2), seed=0, dtype=np.float64)
    opt = fn.SGD(0.1)
    opt.ensure_setup(net)
    r = get_ops("numba").make_runner(net, fn.CrossEntropy(), opt, X, fn.CrossEntropy().prepare(y, 2, np.float64), 8)
    assert r is None  # the Trainer's Python batch loop (fastnn.training.BatchLoop)
    _compare(net, X, y, fn.CrossEntropy(), OPTIMIZERS["momentum"], 8, 20)


def test_sign_layer_fit_raises_like_numpy(rng):
    X = rng.normal(size=(10, 2))
    net = fn.Sequential(fn.Linear(2, 1), fn.Sign(), seed=0)
    with pytest.raises(ValueError, match="forward-only"):
        net.fit(X, np.ones(10), fn.MSE(), fn.SGD(0.1), backend="numba")


class _MyMSE(fn.MSE):
    pass


def test_custom_cost_uses_the_python_loop(rng):
    X = rng.normal(size=(20, 2))
    net = fn.Sequential(fn.Linear(2, 1), seed=0, dtype=np.float64)
    opt = fn.SGD(0.1)
    opt.ensure_setup(net)
    r = get_ops("numba").make_runner(net, _MyMSE(), opt, X, _MyMSE().prepare(X[:, 0], 1, np.float64), 4)
    assert r is None  # the Trainer's Python batch loop (fastnn.training.BatchLoop)


# ------------------------------------------------------------------------ predict


@pytest.mark.parametrize("n", [0, 1, 300, 1001])
@pytest.mark.parametrize("mode", ["0", "1"])
def test_predict_equal(rng, n, mode, monkeypatch):
    monkeypatch.setattr(config, "PARALLEL", mode)  # serial and threaded predict
    monkeypatch.setattr(config, "PARALLEL_MIN_WORK", 0)
    X = rng.normal(size=(n, 5))
    for dt in (np.float32, np.float64):
        net = fn.Sequential(fn.Linear(5, 7), fn.Tanh(), fn.Linear(7, 3, bias=False), fn.Softmax(), seed=0, dtype=dt)
        want = net.predict(X, backend="numpy")
        got = net.predict(X, backend="numba")
        assert got.shape == (n, 3) and got.dtype == dt
        assert_allclose(got, want, rtol=1e-5 if dt == np.float32 else 1e-12, atol=1e-7)
    sign_net = fn.Sequential(fn.Linear(5, 2), fn.Sign(), seed=0, dtype=np.float64)
    assert_allclose(sign_net.predict(X, backend="numba"), sign_net.predict(X, backend="numpy"))
    odd = fn.Sequential(fn.Linear(5, 2), fn.Tanh(), fn.Sigmoid(), seed=0, dtype=np.float64)  # not a plain MLP
    assert_allclose(odd.predict(X, backend="numba"), odd.predict(X, backend="numpy"), rtol=1e-12)
