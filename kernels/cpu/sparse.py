"""The first layer on sparse input: the batch's non-zero inputs in CSR form.

MNIST is 81% zeros, so on the minibatch path the first layer reads X through its
sparsity pattern (``ptr``, ``idx``; the values are read from X itself), and its
forward and weight gradient only touch the rows of W whose input is non-zero.
"""

from collections import namedtuple

import numpy as np
from numba import prange

from fastnn.kernels.cpu.jit import jit, pjit


@jit
def csr_fill(ptr, idx, X, val):
    """CSR of X (N, F) in one pass: row pointers into ``ptr`` (N+1,), column indices (int32)
    into ``idx`` and, unless ``val`` is empty, the values into ``val``; returns the number of
    non-zeros, or -1 as soon as they would not fit in ``idx`` (X is too dense for CSR).

    One thread on purpose: this is a memory-bound pass of a few tens of ms, and a
    parallel region on a busy 2-core machine can stall for longer than that.
    """
    N, F = X.shape
    cap = idx.shape[0]
    values = val.shape[0] > 0
    k = 0
    ptr[0] = 0
    for n in range(N):
        if k + F > cap:
            return -1
        x = X[n]
        for i in range(F):
            if x[i] != 0:
                idx[k] = i
                if values:
                    val[k] = x[i]
                k += 1
        ptr[n + 1] = k
    return k


def csr_of(X, max_density, values=False):
    """CSR of X (N, F): ``(ptr int64 (N+1,), idx int32)``, with ``values`` also the
    non-zeros (nnz,) in X's dtype; None when more than ``max_density`` of its entries are
    non-zero. Without values the kernels read them from X (no copy, no page faults)."""
    N, F = X.shape
    cap = int(max_density * N * F) + F
    ptr = np.zeros(N + 1, np.int64)
    # pages past the last non-zero are never touched, so the spare capacity costs no memory
    idx = np.empty(cap, np.int32)
    val = np.empty(cap if values else 0, X.dtype)
    nnz = csr_fill(ptr, idx, X, val)
    if nnz < 0 or nnz > max_density * max(N * F, 1):
        return None
    return (ptr, idx[:nnz], val[:nnz]) if values else (ptr, idx[:nnz])


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


#: The sparsity pattern the minibatch epoch reads: ``on`` (use it), ``ptr`` int64 (N+1,),
#: ``idx`` int32 (nnz,) (see :func:`csr_of`; empty arrays when ``on`` is False).
Pattern = namedtuple("Pattern", ["on", "ptr", "idx"])


def no_pattern():
    """The :class:`Pattern` of dense input (the first layer reads every input)."""
    return Pattern(False, np.zeros(1, np.int64), np.zeros(0, np.int32))


#: A CSR matrix for the kernels: ``indptr`` int64 (N+1,), ``indices`` int32 (nnz,) (the
#: input columns, ascending within a row), ``data`` (nnz,) in the network's dtype.
CSR = namedtuple("CSR", ["indptr", "indices", "data"])

#: Scratch of :func:`.epoch_sparse.batch_columns`: ``count``, ``first`` int64 (F,) (zero
#: between batches), ``touched`` and ``prev`` int64 (F,), ``sample`` int32 (cap,),
#: ``value`` (cap,) and ``row`` (nout,) in the network's dtype.
BatchColumns = namedtuple("BatchColumns", ["count", "first", "touched", "prev", "sample", "value", "row"])


def batch_columns_scratch(n_features, cap, nout, dtype):
    """:class:`BatchColumns` for inputs of ``n_features`` columns, batches of at most ``cap``
    non-zeros, and a first layer of ``nout`` outputs."""
    z = np.zeros
    return BatchColumns(z(n_features, np.int64), z(n_features, np.int64), z(n_features, np.int64),
                        z(n_features, np.int64), z(max(cap, 1), np.int32), z(max(cap, 1), dtype), z(nout, dtype))
