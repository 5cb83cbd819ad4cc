"""Sample weights (``fit(sample_weight=)``) and the Poisson cost, on every backend and path.

Oracles: the NumPy backend's Python loop (``training.BatchLoop``, through the reference),
a weighted fit against the same fit on repeated samples, and scikit-learn's own MLPs.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

import fastnn as fn
from conftest import DTYPES, numgrad
from fastnn.backends.plan import batch_weights
from fastnn.kernels import reference as ref
from fastnn.training import Trainer

N, F = 41, 6


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, F))
    X[X < 0.3] = 0  # sparse enough for the sparse paths
    y = rng.integers(0, 3, N)
    w = rng.uniform(0, 2, N)
    w[:3] = 0
    return X, y, w


def _fit(backend, bs, opt, dtype, X, y, w, decay_per_weight=False, cost="ce", out=3, epochs=2):
    net = fn.Sequential(fn.Linear(F, 7), fn.Tanh(), fn.Linear(7, out), seed=1, dtype=dtype)
    o = {"adam": lambda: fn.Adam(0.01, weight_decay=0.01),
         "momentum": lambda: fn.SGD(0.05, momentum=0.9, weight_decay=0.02),
         "sgd": lambda: fn.SGD(0.05, weight_decay=0.01), "sgd0": lambda: fn.SGD(0.05)}[opt]()
    tr = Trainer(net, cost, o, batch_size=bs, backend=backend, seed=3, decay_per_weight=decay_per_weight)
    hist = tr.fit(X, y, epochs=epochs, sample_weight=w)
    return net, hist


# batch 1 + plain SGD: epoch_online; 3: epoch_minibatch; 8: epoch_blas; 40 on CSR: epoch_sparse
PATHS = [(1, "sgd", "dense"), (1, "sgd0", "dense"), (3, "momentum", "dense"), (8, "adam", "dense"),
         (8, "sgd", "csr"), (40, "sgd0", "csr"), (40, "adam", "dense")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bs,opt,kind", PATHS)
@pytest.mark.parametrize("decay_per_weight", [False, True])
def test_weighted_numba_matches_reference(dtype, bs, opt, kind, decay_per_weight):
    X, y, w = _data()
    Xin = sp.csr_matrix(X) if kind == "csr" else X
    a, ha = _fit("numpy", bs, opt, dtype, Xin, y, w, decay_per_weight)
    b, hb = _fit("numba", bs, opt, dtype, Xin, y, w, decay_per_weight)
    unweighted, _ = _fit("numpy", bs, opt, dtype, Xin, y, None, decay_per_weight)
    rtol = 1e-10 if dtype == np.float64 else 2e-4
    assert_allclose(b.params, a.params, rtol=rtol, atol=rtol)
    assert_allclose(hb["loss"], ha["loss"], rtol=rtol)
    assert np.abs(a.params - unweighted.params).max() > 1e-3  # the weights did something


def test_integer_weights_equal_repeated_samples():
    """Full-batch training: weight k is the sample repeated k times (the weighted mean)."""
    X, y, _ = _data(1)
    k = np.random.default_rng(2).integers(0, 4, N)
    k[0] = 3
    Xr, yr = np.repeat(X, k, axis=0), np.repeat(y, k)
    for backend in ("numpy", "numba"):
        a, ha = _fit(backend, N, "momentum", np.float64, X, y, k.astype(float), epochs=3)
        b, hb = _fit(backend, len(yr), "momentum", np.float64, Xr, yr, None, epochs=3)
        assert_allclose(a.params, b.params, rtol=1e-10, atol=1e-12)
        assert_allclose(ha["loss"], hb["loss"], rtol=1e-10)  # the weighted mean is the mean of the repeats


def test_batch_weights_factors():
    w = np.array([1.0, 2, 3, 0, 0, 5, 1])
    order = np.array([6, 5, 4, 3, 2, 1, 0])
    s, wdf = batch_weights(w, order, 3, True)
    # batches {6, 5, 4}: sum 6; {3, 2, 1}: sum 5; {0}: sum 1
    assert_allclose(s, [1.0, 2 * 3 / 5, 3 * 3 / 5, 0, 0, 5 * 3 / 6, 1 * 3 / 6])
    assert_allclose(wdf, [3 / 6, 3 / 5, 3 / 1])
    s, wdf = batch_weights(None, order, 3, True)
    assert s is None and list(wdf) == [1.0, 1.0, 3.0]
    s, wdf = batch_weights(np.array([0.0, 0, 1]), np.arange(3), 2, True)
    assert list(s) == [0, 0, 1] and list(wdf) == [0, 2]  # a zero-sum batch trains on nothing
    assert batch_weights(w, order, 3, False)[1] is None


@pytest.mark.parametrize("bad,msg", [
    (np.ones(N - 1), "shape"), (-np.ones(N), ">= 0"), (np.full(N, np.nan), "NaN"), (np.zeros(N), "zero for every sample"),
    (np.array(["a"] * N), "numeric"), (np.ones((N, 1)), "shape")])
def test_bad_sample_weight_is_refused_before_training(bad, msg):
    X, y, _ = _data()
    net = fn.Sequential(fn.Linear(F, 3), seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=msg):
        net.fit(X, y, "ce", fn.SGD(0.1), sample_weight=bad)
    assert np.array_equal(net.params, before)


# ------------------------------------------------------------------------------ Poisson

@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_cost_kernels(dtype):
    rng = np.random.default_rng(4)
    s = rng.normal(size=(9, 3)).astype(dtype)
    t = rng.poisson(2.0, (9, 3)).astype(dtype)
    e = np.exp(s.astype(np.float64))
    tt = t.astype(np.float64)
    want = (e - tt * s + np.where(tt > 0, tt * np.log(np.where(tt > 0, tt, 1)), 0) - tt).sum() / 9
    assert_allclose(ref.poisson_value(s, t), want, rtol=1e-6 if dtype == np.float32 else 1e-12)
    counts = t.astype(np.float64) + 1  # a perfect fit (log-rate log t) costs 0, a worse one more
    assert abs(ref.poisson_value(np.log(counts), counts)) < 1e-12 < ref.poisson_value(np.log(counts) + 0.1, counts)
    s64 = s.astype(np.float64)
    g = numgrad(lambda z: ref.poisson_value(z, t.astype(np.float64)), s64.copy())
    assert_allclose(ref.poisson_grad(s64, t.astype(np.float64)), g, rtol=1e-6, atol=1e-8)
    from fastnn.kernels import cpu
    assert_allclose(cpu.poisson_value(s, t), ref.poisson_value(s, t), rtol=1e-6)
    assert_allclose(cpu.poisson_grad(s, t), ref.poisson_grad(s, t), rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert_allclose(ref.cost_rows(ref.POISSON, s, t).sum() / 9, ref.poisson_value(s, t), rtol=1e-6)


@pytest.mark.parametrize("bs", [1, 3, 16])
def test_poisson_training_numba_matches_reference(bs):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(33, 4))
    y = rng.poisson(np.exp(0.5 * X[:, :2]))
    nets = []
    for backend in ("numpy", "numba"):
        net = fn.Sequential(fn.Linear(4, 5), fn.ReLU(), fn.Linear(5, 2), seed=2, dtype=np.float64)
        hist = net.fit(X, y, fn.Poisson(), fn.SGD(0.02), epochs=3, batch_size=bs, seed=1, backend=backend)
        nets.append((net, hist))
    assert_allclose(nets[1][0].params, nets[0][0].params, rtol=1e-10, atol=1e-12)
    assert_allclose(nets[1][1]["loss"], nets[0][1]["loss"], rtol=1e-10)
    assert nets[0][1]["loss"][-1] < nets[0][1]["loss"][0]


def test_poisson_refuses_negative_targets():
    net = fn.Sequential(fn.Linear(2, 1), seed=0)
    with pytest.raises(ValueError, match="Poisson targets must be >= 0"):
        net.fit(np.ones((3, 2)), np.array([1.0, -1.0, 2.0]), "poisson", fn.SGD(0.1))
