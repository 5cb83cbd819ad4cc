"""The one translator from the API to the kernels: network, cost and optimizer -> arrays.

The compiled backends (``numba``, ``cuda``) train a plain MLP through a :class:`Plan`:

* the **layer table** ``spec`` (one int64 row per Linear: sizes, offsets of W and b in
  the flat parameter buffer, the activation code, offsets of its batch buffers in a
  workspace) and ``slopes``;
* the optimizer's **hyper-parameters** ``hp`` and code, in the layout that
  :mod:`fastnn.kernels.layout` defines once;
* the **targets** in the kernels' form (float rows, or integer labels).

:meth:`Plan.model`, :meth:`Plan.optim` and :meth:`Plan.data` wrap them, with the
buffers, in the named tuples the epoch kernels take. Nothing below this module sees a
Layer, a Cost or an Optimizer.
"""

import numpy as np

from fastnn.kernels import layout
from fastnn.kernels.layout import N_COLS, N_HP, NO_ACT, NO_BIAS, OPT_KINDS

#: Activation codes the fused epochs implement (Sign is forward-only).
FUSED_ACTIVATIONS = (layout.IDENTITY, layout.SIGMOID, layout.TANH, layout.RELU, layout.LEAKY_RELU,
                     layout.SOFTMAX)


def is_plain_mlp(net):
    """True when ``net`` is Linear layers each followed by at most one activation
    (the shape every fused training kernel handles)."""
    from fastnn.layers import Activation, Linear

    prev_linear = False
    for layer in net.layers:
        if isinstance(layer, Linear):
            prev_linear = True
        elif isinstance(layer, Activation):
            if not prev_linear:
                return False
            prev_linear = False
        else:
            return False
    return bool(net.layers) and isinstance(net.layers[0], Linear)


def fusable(net, cost=None, optimizer=None):
    """Whether the fused epochs cover this network (and cost and optimizer, when given).

    They need a plain MLP of the built-in activations (no Sign), one of the built-in
    costs and optimizers (exactly: a subclass may change the math), and flat,
    writeable state buffers of the parameters' shape and dtype.
    """
    from fastnn.costs import BCE, MSE, CrossEntropy
    from fastnn.layers import Activation
    from fastnn.optimizers import SGD, Adam

    if not is_plain_mlp(net):
        return False
    if any(isinstance(layer, Activation) and layer.code not in FUSED_ACTIVATIONS for layer in net.layers):
        return False
    if not (net.params.flags.c_contiguous and net.grads.flags.c_contiguous):
        return False
    if cost is not None and type(cost) not in (MSE, CrossEntropy, BCE):
        return False
    if optimizer is None:
        return True
    if type(optimizer) not in (SGD, Adam) or optimizer.kind not in OPT_KINDS:
        return False
    for name in optimizer.state_names():
        s = getattr(optimizer, name, None)
        if (not isinstance(s, np.ndarray) or s.dtype != net.dtype or s.shape != net.params.shape
                or not s.flags.c_contiguous or not s.flags.writeable):
            return False
    return True


def layer_table(net, batch_size, transposed=True):
    """(spec int64 (L, N_COLS), slopes float64 (L,), workspace length) of a plain MLP.

    The workspace holds each layer's batch output Y and delta D (``batch_size`` rows),
    and with ``transposed`` a (nout, nin) scratch for W.T of every layer after the
    first (the row-blocked epochs' input gradient).
    """
    from fastnn.layers import Activation, Linear

    layers = net.layers
    rows, slopes = [], []
    w_off, b_off, ws = 0, net.n_decay, 0
    for k, layer in enumerate(layers):
        if not isinstance(layer, Linear):
            continue
        nxt = layers[k + 1] if k + 1 < len(layers) else None
        act = nxt.code if isinstance(nxt, Activation) else NO_ACT
        slope = nxt.slope if isinstance(nxt, Activation) else 0.0
        y_off, d_off = ws, ws + batch_size * layer.outsize
        ws = d_off + batch_size * layer.outsize
        wt_off = -1
        if transposed and rows:
            wt_off, ws = ws, ws + layer.n_weights
        rows.append([layer.insize, layer.outsize, w_off, b_off if layer.bias else NO_BIAS, act,
                     y_off, d_off, wt_off])
        slopes.append(float(slope))
        w_off += layer.n_weights
        b_off += layer.outsize if layer.bias else 0
    return np.array(rows, np.int64).reshape(-1, N_COLS), np.array(slopes, np.float64), ws


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


def fill_hp(hp, optimizer):
    """Fill ``hp`` (N_HP,) from ``optimizer``'s current hyper-parameters and step count."""
    o = optimizer
    hp[:] = layout.hp_values(o.lr, o.weight_decay, getattr(o, "momentum", 0.0), getattr(o, "beta1", 0.0),
                             getattr(o, "beta2", 0.0), getattr(o, "eps", 1.0), getattr(o, "t", 0))
    return hp


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
        self.opt_code = OPT_KINDS.index(optimizer.kind)
        self.hp = np.zeros(N_HP, dt)
        self.n_decay = int(net.n_decay)
        self.beta1 = float(getattr(optimizer, "beta1", 0.0))
        self.beta2 = float(getattr(optimizer, "beta2", 0.0))
        self.cost_code = int(cost.code)
        self.fused_last = bool(cost.fuses_with(net.layers[-1]))
        self.eps = float(np.finfo(dt).eps)
        self.use_int, self.T, self.has_acc, self.labels = kernel_targets(targets, net.outsize, dt)
        self._empty = np.zeros(0, dt)

    def model(self, params, grads, ws):
        """The network for the kernels: a :class:`fastnn.kernels.layout.Model`."""
        return layout.Model(params, grads, self.spec, self.slopes, ws)

    def optim(self, optimizer, s1=None, s2=None):
        """The optimizer for the kernels (a :class:`~fastnn.kernels.layout.Optim`), with ``hp``
        refreshed from its current values (schedules change ``lr`` between calls). The state
        buffers are ``optimizer``'s own unless ``s1``/``s2`` are given (device copies)."""
        if s1 is None:
            names = optimizer.state_names()
            s1 = getattr(optimizer, names[0]) if names else self._empty
            s2 = getattr(optimizer, names[1]) if len(names) > 1 else self._empty
        fill_hp(self.hp, optimizer)
        return layout.Optim(self.opt_code, self.hp, s1, s2, self.n_decay, self.beta1, self.beta2)

    def data(self, X, T=None, labels=None):
        """The data and cost for the kernels: a :class:`~fastnn.kernels.layout.Data`."""
        return layout.Data(X, self.T if T is None else T, self.labels if labels is None else labels,
                           self.use_int, self.has_acc, self.cost_code, self.fused_last, self.eps)
