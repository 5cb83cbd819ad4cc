"""Per-sample epochs: plain SGD with batch size 1, the seeds' stochastic gradient descent.

Each layer's weights are updated in place right after its input gradient is taken,
so no gradient buffer is written or swept. The first layer works on each sample's
non-zero inputs only (81% of MNIST's pixels are zero), through the LLVM-vector
intrinsics of :mod:`.simd`; later layers on transposed, padded private copies.
"""

import math

import numpy as np

from fastnn.kernels.cpu import plain
from fastnn.kernels.cpu.dropout import dropout_row, stream_key
from fastnn.kernels.cpu.jit import jit
from fastnn.kernels.cpu.simd import axpy_rows, nonzeros, prefetch, sgd_rows  # see ROW_KERNELS
from fastnn.kernels.cpu.rows import act_backward_row, act_forward_row, correct_row, cost_grad_row, cost_row
from fastnn.kernels.cpu.views import bias, weights
from fastnn.kernels.layout import ACT, BCE, BOFF, DROP, DSTREAM, LR, MSE, NIN, NO_ACT, NOUT, SIGMOID, WD, ZOFF


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


#: The row kernels of the first layer: LLVM-vector intrinsics (:mod:`.simd`), or with
#: FASTNN_SIMD=0 (or after :func:`use_plain_loops`) plain loops with the same bits.
ROW_KERNELS = ("axpy_rows", "sgd_rows", "nonzeros", "prefetch")
# numba resolves these module globals when it compiles, so a failed compile of the
# intrinsics can be retried with the plain loops (fastnn/backends/numba.py)
use_plain_loops, uses_simd = plain.switch(globals(), ROW_KERNELS)


#: Row width of the first layer's private weight copy in :func:`train` (and of
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
def _finish_row(model, l, h, z, q, skey, pos):
    """Layer ``l``'s row ``h`` holds z = a W + b: keep it in ``z`` (when the activation needs
    its input), apply the activation, then the Dropout into ``q`` (sample at epoch ``pos``)."""
    spec = model.spec
    nout = spec[l, NOUT]
    if spec[l, ZOFF] >= 0:
        z[:nout] = h[:nout]
    if spec[l, ACT] != NO_ACT:
        act_forward_row(spec[l, ACT], h[:nout], model.slopes[l])
    if spec[l, DROP] >= 0:
        dropout_row(q[:nout], h[:nout], skey, spec[l, DROP], model.scales[l], pos * nout)


@jit
def _back_row(model, l, y, z, d, skey, pos):
    """``d`` holds dJ/d(what layer ``l`` hands on): back through its Dropout and activation."""
    spec = model.spec
    nout = spec[l, NOUT]
    if spec[l, DROP] >= 0:
        dropout_row(d[:nout], d[:nout], skey, spec[l, DROP], model.scales[l], pos * nout)
    if spec[l, ACT] != NO_ACT:
        v = z if spec[l, ZOFF] >= 0 else y
        act_backward_row(spec[l, ACT], v[:nout], d[:nout], model.slopes[l])


