"""The flat optimizer update: one kernel for every optimizer code, over ``[k0, k1)``.

``hp`` is laid out as :mod:`fastnn.kernels.layout` says (``LR``, ``WD``, ...); the
formulas and their order of operations are the reference's (``reference.sgd_update``
etc.): ``g = grad + wd * p`` on the first ``n_decay`` entries.
"""

import numpy as np
from numba import prange

from fastnn.kernels import layout
from fastnn.kernels.cpu.jit import jit, pjit
from fastnn.kernels.layout import (
    B1, B2, C1, C2, EPS, H1, H2, LR, MOM, OPT_ADAM, OPT_MOMENTUM, OPT_NESTEROV, OPT_SGD, WD)

#: Adam's bias corrections for step t into hp (the layout's one formula, compiled).
refresh_bias_corrections = jit(layout.refresh_bias_corrections)


@jit
def _update_seg(code, p, g, s1, s2, hp, k0, k1, decay):
    # One branch-free loop per case so that LLVM vectorises it (a per-element
    # ``if code == ...`` costs ~3x on the 200k-parameter updates).
    lr, wd, mom = hp[LR], hp[WD], hp[MOM]
    if code == OPT_SGD:
        if decay:
            for k in range(k0, k1):
                p[k] -= lr * (g[k] + wd * p[k])
        else:
            for k in range(k0, k1):
                p[k] -= lr * g[k]
    elif code == OPT_MOMENTUM or code == OPT_NESTEROV:
        nest = code == OPT_NESTEROV
        for k in range(k0, k1):
            gk = g[k] + wd * p[k] if decay else g[k]
            v = s1[k] * mom
            v = v - lr * gk
            s1[k] = v
            if nest:
                p[k] += mom * v - lr * gk
            else:
                p[k] += v
    else:  # Adam
        c1, c2, eps, b1, b2, h1, h2 = hp[C1], hp[C2], hp[EPS], hp[B1], hp[B2], hp[H1], hp[H2]
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
def update_range(code, p, g, s1, s2, hp, k0, k1, n_decay):
    """One optimizer step on entries ``k0 <= k < k1`` of the flat buffers, in place."""
    kd = min(max(n_decay, k0), k1)
    _update_seg(code, p, g, s1, s2, hp, k0, kd, hp[WD] != 0)
    _update_seg(code, p, g, s1, s2, hp, kd, k1, False)


_UPDATE_BLOCK = 16384


@pjit
def update_par(code, p, g, s1, s2, hp, n_decay):
    """:func:`update_range` over the whole buffer, in blocks spread over the threads."""
    n = p.shape[0]
    nb = (n + _UPDATE_BLOCK - 1) // _UPDATE_BLOCK
    for b in prange(nb):
        update_range(code, p, g, s1, s2, hp, b * _UPDATE_BLOCK, min(n, (b + 1) * _UPDATE_BLOCK), n_decay)


@jit
def update_flat(code, p, g, s1, s2, hp, n_decay, parallel):
    """One optimizer step on the whole flat buffer; threads when ``parallel`` and it is big."""
    if parallel and p.shape[0] >= 4 * _UPDATE_BLOCK:
        update_par(code, p, g, s1, s2, hp, n_decay)
    else:
        update_range(code, p, g, s1, s2, hp, 0, p.shape[0], n_decay)


@jit
def step(opt, params, grads, t):
    """Optimizer step number ``t`` (>= 1) of ``opt`` (a :class:`~fastnn.kernels.layout.Optim`), one thread."""
    if opt.code == OPT_ADAM:
        refresh_bias_corrections(opt.hp, opt.beta1, opt.beta2, t)
    update_range(opt.code, params, grads, opt.s1, opt.s2, opt.hp, 0, params.shape[0], opt.n_decay)


@jit
def step_par(opt, params, grads, t, parallel):
    """:func:`step`, on the threads when ``parallel`` and the buffer is big (compiles the
    threaded update too, so the single-threaded epochs call :func:`step`)."""
    if opt.code == OPT_ADAM:
        refresh_bias_corrections(opt.hp, opt.beta1, opt.beta2, t)
    update_flat(opt.code, params, grads, opt.s1, opt.s2, opt.hp, opt.n_decay, parallel)
