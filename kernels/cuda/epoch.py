"""Training epochs on the GPU: the per-batch launch sequence, with no host transfer.

:func:`train` runs batches ``b0 <= b < b1`` of a sample order like the CPU's
``kernels/cpu/epoch_*.train``: per batch it gathers the rows by index, runs a fused
matmul + bias + activation per layer (and a Dropout kernel after a Dropout), a per-row
cost kernel (loss, correct count and the output delta), the weight and input gradients
with the activation backward fused in (a separate pass only after a Dropout), the bias
sums, and one optimizer update. Layers whose activation's backward needs its input
(GELU, SiLU) keep their pre-activation in a buffer of their own. The losses and correct counts stay on the
device, one entry per sample, and are reduced once per call.

The network comes as a :class:`fastnn.kernels.layout.Model` whose ``params`` and
``grads`` are device arrays; :class:`State` holds the device views of each layer's
tensors (from the layer table) and the batch buffers, made once per ``fit``.
"""

import math

import numpy as np
from numba import cuda

from fastnn.kernels.cuda import launch
from fastnn.kernels.layout import (
    ACT, BCE, BOFF, DROP, DSTREAM, IDENTITY, NEEDS_INPUT, NIN, NO_ACT, NOUT, SOFTMAX, WOFF, ZOFF,
    WD, dropout_stream_key, refresh_step)


class DeviceLayer:
    """One Linear, the activation and the Dropout after it: device views of W, b, dW, db (b, db
    None without bias); ``needs_z`` when the activation's backward needs its input, ``drop``
    the Dropout's keep threshold (None without one), ``stream`` and ``scale``."""

    def __init__(self, spec_row, slope, d_params, d_grads, scale=1.0):
        nin, nout = int(spec_row[NIN]), int(spec_row[NOUT])
        self.insize, self.outsize = nin, nout
        act = int(spec_row[ACT])
        self.code = IDENTITY if act == NO_ACT else act
        self.slope = float(slope)
        self.has_act = self.code != IDENTITY
        self.needs_z = int(spec_row[ZOFF]) >= 0 and self.code in NEEDS_INPUT
        self.drop = int(spec_row[DROP]) if int(spec_row[DROP]) >= 0 else None
        self.stream, self.scale = int(spec_row[DSTREAM]), float(scale)
        wo, bo = int(spec_row[WOFF]), int(spec_row[BOFF])
        self.W = d_params[wo:wo + nin * nout].reshape(nin, nout)
        self.dW = None if d_grads is None else d_grads[wo:wo + nin * nout].reshape(nin, nout)
        self.b = None if bo < 0 else d_params[bo:bo + nout]
        self.db = None if (bo < 0 or d_grads is None) else d_grads[bo:bo + nout]


def device_layers(model):
    """The :class:`DeviceLayer` of every row of ``model.spec`` (``model.grads`` may be None)."""
    return [DeviceLayer(model.spec[l], model.slopes[l], model.params, model.grads,
                        1.0 if model.scales is None else model.scales[l])
            for l in range(model.spec.shape[0])]


def forward(layers, x, outs):
    """Inference: x (B, in) device -> outs[i] (B, out_i) = each layer's activation output (no
    Dropout); returns the last."""
    for L, y in zip(layers, outs):
        launch.linear_forward(y, x, L.W, L.b, L.code, L.slope)
        x = y
    return x


def _flat(a):
    return a.reshape(a.shape[0] * a.shape[1])


def _train_forward(layers, xb, acts, zs, qs, skeys, start):
    """Training forward of a batch at epoch position ``start``: Y (and Z, Q) of every layer."""
    x = xb
    for L, y, z, q, sk in zip(layers, acts, zs, qs, skeys):
        if L.needs_z:  # keep the pre-activation: matmul + bias into Z, then the activation
            launch.matmul(z, x, L.W, bias=L.b)
            launch.activation_forward(_flat(y), _flat(z), L.code, L.slope)
        else:
            launch.linear_forward(y, x, L.W, L.b, L.code, L.slope)
        if L.drop is not None:
            launch.dropout(_flat(q), _flat(y), sk, L.drop, L.scale, start * L.outsize)
            y = q
        x = y


class State:
    """Device buffers of one ``fit``: layer views and batch buffers for batches of up to ``cap`` rows.

    Parameters
    ----------
    model : Model with device ``params``/``grads``
    n : int
        Samples in the training set (one loss and correct count each).
    cap : int
        Rows of the largest batch.
    """

    def __init__(self, model, n, cap):
        dt = model.params.dtype
        self.layers = device_layers(model)
        self.model = model
        self.xb = cuda.device_array((cap, self.layers[0].insize), dt)
        self.acts = [cuda.device_array((cap, L.outsize), dt) for L in self.layers]
        self.deltas = [cuda.device_array((cap, L.outsize), dt) for L in self.layers]
        # scratch for softmax backward (not fusable into a matmul epilogue)
        self.tmps = [cuda.device_array((cap, L.outsize), dt) if L.code == SOFTMAX else None
                     for L in self.layers]
        # pre-activations (activations whose backward needs the input), Dropout outputs
        self.zs = [cuda.device_array((cap, L.outsize), dt) if L.needs_z else None for L in self.layers]
        self.qs = [cuda.device_array((cap, L.outsize), dt) if L.drop is not None else None for L in self.layers]
        self.rowloss = cuda.device_array(max(n, 1), np.float64)
        self.rowcorrect = cuda.device_array(max(n, 1), np.int64)
        self.out_loss = cuda.device_array(1, np.float64)
        self.out_correct = cuda.device_array(1, np.int64)
        self._views = {}

    def views(self, nb):
        """Row slices [:nb] of the batch buffers (cached: only two sizes per fit)."""
        v = self._views.get(nb)
        if v is None:
            cut = (lambda a: None if a is None else a[:nb])
            v = (self.xb[:nb], [cut(a) for a in self.acts], [cut(a) for a in self.deltas],
                 [cut(a) for a in self.tmps], [cut(a) for a in self.zs], [cut(a) for a in self.qs])
            self._views[nb] = v
        return v


