"""The one translator from the API to the kernels: network, cost and optimizer -> arrays.

The compiled backends (``numba``, ``cuda``) train a plain MLP through a :class:`Plan`:

* the **layer table** ``spec`` (one int64 row per Linear: sizes, offsets of W and b in
  the flat parameter buffer, the activation code, offsets of its batch buffers in a
  workspace, the Dropout after it), ``slopes`` and the Dropout ``scales``;
* the optimizer's **hyper-parameters** ``hp`` and code, in the layout that
  :mod:`fastnn.kernels.layout` defines once;
* the **targets** in the kernels' form (float rows, or integer labels).

:meth:`Plan.model`, :meth:`Plan.optim` and :meth:`Plan.data` wrap them, with the
buffers, in the named tuples the epoch kernels take. Nothing below this module sees a
Layer, a Cost or an Optimizer.
"""

import numpy as np

from fastnn.kernels import layout
from fastnn.kernels.layout import N_COLS, N_HP, NO_ACT, NO_BIAS, NO_DROP, OPT_KINDS

#: Activation codes the fused epochs implement (Sign is forward-only).
FUSED_ACTIVATIONS = tuple(c for c in range(len(layout.ACTIVATION_NAMES)) if c != layout.SIGN)


def _blocks(net):
    """The network as blocks ``[linear, activation or None, dropout or None]``, or None when it
    is not Linear layers each followed by at most one activation and then at most one Dropout."""
    from fastnn.layers import Activation, Dropout, Linear

    blocks = []
    for layer in net.layers:
        if isinstance(layer, Linear):
            blocks.append([layer, None, None])
        elif not blocks or blocks[-1][2] is not None:
            return None
        elif isinstance(layer, Activation) and blocks[-1][1] is None:
            blocks[-1][1] = layer
        elif isinstance(layer, Dropout):
            blocks[-1][2] = layer
        else:
            return None
    return blocks or None


def is_plain_mlp(net):
    """True when ``net`` is Linear layers each followed by at most one activation and at
    most one Dropout (the shape every fused kernel handles; predict ignores the Dropouts)."""
    return _blocks(net) is not None


def fusable(net, cost=None, optimizer=None):
    """Whether the fused epochs cover this network (and cost and optimizer, when given).

    They need a plain MLP of the built-in activations (no Sign) whose last layer is not
    a Dropout, one of the built-in costs and optimizers (exactly: a subclass may change
    the math), and flat, writeable state buffers of the parameters' shape and dtype.
    """
    from fastnn import costs, optimizers
    from fastnn.layers import Activation, Dropout

    if not is_plain_mlp(net) or isinstance(net.layers[-1], Dropout):
        return False
    if any(isinstance(layer, Activation) and layer.code not in FUSED_ACTIVATIONS for layer in net.layers):
        return False
    if not (net.params.flags.c_contiguous and net.grads.flags.c_contiguous):
        return False
    if cost is not None and type(cost) not in costs.BUILTIN:
        return False
    if optimizer is None:
        return True
    if type(optimizer) not in optimizers.BUILTIN or optimizer.kind not in OPT_KINDS:
        return False
    for name in optimizer.state_names():
        s = getattr(optimizer, name, None)
        if (not isinstance(s, np.ndarray) or s.dtype != net.dtype or s.shape != net.params.shape
                or not s.flags.c_contiguous or not s.flags.writeable):
            return False
    return True


