"""Numba ``@njit`` versions of every op in :mod:`fastnn.kernels.reference`.

The public functions here have the reference's names, signatures and results
(new arrays for forward/backward/costs; optimizer updates in place). Each is a
thin wrapper: it checks its input, allocates the output, and calls a private
compiled kernel that takes its output buffers first and allocates nothing.

The row-level building blocks (``fwd_rows``, ``bwd_weight_rows``, ...) are shared
with the fused training loops in :mod:`fastnn.kernels.cpu.fused`, so a fused step
does exactly the arithmetic of the per-op kernels.
"""

import numpy as np
from numba import prange

from fastnn import config
from fastnn.kernels.cpu._common import (
    BCE, CROSS_ENTROPY, IDENTITY, LEAKY_RELU, MSE, OPT_ADAM, OPT_MOMENTUM, OPT_NESTEROV, OPT_SGD, RELU,
    SIGMOID, SIGN, SOFTMAX, TANH, act_backward_row, act_forward_row, cost_grad_row, cost_row, jit, pjit,
    update_flat)

__all__ = [
    "IDENTITY", "SIGMOID", "TANH", "RELU", "LEAKY_RELU", "SOFTMAX", "SIGN", "MSE", "CROSS_ENTROPY", "BCE",
    "linear_forward", "linear_backward_input", "linear_backward_weight", "linear_backward_bias",
    "identity_forward", "identity_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward", "relu_forward", "relu_backward",
    "leaky_relu_forward", "leaky_relu_backward", "softmax_forward", "softmax_backward",
    "sign_forward", "activation_forward", "activation_backward",
    "mse_value", "mse_grad", "log_softmax", "cross_entropy_value", "cross_entropy_grad",
    "bce_value", "bce_grad", "bce_sigmoid_delta", "cost_value", "cost_grad",
    "sgd_update", "momentum_update", "nesterov_update", "adam_update",
]

# Multiply-adds above which the per-op kernels use threads (config.PARALLEL == "1"),
# or, in "auto" mode, PAR_AUTO_WORK: a parallel region costs a thread wake-up, which
# on a busy or virtualised machine can take milliseconds (a scheduler tick), so
# per-op calls only thread for work that dwarfs that.
PAR_MIN_WORK = 100_000
PAR_AUTO_WORK = 20_000_000


def _par(work):
    mode = config.PARALLEL
    if mode == "0":
        return False
    return work >= (PAR_MIN_WORK if mode == "1" else PAR_AUTO_WORK)


# ============================================================== compiled building blocks


