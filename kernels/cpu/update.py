"""The flat optimizer update: one kernel for every optimizer code, over ``[k0, k1)``.

``hp`` is laid out as :mod:`fastnn.kernels.layout` says (``LR``, ``WD``, ...); the
formulas and their order of operations are the reference's (``reference.sgd_update``
etc.): ``g = grad + wd * p`` on the first ``n_decay`` entries (AdamW instead decays
those parameters, ``p *= 1 - lr * wd``). State buffers s1, s2, s3 as the layout says.
Momentum's velocity and Adam's moments below the dtype's smallest normal number are stored
as 0, as the reference does (``reference_optim._flush_subnormal``): subnormal arithmetic
made later Adam epochs 20-40% slower.
"""

import numpy as np
from numba import prange

from fastnn.kernels import formulas, layout
from fastnn.kernels.cpu.jit import jit, pjit
from fastnn.kernels.layout import (
    B1, B2, C1, C2, EPS, H1, H2, LR, MOM, OPT_ADADELTA, OPT_ADAGRAD, OPT_ADAM, OPT_ADAMW, OPT_CENTERED_RMSPROP,
    OPT_MOMENTUM, OPT_NESTEROV, OPT_RMSPROP, OPT_SGD, WD)

#: The per-step scalars (Adam's bias corrections, Adagrad's lr divisor) into hp (the layout's formula).
refresh_step = jit(layout.refresh_step)


@jit
def _adam_seg(p, g, s1, s2, hp, decay, decoupled):
    # Adam, or AdamW (decoupled: p *= 1 - lr * wd where decay, no L2 in the gradient)
    lr, wd = hp[LR], hp[WD]
    c1, c2, eps, b1, b2, h1, h2 = hp[C1], hp[C2], hp[EPS], hp[B1], hp[B2], hp[H1], hp[H2]
    shrink = p.dtype.type(1) - lr * wd
    tiny, zero = p.dtype.type(np.finfo(p.dtype).tiny), p.dtype.type(0)
    for k in range(p.shape[0]):
        gk = g[k] + wd * p[k] if (decay and not decoupled) else g[k]
        if decay and decoupled:
            p[k] *= shrink
        m = s1[k] * b1
        m = m + c1 * gk
        if abs(m) < tiny:  # subnormal state is stored as 0 (NaN is kept: the compare is False)
            m = zero
        s1[k] = m
        v = s2[k] * b2
        v = v + c2 * gk * gk
        if v < tiny:
            v = zero
        s2[k] = v
        p[k] -= lr * (m / h1) / (np.sqrt(v / h2) + eps)


_rmsprop_step, _adagrad_step, _adadelta_step = (jit(f) for f in (
    formulas.rmsprop_step, formulas.adagrad_step, formulas.adadelta_step))


@jit
def _rmsprop_seg(p, g, s1, s2, s3, hp, decay, centered):
    # v (s1); centered: the gradient average a in s2 and the momentum buffer in s3, else it in s2
    lr, wd, mom, alpha, c2, eps = hp[LR], hp[WD], hp[MOM], hp[B2], hp[C2], hp[EPS]
    buf = s3 if centered else s2
    use_mom = mom > 0
    zero = p.dtype.type(0)
    for k in range(p.shape[0]):
        gk = g[k] + wd * p[k] if decay else g[k]
        dp, v, a, b = _rmsprop_step(gk, s1[k], s2[k] if centered else zero, buf[k] if use_mom else zero,
                                    centered, use_mom, alpha, c2, mom, eps, lr)
        s1[k] = v
        if centered:
            s2[k] = a
        if use_mom:
            buf[k] = b
        p[k] -= dp


@jit
def _adagrad_adadelta_seg(code, p, g, s1, s2, hp, decay):
    lr, wd, eps = hp[LR], hp[WD], hp[EPS]
    if code == OPT_ADAGRAD:  # the lr at step t: lr / (1 + (t - 1) lr_decay), H1 the divisor
        clr = lr / hp[H1]
        for k in range(p.shape[0]):
            gk = g[k] + wd * p[k] if decay else g[k]
            dp, s1[k] = _adagrad_step(gk, s1[k], clr, eps)
            p[k] -= dp
    else:  # Adadelta: B2 is rho, C2 1 - rho
        rho, c2 = hp[B2], hp[C2]
        for k in range(p.shape[0]):
            gk = g[k] + wd * p[k] if decay else g[k]
            dp, s1[k], s2[k] = _adadelta_step(gk, s1[k], s2[k], rho, c2, eps, lr)
            p[k] -= dp


