"""Views of the flat buffers that the layer table (:mod:`fastnn.kernels.layout`) describes,
and the batch steps that the minibatch epochs share through them."""

from fastnn.kernels.cpu.jit import jit
from fastnn.kernels.cpu.linear import bwd_bias
from fastnn.kernels.cpu.rows import act_backward_row, loss_and_delta_rows
from fastnn.kernels.layout import ACT, BOFF, DOFF, NIN, NO_ACT, NOUT, WOFF, YOFF


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
    code = spec[L - 1, ACT]
    if code != NO_ACT and not data.fused_last:
        for r in range(B):
            act_backward_row(code, P[r], D[r], model.slopes[L - 1])
    return loss, correct


@jit
def layer_grads(model, l, B):
    """Layer ``l``'s batch delta D (B, nout) and weight-gradient view dW (nin, nout); its
    bias gradient ``db = sum_n D[n]`` is written into ``grads`` (when it has a bias)."""
    spec, grads = model.spec, model.grads
    D = rows2d(model.ws, spec[l, DOFF], B, spec[l, NOUT])
    if spec[l, BOFF] >= 0:
        bwd_bias(bias(grads, spec, l), D, B)
    return D, weights(grads, spec, l)
