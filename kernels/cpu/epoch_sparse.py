"""Minibatch epochs on sparse input: the first layer works on the non-zero inputs only.

The input comes as CSR (:class:`~.sparse.CSR`: ``indptr``, ``indices``, ``data``), either
a scipy.sparse matrix as given or a dense array with many zeros (MNIST: 81%) converted
once per fit. The first layer's forward runs *sample-major*: h_n = sum over the
non-zeros x_np W[p], a block of h_n held in vector registers while the weight rows are
read (:func:`~.simd.axpy_rows`). Its weight gradient runs *pixel-major*: the batch's
non-zeros are regrouped by input column (a CSC of the batch, :func:`batch_columns`),
and each gradient row ``dW[p] = sum_n x_np D[n]`` is summed in registers over the
samples that have p and stored once. The later layers are BLAS products as in
:mod:`.epoch_blas`.

Measured on MNIST (784-256-10, batch 128, float32, 2 threads; notes in
``fastnn/backends/numba.py``): forward 0.13 s and regroup plus gradient 0.16 s per
epoch, against ~0.5 s for the dense BLAS products of the first layer. Both first-layer
passes are bound by reading weight (resp. delta) rows from L2: 784x256 float32 is
800 KB, and two threads each keep their half of the columns in their own L2.

Threads take disjoint blocks of the first layer's outputs (hidden units): every output
has one writer and a fixed summation order, so 1 and n threads give the same bits.
Plain SGD without weight decay updates the first layer's rows right where their
gradient is made, touching only the rows of inputs that occur in the batch; every
other optimizer gets the whole gradient (zero rows included: momentum and Adam move
them too) and one flat update.
"""

import numpy as np
from numba import prange

from fastnn.kernels.cpu import plain
from fastnn.kernels.cpu.jit import jit, pjit
from fastnn.kernels.cpu.simd import axpy_rows  # see ROW_KERNELS
from fastnn.kernels.cpu.update import batch_decay, step_par, update_range
from fastnn.kernels.cpu.views import (
    batch_rows, bias, delta_through, finish_forward, layer_grads, layer_out, rows2d, tally, weights)
from fastnn.kernels.layout import BOFF, DOFF, LR, NIN, NOUT, YOFF

#: The row kernel of :mod:`.simd` this module uses (FASTNN_SIMD=0: :mod:`.plain`'s, same bits).
ROW_KERNELS = ("axpy_rows",)
use_plain_loops, uses_simd = plain.switch(globals(), ROW_KERNELS)   # see :mod:`.epoch_online`


@jit
def batch_columns(csr, rows, cols):
    """Regroup the non-zeros of the samples ``rows`` by input column.

    ``cols`` (:class:`~.sparse.BatchColumns`) is scratch sized once per fit; on return
    ``touched[:nt]`` lists the columns with non-zeros (in order of first appearance),
    and column p's entries are ``sample[first[p]:first[p] + count[p]]`` (batch row
    numbers, ascending) with values ``value[...]``. Returns ``nt``.
    """
    indptr, indices, data = csr.indptr, csr.indices, csr.data
    count, first, touched = cols.count, cols.first, cols.touched
    nt = 0
    for r in range(rows.shape[0]):
        s = rows[r]
        for k in range(indptr[s], indptr[s + 1]):
            p = indices[k]
            if count[p] == 0:
                touched[nt] = p
                nt += 1
            count[p] += 1
    off = 0
    for t in range(nt):
        p = touched[t]
        first[p] = off
        off += count[p]
        count[p] = 0  # refilled below as the fill position
    for r in range(rows.shape[0]):
        s = rows[r]
        for k in range(indptr[s], indptr[s + 1]):
            p = indices[k]
            slot = first[p] + count[p]
            cols.sample[slot] = r
            cols.value[slot] = data[k]
            count[p] += 1
    return nt


@jit
def clear_columns(cols, nt):
    """Reset the counts of the touched columns (the scratch is ready for the next batch)."""
    for t in range(nt):
        cols.count[cols.touched[t]] = 0


@jit
def _forward_block(H, W, csr, rows, j0, j1):
    # H[n, j0:j1] = sum over sample rows[n]'s non-zeros x_p W[p, j0:j1], sample-major: the
    # block of h stays in vector registers while the weight rows are read (axpy_rows)
    indptr, indices, data = csr.indptr, csr.indices, csr.data
    Wb = W[:, j0:j1]
    for n in range(rows.shape[0]):
        a, b = indptr[rows[n]], indptr[rows[n] + 1]
        axpy_rows(H[n, j0:j1], Wb, indices[a:b], data[a:b], b - a)


@jit
def _grad_row(g, Db, cols, p):
    # g = sum over the samples n with input p of x_np Db[n], in ascending n (pixel-major:
    # g stays in registers while the rows of D are read)
    f, c = cols.first[p], cols.count[p]
    axpy_rows(g, Db, cols.sample[f:f + c], cols.value[f:f + c], c)


@jit
def _grad_block(dW, D, cols, nt, j0, j1):
    # dW[:, j0:j1] for the batch's columns (the other rows were zeroed by the caller)
    Db = D[:, j0:j1]
    for t in range(nt):
        p = cols.touched[t]
        _grad_row(dW[p, j0:j1], Db, cols, p)


