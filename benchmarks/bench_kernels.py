"""Per-kernel timings: Numba CPU kernels vs the NumPy reference, at realistic shapes.

Run with::

    python -m pytest benchmarks/bench_kernels.py --benchmark-enable

(The default ``python -m pytest`` collects only ``tests/``, and pytest-benchmark is
disabled there.) Every benchmark first checks its result against the reference at
the benchmark shape, then calls the kernel once more to warm up (so JIT compile or
cache loading is never timed; :func:`test_compile_times` reports it separately),
and pytest-benchmark reports medians. Compare ``numba`` and ``reference`` rows of
the same op from one run; the machine is in the JSON pytest-benchmark writes with
``--benchmark-json``.
"""

import time

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from fastnn.kernels import cpu, reference as ref

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
IMPLS = {"numba": cpu, "reference": ref}


def _mnist_like(rng, shape, dt):
    """Inputs that are ~80% zeros, like MNIST pixels."""
    x = rng.random(shape).astype(dt)
    x[rng.random(shape) < 0.8] = 0
    return x


def _check_then_time(benchmark, fn_got, fn_want, dt):
    got, want = fn_got(), fn_want()
    if isinstance(want, np.ndarray):
        assert_allclose(got, want, **TOL[dt])
    else:
        assert got == pytest.approx(want, rel=TOL[dt]["rtol"])
    fn_got()  # warm-up
    benchmark(fn_got)


# (B, in, out) of the configurations: 784-50-10 at batch 10, 784-256-10 at batch 128
LINEAR = [(10, 784, 50), (128, 784, 256), (128, 256, 10)]


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("shape", LINEAR, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", ["linear_forward", "linear_backward_weight", "linear_backward_input"])
def test_linear(benchmark, impl, shape, op):
    dt = np.float32
    rng = np.random.default_rng(0)
    B, nin, nout = shape
    x = _mnist_like(rng, (B, nin), dt)
    W = rng.normal(size=(nin, nout)).astype(dt)
    b = rng.normal(size=nout).astype(dt)
    dy = rng.normal(size=(B, nout)).astype(dt)
    args = {"linear_forward": (x, W, b), "linear_backward_weight": (x, dy), "linear_backward_input": (dy, W)}[op]
    mod = IMPLS[impl]
    benchmark.group = f"{op} {shape}"
    _check_then_time(benchmark, lambda: getattr(mod, op)(*args), lambda: getattr(ref, op)(*args), dt)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("op", ["sigmoid_forward", "relu_forward", "softmax_forward", "cross_entropy_grad",
                                "elu_forward", "softplus_forward", "gelu_forward", "silu_forward", "relu6_forward"])
def test_rowwise(benchmark, impl, op):
    dt = np.float32
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 256 if op != "cross_entropy_grad" else 10)).astype(dt)
    labels = rng.integers(0, 10, 128)
    args = (x, labels) if op == "cross_entropy_grad" else (x,)
    mod = IMPLS[impl]
    benchmark.group = op
    _check_then_time(benchmark, lambda: getattr(mod, op)(*args), lambda: getattr(ref, op)(*args), dt)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_optimizer_update(benchmark, impl, opt):
    """One update of the 784-256-10 network's 203,530 parameters."""
    dt = np.float32
    rng = np.random.default_rng(0)
    P = 784 * 256 + 256 * 10 + 266
    p0, g = rng.normal(size=P).astype(dt), rng.normal(size=P).astype(dt)
    mod = IMPLS[impl]
    # check a few steps against the reference first
    st = {k: (p0.copy(), np.zeros(P, dt), np.zeros(P, dt)) for k in ("got", "want")}
    for t in (1, 2):
        for k, m in (("got", mod), ("want", ref)):
            p, s1, s2 = st[k]
            _step(m, opt, p, g, s1, s2, t)
    assert_allclose(st["got"][0], st["want"][0], **TOL[dt])
    p, s1, s2 = st["got"]
    benchmark.group = f"{opt}_update P={P}"
    benchmark(lambda: _step(mod, opt, p, g, s1, s2, 3))


def _step(m, opt, p, g, s1, s2, t):
    if opt == "sgd":
        m.sgd_update(p, g, 1e-6, 1e-4, 784 * 256)
    elif opt == "momentum":
        m.momentum_update(p, g, s1, 1e-6, 0.9, 1e-4, 784 * 256)
    else:
        m.adam_update(p, g, s1, s2, t, 1e-6, 0.9, 0.999, 1e-8, 1e-4, 784 * 256)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("config", ["a", "b", "c"])
def test_fused_epoch_slice(benchmark, backend, config):
    """2,000 samples of the issue's configurations through ``fit`` (whole-epoch path)."""
    rng = np.random.default_rng(0)
    X = _mnist_like(rng, (2000, 784), np.float32)
    y = rng.integers(0, 10, 2000)
    if config in "ab":
        net = fn.Sequential(fn.Linear(784, 50), fn.Sigmoid(), fn.Linear(50, 10), fn.Sigmoid(), seed=0)
        cost, make_opt, bs = fn.MSE(), lambda: fn.SGD(0.1), (1 if config == "a" else 10)
    else:
        net = fn.Sequential(fn.Linear(784, 256), fn.ReLU(), fn.Linear(256, 10), seed=0)
        cost, make_opt, bs = fn.CrossEntropy(), lambda: fn.SGD(0.05, momentum=0.9), 128
    # check against the numpy backend at this shape (float32: loose tolerance)
    a, b = net.copy(), net.copy()
    a.fit(X[:300], y[:300], cost, make_opt(), batch_size=bs, seed=0, backend="numpy")
    b.fit(X[:300], y[:300], cost, make_opt(), batch_size=bs, seed=0, backend=backend)
    assert_allclose(b.params, a.params, rtol=1e-3, atol=1e-4)
    benchmark.group = f"fit config {config}, 2000 samples"
    benchmark.pedantic(lambda: net.copy().fit(X, y, cost, make_opt(), batch_size=bs, seed=0, backend=backend),
                       rounds=3, iterations=1, warmup_rounds=1)


def test_compile_times():
    """First-call time of the fused kernels in this process (cache load if cached, else compile)."""
    X = np.random.default_rng(0).random((64, 20))
    y = np.arange(64) % 3
    out = {}
    for bs in (1, 16):
        net = fn.Sequential(fn.Linear(20, 8), fn.Tanh(), fn.Linear(8, 3), seed=0, dtype=np.float64)
        t = time.perf_counter()
        net.fit(X, y, fn.CrossEntropy(), fn.SGD(0.1), batch_size=bs, backend="numba")
        out[f"first fit, batch {bs}"] = time.perf_counter() - t
        t = time.perf_counter()
        net.fit(X, y, fn.CrossEntropy(), fn.SGD(0.1), batch_size=bs, backend="numba")
        out[f"second fit, batch {bs}"] = time.perf_counter() - t
    print("\n" + "\n".join(f"  {k}: {v:.3f} s" for k, v in out.items()))
    assert all(v >= 0 for v in out.values())