@jit
def train(model, opt, data, order, b0, b1):
    """Plain SGD with batch size 1 on samples ``order[b0:b1]``, weights updated in place.

    model, opt, data: :mod:`fastnn.kernels.layout`'s Model, Optim and Data (only
    ``opt.hp`` is read: plain SGD keeps no state). Same arithmetic as
    :func:`.epoch_minibatch.train` with ``bs=1`` and plain SGD (for one
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
    (:func:`_mse_delta`); other costs use the generic row helpers. Layers whose activation
    needs its input keep a private pre-activation row; a Dropout writes a private row that
    the next layer reads (sample ``bi`` is at epoch position ``bi``).
    Returns (loss_sum, correct, bad): ``bad`` is the first sample whose loss is not
    finite (NaN or inf: training diverged), or -1.
    """
    params, spec, slopes, hp = model.params, model.spec, model.slopes, opt.hp
    X, T, labels, use_int, has_acc = data.X, data.T, data.labels, data.use_int, data.has_acc
    cost, fused_last, eps = data.cost, data.fused_last, data.eps
    L = spec.shape[0]
    dtype = hp.dtype
    lr, wd = hp[LR], hp[WD]
    weighted, per_batch_decay = data.sw.shape[0] > 0, data.wdf.shape[0] > 0
    loss = 0.0
    correct = 0
    bad = -1  # the first batch whose loss is not finite
    nin0, nout0 = spec[0, NIN], spec[0, NOUT]
    W0 = weights(params, spec, 0)
    W0p = np.zeros((nin0, _pad(nout0)), dtype)
    for i in range(nin0):
        for j in range(nout0):
            W0p[i, j] = W0[i, j]
    Ms = [W0p]  # layer 0: W padded; later layers: W transposed, padded
    Ys = [np.zeros(_pad(nout0), dtype)]
    Ds = [np.zeros(_pad(nout0), dtype)]
    Zs = [np.zeros(_pad(nout0), dtype)]  # pre-activations (used where spec ZOFF >= 0)
    Qs = [np.zeros(_pad(nout0), dtype)]  # Dropout outputs (padding lanes stay zero)
    skeys = np.zeros(L, np.uint64)
    for l in range(L):
        if spec[l, DROP] >= 0:
            skeys[l] = stream_key(model.key[0], spec[l, DSTREAM])
    for l in range(1, L):
        nin, nout = spec[l, NIN], spec[l, NOUT]
        W = weights(params, spec, l)
        WT = np.zeros((nout, _pad(nin)), dtype)
        for i in range(nin):
            for j in range(nout):
                WT[j, i] = W[i, j]
        Ms.append(WT)
        Ys.append(np.zeros(_pad(nout), dtype))
        Ds.append(np.zeros(_pad(nout), dtype))
        Zs.append(np.zeros(_pad(nout), dtype))
        Qs.append(np.zeros(_pad(nout), dtype))
    nzi = np.empty(nin0, np.int64)
    nzv = np.empty(nin0, dtype)
    b0v = bias(params, spec, 0)
    hb0 = spec[0, BOFF] >= 0
    K = spec[L - 1, NOUT]
    last = spec[L - 1, ACT]
    mse = cost == MSE
    # the MSE pass also does a sigmoid backward; any other activation's stays generic
    mse_sig = mse and last == SIGMOID and not fused_last
    act_left = last != NO_ACT and not fused_last and not mse_sig
    # what each layer hands on: its Dropout's row, else its output row
    Outs = [Qs[l] if spec[l, DROP] >= 0 else Ys[l] for l in range(L)]
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
        _finish_row(model, 0, h, Zs[0], Qs[0], skeys[0], bi)
        for l in range(1, L):
            y = Ys[l]
            _fwd_t(y, Outs[l - 1], Ms[l], bias(params, spec, l), spec[l, BOFF] >= 0, spec[l, NIN])
            _finish_row(model, l, y, Zs[l], Qs[l], skeys[l], bi)
        # ---- loss, correct count and output delta
        P = Ys[L - 1][:K]
        D = Ds[L - 1][:K]
        if mse:
            ls, c = _mse_delta(P, T[r], D, labels[r] if has_acc else -1, has_acc, mse_sig)
        else:
            lab = labels[r] if use_int else -1
            trow = T[0] if use_int else T[r]
            ls = cost_row(cost, P, trow, lab, eps, data.cparam)
            c = 0
            if has_acc:
                c = correct_row(cost, P, trow, labels[r] if cost != BCE else -1)
            cost_grad_row(cost, D, P, trow, lab, 1, eps, fused_last, data.cparam)
        if weighted:  # a batch of one: its factor is 1 (or 0 for a zero weight), so any order is exact
            s = data.sw[r]
            ls = ls * s
            for j in range(K):
                D[j] *= s
        if per_batch_decay:
            hp[WD] = opt.hp64[WD] * data.wdf[bi]  # (cast to hp's dtype, as batch_decay)
            wd = hp[WD]
        loss += ls
        correct += c
        if bad < 0 and not math.isfinite(ls):
            bad = bi
        if act_left:
            act_backward_row(last, Zs[L - 1][:K] if spec[L - 1, ZOFF] >= 0 else P, D, slopes[L - 1])
        # ---- backward and in-place update, last layer first
        for l in range(L - 1, 0, -1):
            nout = spec[l, NOUT]
            d = Ds[l]
            dx = Ds[l - 1]
            _bwd_t(dx, Ms[l], Outs[l - 1], d, lr, wd)
            _back_row(model, l - 1, Ys[l - 1], Zs[l - 1], dx, skeys[l - 1], bi)
            if spec[l, BOFF] >= 0:
                b = bias(params, spec, l)
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
        W = weights(params, spec, l)
        WT = Ms[l]
        for i in range(spec[l, NIN]):
            for j in range(spec[l, NOUT]):
                W[i, j] = WT[j, i]
    return loss, correct, bad
