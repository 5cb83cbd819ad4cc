"""Numba versions of every op in :mod:`fastnn.kernels.reference`, with its names and signatures.

The public functions return new arrays (forward, backward, costs) or update in place
(optimizers), like the reference's. Each is a thin wrapper: it checks its input,
allocates the output and calls a private compiled kernel that takes its output
buffers first and allocates nothing. The generic kernels here are by code
(``activation_forward``, ``value``/``delta`` of a cost, ``update``); the named ops
(``sigmoid_forward`` ... ``adam_update``) are generated over them by
:func:`fastnn.kernels.named.named_ops`.
"""

import numpy as np

from fastnn.kernels import shapes
from fastnn.kernels.cpu.config import use_threads
from fastnn.kernels.cpu.jit import jit
from fastnn.kernels.cpu.linear import (
    bwd_bias, bwd_input_par, bwd_weight_par, bwd_weight_rows, fwd_par, fwd_rows)
from fastnn.kernels.cpu.dropout import dropout_rows
from fastnn.kernels.cpu.rows import act_backward_row, act_forward_row, cost_grad_row, cost_row, max_lse
from fastnn.kernels.cpu.update import update_flat
from fastnn.kernels.layout import (  # noqa: F401  (the codes, re-exported as the reference's)
    BCE, CROSS_ENTROPY, ELU, GELU, GELU_TANH, HINGE, HUBER, IDENTITY, KL_DIVERGENCE, L1, LEAKY_RELU, MSE,
    NEEDS_INPUT, POISSON, OPT_ADAM, OPT_ADAMW, OPT_MOMENTUM, OPT_NESTEROV, RELU, RELU6, SIGMOID, SIGN, SILU, SOFTMAX,
    SOFTPLUS, TANH, dropout_scale, dropout_threshold)
from fastnn.kernels.named import COSTS, NAMES, named_ops
from fastnn.kernels.reference import ACTIVATION_NAMES

__all__ = [
    "IDENTITY", "SIGMOID", "TANH", "RELU", "LEAKY_RELU", "SOFTMAX", "SIGN", "ELU", "SOFTPLUS", "GELU", "GELU_TANH",
    "SILU", "RELU6", "MSE", "CROSS_ENTROPY", "BCE", "L1", "HUBER", "HINGE", "KL_DIVERGENCE", "POISSON",
    "linear_forward", "linear_backward_input", "linear_backward_weight", "linear_backward_bias",
    "activation_forward", "activation_backward", "log_softmax", "cost_rows", *NAMES,
]


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
def _cost_rows(out, code, P, T, labels, use_labels, eps, cparam):
    # P: (N, K); T: (N, K) float targets (or (1, K) unused); labels: (N,) int64 -> out (N,) row losses
    for n in range(P.shape[0]):
        if use_labels:
            out[n] = cost_row(code, P[n], T[0], labels[n], eps, cparam)
        else:
            out[n] = cost_row(code, P[n], T[n], -1, eps, cparam)


@jit
def _cost_value(code, P, T, labels, use_labels, eps, cparam):
    # the sum of the row losses, in row order
    out = np.empty(P.shape[0])
    _cost_rows(out, code, P, T, labels, use_labels, eps, cparam)
    acc = 0.0
    for n in range(P.shape[0]):
        acc += out[n]
    return acc


@jit
def _cost_grad(code, D, P, T, labels, use_labels, eps, fused, cparam):
    # D, P: (N, K) -> D = dJ/dP (or the fused BCE+sigmoid delta)
    N = P.shape[0]
    for n in range(N):
        if use_labels:
            cost_grad_row(code, D[n], P[n], T[0], labels[n], N, eps, fused, cparam)
        else:
            cost_grad_row(code, D[n], P[n], T[n], -1, N, eps, fused, cparam)


@jit
def _log_softmax(Y):
    # Y: (N, C) scores -> log softmax in place
    for n in range(Y.shape[0]):
        y = Y[n]
        m, lse = max_lse(y)
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


def _float_pair(check, a, b):
    """``a``, ``b`` as C-contiguous arrays of one float dtype, after ``check`` (kernels.shapes)."""
    a, b = np.asarray(a), np.asarray(b)
    check(a, b)
    dt = _float_dtype(a, b)
    return np.ascontiguousarray(a, dtype=dt), np.ascontiguousarray(b, dtype=dt), dt


def _work(*shape):
    return int(np.prod(shape, dtype=np.int64))


def linear_forward(x, W, b=None):
    """Affine map ``y = x @ W + b``.

    x: (B, in), W: (in, out), b: (out,) or None -> y: (B, out)
    """
    has_bias = b is not None
    if has_bias:
        b = np.asarray(b).reshape(-1)
    shapes.linear_forward(np.asarray(x), np.asarray(W), b)
    dt = _float_dtype(x, W) if b is None else _float_dtype(x, W, b)
    x, W = np.ascontiguousarray(x, dtype=dt), np.ascontiguousarray(W, dtype=dt)
    bb = np.ascontiguousarray(b, dtype=dt) if has_bias else np.zeros(W.shape[1], dt)
    y = np.empty((x.shape[0], W.shape[1]), dt)
    if use_threads(_work(*x.shape, W.shape[1])) and x.shape[0] > 1:
        fwd_par(y, x, W, bb, has_bias, x.shape[0])
    else:
        fwd_rows(y, x, W, bb, has_bias, 0, x.shape[0])
    return y


def linear_backward_input(dy, W):
    """Input gradient of a Linear layer: ``dx = dy @ W.T``.

    dy: (B, out), W: (in, out) -> dx: (B, in)
    """
    dy, W, dt = _float_pair(shapes.linear_backward_input, dy, W)
    dx = np.empty((dy.shape[0], W.shape[0]), dt)
    if use_threads(_work(*dy.shape, W.shape[0])):
        bwd_input_par(dx, dy, np.ascontiguousarray(W.T), dy.shape[0])
    else:
        _linear_backward_input(dx, dy, W)
    return dx


