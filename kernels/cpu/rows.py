"""Per-row helpers shared by every CPU kernel: activations, costs, correct counts.

Each works on one row (a 1-D array) in place, so the per-op kernels (:mod:`.ops`) and
the epoch loops (``epoch_*.py``) do exactly the same arithmetic.
"""

import math

import numpy as np

from fastnn.kernels.cpu.jit import jit
from fastnn.kernels.layout import BCE, CROSS_ENTROPY, LEAKY_RELU, MSE, RELU, SIGMOID, SIGN, SOFTMAX, TANH


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
            x = y[j]
            # exp(-|x|) never overflows (see reference.sigmoid_forward); the reference's
            # 1/(1+e) for x >= 0 and e/(1+e) otherwise, as one division of a selected
            # numerator (the same roundings, and no branch on the unpredictable sign)
            e = np.exp(-abs(x))
            y[j] = (one if x >= 0 else e) / (one + e)
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
    # IDENTITY / NO_ACT: nothing to do


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
    """Turn ``d`` = dJ/d(output) into dJ/d(input) in place, from the output ``y``."""
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


# ---------------------------------------------------------------------- cost rows


@jit
def cost_row(code, p, t_row, label, dt_eps):
    """Loss of one sample (summed over outputs), in float64.

    ``t_row`` is the float target row, or empty when ``label`` (>= 0) is an
    integer class (cross-entropy only). ``dt_eps`` is the dtype's machine epsilon
    (the BCE clip, as in the reference).
    """
    k = p.shape[0]
    acc = 0.0
    if code == MSE:
        for j in range(k):
            dlt = p[j] - t_row[j]
            acc += dlt * dlt
        return acc / 2
    if code == CROSS_ENTROPY:
        m = p[0]
        for j in range(1, k):
            if p[j] > m:
                m = p[j]
        s = 0.0
        for j in range(k):
            s += math.exp(p[j] - m)
        lse = math.log(s)
        if label >= 0:
            return -(p[label] - m - lse)
        for j in range(k):
            acc -= t_row[j] * (p[j] - m - lse)
        return acc
    # BCE on probabilities, clipped to [eps, 1 - eps]
    for j in range(k):
        q = min(max(p[j], dt_eps), 1 - dt_eps)
        acc -= t_row[j] * math.log(q) + (1 - t_row[j]) * math.log(1 - q)
    return acc


@jit
def cost_grad_row(code, d, p, t_row, label, n, dt_eps, sigmoid_fused):
    """dJ/dp for one sample of a batch of ``n`` into ``d`` (or the fused BCE+sigmoid delta)."""
    k = p.shape[0]
    if code == MSE or (code == BCE and sigmoid_fused):
        for j in range(k):
            d[j] = (p[j] - t_row[j]) / n
    elif code == CROSS_ENTROPY:
        for j in range(k):
            d[j] = p[j]
        softmax_row(d)
        if label >= 0:
            d[label] -= 1
            for j in range(k):
                d[j] = d[j] / n
        else:
            for j in range(k):
                d[j] = (d[j] - t_row[j]) / n
    else:
        for j in range(k):
            q = min(max(p[j], dt_eps), 1 - dt_eps)
            d[j] = (q - t_row[j]) / (q * (1 - q)) / n


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
    :class:`~fastnn.kernels.layout.Data`, are read through it).
    """
    cost, T, labels, use_int, eps = data.cost, data.T, data.labels, data.use_int, data.eps
    loss = 0.0
    correct = 0
    for n in range(B):
        r = rows[n]
        lab = labels[r] if use_int else -1
        trow = T[0] if use_int else T[r]
        loss += cost_row(cost, P[n], trow, lab, eps)
        if data.has_acc:
            correct += correct_row(cost, P[n], trow, labels[r] if cost != BCE else -1)
        cost_grad_row(cost, D[n], P[n], trow, lab, B, eps, data.fused_last)
    return loss, correct