def _backward(layers, xb, bufs, skeys, start):
    """Weight, bias and input gradients of every layer, from the output delta in deltas[-1]."""
    acts, deltas, tmps, zs, qs = bufs
    for i in range(len(layers) - 1, -1, -1):
        L, dz = layers[i], deltas[i]
        if i == 0:
            a = xb
        else:
            a = qs[i - 1] if layers[i - 1].drop is not None else acts[i - 1]
        launch.linear_backward_weight(L.dW, a, dz)
        if L.db is not None:
            launch.linear_backward_bias(L.db, dz)
        if i > 0:  # never the first layer's input gradient
            P, j = layers[i - 1], i - 1
            v = zs[j] if P.needs_z else acts[j]  # what P's activation backward reads
            if P.drop is not None:  # dx, then mask and activation backward in one pass
                out = tmps[j] if P.code == SOFTMAX else deltas[j]
                launch.linear_backward_input(out, dz, L.W)
                launch.dropout_backward(_flat(out), _flat(v), IDENTITY if P.code == SOFTMAX else P.code, P.slope,
                                        skeys[j], P.drop, P.scale, start * P.outsize)
                if P.code == SOFTMAX:
                    launch.softmax_backward(deltas[j], acts[j], tmps[j])
            elif P.code == SOFTMAX:
                launch.linear_backward_input(tmps[j], dz, L.W)
                launch.softmax_backward(deltas[j], acts[j], tmps[j])
            else:
                launch.linear_backward_input(deltas[j], dz, L.W, y_prev=v, dact=P.code if P.has_act else -1,
                                             slope=P.slope)


def train(state, opt, data, order, b0, b1, bs, t0):
    """Train batches ``b0 <= b < b1`` of ``order`` (device int64); returns (loss_sum, correct, bad).

    opt: a :class:`~fastnn.kernels.layout.Optim` with device state buffers and the host
    ``hp`` (Adam's bias corrections are refreshed in it per step); data: a
    :class:`~fastnn.kernels.layout.Data` with device ``X`` (N, F), dense float targets
    ``T`` (N, K) and ``labels`` (N,) int64 for argmax accuracy; ``t0`` the optimizer's step
    count before these batches. Loss and correct count are measured on each batch's
    forward pass before its update. ``bad`` is the first batch whose loss is not finite
    (training diverged), or -1; the per-row losses are read back only in that case.
    """
    layers, n = state.layers, data.X.shape[0]
    p, g = state.model.params, state.model.grads
    key = state.model.key
    skeys = [dropout_stream_key(int(key[0]), L.stream) if L.drop is not None else 0 for L in layers]
    last = layers[-1]
    fused = data.fused_last
    last_softmax = (not fused) and last.code == SOFTMAX
    # the last activation's backward in the cost kernel, unless it needs its input (then apart)
    last_z = last.has_act and not fused and last.needs_z
    dact_last = last.code if (last.has_act and not fused and not last_softmax and not last_z) else -1
    acc_mode = 0 if not data.has_acc else (2 if data.cost == BCE else 1)
    for b in range(b0, b1):
        start = b * bs
        nb = min(bs, n - start)
        xb, acts, deltas, tmps, zs, qs = state.views(nb)
        launch.gather_rows(xb, data.X, order, start, nb)
        _train_forward(layers, xb, acts, zs, qs, skeys, start)
        # dJ/d(last pre-activation) (or dJ/dpred before a softmax), plus per-row loss
        launch.cost_rows(tmps[-1] if last_softmax else deltas[-1], state.rowloss, state.rowcorrect,
                         acts[-1], data.T, data.labels, order, start, nb, nb, data.cost, fused=fused,
                         dact=dact_last, slope=last.slope, acc_mode=acc_mode, cparam=data.cparam,
                         sw=data.sw if data.sw.shape[0] else None)
        if last_softmax:
            launch.softmax_backward(deltas[-1], acts[-1], tmps[-1])
        if last_z:
            launch.activation_backward(_flat(deltas[-1]), _flat(zs[-1]), _flat(deltas[-1]), last.code, last.slope)
        _backward(layers, xb, (acts, deltas, tmps, zs, qs), skeys, start)
        refresh_step(opt.hp, opt.hp64, opt.code, t0 + b - b0 + 1)
        if data.wdf.shape[0]:  # this batch's weight decay (sample weights, see layout.Data)
            opt.hp[WD] = opt.hp64[WD] * data.wdf[b]
        launch.update(opt.code, p, g, opt.s1, opt.s2, opt.hp, opt.n_decay, s3=opt.s3)
    lo, hi = b0 * bs, min(n, b1 * bs)
    launch.reduce_rows(state.out_loss, state.out_correct, state.rowloss, state.rowcorrect, lo, hi)
    loss, correct, bad = float(state.out_loss.copy_to_host()[0]), int(state.out_correct.copy_to_host()[0]), -1
    if not math.isfinite(loss):
        per_batch = np.add.reduceat(state.rowloss[lo:hi].copy_to_host(), np.arange(0, hi - lo, bs))
        where = np.flatnonzero(~np.isfinite(per_batch))
        bad = b0 + int(where[0]) if len(where) else b1 - 1  # else only the float64 total overflowed
    return loss, correct, bad
