"""The LLVM-vector intrinsics of kernels/cpu/simd.py against plain NumPy loops.

They must give exactly the scalar loops' numbers (strict IEEE, same order), on
every row width: whole blocks, partial blocks and masked partial vectors.
"""

import numba
import numpy as np
import pytest

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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", WIDTHS)
def test_axpy_rows_matches_the_scalar_sum(dtype, n, rng):
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", WIDTHS)
def test_sgd_rows_matches_the_scalar_update(dtype, n, rng):
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", WIDTHS + [784])
def test_nonzeros_lists_indices_and_values_in_order(dtype, n, rng):
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
    with pytest.raises(numba.core.errors.TypingError):
        _sgd(W, np.zeros(1, np.int32), np.zeros(1, np.float32), 1, np.zeros(8, np.float32), np.float32(1))
    with pytest.raises(numba.core.errors.TypingError):
        _nonzeros(np.zeros(4, np.int64), np.zeros(4, np.float64), np.zeros(4, np.float32))
