"""Device-level launchers: device arrays in, outputs first, nothing allocated.

These are what the training runner calls in its hot loop. Each picks the kernels
built for the array dtype and the current knobs in :mod:`.config`, works out the
launch grid and launches on ``stream`` (0 = the default stream). The public
host-array API with the reference's names is in ``fastnn.kernels.cuda``.
"""

import numpy as np
from numba import cuda

from fastnn.kernels.layout import IDENTITY, N_HP, SOFTMAX

from . import config
from ._kernels import build

#: Upper bound on the blocks of the grid-stride 1-D kernels (enough to fill any GPU).
MAX_BLOCKS = 4096

_dummies = {}


def kernels(dtype):
    """The kernel dict for ``dtype`` and the current knob values."""
    return build(np.dtype(dtype).name, config.TILE, config.WPT, config.TPB, config.FASTMATH)[0]


def dummies(dtype):
    """1-element device arrays (1-D, 2-D) passed where a kernel's optional input is absent."""
    key = np.dtype(dtype).name
    if key not in _dummies:
        _dummies[key] = (cuda.to_device(np.zeros(1, dtype)), cuda.to_device(np.zeros((1, 1), dtype)))
    return _dummies[key]


def _grid1(n):
    tpb = config.TPB
    return max(1, min(MAX_BLOCKS, -(-n // tpb))), tpb


def matmul(C, A, B, bias=None, Y=None, ta=False, tb=False, act=IDENTITY, dact=-1, slope=0.0, stream=0):
    """``C = op(A) @ op(B)`` with a fused epilogue, on the device (overwrites C).

    op(A) is A (M, K), or A.T when ``ta`` (A stored (K, M)); op(B) is B (K, N), or
    B.T when ``tb`` (B stored (N, K)). Epilogue per element: ``+ bias[n]`` when bias
    is given, then the activation ``act`` (elementwise codes only; softmax is a
    separate row kernel), then, when ``dact >= 0``, the backward of activation
    ``dact`` whose output is ``Y[m, n]``.
    """
    if ta and tb:
        raise ValueError("matmul: at most one of ta, tb")
    M, N = C.shape
    if M == 0 or N == 0:
        return
    k = kernels(C.dtype)["mm_tn" if ta else ("mm_nt" if tb else "mm_nn")]
    d1, d2 = dummies(C.dtype)
    bm = config.TILE * config.WPT
    grid = (-(-N // bm), -(-M // bm))
    dt = C.dtype.type
    k[grid, (config.TILE, config.TILE), stream](
        C, A, B, d1 if bias is None else bias, d2 if Y is None else Y,
        0 if bias is None else 1, int(act), int(dact), dt(slope))


def linear_forward(y, x, W, b=None, act=IDENTITY, slope=0.0, stream=0):
    """y (B, out) = act(x (B, in) @ W (in, out) + b); softmax runs as a second kernel."""
    if act == SOFTMAX:
        matmul(y, x, W, bias=b, stream=stream)
        softmax_forward(y, y, stream)
    else:
        matmul(y, x, W, bias=b, act=act, slope=slope, stream=stream)


def linear_backward_input(dx, dy, W, y_prev=None, dact=-1, slope=0.0, stream=0):
    """dx (B, in) = dy (B, out) @ W.T, times the backward of the previous layer's
    elementwise activation ``dact`` at its output ``y_prev`` (B, in) when dact >= 0."""
    matmul(dx, dy, W, Y=y_prev, tb=True, dact=dact, slope=slope, stream=stream)


def linear_backward_weight(dW, x, dy, stream=0):
    """dW (in, out) = x.T (in, B) @ dy (B, out); overwrites dW."""
    matmul(dW, x, dy, ta=True, stream=stream)


def linear_backward_bias(db, dy, stream=0):
    """db (out,) = column sums of dy (B, out); overwrites db."""
    n = dy.shape[1]
    if n == 0:
        return
    cx = min(32, config.TPB)
    kernels(dy.dtype)["colsum_k"][(-(-n // cx),), (cx, config.TPB // cx), stream](db, dy)


def activation_forward(y, x, code, slope=0.0, stream=0):
    """Elementwise activation on flat (n,) arrays, or softmax on (B, C) arrays."""
    if code == SOFTMAX:
        softmax_forward(y, x, stream)
        return
    n = x.shape[0]
    if n:
        blocks, tpb = _grid1(n)
        kernels(x.dtype)["act_fwd_k"][blocks, tpb, stream](y, x, int(code), x.dtype.type(slope))


def activation_backward(dx, y, dy, code, slope=0.0, stream=0):
    """Elementwise activation backward on flat (n,) arrays (softmax: (B, C), separate)."""
    if code == SOFTMAX:
        softmax_backward(dx, y, dy, stream)
        return
    n = y.shape[0]
    if n:
        blocks, tpb = _grid1(n)
        kernels(y.dtype)["act_bwd_k"][blocks, tpb, stream](dx, y, dy, int(code), y.dtype.type(slope))


def softmax_forward(y, x, stream=0):
    """Row-wise softmax, x (B, C) -> y (B, C); y may be x."""
    if x.shape[0] and x.shape[1]:
        blocks, tpb = _grid1(x.shape[0])
        kernels(x.dtype)["softmax_fwd_k"][blocks, tpb, stream](y, x)


def softmax_backward(dx, y, dy, stream=0):
    """dx = y * (dy - sum(dy * y)) per row; (B, C)."""
    if y.shape[0] and y.shape[1]:
        blocks, tpb = _grid1(y.shape[0])
        kernels(y.dtype)["softmax_bwd_k"][blocks, tpb, stream](dx, y, dy)


def cost_rows(delta, rowloss, rowcorrect, pred, T, labels, order, start, n_rows, n_div,
              code, fused=False, dact=-1, slope=0.0, acc_mode=0, cparam=1.0, sw=None, stream=0):
    """Per-row loss, #correct and gradient of one batch (see ``_kernels.cost_rows_k``).

    Batch row r is sample ``order[start + r]`` of the dense targets T (N, K) and
    ``labels`` (N,); ``delta[r]`` gets dJ/dpred (divided by ``n_div``, through the
    activation ``dact`` when >= 0) and ``rowloss[start + r]``/``rowcorrect[start + r]``
    the row's loss and correct count. acc_mode: 0 none, 1 argmax vs label, 2 BCE.
    ``cparam``: Huber's delta. ``sw`` (N,) device: each sample's factor on its loss and
    delta (sample weights), or None.
    """
    if n_rows:
        blocks, tpb = _grid1(n_rows)
        dt = pred.dtype.type
        weighted = sw is not None and sw.shape[0] > 0
        kernels(pred.dtype)["cost_rows_k"][blocks, tpb, stream](
            delta, rowloss, rowcorrect, pred, T, labels, order, int(start), int(n_rows),
            dt(n_div), int(code), int(bool(fused)), int(dact), dt(slope), int(acc_mode), dt(cparam),
            sw if weighted else dummies(pred.dtype)[0], int(weighted))


def reduce_rows(out_loss, out_correct, rowloss, rowcorrect, lo, hi, stream=0):
    """out_loss[0] = sum(rowloss[lo:hi]) (float64), out_correct[0] likewise (int64)."""
    kernels(np.float64)["reduce_k"][1, config.TPB, stream](
        out_loss, out_correct, rowloss, rowcorrect, int(lo), int(hi))


def gather_rows(xb, X, order, start, n_rows, stream=0):
    """xb[r] = X[order[start + r]] for r < n_rows (shuffling by index on the device)."""
    if n_rows and X.shape[1]:
        blocks, tpb = _grid1(n_rows * X.shape[1])
        kernels(X.dtype)["gather_k"][blocks, tpb, stream](xb, X, order, int(start), int(n_rows))


def dropout(q, y, skey, thr, scale, c0, stream=0):
    """q = y * scale where Dropout keeps each unit (counter ``c0 + i``), else 0; flat (n,)."""
    n = y.shape[0]
    if n:
        blocks, tpb = _grid1(n)
        kernels(y.dtype)["drop_k"][blocks, tpb, stream](q, y, np.uint64(skey), np.uint64(thr),
                                                        y.dtype.type(scale), int(c0))


def dropout_backward(d, v, code, slope, skey, thr, scale, c0, stream=0):
    """d = act_bwd(code, v, d * mask * scale) in place (``code`` IDENTITY: the mask only); flat (n,)."""
    n = d.shape[0]
    if n:
        blocks, tpb = _grid1(n)
        dt = d.dtype.type
        kernels(d.dtype)["drop_bwd_k"][blocks, tpb, stream](d, v, int(code), dt(slope), np.uint64(skey),
                                                            np.uint64(thr), dt(scale), int(c0))


def update(code, params, grads, s1, s2, hp, n_decay, s3=None, stream=0):
    """One step of optimizer ``code`` in place on flat device vectors (``update_k``).

    ``hp`` is the host hyper-parameter vector in :mod:`fastnn.kernels.layout`'s order
    (the per-step scalars already in it: the step count is host state); ``s1``/``s2``/``s3``
    are the state buffers (any 1-element device array when unused).
    """
    n = params.shape[0]
    if n:
        dt = params.dtype.type
        blocks, tpb = _grid1(n)
        d1 = dummies(params.dtype)[0]
        kernels(params.dtype)["update_k"][blocks, tpb, stream](
            int(code), params, grads, d1 if s1 is None else s1, d1 if s2 is None else s2,
            d1 if s3 is None else s3, *(dt(hp[k]) for k in range(N_HP)), int(n_decay))