def layer_table(net, batch_size, transposed=True):
    """(spec int64 (L, N_COLS), slopes float64 (L,), workspace length) of a plain MLP.

    The workspace holds each layer's batch output Y and delta D (``batch_size`` rows), the
    pre-activation Z of the layers whose activation's backward needs it, the output Q of
    each active Dropout (in training mode, ``p > 0``), and with ``transposed`` a (nout,
    nin) scratch for W.T of every layer after the first (the row-blocked epochs' input
    gradient).
    """
    rows, slopes = [], []
    w_off, b_off, ws = 0, net.n_decay, 0

    def take(n):
        nonlocal ws
        ws += n
        return ws - n

    for layer, act, drop in _blocks(net):
        n = batch_size * layer.outsize
        code = act.code if act is not None else NO_ACT
        y_off, d_off = take(n), take(n)
        wt_off = take(layer.n_weights) if transposed and rows else -1
        z_off = take(n) if code in layout.NEEDS_INPUT else -1
        on = drop is not None and drop.training and drop.p > 0
        thr, stream, q_off = ((layout.dropout_threshold(drop.p), net.layers.index(drop), take(n)) if on
                              else (NO_DROP, -1, -1))
        rows.append([layer.insize, layer.outsize, w_off, b_off if layer.bias else NO_BIAS, code, y_off, d_off,
                     wt_off, z_off, thr, stream, q_off])
        slopes.append(float(act.param) if act is not None else 0.0)
        w_off += layer.n_weights
        b_off += layer.outsize if layer.bias else 0
    return np.array(rows, np.int64).reshape(-1, N_COLS), np.array(slopes, np.float64), ws


def layer_scales(net):
    """float64 (L,): each Linear block's Dropout scale ``1 / (1 - p)`` (1 without one)."""
    return np.array([layout.dropout_scale(d.p) if d is not None else 1.0 for _, _, d in _blocks(net)], np.float64)


def kernel_targets(targets, n_out, dtype):
    """Targets in the kernels' form: ``(use_int, T, has_acc, labels)``.

    ``use_int`` when ``targets.T`` holds integer labels (cross-entropy); ``T`` float
    (N, K), or a (1, K) dummy with labels; ``labels`` int64 (N,) for argmax accuracy
    (empty for BCE, which counts from ``T``, and for regression).
    """
    T = targets.T
    use_int = T.ndim == 1
    Tk = np.zeros((1, n_out), dtype) if use_int else np.ascontiguousarray(T, dtype=dtype)
    has_acc = targets.labels is not None
    if use_int:
        labels = np.ascontiguousarray(T, dtype=np.int64)
    elif has_acc and targets.labels.ndim == 1:
        labels = np.ascontiguousarray(targets.labels, dtype=np.int64)
    else:
        labels = np.zeros(0, np.int64)
    return use_int, Tk, has_acc, labels


def hp_of(optimizer):
    """The hyper-parameters of ``optimizer`` at its current step, in the layout's order (float64)."""
    o = optimizer
    code = OPT_KINDS.index(o.kind)
    # RMSprop's alpha and Adadelta's rho take beta2's slots (layout.py)
    beta2 = getattr(o, "alpha", getattr(o, "rho", getattr(o, "beta2", 0.0)))
    return layout.hp_values(o.lr, o.weight_decay, getattr(o, "momentum", 0.0), getattr(o, "beta1", 0.0), beta2,
                            getattr(o, "eps", 1.0), getattr(o, "t", 0), getattr(o, "lr_decay", 0.0), code)


def fill_hp(hp, optimizer):
    """Fill ``hp`` (N_HP,) from ``optimizer``'s current hyper-parameters and step count."""
    hp[:] = hp_of(optimizer)
    return hp


def batch_weights(weight, order, batch_size, decay_per_weight):
    """Per-epoch sample-weight factors for the kernels: ``(s, wdf)``.

    With weights ``w`` (N,), batch ``b`` of ``order`` (its samples ``i``, ``B`` of them) trains
    on ``sum_i w_i l_i / sum_i w_i``: ``s[i] = (w_i B) / sum w`` multiplies sample i's loss
    and delta, whose mean the kernels take (float64 (N,), by sample; None without weights).
    ``wdf[b] = batch_size / sum w`` (``sum w = B`` without weights) scales batch b's weight
    decay when ``decay_per_weight`` (scikit-learn's L2 term ``alpha / sum w``; else None).
    A batch whose weights sum to 0 gets ``s = 0`` and ``wdf = 0``: it changes nothing but
    the optimizer's state.
    """
    n = order.shape[0]
    starts = np.arange(0, n, batch_size)
    sizes = np.diff(np.append(starts, n)).astype(np.float64)  # B of each batch
    rep = sizes.astype(np.int64)
    if weight is None:
        sums, s = sizes, None
    else:
        wo = weight[order]
        sums = np.add.reduceat(wo, starts) if n else sizes
        per_batch = np.where(sums > 0, sums, np.inf)  # a zero-sum batch: factors 0
        s = np.empty(n, np.float64)
        s[order] = wo * np.repeat(sizes, rep) / np.repeat(per_batch, rep)
    if not decay_per_weight:
        return s, None
    return s, batch_size / np.where(sums > 0, sums, np.inf)


