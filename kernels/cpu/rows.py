"""Per-row helpers shared by every CPU kernel: activations, costs, correct counts, dropout.

Each works on one row (a 1-D array) in place, so the per-op kernels (:mod:`.ops`) and
the epoch loops (``epoch_*.py``) do exactly the same arithmetic.
"""

import math

import numpy as np

from fastnn.kernels.cpu.jit import jit
from fastnn.kernels.layout import (
    BCE, CROSS_ENTROPY, ELU, GELU, GELU_TANH, HINGE, HUBER, KL_DIVERGENCE, L1, LEAKY_RELU, MSE, POISSON, RELU, RELU6,
    SIGMOID, SIGN, SILU, SOFTMAX, SOFTPLUS, SOFTPLUS_THRESHOLD, TANH)

# GELU's constants (as reference.py): 1/sqrt(2), 1/sqrt(2 pi), sqrt(2/pi), the cubic's 0.044715
_SQRT1_2, _INV_SQRT_2PI, _SQRT_2_PI, _KAPPA = 0.7071067811865476, 0.3989422804014327, 0.7978845608028654, 0.044715


# ------------------------------------------------------------------ activation rows


@jit
def act_forward_row(code, y, slope):
    """Apply activation ``code`` to the row ``y`` (1-D) in place."""
    n = y.shape[0]
    # constants in the row's dtype: an int literal or a float64 scalar would promote
    # float32 arithmetic to float64 (slower, and unlike NumPy's float32 reference)
    one = y.dtype.type(1)
    if code == SIGMOID:
        for j in range(n):
            y[j] = _sigmoid(y[j], one)
    elif code == TANH:
        for j in range(n):
            y[j] = np.tanh(y[j])
    elif code == RELU:
        for j in range(n):
            if not y[j] > 0:
                y[j] = 0
    elif code == LEAKY_RELU:
        s = y.dtype.type(slope)
        for j in range(n):
            if not y[j] > 0:
                y[j] = s * y[j]
    elif code == SOFTMAX:
        softmax_row(y)
    elif code == SIGN:
        for j in range(n):
            y[j] = one if y[j] > 0 else -one
    elif code >= ELU:
        _act_more(code, y, y, slope, False)
    # IDENTITY / NO_ACT: nothing to do


@jit
def _sigmoid(x, one):
    """The reference's stable sigmoid of one value (``one``: 1 in its dtype).

    exp(-|x|) never overflows (see reference.sigmoid_forward); the reference's 1/(1+e) for
    x >= 0 and e/(1+e) otherwise, as one division of a selected numerator (the same
    roundings, and no branch on the unpredictable sign).
    """
    e = np.exp(-abs(x))
    return (one if x >= 0 else e) / (one + e)


@jit
def _act_more(code, v, d, slope, backward):
    # ELU ... ReLU6, each activation's forward and backward side by side: forward in place on
    # the row v; with ``backward``, d = dJ/dx from dJ/dy in place (v the output, or for GELU
    # and SiLU the input)
    n = v.shape[0]
    dt = v.dtype.type
    one, half, zero = dt(1), dt(0.5), dt(0)
    p = dt(slope)
    if code == ELU:
        for j in range(n):
            if not v[j] > 0:
                if backward:
                    d[j] = d[j] * (v[j] + p)
                else:
                    v[j] = p * np.expm1(v[j])
    elif code == SOFTPLUS:
        for j in range(n):
            pv = p * v[j]
            if not pv > SOFTPLUS_THRESHOLD:
                if backward:
                    d[j] = d[j] * -np.expm1(-pv)
                else:
                    v[j] = np.log1p(np.exp(pv)) / p
    elif code == GELU:
        for j in range(n):
            x = v[j]
            e = one + math.erf(x * dt(_SQRT1_2))
            if backward:
                d[j] = d[j] * (half * e + x * (np.exp(-half * x * x) * dt(_INV_SQRT_2PI)))
            else:
                v[j] = half * x * e
    elif code == GELU_TANH:
        for j in range(n):
            x = v[j]
            th = np.tanh(dt(_SQRT_2_PI) * (x + dt(_KAPPA) * x * x * x))
            if backward:
                inner = dt(_SQRT_2_PI) * (one + dt(3 * _KAPPA) * x * x)
                d[j] = d[j] * (half * (one + th) + half * x * (one - th * th) * inner)
            else:
                v[j] = half * x * (one + th)
    elif code == SILU:
        for j in range(n):
            s = _sigmoid(v[j], one)
            if backward:
                d[j] = d[j] * s * (one + v[j] * (one - s))
            else:
                v[j] = v[j] * s
    elif code == RELU6:
        six = dt(6)
        for j in range(n):
            x = v[j]
            if backward:
                if not (x > zero and x < six):
                    d[j] = zero
            else:
                v[j] = zero if not x > zero else (six if x > six else x)


