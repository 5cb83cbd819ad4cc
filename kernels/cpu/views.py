"""Views of the flat buffers that the layer table (:mod:`fastnn.kernels.layout`) describes."""

from fastnn.kernels.cpu.jit import jit
from fastnn.kernels.layout import BOFF, NIN, NOUT, WOFF


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
