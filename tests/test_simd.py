"""The LLVM-vector intrinsics of kernels/cpu/simd.py against plain NumPy loops.

They must give exactly the scalar loops' numbers (strict IEEE, same order), on
every row width: whole blocks, partial blocks and masked partial vectors.
"""

import numba
import numpy as np
import pytest

from fastnn.kernels.cpu import plain
from fastnn.kernels.cpu.simd import axpy_rows, nonzeros, prefetch, sgd_rows

WIDTHS = list(range(0, 18)) + [31, 32, 33, 50, 63, 64, 65, 257]


@numba.njit
def _axpy(h, W, rows, v, m):
    axpy_rows(h, W, rows, v, m)


@numba.njit
def _sgd(W, rows, v, m, d, lr):
    sgd_rows(W, rows, v, m, d, lr)


@numba.njit
def _nonzeros(idx, val, x):
    return nonzeros(idx, val, x)


@numba.njit
def _prefetch(x):
    prefetch(x)


#: The intrinsics and the plain loops (FASTNN_SIMD=0) must give the same numbers.
IMPLS = {"simd": (_axpy, _sgd, _nonzeros), "plain": (plain.axpy_rows, plain.sgd_rows, plain.nonzeros)}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", WIDTHS)
def test_axpy_rows_matches_the_scalar_sum(dtype, n, rng, impl):
    _axpy = IMPLS[impl][0]
    F = 11
    W = rng.standard_normal((F, n + 3)).astype(dtype)  # rows wider than n: stride != n
    rows = rng.integers(0, F, 9).astype(np.int64)
    v = rng.standard_normal(9).astype(dtype)
    for m in (0, 1, 9):
        buf = np.full(n + 5, 7, dtype)
        _axpy(buf[:n], W, rows, v, m)
        want = np.zeros(n, dtype)
        for k in range(m):
            want = want + v[k] * W[rows[k], :n]
        np.testing.assert_array_equal(buf[:n], want)
        assert np.all(buf[n:] == 7), "wrote past the end of h"


@numba.njit
def _axpy_block(h, W, rows, v, m, j0):
    axpy_rows(h, W[:, j0:j0 + h.shape[0]], rows, v, m)  # W's columns j0.. ("A" layout)


@numba.njit
def _plain_axpy_block(h, W, rows, v, m, j0):
    plain.axpy_rows(h, W[:, j0:j0 + h.shape[0]], rows, v, m)


