"""Dropout on the CPU: the reference's counter-based mask (``reference.dropout_mask``), one row at a time.

A unit is kept when ``mix64(s + (c + 1) G) >> 11 >= threshold``, with the stream key
``s = mix64(key + (stream + 1) G)`` and the counter ``c = position * units + unit``:
the same uint64 arithmetic as the reference and the CUDA kernels, so masks are equal
on every backend and nothing is stored between the forward and the backward pass.
"""

import numpy as np

from fastnn.kernels import formulas
from fastnn.kernels.cpu.jit import jit

#: splitmix64's output function and the keep test (:mod:`fastnn.kernels.formulas`), compiled
mix64, _keep = jit(formulas.mix64), jit(formulas.dropout_keep)


@jit
def stream_key(key, stream):
    """The key of Dropout number ``stream`` (its position in the network) this epoch."""
    return mix64(np.uint64(key) + np.uint64(stream + 1) * formulas.GOLDEN)


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
        q[j] = y[j] * s if _keep(skey, c + np.uint64(j), t) else zero


@jit
def dropout_rows(Q, Y, key, stream, pos0, thr, scale):
    """:func:`dropout_row` of every row of Y (B, n) into Q; row r is at epoch position pos0 + r."""
    skey = stream_key(key, stream)
    n = Y.shape[1]
    for r in range(Y.shape[0]):
        dropout_row(Q[r], Y[r], skey, thr, scale, (pos0 + r) * n)