def linear_backward_weight(x, dy):
    """Weight gradient of a Linear layer: ``dW = x.T @ dy``.

    x: (B, in), dy: (B, out) -> dW: (in, out). The cost's 1/N is already in ``dy``.
    """
    x, dy, dt = _float_pair(shapes.linear_backward_weight, x, dy)
    dW = np.empty((x.shape[1], dy.shape[1]), dt)
    if use_threads(_work(*x.shape, dy.shape[1])):
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
    """Dispatch an activation forward by its integer code (returns a new array; ``slope``:
    the activation's parameter, LeakyReLU's slope, ELU's alpha or Softplus's beta)."""
    code = int(code)
    if not 0 <= code < len(ACTIVATION_NAMES):
        raise ValueError(f"unknown activation code {code}")
    y, rows = _rows(x, code)
    if code != IDENTITY and y.size:
        _act_forward(code, rows, float(slope))
    return y


def activation_backward(code, y, dy, slope=0.01, x=None):
    """Dispatch an activation backward by its integer code (``y`` is the output; the codes in
    ``NEEDS_INPUT`` read the input ``x`` instead)."""
    code = int(code)
    if code == SIGN:
        raise ValueError("sign has no useful gradient; it is forward-only (seed 004's perceptrons)")
    if not 0 <= code < len(ACTIVATION_NAMES):
        raise ValueError(f"unknown activation code {code}")
    if code in NEEDS_INPUT:
        if x is None:
            raise ValueError(f"{ACTIVATION_NAMES[code]} backward needs the activation's input x")
        y = x  # the row kernels read the input where the output would be
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


# ---------------------------------------------------------------------------- costs


_PRED_NAMES = {code: pred for _, code, pred, _ in COSTS}
#: Costs that take integer class labels (N,) as well as (N, K) rows.
_LABEL_COSTS = (CROSS_ENTROPY, HINGE, KL_DIVERGENCE)


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


def _check_cost(code):
    if code not in _PRED_NAMES:
        raise ValueError(f"unknown cost code {code}")
    return _PRED_NAMES[code]


def value(code, pred, target, param=1.0):
    """A cost's mean value over the batch, by its integer code (``param``: Huber's delta)."""
    P, T, labels, use_labels = _cost_args(pred, target, _check_cost(code), code in _LABEL_COSTS)
    eps = float(np.finfo(P.dtype).eps)
    # the reference divides by N even when N == 0 (nan); keep that
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(_cost_value(code, P, T, labels, use_labels, eps, float(param))) / P.shape[0])


def cost_rows(code, pred, target, param=1.0):
    """Each sample's loss (summed over outputs), (N,) float64, by the cost's integer code."""
    P, T, labels, use_labels = _cost_args(pred, target, _check_cost(code), code in _LABEL_COSTS)
    out = np.empty(P.shape[0])
    _cost_rows(out, code, P, T, labels, use_labels, float(np.finfo(P.dtype).eps), float(param))
    return out


def delta(code, pred, target, fused, param=1.0):
    """A cost's gradient dJ/dpred by its integer code (``fused``: BCE through its sigmoid)."""
    P, T, labels, use_labels = _cost_args(pred, target, _check_cost(code), code in _LABEL_COSTS)
    D = np.empty_like(P)
    _cost_grad(code, D, P, T, labels, use_labels, float(np.finfo(P.dtype).eps), fused, float(param))
    return D


def log_softmax(scores):
    """Row-wise ``log(softmax(scores))``; (N, C) -> (N, C)."""
    out = _as2d(scores, "scores", _float_dtype(scores)).copy()
    if out.size:
        _log_softmax(out)
    return out


# ----------------------------------------------------------------------- optimizers


def _flat_inplace(a, name, dt=None):
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be a float32 or float64 NumPy array")
    if dt is not None and a.dtype != dt:
        raise ValueError(f"{name} has dtype {a.dtype} but params have {dt}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array (it is updated in place)")
    return a.reshape(-1)


def update(code, params, grads, s1, s2, s3, hp_vals, n_decay):
    """One flat optimizer step ``code`` in place (the generic kernel of the named updates)."""
    names = ("m", "v", "state 3") if code in (OPT_ADAM, OPT_ADAMW) else ("state 1", "state 2", "state 3")
    if code in (OPT_MOMENTUM, OPT_NESTEROV):
        names = ("velocity",) + names[1:]
    p = _flat_inplace(params, "params")
    g = np.ascontiguousarray(grads, dtype=p.dtype).reshape(-1)
    if g.shape != p.shape:
        raise ValueError(f"grads have {g.size} entries but params {p.size}")
    states = []
    for name, s in zip(names, (s1, s2, s3)):
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
    update_flat(code, p, g, states[0], states[1], states[2], hp, n_decay, use_threads(4 * p.size))


# ------------------------------------------------------------------------- dropout


def dropout(x, key, stream, pos0, p):
    """Inverted dropout of x (B, n) with the reference's mask (a new array): the generic
    kernel of ``dropout_forward``/``dropout_backward``/``dropout_mask``."""
    x = np.asarray(x)
    x2 = _as2d(x, "x", _float_dtype(x))
    out = np.empty_like(x2)
    if out.size:
        dropout_rows(out, x2, np.uint64(int(key) & 0xFFFFFFFFFFFFFFFF), int(stream), int(pos0),
                     dropout_threshold(float(p)), dropout_scale(float(p)))
    return out


globals().update(named_ops(activation_forward, activation_backward, value, delta, update, dropout))
