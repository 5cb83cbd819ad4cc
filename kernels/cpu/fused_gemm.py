"""Whole-epoch minibatch training of plain MLPs with BLAS matrix products.

For big batches on wide layers (issue 3's config c: 784-256-10, batch 128) a
hand-written loop cannot match a tuned GEMM, so :func:`train_gemm` calls BLAS from
inside the compiled epoch loop: Numba implements ``np.dot(a, b, out)`` on
contiguous 2-D float32/float64 arrays (C or F order, so ``a.T`` of a C array is
fine) through SciPy's BLAS bindings -- **SciPy must be installed at run time**
(:func:`blas_available`). Everything else (bias, activations, cost, delta,
optimizer step) is a fused loop over preallocated buffers, and no array is
allocated inside the batch loop. The first layer's input gradient is never
computed.

A network is described by ``spec`` int64 (L, 7), one row per Linear:
``nin, nout, w_off, b_off (-1 = no bias), act (-1 = none), y_off, d_off`` (the
last two: offsets of the layer's output ``Y`` (B, nout) and delta ``D`` (B, nout)
in the workspace ``ws``), and ``slopes`` float64 (L,) (LeakyReLU slopes); see
:func:`describe`.

The arithmetic per element is the reference's (same helpers as
:mod:`fastnn.kernels.cpu.fused`); only the matrix products sum in BLAS's order,
so float64 training agrees with the ``"numpy"`` backend (itself BLAS) to ~1e-13.
"""

import math

import numpy as np

from fastnn.kernels.cpu._common import (
    NO_ACT, OPT_ADAM, act_backward_row, act_forward_row, jit, loss_and_delta_rows, update_range)

NIN, NOUT, WOFF, BOFF, ACT, YOFF, DOFF = range(7)


