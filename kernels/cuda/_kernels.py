"""The numba.cuda kernels themselves (private: launchers live in ``launch.py``).

Kernels are built by :func:`build` for one dtype and one set of knobs, because a
shared-memory tile's shape and element type must be compile-time constants in
numba.cuda. :func:`build` is cached, so each combination is created once; numba
then compiles each kernel lazily on its first launch (or explicitly, with the
signatures in :data:`SIGNATURES`, for the PTX compile check).

Conventions: outputs first; every 2-D array is C-contiguous; scalars that enter
float arithmetic are passed in the kernel's dtype so float32 kernels stay float32
(a Python float would be float64 and pull the arithmetic with it).
"""

import functools
import math

import numpy as np
from numba import cuda, float64, from_dtype, int64

from fastnn.kernels.cuda._device import device_functions
from fastnn.kernels.cuda._rows import ROW_SIGNATURES, row_kernels
from fastnn.kernels.cuda.jit import device_function, kernel
from fastnn.kernels.layout import IDENTITY

#: Kernel signatures for the PTX compile check; ``{T}`` is replaced by float32/float64.
SIGNATURES = {
    "mm_nn": "void({T}[:, ::1], {T}[:, ::1], {T}[:, ::1], {T}[::1], {T}[:, ::1], int64, int64, int64, {T})",
    "mm_nt": "void({T}[:, ::1], {T}[:, ::1], {T}[:, ::1], {T}[::1], {T}[:, ::1], int64, int64, int64, {T})",
    "mm_tn": "void({T}[:, ::1], {T}[:, ::1], {T}[:, ::1], {T}[::1], {T}[:, ::1], int64, int64, int64, {T})",
    "act_fwd_k": "void({T}[::1], {T}[::1], int64, {T})",
    "act_bwd_k": "void({T}[::1], {T}[::1], {T}[::1], int64, {T})",
    "softmax_fwd_k": "void({T}[:, ::1], {T}[:, ::1])",
    "softmax_bwd_k": "void({T}[:, ::1], {T}[:, ::1], {T}[:, ::1])",
    "reduce_k": "void(float64[::1], int64[::1], float64[::1], int64[::1], int64, int64)",
    "colsum_k": "void({T}[::1], {T}[:, ::1])",
    "gather_k": "void({T}[:, ::1], {T}[:, ::1], int64[::1], int64, int64)",
    **ROW_SIGNATURES,
}


def signature(name, dtype):
    """The explicit signature string of kernel ``name`` for ``dtype`` (float32/float64)."""
    return SIGNATURES[name].format(T=np.dtype(dtype).name)


