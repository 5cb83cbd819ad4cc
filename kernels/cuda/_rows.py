"""The per-row and per-element CUDA kernels of training: the cost rows, Dropout, the optimizer update.

Built for one dtype by :func:`row_kernels` (called by :func:`fastnn.kernels.cuda._kernels.build`,
which compiles and caches them with the others). Outputs first; scalars that enter float
arithmetic come in the kernel's dtype; the formulas and their order are the reference's.
"""

import math

import numpy as np
from numba import cuda

from fastnn.kernels import formulas
from fastnn.kernels.layout import (
    BCE, CROSS_ENTROPY, HINGE, HUBER, IDENTITY, KL_DIVERGENCE, L1, MSE, OPT_ADADELTA, OPT_ADAGRAD, OPT_ADAM,
    OPT_ADAMW, OPT_CENTERED_RMSPROP, OPT_NESTEROV, OPT_RMSPROP, OPT_SGD, POISSON)

#: Signatures of these kernels for the PTX compile check (see ``_kernels.SIGNATURES``).
ROW_SIGNATURES = {
    "cost_rows_k": ("void({T}[:, ::1], float64[::1], int64[::1], {T}[:, ::1], {T}[:, ::1], int64[::1], "
                    "int64[::1], int64, int64, {T}, int64, int64, int64, {T}, int64, {T}, {T}[::1], int64)"),
    "drop_k": "void({T}[::1], {T}[::1], uint64, uint64, {T}, int64)",
    "drop_bwd_k": "void({T}[::1], {T}[::1], int64, {T}, uint64, uint64, {T}, int64)",
    "update_k": ("void(int64, {T}[::1], {T}[::1], {T}[::1], {T}[::1], {T}[::1], {T}, {T}, {T}, {T}, {T}, {T}, "
                 "{T}, {T}, {T}, {T}, {T}, int64)"),
}


