"""Fused training and inference loops for plain MLPs (Linear [activation])*.

A network is described to the compiled code by arrays, never Python lists:

* ``params``/``grads`` -- the network's flat buffers (``Sequential.params``), laid
  out ``[W_1 | ... | W_k | b_1 | ... | b_k]``;
* ``spec`` -- int64 (L, 8), one row per Linear: ``nin, nout, w_off, b_off (-1 = no
  bias), act (-1 = none), y_off, d_off, wt_off``, the last three being offsets of
  that layer's output ``Y`` (B, nout), delta ``D`` (B, nout) and transposed
  weights (nout, nin) in the workspace ``ws``;
* ``slopes`` -- float64 (L,), the LeakyReLU slope of each layer's activation.

Two training loops run whole ranges of batches ``b0 <= b < b1`` of a sample order
with no Python in between:

* :func:`train_minibatch` -- any batch size and optimizer: forward, loss, backward
  into ``grads``, then one flat optimizer step per batch, exactly like the generic
  Runner; big batches spread rows (forward, input gradient) and weight rows
  (weight gradient) over the threads.
* :func:`train_online` -- batch size 1 with plain SGD (the seeds' stochastic
  gradient descent): each layer's weights are updated in place right after its
  input gradient is taken, so no gradient buffer is written or swept.

When the input is sparse (MNIST: 81% zeros) the first layer reads it in CSR form
(``ptr``, ``idx``; the values are read from X), so its forward and weight gradient only touch the
rows of ``W`` whose input is non-zero, and its input gradient is never computed.
"""

import math

import numpy as np
from numba import prange

from fastnn.kernels.cpu._common import (
    BCE, MSE, NO_ACT, OPT_ADAM, SIGMOID, act_backward_row, act_forward_row, correct_row, cost_grad_row,
    cost_row, jit, loss_and_delta_rows, pjit, update_flat, update_range)
from fastnn.kernels.cpu.simd import axpy_rows, nonzeros, prefetch, sgd_rows
from fastnn.kernels.cpu.ops import (
    bwd_bias, bwd_input_par, bwd_input_rows, bwd_weight_par, bwd_weight_rows, fwd_par, fwd_rows)

NIN, NOUT, WOFF, BOFF, ACT, YOFF, DOFF, WTOFF = range(8)


# ------------------------------------------------------------------------ sparse input


@jit
def csr_fill(ptr, idx, X):
    """Sparsity pattern of X (N, F) in one pass: row pointers into ``ptr`` (N+1,) and
    column indices (int32) into ``idx``; returns the number of non-zeros, or -1
    as soon as they would not fit in ``idx`` (the input is then too dense for CSR).

    One thread on purpose: this is a memory-bound pass of a few tens of ms, and a
    parallel region on a busy 2-core machine can stall for longer than that.
    """
    N, F = X.shape
    cap = idx.shape[0]
    k = 0
    ptr[0] = 0
    for n in range(N):
        if k + F > cap:
            return -1
        x = X[n]
        for i in range(F):
            if x[i] != 0:
                idx[k] = i
                k += 1
        ptr[n + 1] = k
    return k


def csr_of(X, max_density):
    """Sparsity pattern ``(ptr int64 (N+1,), idx int32)`` of X (N, F) (CSR without the
    values: kernels read them from X, which saves the memory and the page faults of a
    copy), or None when more than ``max_density`` of its entries are non-zero."""
    N, F = X.shape
    cap = int(max_density * N * F) + F
    ptr = np.zeros(N + 1, np.int64)
    # pages past the last non-zero are never touched, so the spare capacity costs no memory
    idx = np.empty(cap, np.int32)
    nnz = csr_fill(ptr, idx, X)
    if nnz < 0 or nnz > max_density * max(N * F, 1):
        return None
    return ptr, idx[:nnz]


@jit
def fwd_sparse_rows(Y, X, ptr, idx, rows, W, b, has_bias, r0, r1):
    """Rows ``r0 <= n < r1`` of ``Y = X[rows] @ W + b`` reading only X's non-zeros.

    Adds the non-zero inputs in column order, exactly as :func:`fwd_rows` does.
    """
    nout = W.shape[1]
    for n in range(r0, r1):
        y = Y[n]
        r = rows[n]
        x = X[r]
        for j in range(nout):
            y[j] = 0
        for k in range(ptr[r], ptr[r + 1]):
            a = x[idx[k]]
            w = W[idx[k]]
            for j in range(nout):
                y[j] += a * w[j]
        if has_bias:
            for j in range(nout):
                y[j] += b[j]