@functools.lru_cache(maxsize=None)
def build(dtype, tile, wpt, tpb, fastmath=False):
    """Create the kernels for ``dtype`` ('float32'/'float64') and the given knobs.

    Returns
    -------
    (kernels, pyfuncs) : (dict, dict)
        ``kernels[name]`` is the ``cuda.jit`` dispatcher; ``pyfuncs[name]`` the plain
        Python function (what ``cuda.compile_ptx`` takes).
    """
    DT = np.dtype(dtype).type
    NB = from_dtype(np.dtype(dtype))
    ZERO = DT(0)
    T, W = tile, wpt
    BM = T * W  # side of the block's output tile
    TP1, BMP1 = T + 1, BM + 1  # padded shared-tile widths (shapes must be constants)
    TPB = tpb
    CX = min(32, TPB)  # colsum block: CX columns x CY row-groups
    CY = TPB // CX
    pyfuncs = {}

    # ------------------------------------------------------------ device functions
    # Note: numba-cuda compiles a device function for the *current* GPU's compute
    # capability when a kernel calling it is typed; without a GPU, the PTX check
    # (ptxcheck.py) supplies the target architecture instead.
    act_fwd, act_bwd, keep = device_functions(dtype, fastmath)

    # -------------------------------------------------------------------- matmuls
    def make_mm(TA, TB):
        def mm(C, A, B, bias, Y, has_bias, act, dact, slope):
            # C: (M, N) = op(A) @ op(B), op(A): (M, K), op(B): (K, N).
            # A is (M, K), or (K, M) when TA; B is (K, N), or (N, K) when TB.
            # Epilogue: + bias[n] (has_bias), then act (forward activation code),
            # then, when dact >= 0, the backward of activation dact at output Y[m, n].
            # Each (T, T) block computes a (BM, BM) tile; thread (ty, tx) owns rows
            # ty + i*T and columns tx + j*T (strided, so loads/stores coalesce).
            As = cuda.shared.array((BM, TP1), NB)  # As[m, k]; +1 avoids bank conflicts
            Bs = cuda.shared.array((T, BMP1), NB)  # Bs[k, n]
            acc = cuda.local.array((W, W), NB)
            breg = cuda.local.array(W, NB)
            tx = cuda.threadIdx.x
            ty = cuda.threadIdx.y
            m0 = cuda.blockIdx.y * BM
            n0 = cuda.blockIdx.x * BM
            M = C.shape[0]
            N = C.shape[1]
            K = A.shape[0] if TA else A.shape[1]
            for i in range(W):
                for j in range(W):
                    acc[i, j] = ZERO
            for k0 in range(0, K, T):
                for i in range(W):
                    if TA:
                        m = m0 + tx + i * T
                        k = k0 + ty
                        As[tx + i * T, ty] = A[k, m] if (m < M and k < K) else ZERO
                    else:
                        m = m0 + ty + i * T
                        k = k0 + tx
                        As[ty + i * T, tx] = A[m, k] if (m < M and k < K) else ZERO
                for j in range(W):
                    if TB:
                        n = n0 + ty + j * T
                        k = k0 + tx
                        Bs[tx, ty + j * T] = B[n, k] if (n < N and k < K) else ZERO
                    else:
                        n = n0 + tx + j * T
                        k = k0 + ty
                        Bs[ty, tx + j * T] = B[k, n] if (n < N and k < K) else ZERO
                cuda.syncthreads()
                for kk in range(T):
                    for j in range(W):
                        breg[j] = Bs[kk, tx + j * T]
                    for i in range(W):
                        a = As[ty + i * T, kk]
                        for j in range(W):
                            acc[i, j] += a * breg[j]
                cuda.syncthreads()
            for i in range(W):
                m = m0 + ty + i * T
                if m < M:
                    for j in range(W):
                        n = n0 + tx + j * T
                        if n < N:
                            v = acc[i, j]
                            if has_bias:
                                v += bias[n]
                            if act != IDENTITY:
                                v = act_fwd(act, v, slope)
                            if dact >= 0:
                                v = act_bwd(dact, Y[m, n], v, slope)
                            C[m, n] = v
        return mm

    pyfuncs["mm_nn"] = make_mm(False, False)
    pyfuncs["mm_nt"] = make_mm(False, True)
    pyfuncs["mm_tn"] = make_mm(True, False)

    # ---------------------------------------------------------------- elementwise
    def act_fwd_k(y, x, code, slope):
        # y, x: flat (n,)
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            y[i] = act_fwd(code, x[i], slope)

    def act_bwd_k(dx, y, dy, code, slope):
        # dx, y, dy: flat (n,)
        for i in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
            dx[i] = act_bwd(code, y[i], dy[i], slope)

    # ---------------------------------------------------------- row-wise (softmax)
    def softmax_fwd_k(y, x):
        # x: (B, C) -> y: (B, C); one thread per row; y may be x (in place)
        for r in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            C = x.shape[1]
            mx = x[r, 0]
            for c in range(1, C):
                mx = max(mx, x[r, c])
            s = ZERO
            for c in range(C):
                e = math.exp(x[r, c] - mx)
                y[r, c] = e
                s += e
            for c in range(C):
                y[r, c] = y[r, c] / s

    def softmax_bwd_k(dx, y, dy):
        # dx = y * (dy - sum(dy * y)) per row; (B, C)
        for r in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
            s = ZERO
            for c in range(y.shape[1]):
                s += dy[r, c] * y[r, c]
            for c in range(y.shape[1]):
                dx[r, c] = y[r, c] * (dy[r, c] - s)

    # ----------------------------------------------------------------- reductions
    def reduce_k(out_loss, out_correct, rowloss, rowcorrect, lo, hi):
        # One block of TPB threads: out_loss[0] = sum(rowloss[lo:hi]), same for correct.
        # A single block keeps the sum order fixed (deterministic) and needs no atomics;
        # it runs once per Runner.run call, not per batch.
        sl = cuda.shared.array(TPB, float64)
        sc = cuda.shared.array(TPB, int64)
        t = cuda.threadIdx.x
        a = 0.0
        c = 0
        for i in range(lo + t, hi, TPB):
            a += rowloss[i]
            c += rowcorrect[i]
        sl[t] = a
        sc[t] = c
        cuda.syncthreads()
        step = TPB // 2
        while step > 0:
            if t < step:
                sl[t] += sl[t + step]
                sc[t] += sc[t + step]
            cuda.syncthreads()
            step //= 2
        if t == 0:
            out_loss[0] = sl[0]
            out_correct[0] = sc[0]

    def colsum_k(db, dy):
        # db[n] = sum_r dy[r, n]; block (CX, CY): CX columns, CY threads down each column
        sh = cuda.shared.array((CY, CX), NB)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n = cuda.blockIdx.x * CX + tx
        a = ZERO
        if n < dy.shape[1]:
            for r in range(ty, dy.shape[0], CY):
                a += dy[r, n]
        sh[ty, tx] = a
        cuda.syncthreads()
        if ty == 0 and n < dy.shape[1]:
            s = ZERO
            for k in range(CY):
                s += sh[k, tx]
            db[n] = s

    def gather_k(xb, X, order, start, n_rows):
        # xb[r, :] = X[order[start + r], :] for r < n_rows: shuffling by index on the device
        cols = X.shape[1]
        for i in range(cuda.grid(1), n_rows * cols, cuda.gridsize(1)):
            r = i // cols
            c = i - r * cols
            xb[r, c] = X[order[start + r], c]

    for f in (act_fwd_k, act_bwd_k, softmax_fwd_k, softmax_bwd_k, reduce_k, colsum_k, gather_k):
        pyfuncs[f.__name__] = f
    pyfuncs.update(row_kernels(dtype, act_bwd, keep, device_function(fastmath)))
    kernels = {name: kernel(f, fastmath) for name, f in pyfuncs.items()}
    return kernels, pyfuncs