@jit
def _sgd_block(W, D, cols, nt, j0, j1, lr, g):
    # plain SGD on the batch's rows of W, right where their gradient is made: W[p] -= lr * dW[p]
    gb = g[j0:j1]  # this block's part of the scratch row
    Db = D[:, j0:j1]
    for t in range(nt):
        p = cols.touched[t]
        _grad_row(gb, Db, cols, p)
        w = W[p, j0:j1]
        for j in range(w.shape[0]):
            w[j] -= lr * gb[j]


@pjit
def _first_layer_forward(H, W, csr, rows, nblk):
    n = H.shape[1]
    for c in prange(nblk):
        _forward_block(H, W, csr, rows, c * n // nblk, (c + 1) * n // nblk)


@pjit
def _first_layer_grad(dW, D, cols, nt, nblk):
    n = dW.shape[1]
    for c in prange(nblk):
        _grad_block(dW, D, cols, nt, c * n // nblk, (c + 1) * n // nblk)


@pjit
def _first_layer_sgd(W, D, cols, nt, nblk, lr):
    n = W.shape[1]
    for c in prange(nblk):
        _sgd_block(W, D, cols, nt, c * n // nblk, (c + 1) * n // nblk, lr, cols.row)


@jit
def _zero_rows(M, touched, nt):
    # zero the rows ``touched[:nt]`` of M (the columns of a batch: M held its gradient)
    for t in range(nt):
        M[touched[t], :] = 0


@jit
def train(model, opt, data, csr, cols, order, b0, b1, bs, t0, nblk, sparse_sgd):
    """Train on batches ``b0 <= b < b1`` of ``order``; returns (loss_sum, correct, bad).

    Same contract as :func:`.epoch_blas.train` (loss and correct count measured on each
    batch's forward pass before its update; ``grads`` holds the last batch's gradient;
    ``bad`` the first batch whose loss is not finite, or -1), with the first layer's input
    read from ``csr`` (``data.X`` is not used). ``cols`` is :class:`~.sparse.BatchColumns`
    scratch (its ``prev`` remembers the previous batch's columns, whose gradient rows are
    zeroed instead of the whole gradient); ``nblk``
    blocks of hidden units run on the threads (1: one thread). ``sparse_sgd``: plain SGD
    without weight decay, updated row by row from the sparse gradient (see the module doc).
    """
    params, grads, spec, ws = model.params, model.grads, model.spec, model.ws
    L = spec.shape[0]
    W0, dW0 = weights(params, spec, 0), weights(grads, spec, 0)
    nw0 = spec[0, NIN] * spec[0, NOUT]
    loss = 0.0
    correct = 0
    bad = -1
    nprev = 0
    dW0[:, :] = 0  # only the rows of the batch's columns are written below
    for bi in range(b0, b1):
        rows = batch_rows(order, bi, bs)
        B = rows.shape[0]
        nt = batch_columns(csr, rows, cols)
        # forward: the first layer from the batch's columns, the others through BLAS
        H = rows2d(ws, spec[0, YOFF], B, spec[0, NOUT])
        _first_layer_forward(H, W0, csr, rows, nblk)
        finish_forward(model, 0, B, bi * bs, bias(params, spec, 0), spec[0, BOFF] >= 0)
        for l in range(1, L):
            Y = rows2d(ws, spec[l, YOFF], B, spec[l, NOUT])
            np.dot(layer_out(model, l - 1, B), weights(params, spec, l), Y)
            finish_forward(model, l, B, bi * bs, bias(params, spec, l), spec[l, BOFF] >= 0)
        loss, correct, bad = tally(model, data, rows, B, bi, loss, correct, bad)
        # backward through the later layers (BLAS), down to the first layer's delta
        for l in range(L - 1, 0, -1):
            D, dW = layer_grads(model, l, B)  # and db = sum D
            np.dot(layer_out(model, l - 1, B).T, D, dW)
            np.dot(D, weights(params, spec, l).T, rows2d(ws, spec[l - 1, DOFF], B, spec[l, NIN]))
            delta_through(model, l - 1, B, bi * bs)
        D0, _ = layer_grads(model, 0, B)  # the first layer's delta, and its bias gradient
        batch_decay(opt, data, bi)
        if sparse_sgd:
            update_range(opt.code, params, grads, opt.s1, opt.s2, opt.s3, opt.hp, nw0, params.shape[0],
                         opt.n_decay)
            _first_layer_sgd(W0, D0, cols, nt, nblk, opt.hp[LR])
        else:
            _zero_rows(dW0, cols.prev, nprev)
            _first_layer_grad(dW0, D0, cols, nt, nblk)
            step_par(opt, params, grads, t0 + bi - b0 + 1, nblk > 1)
        # remember this batch's columns (their gradient rows are the ones to zero next)
        cols.prev[:nt] = cols.touched[:nt]
        nprev = nt
        if sparse_sgd and bi == b1 - 1:  # grads holds the last batch's gradient, as on the other paths
            _first_layer_grad(dW0, D0, cols, nt, nblk)
        clear_columns(cols, nt)
    return loss, correct, bad
