"""Dropout on the CPU: the reference's counter-based mask (``reference.dropout_mask``), one row at a time.

A unit is kept when ``mix64(s + (c + 1) G) >> 11 >= threshold``, with the stream key
``s = mix64(key + (stream + 1) G)`` and the counter ``c = position * units + unit``:
the same uint64 arithmetic as the reference and the CUDA kernels, so masks are equal
on every backend and nothing is stored between the forward and the backward pass.
"""

import numpy as np

from fastnn.kernels.cpu.jit import jit

# splitmix64's constants; every operand is uint64 (an int64 would promote the arithmetic to float64)
_G = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)
_ONE = np.uint64(1)


@jit
def mix64(z):
    """splitmix64's output function of a uint64 (wrapping)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit
def stream_key(key, stream):
    """The key of Dropout number ``stream`` (its position in the network) this epoch."""
    return mix64(np.uint64(key) + np.uint64(stream + 1) * _G)


@jit
def dropout_row(q, y, skey, thr, scale, c0):
    """``q[j] = y[j] * scale`` where unit j (counter ``c0 + j``) is kept, else 0; q may be y.

    q, y: (n,); ``thr`` the keep threshold (``layout.dropout_threshold``), ``scale`` 1/(1-p).
    """
    s = q.dtype.type(scale)
    zero = q.dtype.type(0)
    t = np.uint64(thr)
    c = np.uint64(c0)
    for j in range(y.shape[0]):
        u = mix64(skey + (c + np.uint64(j) + _ONE) * _G)
        q[j] = y[j] * s if (u >> _S11) >= t else zero


@jit
def dropout_rows(Q, Y, key, stream, pos0, thr, scale):
    """:func:`dropout_row` of every row of Y (B, n) into Q; row r is at epoch position pos0 + r."""
    skey = stream_key(key, stream)
    n = Y.shape[1]
    for r in range(Y.shape[0]):
        dropout_row(Q[r], Y[r], skey, thr, scale, (pos0 + r) * n)
