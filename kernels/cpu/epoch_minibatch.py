"""Minibatch epochs of a plain MLP with row-blocked loops (batches 2-3, or without BLAS).

:func:`train` runs whole ranges of batches ``b0 <= b < b1`` of a sample order with no
Python in between. Per batch: forward, loss and correct count (before the update, as
the Python loop of ``fastnn.training``), backward into ``grads`` (overwritten), then
one flat optimizer step. Big batches spread rows (forward, input gradient) and weight
rows (weight gradient) over the threads. On sparse input the first layer reads X
through its sparsity pattern (:mod:`.sparse`) and its input gradient is never computed.
"""

from fastnn.kernels.cpu.jit import jit
from fastnn.kernels.cpu.linear import (
    bwd_input_par, bwd_input_rows, bwd_weight_par, bwd_weight_rows, fwd_par, fwd_rows)
from fastnn.kernels.cpu.sparse import (
    bwd_weight_sparse_cols, bwd_weight_sparse_par, fwd_sparse_par, fwd_sparse_rows, sgd_sparse_rows)
from fastnn.kernels.cpu.update import batch_decay, step_par, update_range
from fastnn.kernels.cpu.views import (
    batch_rows, bias, delta_through, finish_forward, layer_grads, layer_out, rows2d, tally, weights)
from fastnn.kernels.layout import BOFF, DOFF, LR, NIN, NOUT, WTOFF, YOFF


@jit
def _forward(model, X, sp, rows, A0, B, parallel, pos0):
    """Forward a batch (the samples ``rows``, at epoch positions ``pos0 + r``); each layer's
    output lands in its Y (and Q after a Dropout)."""
    params, spec, ws = model.params, model.spec, model.ws
    for l in range(spec.shape[0]):
        nout = spec[l, NOUT]
        W = weights(params, spec, l)
        b = bias(params, spec, l)
        hb = spec[l, BOFF] >= 0
        Y = rows2d(ws, spec[l, YOFF], B, nout)
        if l == 0 and sp.on:
            if parallel:
                fwd_sparse_par(Y, X, sp.ptr, sp.idx, rows, W, b, hb, B)
            else:
                fwd_sparse_rows(Y, X, sp.ptr, sp.idx, rows, W, b, hb, 0, B)
        else:
            if l == 0:
                A = A0[:B]
                for n in range(B):
                    A[n, :] = X[rows[n]]
            else:
                A = layer_out(model, l - 1, B)
            if parallel:
                fwd_par(Y, A, W, b, hb, B)
            else:
                fwd_rows(Y, A, W, b, hb, 0, B)
        finish_forward(model, l, B, pos0, b, False)


@jit
def _first_weight_grad(dW, X, sp, rows, D, A0, B, parallel):
    """dW of the first layer: from X's non-zeros, or from the gathered batch A0."""
    nout = dW.shape[1]
    if sp.on:
        nblk = min(max(nout // 32, 1), 64) if parallel else 1
        if nblk > 1:
            bwd_weight_sparse_par(dW, X, sp.ptr, sp.idx, rows, D, B, nblk)
        else:
            bwd_weight_sparse_cols(dW, X, sp.ptr, sp.idx, rows, D, B, 0, nout)
    elif parallel:
        bwd_weight_par(dW, A0[:B], D, B)
    else:
        bwd_weight_rows(dW, A0[:B], D, B, 0, dW.shape[0])


@jit
def _backward(model, X, sp, A0, rows, B, parallel, skip_w0, pos0):
    """Backward a batch into ``grads`` (overwritten), from the last layer's delta D
    (:func:`~.views.output_delta`).

    With ``skip_w0`` the first layer's weight gradient is left alone (the caller
    applies it sparsely, see :func:`~.sparse.sgd_sparse_rows`)."""
    params, spec, ws = model.params, model.spec, model.ws
    L = spec.shape[0]
    for l in range(L - 1, -1, -1):
        nin, nout = spec[l, NIN], spec[l, NOUT]
        D, dW = layer_grads(model, l, B)  # and db = sum D
        if l == 0:
            if not skip_w0:
                _first_weight_grad(dW, X, sp, rows, D, A0, B, parallel)
            break  # the input gradient of the first layer is never needed
        A = layer_out(model, l - 1, B)
        if parallel:
            bwd_weight_par(dW, A, D, B)
        else:
            bwd_weight_rows(dW, A, D, B, 0, nin)
        # input gradient through W (transposed once per batch so the rows are axpys)
        W = weights(params, spec, l)
        WT = rows2d(ws, spec[l, WTOFF], nout, nin)
        for i in range(nin):
            for j in range(nout):
                WT[j, i] = W[i, j]
        DX = rows2d(ws, spec[l - 1, DOFF], B, nin)
        if parallel:
            bwd_input_par(DX, D, WT, B)
        else:
            bwd_input_rows(DX, D, WT, 0, B)
        delta_through(model, l - 1, B, pos0)


@jit
def train(model, opt, data, sp, order, b0, b1, bs, A0, t0, parallel, sparse_sgd):
    """Train on batches ``b0 <= b < b1`` of ``order``; returns (loss_sum, correct, bad).

    ``bad`` is the first batch whose loss is not finite (NaN or inf: training diverged), or -1.

    model, opt, data: :mod:`fastnn.kernels.layout`'s Model, Optim and Data; ``sp`` the
    input's :class:`~.sparse.Pattern`; A0 (bs, F) scratch for the gathered dense batch;
    ``t0`` the optimizer's step count before these batches.

    ``sparse_sgd`` (plain SGD without weight decay, sparse input, first layer's weights
    first in the buffer): the first layer's weights are updated straight from the
    batch's non-zero inputs and every other parameter by the flat update, so there is
    no per-batch pass over the dense first-layer gradient. Its gradient in ``grads`` is
    filled for the last batch only, at the end, so that ``grads`` holds the last batch's
    gradient as on the other path.
    """
    spec, ws = model.spec, model.ws
    loss = 0.0
    correct = 0
    bad = -1  # the first batch whose loss is not finite
    for bi in range(b0, b1):
        rows = batch_rows(order, bi, bs)
        B = rows.shape[0]
        _forward(model, data.X, sp, rows, A0, B, parallel, bi * bs)
        loss, correct, bad = tally(model, data, rows, B, bi, loss, correct, bad)
        _backward(model, data.X, sp, A0, rows, B, parallel, sparse_sgd, bi * bs)
        batch_decay(opt, data, bi)
        if sparse_sgd:
            p, g, nw0 = model.params, model.grads, spec[0, NIN] * spec[0, NOUT]
            update_range(opt.code, p, g, opt.s1, opt.s2, opt.s3, opt.hp, nw0, p.shape[0], opt.n_decay)
            sgd_sparse_rows(weights(p, spec, 0), data.X, sp.ptr, sp.idx, rows,
                            rows2d(ws, spec[0, DOFF], B, spec[0, NOUT]), B, opt.hp[LR])
        else:
            step_par(opt, model.params, model.grads, t0 + bi - b0 + 1, parallel)
    if sparse_sgd and b1 > b0:
        rows = batch_rows(order, b1 - 1, bs)
        B = rows.shape[0]
        bwd_weight_sparse_cols(weights(model.grads, spec, 0), data.X, sp.ptr, sp.idx, rows,
                               rows2d(ws, spec[0, DOFF], B, spec[0, NOUT]), B, 0, spec[0, NOUT])
    return loss, correct, bad