@jit
def fwd_rows(Y, A, W, b, has_bias, r0, r1):
    """Rows ``r0 <= n < r1`` of ``Y = A @ W + b``; zero inputs are skipped.

    Y: (B, out), A: (B, in), W: (in, out), b: (out,) (ignored unless ``has_bias``).
    """
    nin, nout = W.shape
    for n in range(r0, r1):
        y = Y[n]
        a = A[n]
        for j in range(nout):
            y[j] = 0
        for i in range(nin):
            ai = a[i]
            # ReLU outputs and image pixels are mostly 0: skipping them is free speed
            if ai != 0:
                w = W[i]
                for j in range(nout):
                    y[j] += ai * w[j]
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

    Written as a sum of rows of ``WT`` (axpy), which vectorises without fast-math,
    rather than as dot products. DX: (B, in), DY: (B, out).
    """
    nout, nin = WT.shape
    for n in range(r0, r1):
        dx = DX[n]
        dy = DY[n]
        for i in range(nin):
            dx[i] = 0
        for j in range(nout):
            d = dy[j]
            if d != 0:
                w = WT[j]
                for i in range(nin):
                    dx[i] += d * w[i]


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


# ======================================================================= per-op kernels


@jit
def _linear_backward_input(DX, DY, W):
    # DY: (B, out), W: (in, out) -> DX: (B, in); dot-product form, small shapes only
    nin, nout = W.shape
    for n in range(DY.shape[0]):
        for i in range(nin):
            s = 0.0  # float64 accumulator (exact for float64, more precise for float32)
            for j in range(nout):
                s += DY[n, j] * W[i, j]
            DX[n, i] = s


@jit
def _act_forward(code, Y, slope):
    # Y: (R, n), transformed row by row in place
    for r in range(Y.shape[0]):
        act_forward_row(code, Y[r], slope)


@jit
def _act_backward(code, D, Y, slope):
    # D, Y: (R, n); D becomes dJ/d(input) in place
    for r in range(Y.shape[0]):
        act_backward_row(code, Y[r], D[r], slope)


@jit
def _cost_value(code, P, T, labels, use_labels, eps):
    # P: (N, K); T: (N, K) float targets (or (1, K) unused); labels: (N,) int64 -> sum of row losses
    acc = 0.0
    for n in range(P.shape[0]):
        if use_labels:
            acc += cost_row(code, P[n], T[0], labels[n], eps)
        else:
            acc += cost_row(code, P[n], T[n], -1, eps)
    return acc


@jit
def _cost_grad(code, D, P, T, labels, use_labels, eps, fused):
    # D, P: (N, K) -> D = dJ/dP (or the fused BCE+sigmoid delta)
    N = P.shape[0]
    for n in range(N):
        if use_labels:
            cost_grad_row(code, D[n], P[n], T[0], labels[n], N, eps, fused)
        else:
            cost_grad_row(code, D[n], P[n], T[n], -1, N, eps, fused)


@jit
def _log_softmax(Y):
    # Y: (N, C) scores -> log softmax in place
    for n in range(Y.shape[0]):
        y = Y[n]
        m = y[0]
        for j in range(1, y.shape[0]):
            if y[j] > m:
                m = y[j]
        s = 0.0
        for j in range(y.shape[0]):
            s += np.exp(y[j] - m)
        lse = np.log(s)
        for j in range(y.shape[0]):
            y[j] = (y[j] - m) - lse


# ============================================================================ wrappers


def _float_dtype(*arrays):
    dt = np.result_type(*arrays)
    if dt not in (np.float32, np.float64):
        dt = np.dtype(np.float64)
    return dt


def _as2d(a, name, dt):
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=dt)


def _work(*shape):
    return int(np.prod(shape, dtype=np.int64))


def linear_forward(x, W, b=None):
    """Affine map ``y = x @ W + b``.

    x: (B, in), W: (in, out), b: (out,) or None -> y: (B, out)
    """
    dt = _float_dtype(x, W) if b is None else _float_dtype(x, W, b)
    x, W = _as2d(x, "x", dt), _as2d(W, "W", dt)
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"x has {x.shape[1]} columns but W has {W.shape[0]} rows")
    has_bias = b is not None
    bb = np.ascontiguousarray(b, dtype=dt).reshape(-1) if has_bias else np.zeros(W.shape[1], dt)
    if bb.shape[0] != W.shape[1]:
        raise ValueError(f"b has {bb.shape[0]} entries but W has {W.shape[1]} columns")
    y = np.empty((x.shape[0], W.shape[1]), dt)
    if _par(_work(*x.shape, W.shape[1])) and x.shape[0] > 1:
        fwd_par(y, x, W, bb, has_bias, x.shape[0])
    else:
        fwd_rows(y, x, W, bb, has_bias, 0, x.shape[0])
    return y


def linear_backward_input(dy, W):
    """Input gradient of a Linear layer: ``dx = dy @ W.T``.

    dy: (B, out), W: (in, out) -> dx: (B, in)
    """
    dt = _float_dtype(dy, W)
    dy, W = _as2d(dy, "dy", dt), _as2d(W, "W", dt)
    if dy.shape[1] != W.shape[1]:
        raise ValueError(f"dy has {dy.shape[1]} columns but W has {W.shape[1]}")
    dx = np.empty((dy.shape[0], W.shape[0]), dt)
    if _par(_work(*dy.shape, W.shape[0])):
        bwd_input_par(dx, dy, np.ascontiguousarray(W.T), dy.shape[0])
    else:
        _linear_backward_input(dx, dy, W)
    return dx


def linear_backward_weight(x, dy):
    """Weight gradient of a Linear layer: ``dW = x.T @ dy``.

    x: (B, in), dy: (B, out) -> dW: (in, out). The cost's 1/N is already in ``dy``.
    """
    dt = _float_dtype(x, dy)
    x, dy = _as2d(x, "x", dt), _as2d(dy, "dy", dt)
    if x.shape[0] != dy.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but dy has {dy.shape[0]}")
    dW = np.empty((x.shape[1], dy.shape[1]), dt)
    if _par(_work(*x.shape, dy.shape[1])):
        bwd_weight_par(dW, x, dy, x.shape[0])
    else:
        bwd_weight_rows(dW, x, dy, x.shape[0], 0, x.shape[1])
    return dW


def linear_backward_bias(dy):
    """Bias gradient of a Linear layer: ``db = sum_n dy[n]``.

    dy: (B, out) -> db: (out,)
    """
    dy = _as2d(dy, "dy", _float_dtype(dy))
    db = np.empty(dy.shape[1], dy.dtype)
    bwd_bias(db, dy, dy.shape[0])
    return db


# ---------------------------------------------------------------------- activations


def _rows(a, code):
    """A C-contiguous float copy of ``a`` viewed as rows: its own rows when 2-D,
    else one row (softmax needs 2-D)."""
    a = np.array(a, dtype=_float_dtype(a), order="C", copy=True)
    if code == SOFTMAX:
        if a.ndim != 2:
            raise ValueError(f"softmax works on 2-D (B, C) arrays, got shape {a.shape}")
        return a, a
    return a, a.reshape(1, -1)


def activation_forward(code, x, slope=0.01):
    """Dispatch an activation forward by its integer code (returns a new array)."""
    code = int(code)
    if code not in (IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX, SIGN):
        raise ValueError(f"unknown activation code {code}")
    y, rows = _rows(x, code)
    if code != IDENTITY and y.size:
        _act_forward(code, rows, float(slope))
    return y


def activation_backward(code, y, dy, slope=0.01):
    """Dispatch an activation backward by its integer code (``y`` is the output)."""
    code = int(code)
    if code == SIGN:
        raise ValueError("sign has no useful gradient; it is forward-only (seed 004's perceptrons)")
    if code not in (IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX):
        raise ValueError(f"unknown activation code {code}")
    y = np.asarray(y)
    dy = np.asarray(dy)
    if y.shape != dy.shape:
        raise ValueError(f"y has shape {y.shape} but dy has {dy.shape}")
    dt = _float_dtype(y, dy)
    d, drows = _rows(dy.astype(dt, copy=False), code)
    if code != IDENTITY and d.size:
        yr = np.ascontiguousarray(y, dtype=dt).reshape(drows.shape)
        _act_backward(code, drows, yr, float(slope))
    return d


def identity_forward(x):
    """``y = x``."""
    return activation_forward(IDENTITY, x)


def identity_backward(y, dy):
    """``dx = dy``."""
    return activation_backward(IDENTITY, y, dy)


def sigmoid_forward(x):
    """Logistic function ``1 / (1 + exp(-x))``, stable for any |x|."""
    return activation_forward(SIGMOID, x)


def sigmoid_backward(y, dy):
    """``dx = dy * y * (1 - y)`` with ``y = sigmoid(x)``."""
    return activation_backward(SIGMOID, y, dy)


def tanh_forward(x):
    """Hyperbolic tangent."""
    return activation_forward(TANH, x)


def tanh_backward(y, dy):
    """``dx = dy * (1 - y**2)`` with ``y = tanh(x)``."""
    return activation_backward(TANH, y, dy)


def relu_forward(x):
    """``max(x, 0)``."""
    return activation_forward(RELU, x)


def relu_backward(y, dy):
    """``dx = dy`` where ``y > 0``, else 0."""
    return activation_backward(RELU, y, dy)


def leaky_relu_forward(x, slope=0.01):
    """``x`` where ``x > 0``, else ``slope * x``."""
    return activation_forward(LEAKY_RELU, x, slope)


def leaky_relu_backward(y, dy, slope=0.01):
    """``dx = dy`` where ``y > 0``, else ``slope * dy`` (valid for slope >= 0)."""
    return activation_backward(LEAKY_RELU, y, dy, slope)


def softmax_forward(x):
    """Row-wise softmax of x: (B, C) -> (B, C)."""
    return activation_forward(SOFTMAX, x)


def softmax_backward(y, dy):
    """Vector-Jacobian product of softmax: ``dx = y * (dy - sum(dy * y))`` per row."""
    return activation_backward(SOFTMAX, y, dy)


def sign_forward(x):
    """1 where ``x > 0``, else -1 (forward only)."""
    return activation_forward(SIGN, x)


# ---------------------------------------------------------------------------- costs


def _cost_args(pred, target, name, allow_labels):
    """(P (N,K), T (N,K) or dummy (1,K), labels int64, use_labels) in one float dtype."""
    pred = np.asarray(pred)
    target = np.asarray(target)
    dt = _float_dtype(pred)
    P = _as2d(pred, name, dt)
    N, K = P.shape
    if allow_labels and target.ndim == 1:
        if target.shape[0] != N:
            raise ValueError(f"{N} predictions but {target.shape[0]} labels")
        labels = target.astype(np.int64)
        if N and (labels.min() < 0 or labels.max() >= K):
            raise ValueError(f"labels must lie in 0..{K - 1}")
        return P, np.zeros((1, K), dt), np.ascontiguousarray(labels), True
    if target.shape != P.shape:
        raise ValueError(f"targets have shape {target.shape} but predictions {P.shape}")
    return P, np.ascontiguousarray(target, dtype=dt), np.zeros(0, np.int64), False


def _value(code, pred, target, name="pred"):
    P, T, labels, use_labels = _cost_args(pred, target, name, code == CROSS_ENTROPY)
    eps = float(np.finfo(P.dtype).eps)
    # the reference divides by N even when N == 0 (nan); keep that
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(_cost_value(code, P, T, labels, use_labels, eps)) / P.shape[0])


def _grad(code, pred, target, fused=False, name="pred"):
    P, T, labels, use_labels = _cost_args(pred, target, name, code == CROSS_ENTROPY)
    D = np.empty_like(P)
    _cost_grad(code, D, P, T, labels, use_labels, float(np.finfo(P.dtype).eps), fused)
    return D


def mse_value(pred, target):
    """``J = 1/(2N) * sum_n ||pred_n - target_n||^2``; (N, K) -> float."""
    return _value(MSE, pred, target)


def mse_grad(pred, target):
    """``dJ/dpred = (pred - target) / N``; (N, K) -> (N, K)."""
    return _grad(MSE, pred, target)


def log_softmax(scores):
    """Row-wise ``log(softmax(scores))``; (N, C) -> (N, C)."""
    out = _as2d(scores, "scores", _float_dtype(scores)).copy()
    if out.size:
        _log_softmax(out)
    return out


def cross_entropy_value(scores, target):
    """Softmax cross-entropy on raw scores; labels (N,) or one-hot/probabilities (N, C)."""
    return _value(CROSS_ENTROPY, scores, target, "scores")


def cross_entropy_grad(scores, target):
    """``dJ/dscores = (softmax(scores) - t) / N``; (N, C) -> (N, C)."""
    return _grad(CROSS_ENTROPY, scores, target, name="scores")


def bce_value(prob, target):
    """Binary cross-entropy on probabilities, clipped to ``[eps, 1 - eps]``; -> float."""
    return _value(BCE, prob, target, "prob")


def bce_grad(prob, target):
    """``dJ/dp = (p - t) / (p (1 - p)) / N`` with ``p`` clipped; (N, K) -> (N, K)."""
    return _grad(BCE, prob, target, name="prob")


def bce_sigmoid_delta(prob, target):
    """Gradient of BCE through the sigmoid that produced ``prob``: ``(p - t) / N``."""
    return _grad(BCE, prob, target, fused=True, name="prob")


def cost_value(code, pred, target):
    """Dispatch a cost's value by its integer code."""
    return (mse_value, cross_entropy_value, bce_value)[code](pred, target)


