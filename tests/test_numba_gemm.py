"""The BLAS minibatch path of the "numba" backend (BlasRunner, kernels/cpu/epoch_blas.py).

Same method as test_numba_training.py: one network from a seed, deep-copied, trained on
the numpy and numba backends with one fit seed in float64 for ~200 optimizer steps;
weights and History must agree to TRAIN_RTOL64.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from fastnn import config
from fastnn.backends import get_ops
from fastnn.backends import numba as numba_backend
from fastnn.backends.numba import BlasRunner, MinibatchRunner, OnlineRunner
from fastnn.kernels.cpu import epoch_blas

from conftest import TRAIN_RTOL64

pytestmark = pytest.mark.skipif(not epoch_blas.blas_available(),
                                reason="SciPy (Numba's BLAS bindings) is not installed")

OPTIMIZERS = {
    "sgd": lambda: fn.SGD(0.2),
    "sgd-wd": lambda: fn.SGD(0.2, weight_decay=1e-3),
    "momentum": lambda: fn.SGD(0.05, momentum=0.9),
    "nesterov-wd": lambda: fn.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: fn.Adam(0.01),
    "adam-wd": lambda: fn.Adam(0.01, weight_decay=1e-3),
}


@pytest.fixture
def gemm_always(monkeypatch):
    """Route every batch size and layer width to the BLAS path (awkward shapes)."""
    monkeypatch.setattr(numba_backend, "BLAS_MIN_BATCH", 1)


def _runner(net, cost, opt, X, y, bs):
    opt.ensure_setup(net)
    return get_ops("numba").make_runner(net, cost, opt, X, cost.prepare(y, net.outsize, net.dtype), bs)


def _compare(net, X, Y, cost, make_opt, bs, epochs, validation=None, rtol=TRAIN_RTOL64):
    a, b = net.copy(), net.copy()
    ha = a.fit(X, Y, cost, make_opt(), epochs=epochs, batch_size=bs, seed=7, backend="numpy",
               validation_data=validation)
    hb = b.fit(X, Y, cost, make_opt(), epochs=epochs, batch_size=bs, seed=7, backend="numba",
               validation_data=validation)
    assert not np.allclose(a.params, net.params), "training did not change the weights"
    assert_allclose(b.params, a.params, rtol=rtol, atol=rtol * np.abs(a.params).max())
    # grads hold the last batch's gradient on both backends
    assert_allclose(b.grads, a.grads, rtol=rtol, atol=rtol * np.abs(a.grads).max())
    assert ha.history.keys() == hb.history.keys()
    for k in ha.history:
        assert_allclose(hb.history[k], ha.history[k], rtol=rtol, atol=1e-12, err_msg=k)
    return a, b


def _mnist_xy(mnist, n):
    Xtr, ytr, _, _ = mnist
    X = Xtr[:n].reshape(n, -1).astype(np.float64)
    X /= X.max()
    return X, ytr[:n].astype(np.int64)


def test_dispatch(mnist):
    X, y = _mnist_xy(mnist, 300)
    wide = fn.Sequential(fn.Linear(784, 256), fn.ReLU(), fn.Linear(256, 10), seed=0, dtype=np.float64)
    narrow = fn.Sequential(fn.Linear(784, 8), fn.ReLU(), fn.Linear(8, 10), seed=0, dtype=np.float64)
    cost = fn.CrossEntropy()
    assert isinstance(_runner(wide, cost, fn.SGD(0.1, momentum=0.9), X, y, 128), BlasRunner)
    assert isinstance(_runner(narrow, cost, fn.SGD(0.1), X, y, 10), BlasRunner)
    # batches below MIN_BATCH stay on the sparse fused kernels, batch 1 on the per-sample path
    r = _runner(wide, cost, fn.SGD(0.1), X, y, numba_backend.BLAS_MIN_BATCH - 1)
    assert isinstance(r, MinibatchRunner)
    r = _runner(narrow, cost, fn.SGD(0.1), X, y, 1)
    assert isinstance(r, OnlineRunner)


def test_falls_back_without_blas(mnist, monkeypatch):
    monkeypatch.setattr(epoch_blas, "blas_available", lambda: False)
    X, y = _mnist_xy(mnist, 300)
    net = fn.Sequential(fn.Linear(784, 256), fn.ReLU(), fn.Linear(256, 10), seed=0, dtype=np.float64)
    assert isinstance(_runner(net, fn.CrossEntropy(), fn.SGD(0.1), X, y, 128), MinibatchRunner)


@pytest.mark.parametrize("cost_name, opt", [("ce", o) for o in OPTIMIZERS] + [
    ("mse", "sgd"), ("mse", "adam-wd"), ("bce", "momentum"), ("bce", "nesterov-wd")])
def test_mnist_subset_equal_to_numpy(mnist, cost_name, opt):
    """784-64-10 at batch 128 (BLAS path by default); 1500 samples = 11 batches + a short one."""
    X, y = _mnist_xy(mnist, 1500)
    Xv, yv = _mnist_xy(mnist, 300)
    last = [fn.Sigmoid()] if cost_name in ("mse", "bce") else []
    net = fn.Sequential(fn.Linear(784, 64), fn.ReLU(), fn.Linear(64, 10), *last, seed=3, dtype=np.float64)
    cost = {"ce": fn.CrossEntropy(), "mse": fn.MSE(), "bce": fn.BCE()}[cost_name]
    Y, Yv = (y, yv) if cost_name != "bce" else (np.eye(10)[y], np.eye(10)[yv])
    assert isinstance(_runner(net.copy(), cost, OPTIMIZERS[opt](), X, Y, 128), BlasRunner)
    _compare(net, X, Y, cost, OPTIMIZERS[opt], 128, 17, validation=(Xv, Yv))


@pytest.mark.parametrize("bs", [1, 7, 32])
def test_awkward_shapes(rng, gemm_always, bs):
    """1x1 layers, a layer without bias, LeakyReLU/Tanh/hidden Softmax, a short last batch, N < bs."""
    X = rng.normal(size=(103, 3))
    y = rng.integers(0, 2, 103)
    net = fn.Sequential(fn.Linear(3, 1), fn.Tanh(), fn.Linear(1, 1), fn.LeakyReLU(0.1), fn.Linear(1, 5, bias=False),
                        fn.Softmax(), fn.Linear(5, 2), seed=2, dtype=np.float64)
    assert isinstance(_runner(net.copy(), fn.CrossEntropy(), fn.Adam(0.01), X, y, bs), BlasRunner)
    steps = 200 // -(-103 // bs) + 1
    _compare(net, X, y, fn.CrossEntropy(), OPTIMIZERS["nesterov-wd"], bs, steps)
    _compare(net, X[:5], y[:5], fn.CrossEntropy(), OPTIMIZERS["adam"], 8, 20)  # one batch of 5 < 8


def test_onehot_ce_and_mse_regression(rng, gemm_always):
    X = rng.normal(size=(90, 6))
    y = rng.integers(0, 3, 90)
    net = fn.Sequential(fn.Linear(6, 12), fn.Sigmoid(), fn.Linear(12, 3), seed=5, dtype=np.float64)
    _compare(net, X, np.eye(3)[y], fn.CrossEntropy(), OPTIMIZERS["momentum"], 16, 30)
    T = rng.normal(size=(90, 3))  # regression targets: no accuracy in the History
    _compare(net, X, T, fn.MSE(), OPTIMIZERS["adam-wd"], 16, 30)


def test_float32_close_to_numpy(mnist):
    X, y = _mnist_xy(mnist, 1024)
    X = X.astype(np.float32)
    net = fn.Sequential(fn.Linear(784, 128), fn.ReLU(), fn.Linear(128, 10), seed=1)
    a, b = net.copy(), net.copy()
    a.fit(X, y, fn.CrossEntropy(), fn.SGD(0.05, momentum=0.9), epochs=3, batch_size=128, seed=0, backend="numpy")
    b.fit(X, y, fn.CrossEntropy(), fn.SGD(0.05, momentum=0.9), epochs=3, batch_size=128, seed=0, backend="numba")
    assert b.params.dtype == np.float32
    assert_allclose(b.params, a.params, rtol=1e-3, atol=1e-4)


def test_chunked_runs_equal_whole_epoch(rng, gemm_always):
    """run(order, b0, b1) over pieces (callbacks that want batches) equals one run."""
    X = rng.normal(size=(100, 4))
    y = rng.integers(0, 3, 100)
    net = fn.Sequential(fn.Linear(4, 6), fn.ReLU(), fn.Linear(6, 3), seed=0, dtype=np.float64)
    order = rng.permutation(100).astype(np.int64)
    results = []
    for pieces in ([(0, 15)], [(0, 4), (4, 5), (5, 15)]):
        n2, opt = net.copy(), fn.Adam(0.01)
        r = _runner(n2, fn.CrossEntropy(), opt, X, y, 7)
        assert isinstance(r, BlasRunner)
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


@pytest.mark.parametrize("mode", ["0", "1", "auto"])
def test_blas_thread_modes_equal_to_numpy(mnist, monkeypatch, mode):
    """One BLAS thread, all of them, and the "auto" choice by work per batch."""
    monkeypatch.setattr(config, "PARALLEL", mode)
    X, y = _mnist_xy(mnist, 3200)
    net = fn.Sequential(fn.Linear(784, 32), fn.ReLU(), fn.Linear(32, 10), seed=0, dtype=np.float64)
    _compare(net, X, y, fn.CrossEntropy(), OPTIMIZERS["momentum"], 128, 2)