def blas_available():
    """Whether Numba can call BLAS from compiled code (it needs SciPy's BLAS bindings)."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError:
        return False
    return True


def describe(net, batch_size):
    """(spec int64 (L, 7), slopes float64 (L,), workspace length) of a plain MLP ``net``."""
    from fastnn.layers import Activation, Linear

    layers = net.layers
    rows, slopes = [], []
    w_off, b_off, ws = 0, net.n_decay, 0
    for k, layer in enumerate(layers):
        if not isinstance(layer, Linear):
            continue
        nxt = layers[k + 1] if k + 1 < len(layers) else None
        act = nxt.code if isinstance(nxt, Activation) else NO_ACT
        slope = nxt.slope if isinstance(nxt, Activation) else 0.0
        y_off = ws
        d_off = ws + batch_size * layer.outsize
        ws = d_off + batch_size * layer.outsize
        rows.append([layer.insize, layer.outsize, w_off, b_off if layer.bias else -1, act, y_off, d_off])
        slopes.append(float(slope))
        w_off += layer.n_weights
        b_off += layer.outsize if layer.bias else 0
    return np.array(rows, np.int64).reshape(-1, 7), np.array(slopes, np.float64), ws


@jit
def _mat(buf, off, m, n):
    # a C-contiguous (m, n) view of buf[off:off + m*n] (np.dot needs contiguous operands)
    return buf[off:off + m * n].reshape((m, n))


@jit
def _bias_act_rows(Y, params, boff, code, slope):
    """``Y += b`` (when ``boff >= 0``), then the activation, row by row in place."""
    B, n = Y.shape
    for r in range(B):
        y = Y[r]
        if boff >= 0:
            for j in range(n):
                y[j] += params[boff + j]
        if code != NO_ACT:
            act_forward_row(code, y, slope)


@jit
def _col_sums(grads, boff, D):
    """``db = D.sum(axis=0)`` into ``grads[boff:]``, adding the rows in order as NumPy does."""
    B, n = D.shape
    db = grads[boff:boff + n]
    for j in range(n):
        db[j] = 0
    for r in range(B):
        d = D[r]
        for j in range(n):
            db[j] += d[j]


@jit
def train_gemm(params, grads, s1, s2, hp, X, T, labels, use_int, has_acc, order, b0, b1, bs, spec,
               slopes, ws, xbuf, cost, fused_last, opt, n_decay, t0, beta1, beta2, eps):
    """Train on batches ``b0 <= b < b1`` of ``order``; returns (loss_sum, correct, t).

    Same contract as :func:`fastnn.kernels.cpu.fused.train_minibatch` (loss and
    correct count measured on each batch's forward pass before its update; ``grads``
    holds the last batch's gradient; ``hp`` as in ``_common.update_range``, Adam's
    bias corrections refreshed from ``beta1``, ``beta2`` and the step ``t`` that
    starts at ``t0``).

    X: (N, F) C-contiguous; xbuf: (bs*F,) scratch for the gathered batch; T: float
    targets (N, K), or (1, K) unused when ``use_int`` (class labels in ``labels``).
    """
    N = order.shape[0]
    L = spec.shape[0]
    F = X.shape[1]
    K = spec[L - 1, NOUT]
    loss = 0.0
    correct = 0
    t = t0
    for bi in range(b0, b1):
        s = bi * bs
        e = min(N, s + bs)
        B = e - s
        rows = order[s:e]
        # gather the batch into one contiguous block for BLAS: Xb (B, F)
        Xb = _mat(xbuf, 0, B, F)
        for r in range(B):
            Xb[r, :] = X[rows[r]]
        # forward: Y_l = act(A_l @ W_l + b_l)
        for l in range(L):
            nin, nout = spec[l, NIN], spec[l, NOUT]
            W = _mat(params, spec[l, WOFF], nin, nout)
            Y = _mat(ws, spec[l, YOFF], B, nout)
            if l == 0:
                np.dot(Xb, W, Y)
            else:
                np.dot(_mat(ws, spec[l - 1, YOFF], B, nin), W, Y)
            _bias_act_rows(Y, params, spec[l, BOFF], spec[l, ACT], slopes[l])
        # cost, correct count and the output delta
        P = _mat(ws, spec[L - 1, YOFF], B, K)
        D = _mat(ws, spec[L - 1, DOFF], B, K)
        ls, c = loss_and_delta_rows(cost, P, D, T, labels, use_int, has_acc, rows, B, eps, fused_last)
        loss += ls
        correct += c
        code = spec[L - 1, ACT]
        if code != NO_ACT and not fused_last:
            for r in range(B):
                act_backward_row(code, P[r], D[r], slopes[L - 1])
        # backward: dW_l = A_l.T @ D_l, db_l = sum D_l, D_{l-1} = (D_l @ W_l.T) * act'
        for l in range(L - 1, -1, -1):
            nin, nout = spec[l, NIN], spec[l, NOUT]
            D = _mat(ws, spec[l, DOFF], B, nout)
            dW = _mat(grads, spec[l, WOFF], nin, nout)
            if spec[l, BOFF] >= 0:
                _col_sums(grads, spec[l, BOFF], D)
            if l == 0:
                np.dot(Xb.T, D, dW)
                break  # the input gradient of the first layer is never needed
            A = _mat(ws, spec[l - 1, YOFF], B, nin)
            np.dot(A.T, D, dW)
            DX = _mat(ws, spec[l - 1, DOFF], B, nin)
            np.dot(D, _mat(params, spec[l, WOFF], nin, nout).T, DX)
            code = spec[l - 1, ACT]
            if code != NO_ACT:
                for r in range(B):
                    act_backward_row(code, A[r], DX[r], slopes[l - 1])
        t += 1
        if opt == OPT_ADAM:
            # same float64 pow as the reference's ``1 - beta1**t``, then cast to the dtype
            hp[8] = 1.0 - math.pow(beta1, float(t))
            hp[9] = 1.0 - math.pow(beta2, float(t))
        update_range(opt, params, grads, s1, s2, hp, 0, params.shape[0], n_decay)
    return loss, correct, t
