"""Row-blocked building blocks of the Linear layer: forward, input and weight gradients, bias sums.

Shared by the per-op kernels (:mod:`.ops`) and the epoch loops (``epoch_*.py``), so a
fused step does exactly the arithmetic of the per-op kernels. Each ``*_rows`` kernel
works on a range of rows and overwrites its output; the ``*_par`` version spreads the
rows over the threads, and every output entry still sums in the same order.
"""

from numba import prange

from fastnn.kernels.cpu.jit import jit, pjit


@jit
def rows_combination(y, a, M):
    """``y = sum_i a[i] * M[i]`` (y: (m,), a: (k,), M: (k, m)), overwriting y; zero
    coefficients are skipped (ReLU outputs and image pixels are mostly 0: free speed).

    A sum of rows (axpy) rather than dot products, so LLVM vectorises it without fast-math.
    """
    m = y.shape[0]
    for j in range(m):
        y[j] = 0
    for i in range(a.shape[0]):
        ai = a[i]
        if ai != 0:
            w = M[i]
            for j in range(m):
                y[j] += ai * w[j]


@jit
def fwd_rows(Y, A, W, b, has_bias, r0, r1):
    """Rows ``r0 <= n < r1`` of ``Y = A @ W + b``; zero inputs are skipped.

    Y: (B, out), A: (B, in), W: (in, out), b: (out,) (ignored unless ``has_bias``).
    """
    nout = W.shape[1]
    for n in range(r0, r1):
        y = Y[n]
        rows_combination(y, A[n], W)
        if has_bias:
            for j in range(nout):
                y[j] += b[j]


@pjit
def fwd_par(Y, A, W, b, has_bias, B):
    """``fwd_rows`` over rows ``0..B-1``, rows spread over the threads."""
    for n in prange(B):
        fwd_rows(Y, A, W, b, has_bias, n, n + 1)


@jit
def bwd_input_rows(DX, DY, WT, r0, r1):
    """Rows of ``DX = DY @ W.T`` from the transposed weights ``WT`` (out, in).

    DX: (B, in), DY: (B, out); each row is :func:`rows_combination` of WT's rows.
    """
    for n in range(r0, r1):
        rows_combination(DX[n], DY[n], WT)


@pjit
def bwd_input_par(DX, DY, WT, B):
    for n in prange(B):
        bwd_input_rows(DX, DY, WT, n, n + 1)


@jit
def bwd_weight_rows(dW, A, DY, B, i0, i1):
    """Rows ``i0 <= i < i1`` of ``dW = A[:B].T @ DY[:B]`` (overwritten, not accumulated).

    Each dW row sums over the samples in order, so the result does not depend on
    how rows are split between threads.
    """
    nout = dW.shape[1]
    for i in range(i0, i1):
        row = dW[i]
        for j in range(nout):
            row[j] = 0
        for n in range(B):
            a = A[n, i]
            if a != 0:
                d = DY[n]
                for j in range(nout):
                    row[j] += a * d[j]


@pjit
def bwd_weight_par(dW, A, DY, B):
    nin = dW.shape[0]
    for i in prange(nin):
        bwd_weight_rows(dW, A, DY, B, i, i + 1)


@jit
def bwd_bias(db, DY, B):
    """``db = DY[:B].sum(axis=0)`` (overwritten), rows added in order like NumPy."""
    nout = db.shape[0]
    for j in range(nout):
        db[j] = 0
    for n in range(B):
        d = DY[n]
        for j in range(nout):
            db[j] += d[j]