@jit
def _update_seg(code, p, g, s1, s2, s3, hp, k0, k1, decay):
    # One loop per case, each over range(len) of slices: indices that numba knows are >= 0
    # let LLVM vectorise (with range(k0, k1) every access carries a negative-index wrap, and
    # the Adam step ran scalar: 1.0 ms instead of 0.2 ms for 203k float32 parameters).
    if k1 <= k0:
        return
    p, g = p[k0:k1], g[k0:k1]
    s1, s2, s3 = s1[k0:k1], s2[k0:k1], s3[k0:k1]  # an unused (empty) state stays empty
    lr, wd, mom = hp[LR], hp[WD], hp[MOM]
    if code == OPT_SGD:
        if decay:
            for k in range(p.shape[0]):
                p[k] -= lr * (g[k] + wd * p[k])
        else:
            for k in range(p.shape[0]):
                p[k] -= lr * g[k]
    elif code == OPT_MOMENTUM or code == OPT_NESTEROV:
        nest = code == OPT_NESTEROV
        tiny, zero = p.dtype.type(np.finfo(p.dtype).tiny), p.dtype.type(0)
        for k in range(p.shape[0]):
            gk = g[k] + wd * p[k] if decay else g[k]
            v = s1[k] * mom
            v = v - lr * gk
            if abs(v) < tiny:  # subnormal velocity is stored as 0 (see the module docstring)
                v = zero
            s1[k] = v
            if nest:
                p[k] += mom * v - lr * gk
            else:
                p[k] += v
    elif code == OPT_ADAM or code == OPT_ADAMW:
        _adam_seg(p, g, s1, s2, hp, decay, code == OPT_ADAMW)
    elif code == OPT_RMSPROP or code == OPT_CENTERED_RMSPROP:
        _rmsprop_seg(p, g, s1, s2, s3, hp, decay, code == OPT_CENTERED_RMSPROP)
    else:
        _adagrad_adadelta_seg(code, p, g, s1, s2, hp, decay)


@jit
def update_range(code, p, g, s1, s2, s3, hp, k0, k1, n_decay):
    """One optimizer step on entries ``k0 <= k < k1`` of the flat buffers, in place."""
    kd = min(max(n_decay, k0), k1)
    _update_seg(code, p, g, s1, s2, s3, hp, k0, kd, hp[WD] != 0)
    _update_seg(code, p, g, s1, s2, s3, hp, kd, k1, False)


_UPDATE_BLOCK = 16384


@pjit
def update_par(code, p, g, s1, s2, s3, hp, n_decay):
    """:func:`update_range` over the whole buffer, in blocks spread over the threads."""
    n = p.shape[0]
    nb = (n + _UPDATE_BLOCK - 1) // _UPDATE_BLOCK
    for b in prange(nb):
        update_range(code, p, g, s1, s2, s3, hp, b * _UPDATE_BLOCK, min(n, (b + 1) * _UPDATE_BLOCK), n_decay)


@jit
def update_flat(code, p, g, s1, s2, s3, hp, n_decay, parallel):
    """One optimizer step on the whole flat buffer; threads when ``parallel`` and it is big."""
    if parallel and p.shape[0] >= 4 * _UPDATE_BLOCK:
        update_par(code, p, g, s1, s2, s3, hp, n_decay)
    else:
        update_range(code, p, g, s1, s2, s3, hp, 0, p.shape[0], n_decay)


@jit
def batch_decay(opt, data, bi):
    """Batch ``bi``'s weight decay into ``opt.hp[WD]``: ``hp64[WD] * data.wdf[bi]`` when the
    sample weights give per-batch factors (:class:`~fastnn.kernels.layout.Data`), else as it is."""
    if data.wdf.shape[0] > 0:
        opt.hp[WD] = opt.hp64[WD] * data.wdf[bi]


@jit
def step(opt, params, grads, t):
    """Optimizer step number ``t`` (>= 1) of ``opt`` (a :class:`~fastnn.kernels.layout.Optim`), one thread."""
    refresh_step(opt.hp, opt.hp64, opt.code, t)
    update_range(opt.code, params, grads, opt.s1, opt.s2, opt.s3, opt.hp, 0, params.shape[0], opt.n_decay)


@jit
def step_par(opt, params, grads, t, parallel):
    """:func:`step`, on the threads when ``parallel`` and the buffer is big (compiles the
    threaded update too, so the single-threaded epochs call :func:`step`)."""
    refresh_step(opt.hp, opt.hp64, opt.code, t)
    update_flat(opt.code, params, grads, opt.s1, opt.s2, opt.s3, opt.hp, opt.n_decay, parallel)