def row_kernels(dtype, act_bwd, keep, device):
    """The kernels of :data:`ROW_SIGNATURES` as plain Python functions for ``dtype``, over the
    device functions ``act_bwd`` and ``keep`` of :func:`._device.device_functions` (``device``
    makes the optimizers' element formulas, :mod:`fastnn.kernels.formulas`, device functions)."""
    rmsprop_step, adagrad_step, adadelta_step = (device(f) for f in (
        formulas.rmsprop_step, formulas.adagrad_step, formulas.adadelta_step))
    DT = np.dtype(dtype).type
    ZERO, ONE, HALF, TWO = DT(0), DT(1), DT(0.5), DT(2)
    EPS = DT(np.finfo(DT).eps)
    ONE_M_EPS = DT(1 - np.finfo(DT).eps)
    TINY = DT(np.finfo(DT).tiny)  # momentum's and Adam's state below it is stored as 0 (as the reference)

    def cost_rows_k(delta, rowloss, rowcorrect, pred, Tg, labels, order, start, n_rows, nf,
                    code, fused, dact, slope, acc_mode, cparam, sw, weighted):
        # Batch row r is sample s = order[start + r]. pred, delta: (n_rows, K); Tg: (N, K)
        # dense targets; labels: (N,) int64. Writes delta = dJ/dpred (divided by the batch
        # size nf; through activation dact when >= 0), and at epoch position start + r the
        # row's loss (its share of batch-mean-loss * batch size) and #correct. cparam:
        # Huber's delta. With ``weighted``, sample s's factor sw[s] multiplies its loss and
        # delta (before the activation backward, as on the CPU).
        for r in range(cuda.grid(1), n_rows, cuda.gridsize(1)):
            s = order[start + r]
            K = pred.shape[1]
            loss = ZERO
            if code == MSE:
                for k in range(K):
                    d = pred[r, k] - Tg[s, k]
                    loss += d * d
                    delta[r, k] = d / nf
                loss = loss * HALF
            elif code == CROSS_ENTROPY or code == KL_DIVERGENCE:
                mx = pred[r, 0]
                for k in range(1, K):
                    mx = max(mx, pred[r, k])
                se = ZERO
                ts = ZERO
                for k in range(K):
                    se += math.exp(pred[r, k] - mx)
                    ts += Tg[s, k]
                lse = math.log(se)
                for k in range(K):
                    z = pred[r, k] - mx
                    t = Tg[s, k]
                    loss -= t * (z - lse)
                    if code == CROSS_ENTROPY:
                        delta[r, k] = (math.exp(z) / se - t) / nf
                    else:  # softmax * sum(t) - t, and t log t (0 log 0 = 0)
                        if t > ZERO:
                            loss += t * math.log(t)
                        delta[r, k] = (math.exp(z) / se * ts - t) / nf
            elif code == BCE:  # on probabilities, clipped to [eps, 1 - eps] as in the reference
                for k in range(K):
                    p = pred[r, k]
                    t = Tg[s, k]
                    pc = min(max(p, EPS), ONE_M_EPS)
                    loss -= t * math.log(pc) + (ONE - t) * math.log(ONE - pc)
                    if fused:  # through the sigmoid that made p: (p - t) / N
                        delta[r, k] = (p - t) / nf
                    else:
                        delta[r, k] = (pc - t) / (pc * (ONE - pc)) / nf
            elif code == L1:
                for k in range(K):
                    d = pred[r, k] - Tg[s, k]
                    loss += abs(d)
                    delta[r, k] = (ONE if d > ZERO else (-ONE if d < ZERO else ZERO)) / nf
            elif code == HUBER:
                for k in range(K):
                    d = pred[r, k] - Tg[s, k]
                    a = abs(d)
                    loss += HALF * a * a if a < cparam else cparam * (a - HALF * cparam)
                    delta[r, k] = min(max(d, -cparam), cparam) / nf
            elif code == HINGE:  # c = 2 t - 1 of the one-hot row: +1 for the label's class
                for k in range(K):
                    c = TWO * Tg[s, k] - ONE
                    m = ONE - c * pred[r, k]
                    loss += max(ZERO, m)
                    delta[r, k] = (-c if m > ZERO else ZERO) / nf
            elif code == POISSON:  # on log-rates: exp(s) - t s + t log t - t; (exp(s) - t) / N
                for k in range(K):
                    z = pred[r, k]
                    t = Tg[s, k]
                    e = math.exp(z)
                    loss += e - t * z - t
                    if t > ZERO:
                        loss += t * math.log(t)
                    delta[r, k] = (e - t) / nf
            if weighted:
                w = sw[s]
                loss = loss * w
                for k in range(K):
                    delta[r, k] = delta[r, k] * w
            if dact >= 0 and not (code == BCE and fused):
                for k in range(K):
                    delta[r, k] = act_bwd(dact, pred[r, k], delta[r, k], slope)
            c = 0
            if acc_mode == 1:  # argmax (first maximum, as numpy) against the label
                best = 0
                for k in range(1, K):
                    if pred[r, k] > pred[r, best]:
                        best = k
                c = 1 if best == labels[s] else 0
            elif acc_mode == 2:  # BCE: (p > 0.5) == (t > 0.5) over all outputs
                for k in range(K):
                    if (pred[r, k] > HALF) == (Tg[s, k] > HALF):
                        c += 1
            rowloss[start + r] = loss
            rowcorrect[start + r] = c

    def drop_k(q, y, skey, thr, scale, c0):
        # q[i] = y[i] * scale where Dropout keeps unit i (counter c0 + i), else 0; flat (n,)
        for i in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
            q[i] = y[i] * scale if keep(skey, c0 + i, thr) else ZERO

    def drop_bwd_k(d, v, code, slope, skey, thr, scale, c0):
        # d = act_bwd(code, v, d * mask * scale) in place; v the activation's output (or input)
        for i in range(cuda.grid(1), d.shape[0], cuda.gridsize(1)):
            g = d[i] * scale if keep(skey, c0 + i, thr) else ZERO
            if code != IDENTITY:
                g = act_bwd(code, v[i], g, slope)
            d[i] = g

    def update_k(code, p, g, s1, s2, s3, lr, wd, mom, c1, c2, eps, b1, b2, h1, h2, lr_decay, n_decay):
        # One step of optimizer ``code`` (layout.OPT_*), in place; the scalars are the hp
        # vector's slots (kernels/layout.py). Weight decay g + wd * p applies to the first
        # n_decay entries (the weights; AdamW instead shrinks them, p *= 1 - lr wd). The code
        # is the same for every thread, so the branches never diverge.
        for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
            gi = g[i]
            pi = p[i]
            if i < n_decay:
                if code == OPT_ADAMW:
                    pi = pi * (ONE - lr * wd)
                else:
                    gi = gi + wd * pi
            if code == OPT_SGD:
                pi = pi - lr * gi
            elif code == OPT_ADAM or code == OPT_ADAMW:
                # m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr (m/h1) / (sqrt(v/h2) + eps)
                mi = s1[i] * b1
                mi = mi + c1 * gi
                vi = s2[i] * b2
                vi = vi + c2 * gi * gi
                if abs(mi) < TINY:
                    mi = ZERO
                if vi < TINY:
                    vi = ZERO
                s1[i] = mi
                s2[i] = vi
                pi = pi - lr * (mi / h1) / (math.sqrt(vi / h2) + eps)
            elif code == OPT_RMSPROP or code == OPT_CENTERED_RMSPROP:  # b2: alpha, c2: 1 - alpha
                centered = code == OPT_CENTERED_RMSPROP
                use_mom = mom > ZERO
                ai = s2[i] if centered else ZERO
                bi = (s3[i] if centered else s2[i]) if use_mom else ZERO
                dp, vi, ai, bi = rmsprop_step(gi, s1[i], ai, bi, centered, use_mom, b2, c2, mom, eps, lr)
                s1[i] = vi
                if centered:
                    s2[i] = ai
                if use_mom:
                    if centered:
                        s3[i] = bi
                    else:
                        s2[i] = bi
                pi = pi - dp
            elif code == OPT_ADAGRAD:  # h1: 1 + (t - 1) lr_decay
                dp, s1[i] = adagrad_step(gi, s1[i], lr / h1, eps)
                pi = pi - dp
            elif code == OPT_ADADELTA:  # b2: rho, c2: 1 - rho
                dp, s1[i], s2[i] = adadelta_step(gi, s1[i], s2[i], b2, c2, eps, lr)
                pi = pi - dp
            else:
                # v = mom v - lr g; p += v (seed 003), or p += mom v - lr g (Nesterov)
                vi = s1[i] * mom
                vi = vi - lr * gi
                if abs(vi) < TINY:
                    vi = ZERO
                s1[i] = vi
                if code == OPT_NESTEROV:
                    pi = pi + (mom * vi - lr * gi)
                else:
                    pi = pi + vi
            p[i] = pi

    return {f.__name__: f for f in (cost_rows_k, drop_k, drop_bwd_k, update_k)}