@jit
def softmax_row(y):
    """Row softmax in place, shifted by the row maximum as in the reference."""
    n = y.shape[0]
    if n == 0:
        return
    m = y[0]
    for j in range(1, n):
        if y[j] > m:
            m = y[j]
    s = 0.0
    for j in range(n):
        e = np.exp(y[j] - m)
        y[j] = e
        s += e
    for j in range(n):
        y[j] = y[j] / s


@jit
def act_backward_row(code, y, d, slope):
    """Turn ``d`` = dJ/d(output) into dJ/d(input) in place, from the output ``y`` (or,
    for the codes in ``reference.NEEDS_INPUT``, from the input: pass it as ``y``)."""
    n = y.shape[0]
    one = y.dtype.type(1)  # see act_forward_row
    if code == SIGMOID:
        for j in range(n):
            d[j] = d[j] * y[j] * (one - y[j])
    elif code == TANH:
        for j in range(n):
            d[j] = d[j] * (one - y[j] * y[j])
    elif code == RELU:
        for j in range(n):
            if not y[j] > 0:
                d[j] = 0
    elif code == LEAKY_RELU:
        s = y.dtype.type(slope)
        for j in range(n):
            if not y[j] > 0:
                d[j] = s * d[j]
    elif code == SOFTMAX:
        s = 0.0
        for j in range(n):
            s += d[j] * y[j]
        for j in range(n):
            d[j] = y[j] * (d[j] - s)
    elif code >= ELU:
        _act_more(code, y, d, slope, True)


# ---------------------------------------------------------------------- cost rows


@jit
def max_lse(p):
    """(max, log-sum-exp of ``p - max``) of a score row, in float64."""
    m = p[0]
    for j in range(1, p.shape[0]):
        if p[j] > m:
            m = p[j]
    s = 0.0
    for j in range(p.shape[0]):
        s += math.exp(p[j] - m)
    return m, math.log(s)


@jit
def cost_row(code, p, t_row, label, dt_eps, cparam):
    """Loss of one sample (summed over outputs), in float64.

    ``t_row`` is the float target row, or unused when ``label`` (>= 0) is an integer
    class (cross-entropy, hinge, KL). ``dt_eps`` is the dtype's machine epsilon (the
    BCE clip, as in the reference); ``cparam`` Huber's delta.
    """
    k = p.shape[0]
    acc = 0.0
    if code == MSE:
        for j in range(k):
            dlt = p[j] - t_row[j]
            acc += dlt * dlt
        return acc / 2
    if code == CROSS_ENTROPY or code == KL_DIVERGENCE:
        m, lse = max_lse(p)
        if label >= 0:  # KL against a one-hot row is the cross-entropy (1 log 1 = 0)
            return -(p[label] - m - lse)
        for j in range(k):
            t = t_row[j]
            acc -= t * (p[j] - m - lse)
            if code == KL_DIVERGENCE and t > 0:
                acc += t * math.log(t)
        return acc
    if code == BCE:  # on probabilities, clipped to [eps, 1 - eps]
        for j in range(k):
            q = min(max(p[j], dt_eps), 1 - dt_eps)
            acc -= t_row[j] * math.log(q) + (1 - t_row[j]) * math.log(1 - q)
        return acc
    dt = p.dtype.type
    one = dt(1)
    if code == L1:
        for j in range(k):
            acc += abs(p[j] - t_row[j])
    elif code == HUBER:
        dl, half = dt(cparam), dt(0.5)
        for j in range(k):
            a = abs(p[j] - t_row[j])
            acc += half * a * a if a < dl else dl * (a - half * dl)
    elif code == HINGE:  # c = +1 for the label's class, -1 for the others
        for j in range(k):
            c = _hinge_sign(j, t_row, label, one)
            acc += max(dt(0), one - c * p[j])
    elif code == POISSON:  # on log-rates: exp(s) - t s + t log t - t
        for j in range(k):
            t = t_row[j]
            acc += math.exp(p[j]) - t * p[j] + (t * math.log(t) if t > 0 else 0.0) - t
    return acc


