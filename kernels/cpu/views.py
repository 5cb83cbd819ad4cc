"""Views of the flat buffers that the layer table (:mod:`fastnn.kernels.layout`) describes,
and the batch steps that the minibatch epochs share through them."""

import math

from fastnn.kernels.cpu.dropout import dropout_rows
from fastnn.kernels.cpu.jit import jit
from fastnn.kernels.cpu.linear import bwd_bias
from fastnn.kernels.cpu.rows import act_backward_row, act_forward_row, loss_and_delta_rows
from fastnn.kernels.layout import ACT, BOFF, DOFF, DROP, DSTREAM, NIN, NO_ACT, NOUT, QOFF, WOFF, YOFF, ZOFF


@jit
def weights(buf, spec, l):
    """W (nin, nout) of layer ``l``: a view of the flat ``params`` (or ``grads``) buffer."""
    nin, nout = spec[l, NIN], spec[l, NOUT]
    o = spec[l, WOFF]
    return buf[o:o + nin * nout].reshape((nin, nout))


@jit
def bias(buf, spec, l):
    """b (nout,) of layer ``l`` (empty when it has none)."""
    o = spec[l, BOFF]
    if o < 0:
        return buf[0:0]
    return buf[o:o + spec[l, NOUT]]


@jit
def rows2d(buf, off, m, n):
    """A C-contiguous (m, n) view of ``buf[off:off + m*n]`` (np.dot needs contiguous operands)."""
    return buf[off:off + m * n].reshape((m, n))


@jit
def batch_rows(order, bi, bs):
    """The sample indices of batch ``bi`` of ``order`` (the last batch may be short)."""
    s = bi * bs
    return order[s:min(order.shape[0], s + bs)]


@jit
def layer_out(model, l, B):
    """What layer ``l`` hands on, (B, nout): its Dropout's output Q when it has one, else Y."""
    spec = model.spec
    off = spec[l, QOFF] if spec[l, QOFF] >= 0 else spec[l, YOFF]
    return rows2d(model.ws, off, B, spec[l, NOUT])


@jit
def finish_forward(model, l, B, pos0, b, has_bias):
    """Layer ``l``'s Y (B, nout) holds ``A @ W``: add ``b`` (when ``has_bias``), keep the
    pre-activation in Z (layers whose activation's backward needs it), apply the
    activation, then the Dropout into Q (rows at epoch positions ``pos0 + r``)."""
    spec, ws = model.spec, model.ws
    nout, code = spec[l, NOUT], spec[l, ACT]
    Y = rows2d(ws, spec[l, YOFF], B, nout)
    keep_z = spec[l, ZOFF] >= 0
    Z = rows2d(ws, spec[l, ZOFF] if keep_z else spec[l, YOFF], B, nout)
    for r in range(B):
        y = Y[r]
        if has_bias:
            for j in range(nout):
                y[j] += b[j]
        if keep_z:
            Z[r, :] = y
        if code != NO_ACT:
            act_forward_row(code, y, model.slopes[l])
    if spec[l, DROP] >= 0:
        dropout_rows(rows2d(ws, spec[l, QOFF], B, nout), Y, model.key[0], spec[l, DSTREAM], pos0,
                     spec[l, DROP], model.scales[l])


@jit
def delta_through(model, l, B, pos0):
    """Layer ``l``'s D (B, nout) holds dJ/d(what it hands on): back through its Dropout and
    its activation (from Y, or from Z when the activation needs its input) to dJ/dz."""
    spec, ws = model.spec, model.ws
    nout, code = spec[l, NOUT], spec[l, ACT]
    D = rows2d(ws, spec[l, DOFF], B, nout)
    if spec[l, DROP] >= 0:
        dropout_rows(D, D, model.key[0], spec[l, DSTREAM], pos0, spec[l, DROP], model.scales[l])
    if code != NO_ACT:
        V = rows2d(ws, spec[l, ZOFF] if spec[l, ZOFF] >= 0 else spec[l, YOFF], B, nout)
        for r in range(B):
            act_backward_row(code, V[r], D[r], model.slopes[l])


@jit
def output_delta(model, data, rows, B):
    """Loss (summed over the batch) and correct count of batch ``rows``, with the last
    layer's delta D = dJ/d(its pre-activation) written into the workspace: the cost's
    gradient, through the last activation's backward unless the cost already fused it.
    """
    spec, ws = model.spec, model.ws
    L = spec.shape[0]
    K = spec[L - 1, NOUT]
    P = rows2d(ws, spec[L - 1, YOFF], B, K)
    D = rows2d(ws, spec[L - 1, DOFF], B, K)
    loss, correct = loss_and_delta_rows(data, P, D, rows, B)
    if not data.fused_last:  # (the last layer has no Dropout: plan.fusable)
        delta_through(model, L - 1, B, 0)
    return loss, correct


@jit
def tally(model, data, rows, B, bi, loss, correct, bad):
    """:func:`output_delta` of batch ``bi``, added to an epoch's running ``(loss, correct, bad)``
    (``bad``: the first batch whose loss is not finite, or -1)."""
    ls, c = output_delta(model, data, rows, B)
    if bad < 0 and not math.isfinite(ls):
        bad = bi
    return loss + ls, correct + c, bad


@jit
def layer_grads(model, l, B):
    """Layer ``l``'s batch delta D (B, nout) and weight-gradient view dW (nin, nout); its
    bias gradient ``db = sum_n D[n]`` is written into ``grads`` (when it has a bias)."""
    spec, grads = model.spec, model.grads
    D = rows2d(model.ws, spec[l, DOFF], B, spec[l, NOUT])
    if spec[l, BOFF] >= 0:
        bwd_bias(bias(grads, spec, l), D, B)
    return D, weights(grads, spec, l)
