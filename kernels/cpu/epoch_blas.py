"""Minibatch epochs of a plain MLP whose matrix products are BLAS calls (batches of 4 and more).

For big batches on wide layers (784-256-10, batch 128) a hand-written loop cannot
match a tuned GEMM, so :func:`train` calls BLAS from inside the compiled epoch loop:
Numba implements ``np.dot(a, b, out)`` on contiguous 2-D float32/float64 arrays (C or
F order, so ``a.T`` of a C array is fine) through SciPy's BLAS bindings -- **SciPy must
be installed at run time** (:func:`blas_available`). Everything else (bias,
activations, cost, delta, optimizer step) is a fused loop over preallocated buffers,
and nothing is allocated inside the batch loop. The first layer's input gradient is
never computed.

The arithmetic per element is the reference's (the same row helpers as the other
epochs); only the matrix products sum in BLAS's order, so float64 training agrees
with the ``"numpy"`` backend (itself BLAS) to ~1e-13.
"""

import numpy as np

from fastnn.kernels.cpu.jit import jit
from fastnn.kernels.cpu.update import batch_decay, step
from fastnn.kernels.cpu.views import (
    batch_rows, bias, delta_through, finish_forward, layer_grads, layer_out, rows2d, tally, weights)
from fastnn.kernels.layout import BOFF, DOFF, NIN, NOUT, YOFF


def blas_available():
    """Whether Numba can call BLAS from compiled code (it needs SciPy's BLAS bindings)."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError:
        return False
    return True


@jit
def train(model, opt, data, order, b0, b1, bs, xbuf, t0):
    """Train on batches ``b0 <= b < b1`` of ``order``; returns (loss_sum, correct, bad).

    ``bad`` is the first batch whose loss is not finite (NaN or inf: training diverged), or -1.

    Same contract as :func:`.epoch_minibatch.train` (loss and correct count measured on
    each batch's forward pass before its update; ``grads`` holds the last batch's
    gradient; the optimizer's step count starts at ``t0``). xbuf: (bs*F,) scratch for
    the gathered batch.
    """
    params, grads, spec, ws = model.params, model.grads, model.spec, model.ws
    X = data.X
    L = spec.shape[0]
    F = X.shape[1]
    loss = 0.0
    correct = 0
    bad = -1  # the first batch whose loss is not finite
    for bi in range(b0, b1):
        rows = batch_rows(order, bi, bs)
        B = rows.shape[0]
        # gather the batch into one contiguous block for BLAS: Xb (B, F)
        Xb = rows2d(xbuf, 0, B, F)
        for r in range(B):
            Xb[r, :] = X[rows[r]]
        # forward: Y_l = act(A_l @ W_l + b_l), then Q_l = dropout(Y_l)
        for l in range(L):
            Y = rows2d(ws, spec[l, YOFF], B, spec[l, NOUT])
            A = Xb if l == 0 else layer_out(model, l - 1, B)
            np.dot(A, weights(params, spec, l), Y)
            finish_forward(model, l, B, bi * bs, bias(params, spec, l), spec[l, BOFF] >= 0)
        loss, correct, bad = tally(model, data, rows, B, bi, loss, correct, bad)
        # backward: dW_l = A_l.T @ D_l, db_l = sum D_l, D_{l-1} = (D_l @ W_l.T) * mask * act'
        for l in range(L - 1, -1, -1):
            nin = spec[l, NIN]
            D, dW = layer_grads(model, l, B)  # and db = sum D
            if l == 0:
                np.dot(Xb.T, D, dW)
                break  # the input gradient of the first layer is never needed
            A = layer_out(model, l - 1, B)
            np.dot(A.T, D, dW)
            DX = rows2d(ws, spec[l - 1, DOFF], B, nin)
            np.dot(D, weights(params, spec, l).T, DX)
            delta_through(model, l - 1, B, bi * bs)
        batch_decay(opt, data, bi)
        step(opt, params, grads, t0 + bi - b0 + 1)
    return loss, correct, bad