def cost_grad(code, pred, target):
    """Dispatch a cost's gradient by its integer code."""
    return (mse_grad, cross_entropy_grad, bce_grad)[code](pred, target)


# ----------------------------------------------------------------------- optimizers


def _flat_inplace(a, name, dt=None):
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be a float32 or float64 NumPy array")
    if dt is not None and a.dtype != dt:
        raise ValueError(f"{name} has dtype {a.dtype} but params have {dt}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array (it is updated in place)")
    return a.reshape(-1)


def _update(opt, params, grads, s1, s2, hp_vals, n_decay, names=("velocity", "v")):
    p = _flat_inplace(params, "params")
    g = np.ascontiguousarray(grads, dtype=p.dtype).reshape(-1)
    if g.shape != p.shape:
        raise ValueError(f"grads have {g.size} entries but params {p.size}")
    states = []
    for name, s in zip(names, (s1, s2)):
        if s is None:
            states.append(np.zeros(0, p.dtype))
        else:
            s = _flat_inplace(s, name, p.dtype)
            if s.shape != p.shape:
                raise ValueError(f"{name} has {s.size} entries but params {p.size}")
            states.append(s)
    n_decay = int(n_decay)
    if not 0 <= n_decay <= p.size:
        raise ValueError(f"n_decay must lie in 0..{p.size}, got {n_decay}")
    hp = np.array(hp_vals, dtype=p.dtype)
    update_flat(opt, p, g, states[0], states[1], hp, n_decay, _par(4 * p.size))