@jit
def _hinge_sign(j, t_row, label, one):
    """Hinge's ``c = 2 t - 1`` of output j: from the integer ``label`` (>= 0), else from ``t_row``."""
    if label >= 0:
        return one if j == label else -one
    return (one + one) * t_row[j] - one


@jit
def cost_grad_row(code, d, p, t_row, label, n, dt_eps, sigmoid_fused, cparam):
    """dJ/dp for one sample of a batch of ``n`` into ``d`` (or the fused BCE+sigmoid delta)."""
    k = p.shape[0]
    if code == MSE or (code == BCE and sigmoid_fused):
        for j in range(k):
            d[j] = (p[j] - t_row[j]) / n
    elif code == CROSS_ENTROPY or code == KL_DIVERGENCE:
        for j in range(k):
            d[j] = p[j]
        softmax_row(d)
        if label >= 0:
            d[label] -= 1
            for j in range(k):
                d[j] = d[j] / n
        elif code == CROSS_ENTROPY:
            for j in range(k):
                d[j] = (d[j] - t_row[j]) / n
        else:  # softmax * sum(t) - t: the gradient for any non-negative t
            ts = d.dtype.type(0)
            for j in range(k):
                ts += t_row[j]
            for j in range(k):
                d[j] = (d[j] * ts - t_row[j]) / n
    elif code == BCE:
        for j in range(k):
            q = min(max(p[j], dt_eps), 1 - dt_eps)
            d[j] = (q - t_row[j]) / (q * (1 - q)) / n
    else:
        _cost_grad_more(code, d, p, t_row, label, n, cparam)


@jit
def _cost_grad_more(code, d, p, t_row, label, n, cparam):
    # the gradients of L1, Huber, hinge and Poisson into d
    k = p.shape[0]
    dt = p.dtype.type
    one, zero = dt(1), dt(0)
    if code == L1:
        for j in range(k):
            dlt = p[j] - t_row[j]
            d[j] = (one if dlt > 0 else (-one if dlt < 0 else zero)) / n
    elif code == HUBER:
        dl = dt(cparam)
        for j in range(k):
            d[j] = min(max(p[j] - t_row[j], -dl), dl) / n
    elif code == POISSON:  # (exp(s) - t) / n
        for j in range(k):
            d[j] = (math.exp(p[j]) - t_row[j]) / n
    else:  # HINGE
        for j in range(k):
            c = _hinge_sign(j, t_row, label, one)
            d[j] = (-c if c * p[j] < one else zero) / n


@jit
def correct_row(code, p, t_row, label):
    """Correct predictions in one sample: argmax == label, or for BCE the number of
    outputs with ``p > 0.5`` equal to ``t > 0.5``."""
    k = p.shape[0]
    if code == BCE:
        c = 0
        for j in range(k):
            if (p[j] > 0.5) == (t_row[j] > 0.5):
                c += 1
        return c
    # first maximum, as np.argmax
    best = 0
    for j in range(1, k):
        if p[j] > p[best]:
            best = j
    return 1 if best == label else 0


@jit
def loss_and_delta_rows(data, P, D, rows, B):
    """Batch loss (summed over samples), correct count, and dJ/dP written into ``D``.

    P, D: (B, K) views of the last layer's outputs and deltas; ``rows[n]`` is the
    training-set index of batch row n (the targets in ``data``, a
    :class:`~fastnn.kernels.layout.Data`, are read through it). With sample weights each
    row's loss and delta are multiplied by its factor ``data.sw[r]``.
    """
    cost, T, labels, use_int, eps, sw = data.cost, data.T, data.labels, data.use_int, data.eps, data.sw
    weighted = sw.shape[0] > 0
    loss = 0.0
    correct = 0
    for n in range(B):
        r = rows[n]
        lab = labels[r] if use_int else -1
        trow = T[0] if use_int else T[r]
        ls = cost_row(cost, P[n], trow, lab, eps, data.cparam)
        if data.has_acc:
            correct += correct_row(cost, P[n], trow, labels[r] if cost != BCE else -1)
        cost_grad_row(cost, D[n], P[n], trow, lab, B, eps, data.fused_last, data.cparam)
        if weighted:
            s = sw[r]
            ls = ls * s
            for j in range(D.shape[1]):
                D[n, j] *= s
        loss += ls
    return loss, correct