class Plan:
    """A plain MLP's training in arrays and numbers (see the module docstring).

    Parameters
    ----------
    net : Sequential (a plain MLP, see :func:`fusable`)
    cost : Cost
    optimizer : Optimizer
    targets : fastnn.costs.Targets
    batch_size : int
    transposed : bool
        Reserve W.T scratch in the workspace (see :func:`layer_table`).
    """

    def __init__(self, net, cost, optimizer, targets, batch_size, transposed=True):
        dt = net.dtype
        self.dtype = dt
        self.spec, self.slopes, self.ws_size = layer_table(net, batch_size, transposed)
        self.scales, self.key = layer_scales(net), net.dropout_key
        self.opt_code = OPT_KINDS.index(optimizer.kind)
        self.hp = np.zeros(N_HP, dt)
        self.hp64 = np.zeros(N_HP, np.float64)
        self.n_decay = int(net.n_decay)
        self.cost_code = int(cost.code)
        self.cparam = float(cost.param)
        self.fused_last = bool(cost.fuses_with(net.layers[-1]))
        self.eps = float(np.finfo(dt).eps)
        self.use_int, self.T, self.has_acc, self.labels = kernel_targets(targets, net.outsize, dt)
        self._empty = np.zeros(0, dt)
        self._no_wdf = np.zeros(0, np.float64)

    def model(self, params, grads, ws):
        """The network for the kernels: a :class:`fastnn.kernels.layout.Model`."""
        return layout.Model(params, grads, self.spec, self.slopes, ws, self.scales, self.key)

    def optim(self, optimizer, s1=None, s2=None, s3=None):
        """The optimizer for the kernels (a :class:`~fastnn.kernels.layout.Optim`), with ``hp``
        refreshed from its current values (schedules change ``lr`` between calls). The state
        buffers are ``optimizer``'s own unless ``s1``... are given (device copies), in the
        order of ``optimizer.state_names()``."""
        if s1 is None:  # host buffers; the compiled CPU kernels take empty arrays for unused ones
            states = [getattr(optimizer, name) for name in optimizer.state_names()] + [self._empty] * 3
        else:  # device buffers; unused ones stay None
            states = [s1, s2, s3]
        self.hp64[:] = hp_of(optimizer)
        self.hp[:] = self.hp64
        return layout.Optim(self.opt_code, self.hp, states[0], states[1], self.n_decay, states[2], self.hp64)

    def weights(self, s, wdf):
        """``(sw, wdf)`` for :meth:`data` from :func:`batch_weights`' factors: ``s`` in the
        parameters' dtype, ``wdf`` float64; empty arrays for None."""
        return (self._empty if s is None else np.ascontiguousarray(s, dtype=self.dtype),
                self._no_wdf if wdf is None else np.ascontiguousarray(wdf, dtype=np.float64))

    def data(self, X, T=None, labels=None):
        """The data and cost for the kernels: a :class:`~fastnn.kernels.layout.Data`, without
        sample weights (the runners' ``weigh`` puts each epoch's in)."""
        return layout.Data(X, self.T if T is None else T, self.labels if labels is None else labels,
                           self.use_int, self.has_acc, self.cost_code, self.fused_last, self.eps, self.cparam,
                           self._empty, self._no_wdf)