@pjit
def fwd_sparse_par(Y, X, ptr, idx, rows, W, b, has_bias, B):
    for n in prange(B):
        fwd_sparse_rows(Y, X, ptr, idx, rows, W, b, has_bias, n, n + 1)


@jit
def bwd_weight_sparse_cols(dW, X, ptr, idx, rows, DY, B, j0, j1):
    """Columns ``j0 <= j < j1`` of ``dW = X[rows].T @ DY[:B]`` from X's non-zeros (overwritten).

    Split by columns so that threads never write the same entry; every entry sums
    over the samples in order, whatever the split.
    """
    nin = dW.shape[0]
    for i in range(nin):
        row = dW[i]
        for j in range(j0, j1):
            row[j] = 0
    for n in range(B):
        r = rows[n]
        x = X[r]
        d = DY[n]
        for k in range(ptr[r], ptr[r + 1]):
            a = x[idx[k]]
            row = dW[idx[k]]
            for j in range(j0, j1):
                row[j] += a * d[j]


@pjit
def bwd_weight_sparse_par(dW, X, ptr, idx, rows, DY, B, nblk):
    nout = dW.shape[1]
    for c in prange(nblk):
        bwd_weight_sparse_cols(dW, X, ptr, idx, rows, DY, B, c * nout // nblk, (c + 1) * nout // nblk)


@jit
def sgd_sparse_rows(W, X, ptr, idx, rows, DY, B, lr):
    """Plain SGD on the first layer from a batch in CSR form: ``W -= lr * X[rows].T @ DY[:B]``.

    Each sample's outer product ``x_n d_n`` is applied in turn (``W -= lr * (x_ni *
    d_n)``), touching only the rows of W whose input is non-zero: no gradient
    buffer is zeroed, filled or swept. The result equals the reference's
    ``W -= lr * (X.T @ DY)`` up to the order of the per-sample additions (exactly
    for a batch of one). All ``DY`` must come from the weights before the step.
    """
    nout = W.shape[1]
    for n in range(B):
        r = rows[n]
        x = X[r]
        d = DY[n]
        for k in range(ptr[r], ptr[r + 1]):
            a = x[idx[k]]
            w = W[idx[k]]
            for j in range(nout):
                w[j] -= lr * (a * d[j])


# ------------------------------------------------------------------------------ views


@jit
def _weights(buf, spec, l):
    nin, nout = spec[l, NIN], spec[l, NOUT]
    o = spec[l, WOFF]
    return buf[o:o + nin * nout].reshape((nin, nout))


@jit
def _bias(buf, spec, l):
    o = spec[l, BOFF]
    if o < 0:
        return buf[0:0]
    return buf[o:o + spec[l, NOUT]]


@jit
def _rows2d(ws, off, B, n):
    return ws[off:off + B * n].reshape((B, n))


# ------------------------------------------------------------------------- the steps


@jit
def _forward(params, X, ptr, idx, sparse, rows, spec, slopes, ws, A0, B, parallel):
    """Forward a batch (the samples ``rows``); each layer's output lands in its Y."""
    L = spec.shape[0]
    for l in range(L):
        nout = spec[l, NOUT]
        W = _weights(params, spec, l)
        b = _bias(params, spec, l)
        hb = spec[l, BOFF] >= 0
        Y = _rows2d(ws, spec[l, YOFF], B, nout)
        if l == 0:
            if sparse:
                if parallel:
                    fwd_sparse_par(Y, X, ptr, idx, rows, W, b, hb, B)
                else:
                    fwd_sparse_rows(Y, X, ptr, idx, rows, W, b, hb, 0, B)
            else:
                A = A0[:B]
                for n in range(B):
                    A[n, :] = X[rows[n]]
                if parallel:
                    fwd_par(Y, A, W, b, hb, B)
                else:
                    fwd_rows(Y, A, W, b, hb, 0, B)
        else:
            A = _rows2d(ws, spec[l - 1, YOFF], B, spec[l - 1, NOUT])
            if parallel:
                fwd_par(Y, A, W, b, hb, B)
            else:
                fwd_rows(Y, A, W, b, hb, 0, B)
        code = spec[l, ACT]
        if code != NO_ACT:
            for n in range(B):
                act_forward_row(code, Y[n], slopes[l])


@jit
def _loss_and_delta(cost, T, labels, use_int, has_acc, rows, spec, ws, B, eps, fused_last):
    """Loss (summed over the batch), correct count, and the output delta in the last D."""
    L = spec.shape[0]
    K = spec[L - 1, NOUT]
    P = _rows2d(ws, spec[L - 1, YOFF], B, K)
    D = _rows2d(ws, spec[L - 1, DOFF], B, K)
    return loss_and_delta_rows(cost, P, D, T, labels, use_int, has_acc, rows, B, eps, fused_last)


@jit
def _backward(params, grads, X, ptr, idx, sparse, spec, slopes, ws, A0, rows, B, fused_last, parallel,
              skip_w0):
    """Backward a batch into ``grads`` (overwritten), from the delta in the last D.

    With ``skip_w0`` the first layer's weight gradient is left alone (the caller
    applies it sparsely, see :func:`sgd_sparse_rows`)."""
    L = spec.shape[0]
    code = spec[L - 1, ACT]
    if code != NO_ACT and not fused_last:
        P = _rows2d(ws, spec[L - 1, YOFF], B, spec[L - 1, NOUT])
        D = _rows2d(ws, spec[L - 1, DOFF], B, spec[L - 1, NOUT])
        for n in range(B):
            act_backward_row(code, P[n], D[n], slopes[L - 1])
    for l in range(L - 1, -1, -1):
        nin, nout = spec[l, NIN], spec[l, NOUT]
        D = _rows2d(ws, spec[l, DOFF], B, nout)
        dW = _weights(grads, spec, l)
        if spec[l, BOFF] >= 0:
            bwd_bias(_bias(grads, spec, l), D, B)
        if l == 0:
            if skip_w0:
                break
            if sparse:
                nblk = 1
                if parallel:
                    nblk = min(max(nout // 32, 1), 64)
                if nblk > 1:
                    bwd_weight_sparse_par(dW, X, ptr, idx, rows, D, B, nblk)
                else:
                    bwd_weight_sparse_cols(dW, X, ptr, idx, rows, D, B, 0, nout)
            elif parallel:
                bwd_weight_par(dW, A0[:B], D, B)
            else:
                bwd_weight_rows(dW, A0[:B], D, B, 0, nin)
            break
        A = _rows2d(ws, spec[l - 1, YOFF], B, nin)
        if parallel:
            bwd_weight_par(dW, A, D, B)
        else:
            bwd_weight_rows(dW, A, D, B, 0, nin)
        # input gradient through W (transposed once per batch so the rows are axpys)
        W = _weights(params, spec, l)
        WT = _rows2d(ws, spec[l, WTOFF], nout, nin)
        for i in range(nin):
            for j in range(nout):
                WT[j, i] = W[i, j]
        DX = _rows2d(ws, spec[l - 1, DOFF], B, nin)
        if parallel:
            bwd_input_par(DX, D, WT, B)
        else:
            bwd_input_rows(DX, D, WT, 0, B)
        code = spec[l - 1, ACT]
        if code != NO_ACT:
            Y = _rows2d(ws, spec[l - 1, YOFF], B, nin)
            for n in range(B):
                act_backward_row(code, Y[n], DX[n], slopes[l - 1])


@jit
def train_minibatch(params, grads, s1, s2, hp, X, ptr, idx, sparse, T, labels, use_int, has_acc,
                    order, b0, b1, bs, spec, slopes, ws, A0, cost, fused_last, opt, n_decay, t0,
                    beta1, beta2, eps, parallel, sparse_sgd):
    """Train on batches ``b0 <= b < b1`` of ``order``; returns (loss_sum, correct, t).

    Each batch: forward, loss and correct count (before the update, as the generic
    Runner), backward into ``grads``, one optimizer step ``opt`` over the flat
    buffers (``hp`` as in ``_common.update_range``; Adam's bias corrections are
    refreshed from ``beta1``, ``beta2`` and the step ``t``, which starts at ``t0``).

    X: (N, F); T: float targets (N, K), or (1, K) unused when ``use_int`` (integer
    class labels in ``labels`` (N,)); ``labels`` also gives accuracy when ``has_acc``.

    ``sparse_sgd`` (plain SGD without weight decay, CSR input, first layer's
    weights first in the buffer): the first layer's weights are updated straight
    from the batch's non-zero inputs (:func:`sgd_sparse_rows`) and every other
    parameter by the flat update, so no per-batch pass over the dense first-layer
    gradient. Its gradient in ``grads`` is filled for the last batch only, at the
    end, so that ``grads`` holds the last batch's gradient as on the other path.
    """
    N = order.shape[0]
    loss = 0.0
    correct = 0
    t = t0
    for bi in range(b0, b1):
        s = bi * bs
        e = min(N, s + bs)
        B = e - s
        rows = order[s:e]
        _forward(params, X, ptr, idx, sparse, rows, spec, slopes, ws, A0, B, parallel)
        ls, c = _loss_and_delta(cost, T, labels, use_int, has_acc, rows, spec, ws, B, eps, fused_last)
        loss += ls
        correct += c
        _backward(params, grads, X, ptr, idx, sparse, spec, slopes, ws, A0, rows, B, fused_last, parallel,
                  sparse_sgd)
        t += 1
        if sparse_sgd:
            nw0 = spec[0, NIN] * spec[0, NOUT]
            update_range(opt, params, grads, s1, s2, hp, nw0, params.shape[0], n_decay)
            sgd_sparse_rows(_weights(params, spec, 0), X, ptr, idx, rows, _rows2d(ws, spec[0, DOFF], B, spec[0, NOUT]),
                            B, hp[0])
            continue
        if opt == OPT_ADAM:
            # same float64 pow as the reference's ``1 - beta1**t``, then cast to the dtype
            hp[8] = 1.0 - math.pow(beta1, float(t))
            hp[9] = 1.0 - math.pow(beta2, float(t))
        update_flat(opt, params, grads, s1, s2, hp, n_decay, parallel)
    if sparse_sgd and b1 > b0:
        s = (b1 - 1) * bs
        e = min(N, s + bs)
        bwd_weight_sparse_cols(_weights(grads, spec, 0), X, ptr, idx, order[s:e],
                               _rows2d(ws, spec[0, DOFF], e - s, spec[0, NOUT]), e - s, 0, spec[0, NOUT])
    return loss, correct, t


@jit
def _online_update(W, a, d, lr, wd):
    """SGD step ``W -= lr * (outer(a, d) + wd * W)`` for one sample, in place.

    Rows with ``a[i] == 0`` are unchanged without weight decay, so they are skipped.
    """
    nin, nout = W.shape
    for i in range(nin):
        ai = a[i]
        w = W[i]
        if wd != 0:
            for j in range(nout):
                w[j] -= lr * (ai * d[j] + wd * w[j])
        elif ai != 0:
            for j in range(nout):
                w[j] -= lr * (ai * d[j])


#: Row width of the first layer's private weight copy in :func:`train_online` (and of
#: the later layers' transposed copies) is a multiple of this: whole blocks of four
#: 8-float vectors for :mod:`~fastnn.kernels.cpu.simd` and LLVM's vectorised loops, and
#: 64-byte aligned rows (measured: 50 padded to 64 beat 56 with a masked tail).
ONLINE_PAD = 32


@jit
def _fwd_t(y, a, WT, b, has_bias, nin):
    """``y = a[:nin] @ WT[:, :nin].T + b`` for one sample; WT (nout, npad) holds W transposed.

    Each output is a dot product summed in index order from zero, exactly as
    :func:`fwd_rows`; four outputs at a time so that four independent sums are in
    flight (strict IEEE arithmetic keeps each sum sequential).
    """
    nout = WT.shape[0]
    zero = y.dtype.type(0)
    j = 0
    while j + 4 <= nout:
        w1, w2, w3, w4 = WT[j], WT[j + 1], WT[j + 2], WT[j + 3]
        s1, s2, s3, s4 = zero, zero, zero, zero
        for i in range(nin):
            ai = a[i]
            s1 += ai * w1[i]
            s2 += ai * w2[i]
            s3 += ai * w3[i]
            s4 += ai * w4[i]
        y[j], y[j + 1], y[j + 2], y[j + 3] = s1, s2, s3, s4
        j += 4
    while j < nout:
        w = WT[j]
        s1 = zero
        for i in range(nin):
            s1 += a[i] * w[i]
        y[j] = s1
        j += 1
    if has_bias:
        for j in range(nout):
            y[j] += b[j]


@jit
def _bwd_t(dx, WT, a, d, lr, wd):
    """Input gradient ``dx = WT.T @ d`` (from the old weights) and the SGD step
    ``WT[j] -= lr * (a d_j + wd WT[j])`` of one later layer, one pass per row of WT.

    WT (nout, npad), a and dx (npad,): padded rows make every loop a whole number of
    vector iterations. Each ``dx[i]`` sums ``d_j WT[j, i]`` over j in index order
    from zero, as the per-row dot product it replaces, and each column of W is read
    for ``dx`` before it is updated.
    """
    nout, n = WT.shape
    for i in range(n):
        dx[i] = 0
    for j in range(nout):
        dj = d[j]
        w = WT[j]
        for i in range(n):
            dx[i] += dj * w[i]
        if wd != 0:
            for i in range(n):
                w[i] -= lr * (a[i] * dj + wd * w[i])
        else:
            for i in range(n):
                w[i] -= lr * (a[i] * dj)


@jit
def _mse_delta(p, t, d, label, has_acc, sigmoid):
    """MSE loss (float64), correct count and delta of one sample, in one pass.

    The same arithmetic as ``cost_row``/``correct_row``/``cost_grad_row`` (batch of
    one) followed, with ``sigmoid``, by ``act_backward_row``'s sigmoid backward.
    """
    k = p.shape[0]
    one = p.dtype.type(1)
    acc = 0.0
    best = 0
    for j in range(k):
        pj = p[j]
        dlt = pj - t[j]
        acc += dlt * dlt
        if sigmoid:
            d[j] = dlt * pj * (one - pj)
        else:
            d[j] = dlt
        if pj > p[best]:
            best = j
    c = 0
    if has_acc and best == label:
        c = 1
    return acc / 2, c


@jit
def _pad(n):
    return (n + ONLINE_PAD - 1) // ONLINE_PAD * ONLINE_PAD


@jit
def train_online(params, hp, X, T, labels, use_int, has_acc,
                 order, b0, b1, spec, slopes, ws, cost, fused_last, eps):
    """Plain SGD with batch size 1 on samples ``order[b0:b1]``, weights updated in place.

    Same arithmetic as :func:`train_minibatch` with ``bs=1`` and plain SGD (for one
    sample ``dW = x d`` is a single product per entry, so updating ``W -= lr * (x d
    + wd W)`` in place gives the same numbers), but each layer's input gradient is
    taken from the old weights and then the layer is updated at once, so no
    gradient buffer is written. Weight decay ``hp[1]`` applies to every weight
    (``n_decay`` = all weights, as in ``Sequential``), not to biases.

    The first layer works on the non-zero inputs of each sample only (found by a
    vector scan of its row, :func:`~fastnn.kernels.cpu.simd.nonzeros`, so no CSR is
    built per fit; the next shuffled row is prefetched meanwhile) and on a private
    copy of its weights whose rows are zero-padded to a multiple of :data:`ONLINE_PAD`;
    its forward and update keep a block of the hidden row (or of the delta) in vector
    registers while they walk the non-zero inputs' weight rows
    (:func:`~fastnn.kernels.cpu.simd.axpy_rows`, :func:`~fastnn.kernels.cpu.simd.sgd_rows`:
    the same roundings as scalar loops). Later layers work on
    private transposed copies (nout, padded nin), so that their input gradient and
    update are whole-vector axpys (:func:`_bwd_t`). Layer outputs and deltas live in
    private padded rows whose padding lanes stay zero. The copies are made at the
    start and written back at the end. MSE gets a one-pass loss and delta
    (:func:`_mse_delta`); other costs use the generic row helpers.
    Returns (loss_sum, correct).
    """
    L = spec.shape[0]
    dtype = hp.dtype
    lr, wd = hp[0], hp[1]
    loss = 0.0
    correct = 0
    nin0, nout0 = spec[0, NIN], spec[0, NOUT]
    W0 = _weights(params, spec, 0)
    W0p = np.zeros((nin0, _pad(nout0)), dtype)
    for i in range(nin0):
        for j in range(nout0):
            W0p[i, j] = W0[i, j]
    Ms = [W0p]  # layer 0: W padded; later layers: W transposed, padded
    Ys = [np.zeros(_pad(nout0), dtype)]
    Ds = [np.zeros(_pad(nout0), dtype)]
    for l in range(1, L):
        nin, nout = spec[l, NIN], spec[l, NOUT]
        W = _weights(params, spec, l)
        WT = np.zeros((nout, _pad(nin)), dtype)
        for i in range(nin):
            for j in range(nout):
                WT[j, i] = W[i, j]
        Ms.append(WT)
        Ys.append(np.zeros(_pad(nout), dtype))
        Ds.append(np.zeros(_pad(nout), dtype))
    nzi = np.empty(nin0, np.int64)
    nzv = np.empty(nin0, dtype)
    b0v = _bias(params, spec, 0)
    hb0 = spec[0, BOFF] >= 0
    K = spec[L - 1, NOUT]
    last = spec[L - 1, ACT]
    mse = cost == MSE
    # the MSE pass also does a sigmoid backward; any other activation's stays generic
    mse_sig = mse and last == SIGMOID and not fused_last
    act_left = last != NO_ACT and not fused_last and not mse_sig
    for bi in range(b0, b1):
        r = order[bi]
        xr = X[r]
        # ---- forward
        if bi + 1 < b1:
            prefetch(X[order[bi + 1]])  # the next shuffled row, while this one trains
        m = nonzeros(nzi, nzv, xr)
        h = Ys[0]
        axpy_rows(h, W0p, nzi, nzv, m)
        if hb0:
            for j in range(nout0):
                h[j] += b0v[j]
        if spec[0, ACT] != NO_ACT:
            act_forward_row(spec[0, ACT], h[:nout0], slopes[0])
        for l in range(1, L):
            nout = spec[l, NOUT]
            y = Ys[l]
            _fwd_t(y, Ys[l - 1], Ms[l], _bias(params, spec, l), spec[l, BOFF] >= 0, spec[l, NIN])
            if spec[l, ACT] != NO_ACT:
                act_forward_row(spec[l, ACT], y[:nout], slopes[l])
        # ---- loss, correct count and output delta
        P = Ys[L - 1][:K]
        D = Ds[L - 1][:K]
        if mse:
            ls, c = _mse_delta(P, T[r], D, labels[r] if has_acc else -1, has_acc, mse_sig)
        else:
            lab = labels[r] if use_int else -1
            trow = T[0] if use_int else T[r]
            ls = cost_row(cost, P, trow, lab, eps)
            c = 0
            if has_acc:
                c = correct_row(cost, P, trow, labels[r] if cost != BCE else -1)
            cost_grad_row(cost, D, P, trow, lab, 1, eps, fused_last)
        loss += ls
        correct += c
        if act_left:
            act_backward_row(last, P, D, slopes[L - 1])
        # ---- backward and in-place update, last layer first
        for l in range(L - 1, 0, -1):
            nin, nout = spec[l, NIN], spec[l, NOUT]
            d = Ds[l]
            a = Ys[l - 1]
            dx = Ds[l - 1]
            _bwd_t(dx, Ms[l], a, d, lr, wd)
            c1 = spec[l - 1, ACT]
            if c1 != NO_ACT:
                act_backward_row(c1, a[:nin], dx[:nin], slopes[l - 1])
            if spec[l, BOFF] >= 0:
                b = _bias(params, spec, l)
                for j in range(nout):
                    b[j] -= lr * d[j]
        d0 = Ds[0]
        if wd == 0:
            sgd_rows(W0p, nzi, nzv, m, d0, lr)
        else:
            _online_update(W0p, xr, d0, lr, wd)
        if hb0:
            for j in range(nout0):
                b0v[j] -= lr * d0[j]
    for i in range(nin0):
        for j in range(nout0):
            W0[i, j] = W0p[i, j]
    for l in range(1, L):
        W = _weights(params, spec, l)
        WT = Ms[l]
        for i in range(spec[l, NIN]):
            for j in range(spec[l, NOUT]):
                W[i, j] = WT[j, i]
    return loss, correct


# --------------------------------------------------------------------------- inference


@jit
def _predict_rows(out, X, params, spec, slopes, buf, s, e):
    """Forward rows ``s <= n < e`` of X into ``out``; ``buf`` holds two layer outputs."""
    L = spec.shape[0]
    B = e - s
    half = buf.shape[0] // 2
    A = X[s:e]
    for l in range(L):
        nout = spec[l, NOUT]
        W = _weights(params, spec, l)
        b = _bias(params, spec, l)
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