def sgd_update(params, grads, lr, weight_decay=0.0, n_decay=0):
    """Plain SGD, in place: ``p -= lr * g`` (``g`` plus ``weight_decay * p`` on the first ``n_decay``)."""
    _update(OPT_SGD, params, grads, None, None, [lr, weight_decay, 0, 0, 0, 1, 0, 0, 1, 1], n_decay)


def momentum_update(params, grads, velocity, lr, momentum, weight_decay=0.0, n_decay=0):
    """Seed 003's momentum, in place: ``v = momentum * v - lr * g``; ``p += v``."""
    _update(OPT_MOMENTUM, params, grads, velocity, None,
            [lr, weight_decay, momentum, 0, 0, 1, 0, 0, 1, 1], n_decay)


def nesterov_update(params, grads, velocity, lr, momentum, weight_decay=0.0, n_decay=0):
    """Nesterov momentum, in place: ``v = momentum * v - lr * g``; ``p += momentum * v - lr * g``."""
    _update(OPT_NESTEROV, params, grads, velocity, None,
            [lr, weight_decay, momentum, 0, 0, 1, 0, 0, 1, 1], n_decay)


def adam_update(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay=0.0, n_decay=0):
    """Adam, in place, for step number ``t >= 1`` (PyTorch's placement of ``eps``)."""
    if int(t) < 1:
        raise ValueError(f"Adam step t must be >= 1, got {t}")
    if m is None or v is None:
        raise ValueError("adam_update needs the moment buffers m and v")
    _update(OPT_ADAM, params, grads, m, v,
            [lr, weight_decay, 0, 1 - beta1, 1 - beta2, eps, beta1, beta2, 1 - beta1 ** t, 1 - beta2 ** t],
            n_decay, names=("m", "v"))
