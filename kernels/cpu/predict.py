"""Inference of a plain MLP: forward chunks of rows, serially or spread over the threads."""

import numpy as np
from numba import prange

from fastnn.kernels.cpu.jit import jit, pjit
from fastnn.kernels.cpu.linear import fwd_rows
from fastnn.kernels.cpu.rows import act_forward_row
from fastnn.kernels.cpu.views import bias, weights
from fastnn.kernels.layout import ACT, BOFF, NO_ACT, NOUT


@jit
def _predict_rows(out, X, params, spec, slopes, buf, s, e):
    """Forward rows ``s <= n < e`` of X into ``out``; ``buf`` holds two layer outputs."""
    L = spec.shape[0]
    B = e - s
    half = buf.shape[0] // 2
    A = X[s:e]
    for l in range(L):
        nout = spec[l, NOUT]
        W = weights(params, spec, l)
        b = bias(params, spec, l)
        if l == L - 1:
            Y = out[s:e]
        else:
            Y = buf[(l % 2) * half:(l % 2) * half + B * nout].reshape((B, nout))
        fwd_rows(Y, A, W, b, spec[l, BOFF] >= 0, 0, B)
        code = spec[l, ACT]
        if code != NO_ACT:
            for n in range(B):
                act_forward_row(code, Y[n], slopes[l])
        A = Y


@pjit
def predict_par(out, X, params, spec, slopes, chunk, width):
    """Forward all of X (N, F) into ``out`` (N, K), chunks of rows spread over the threads."""
    N = X.shape[0]
    nch = (N + chunk - 1) // chunk
    for c in prange(nch):
        # one small scratch buffer per chunk (not per row or per layer)
        buf = np.empty(2 * chunk * width, out.dtype)
        _predict_rows(out, X, params, spec, slopes, buf, c * chunk, min(N, (c + 1) * chunk))


@jit
def predict_serial(out, X, params, spec, slopes, chunk, width):
    """:func:`predict_par` on one thread (small inputs: no thread wake-up)."""
    N = X.shape[0]
    buf = np.empty(2 * chunk * width, out.dtype)
    for s in range(0, N, chunk):
        _predict_rows(out, X, params, spec, slopes, buf, s, min(N, s + chunk))