@pytest.mark.parametrize("impl", ["simd", "plain"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", WIDTHS)
def test_axpy_rows_on_a_column_block_with_int32_rows(dtype, n, rng, impl):
    """The sparse epochs' use: CSR column indices (int32) and a block of W's columns."""
    f = _axpy_block if impl == "simd" else _plain_axpy_block
    W = rng.standard_normal((11, n + 7)).astype(dtype)
    rows = rng.integers(0, 11, 9).astype(np.int32)
    v = rng.standard_normal(9).astype(dtype)
    h = np.empty(n, dtype)
    f(h, W, rows, v, 9, 5)
    want = np.zeros(n, dtype)
    for k in range(9):
        want = want + v[k] * W[rows[k], 5:5 + n]
    np.testing.assert_array_equal(h, want)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", WIDTHS)
def test_sgd_rows_matches_the_scalar_update(dtype, n, rng, impl):
    _sgd = IMPLS[impl][1]
    F = 11
    W = rng.standard_normal((F, n + 3)).astype(dtype)
    rows = np.array([3, 0, 3, 10, 5], np.int64)  # a repeated row is updated twice, in order
    v = rng.standard_normal(5).astype(dtype)
    d = rng.standard_normal(n).astype(dtype)
    lr = dtype(0.37)
    for m in (0, 1, 5):
        got = W.copy()
        _sgd(got, rows, v, m, d, lr)
        want = W.copy()
        for k in range(m):
            want[rows[k], :n] = want[rows[k], :n] - lr * (v[k] * d)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", WIDTHS + [784])
def test_nonzeros_lists_indices_and_values_in_order(dtype, n, rng, impl):
    _nonzeros = IMPLS[impl][2]
    x = rng.standard_normal(n).astype(dtype)
    x[rng.random(n) < 0.6] = 0
    if n > 2:
        x[1] = -0.0  # negative zero is a zero
        x[n - 1] = np.nan  # NaN != 0, as in the scalar scan
    idx = np.full(n, -1, np.int64)
    val = np.zeros(n, dtype)
    m = _nonzeros(idx, val, x)
    want = np.flatnonzero(x != 0)
    assert m == len(want)
    np.testing.assert_array_equal(idx[:m], want)
    np.testing.assert_array_equal(val[:m], x[want])


def test_prefetch_is_only_a_hint():
    x = np.arange(1000, dtype=np.float32)
    _prefetch(x)
    _prefetch(x[:0])
    np.testing.assert_array_equal(x, np.arange(1000, dtype=np.float32))


def test_intrinsics_refuse_strided_or_mixed_arrays():
    W = np.zeros((4, 8), np.float32)
    with pytest.raises(numba.core.errors.TypingError):
        _axpy(np.zeros(16, np.float32)[::2], W, np.zeros(1, np.int64), np.zeros(1, np.float32), 1)
    with pytest.raises(numba.core.errors.TypingError):
        _axpy(np.zeros(8, np.float64), W, np.zeros(1, np.int64), np.zeros(1, np.float32), 1)
    with pytest.raises(numba.core.errors.TypingError):  # int16 row numbers
        _sgd(W, np.zeros(1, np.int16), np.zeros(1, np.float32), 1, np.zeros(8, np.float32), np.float32(1))
    with pytest.raises(numba.core.errors.TypingError):  # a strided 1-D v
        _sgd(W, np.zeros(2, np.int32), np.zeros(4, np.float32)[::2], 1, np.zeros(8, np.float32), np.float32(1))
    with pytest.raises(numba.core.errors.TypingError):
        _nonzeros(np.zeros(4, np.int64), np.zeros(4, np.float64), np.zeros(4, np.float32))


_PER_SAMPLE = """
import sys, numpy as np, fastnn as fn
from fastnn.kernels.cpu import epoch_online
rng = np.random.default_rng(0)
X = (rng.random((400, 37)) * (rng.random((400, 37)) < 0.3)).astype(np.float32)
net = fn.Sequential(fn.Linear(37, 13), fn.Sigmoid(), fn.Linear(13, 3), fn.Sigmoid(), seed=0)
net.fit(X, rng.integers(0, 3, 400), fn.MSE(), fn.SGD(0.5), epochs=2, batch_size=1, seed=0, backend="numba")
sys.stdout.write(("simd " if epoch_online.uses_simd() else "plain ") + net.params.tobytes().hex())
"""


def test_per_sample_training_is_bit_identical_with_fastnn_simd_0():
    """CI's second way: the whole per-sample epoch with FASTNN_SIMD=0 (plain loops)."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    out = {}
    for simd in ("1", "0"):
        r = subprocess.run([sys.executable, "-c", _PER_SAMPLE], cwd=ROOT, capture_output=True, text=True,
                           env=dict(os.environ, FASTNN_SIMD=simd), timeout=600)
        assert r.returncode == 0, r.stderr
        out[simd] = r.stdout.split()
    assert out["1"][0] == "simd" and out["0"][0] == "plain"
    assert out["1"][1] == out["0"][1]


def test_a_failed_intrinsic_compile_falls_back_to_plain_loops(monkeypatch):
    import fastnn as fn
    from fastnn.kernels.cpu import epoch_online

    real = epoch_online.train
    calls = []

    def flaky(*args):
        calls.append(epoch_online.uses_simd())
        if epoch_online.uses_simd():
            raise numba.core.errors.LoweringError("intrinsic rejected by this LLVM")
        return real(*args)
    from fastnn.kernels.cpu import simd
    # start from the intrinsics even in the FASTNN_SIMD=0 run (restored afterwards)
    for name in epoch_online.ROW_KERNELS:
        monkeypatch.setattr(epoch_online, name, getattr(simd, name))
    assert epoch_online.uses_simd()
    monkeypatch.setattr(epoch_online, "train", flaky)
    X = np.random.default_rng(0).normal(size=(20, 3))
    net = fn.Sequential(fn.Linear(3, 2), seed=0, dtype=np.float64)
    ref = net.copy()
    with pytest.warns(RuntimeWarning, match="using plain loops"):
        net.fit(X, np.arange(20) % 2, fn.CrossEntropy(), fn.SGD(0.1), batch_size=1, seed=0, backend="numba")
    # the first call (fit's compile-only prepare) fails with the intrinsics, then only plain loops
    assert calls[:2] == [True, False] and not any(calls[2:])
    ref.fit(X, np.arange(20) % 2, fn.CrossEntropy(), fn.SGD(0.1), batch_size=1, seed=0, backend="numpy")
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-12)
