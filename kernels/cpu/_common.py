"""Compile settings and the small per-row helpers shared by the CPU kernels.

Every compiled function in ``kernels/cpu`` is made with :func:`jit` or
:func:`pjit`, so fastmath and caching are set in one place
(:mod:`fastnn.config`). Helpers work on one row (a 1-D array) in place, so the
per-op kernels and the fused training loops share exactly the same arithmetic.

Scalars enter compiled code as float64 and integer codes as int64, whatever the
caller passed, so each kernel compiles once per array dtype (float32, float64).
"""

import math

import numpy as np
from numba import njit, prange

from fastnn import config

# Activation and cost codes (same numbers as the reference; -1 = no activation).
from fastnn.kernels.reference import (  # noqa: F401
    BCE, CROSS_ENTROPY, IDENTITY, LEAKY_RELU, MSE, RELU, SIGMOID, SIGN, SOFTMAX, TANH)

NO_ACT = -1
# Optimizer codes of the flat update kernel.
OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM = range(4)


def _njit(fn, opts):
    try:
        return njit(**opts)(fn)
    except RuntimeError:
        # Numba raises "cannot cache function ...: no locator available" when no
        # cache directory is writable (a read-only install with an unwritable
        # home and NUMBA_CACHE_DIR). Compiling on every run still works.
        if not opts.get("cache"):
            raise
        return njit(**dict(opts, cache=False))(fn)


def jit(fn=None, **kw):
    """``@njit`` with fastnn's fastmath and cache settings.

    Cached (``cache=True``) in ``__pycache__`` beside the source, else in Numba's
    user-wide cache directory or ``NUMBA_CACHE_DIR``; uncached when none is writable.
    """
    opts = dict(cache=config.CACHE, fastmath=config.FASTMATH, error_model="numpy")
    opts.update(kw)
    if fn is None:
        return lambda f: _njit(f, opts)
    return _njit(fn, opts)


def pjit(fn):
    """``@njit(parallel=True)`` with fastnn's settings (``prange`` loops run on threads)."""
    return jit(fn, parallel=True)


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
def loss_and_delta_rows(cost, P, D, T, labels, use_int, has_acc, rows, B, eps, fused_last):
    """Batch loss (summed over samples), correct count, and dJ/dP written into ``D``.

    P, D: (B, K) views of the last layer's outputs and deltas; ``rows[n]`` is the
    training-set index of batch row n (targets are read through it).
    """
    loss = 0.0
    correct = 0
    for n in range(B):
        r = rows[n]
        lab = labels[r] if use_int else -1
        trow = T[0] if use_int else T[r]
        loss += cost_row(cost, P[n], trow, lab, eps)
        if has_acc:
            correct += correct_row(cost, P[n], trow, labels[r] if cost != BCE else -1)
        cost_grad_row(cost, D[n], P[n], trow, lab, B, eps, fused_last)
    return loss, correct


# --------------------------------------------------------------------- optimizers


@jit
def _update_seg(opt, p, g, s1, s2, hp, k0, k1, decay):
    # One branch-free loop per case so that LLVM vectorises it (a per-element
    # ``if opt == ...`` costs ~3x on the 200k-parameter updates).
    lr, wd, mom = hp[0], hp[1], hp[2]
    if opt == OPT_SGD:
        if decay:
            for k in range(k0, k1):
                p[k] -= lr * (g[k] + wd * p[k])
        else:
            for k in range(k0, k1):
                p[k] -= lr * g[k]
    elif opt == OPT_MOMENTUM or opt == OPT_NESTEROV:
        nest = opt == OPT_NESTEROV
        for k in range(k0, k1):
            gk = g[k] + wd * p[k] if decay else g[k]
            v = s1[k] * mom
            v = v - lr * gk
            s1[k] = v
            if nest:
                p[k] += mom * v - lr * gk
            else:
                p[k] += v
    else:
        c1, c2, eps, b1, b2, h1, h2 = hp[3], hp[4], hp[5], hp[6], hp[7], hp[8], hp[9]
        for k in range(k0, k1):
            gk = g[k] + wd * p[k] if decay else g[k]
            m = s1[k] * b1
            m = m + c1 * gk
            s1[k] = m
            v = s2[k] * b2
            v = v + c2 * gk * gk
            s2[k] = v
            p[k] -= lr * (m / h1) / (np.sqrt(v / h2) + eps)


@jit
def update_range(opt, p, g, s1, s2, hp, k0, k1, n_decay):
    """One optimizer step on entries ``k0 <= k < k1`` of the flat buffers, in place.

    ``hp`` (in the parameters' dtype, as the reference casts its scalars):
    ``[lr, weight_decay, momentum, 1-beta1, 1-beta2, eps, beta1, beta2, 1-beta1^t, 1-beta2^t]``.
    The formulas and their order of operations are the reference's
    (``reference.sgd_update`` etc.): ``g = grad + wd * p`` on the first ``n_decay``.
    """
    kd = min(max(n_decay, k0), k1)
    _update_seg(opt, p, g, s1, s2, hp, k0, kd, hp[1] != 0)
    _update_seg(opt, p, g, s1, s2, hp, kd, k1, False)


_UPDATE_BLOCK = 16384


@pjit
def update_par(opt, p, g, s1, s2, hp, n_decay):
    """:func:`update_range` over the whole buffer, in blocks spread over the threads."""
    n = p.shape[0]
    nb = (n + _UPDATE_BLOCK - 1) // _UPDATE_BLOCK
    for b in prange(nb):
        update_range(opt, p, g, s1, s2, hp, b * _UPDATE_BLOCK, min(n, (b + 1) * _UPDATE_BLOCK), n_decay)


@jit
def update_flat(opt, p, g, s1, s2, hp, n_decay, parallel):
    """One optimizer step on the whole flat buffer; threads when ``parallel`` and it is big."""
    if parallel and p.shape[0] >= 4 * _UPDATE_BLOCK:
        update_par(opt, p, g, s1, s2, hp, n_decay)
    else:
        update_range(opt, p, g, s1, s2, hp, 0, p.shape[0], n_decay)


def fill_hp(hp, opt, t):
    """Fill ``hp`` (dtype array of 10) for optimizer ``opt`` at step ``t`` (Python side)."""
    lr, wd = opt.lr, opt.weight_decay
    mom = getattr(opt, "momentum", 0.0)
    b1, b2, eps = getattr(opt, "beta1", 0.0), getattr(opt, "beta2", 0.0), getattr(opt, "eps", 1.0)
    hp[:] = [lr, wd, mom, 1 - b1, 1 - b2, eps, b1, b2,
             (1 - b1 ** t) if t else 1.0, (1 - b2 ** t) if t else 1.0]
    return hp

