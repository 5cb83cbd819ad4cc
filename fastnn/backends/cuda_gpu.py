"""The ``"cuda"`` backend: training and inference on an NVIDIA GPU with numba.cuda.

For a plain MLP ((Linear [activation])*, see :func:`fastnn.network.is_plain_mlp`)
with a built-in cost and optimizer, :class:`CudaRunner` keeps everything on the
device for the whole ``fit``: the flat parameter and gradient buffers, the
optimizer state, the training inputs and targets, and one set of per-layer batch
buffers. Each epoch the Trainer's sample order (host int64) is uploaded once and
batches are gathered by index on the device. A batch is a handful of kernel
launches (gather, a fused matmul+bias+activation per layer, a per-row cost kernel,
weight/input-gradient matmuls with the activation backward fused in, bias column
sums, the optimizer update) with no host transfer; each ``run`` call ends with one
reduction of the per-row losses and correct counts, read back once.

Other networks, costs or optimizers fall back to the generic per-layer loop, which
still runs every op on the GPU through the host launchers of ``fastnn.kernels.cuda``
(with a copy in and out per op).

Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the backend works when
asked for by name, which is how the tests run without a GPU, but ``"auto"`` never
picks it (:attr:`CudaOps.auto_select`).
"""

import importlib.util

import numpy as np

from fastnn.backends.base import Ops, Runner
from fastnn.kernels import reference
from fastnn.layers import Activation, Linear
from fastnn.network import is_plain_mlp

_SIGN_MSG = "sign has no useful gradient; it is forward-only (seed 004's perceptrons)"
_OPT_KINDS = ("sgd", "momentum", "nesterov", "adam")


def _simulated():
    from numba import config

    return bool(getattr(config, "ENABLE_CUDASIM", 0))


def _offset(view, base):
    """Element offset of ``view`` inside the flat buffer ``base`` (a Linear's W or b)."""
    delta = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return delta // base.itemsize


class _Layer:
    """One Linear and the activation after it, with device views of its tensors."""

    def __init__(self, lin, act, d_params, d_grads, params):
        self.insize, self.outsize = lin.insize, lin.outsize
        self.code = act.code if act is not None else reference.IDENTITY
        self.slope = act.slope if act is not None else 0.0
        self.has_act = act is not None and act.code != reference.IDENTITY
        wo, n = _offset(lin.W, params), lin.n_weights
        self.W = d_params[wo:wo + n].reshape(self.insize, self.outsize)
        self.dW = None if d_grads is None else d_grads[wo:wo + n].reshape(self.insize, self.outsize)
        self.b = self.db = None
        if lin.bias:
            bo = _offset(lin.b, params)
            self.b = d_params[bo:bo + self.outsize]
            self.db = None if d_grads is None else d_grads[bo:bo + self.outsize]


def _device_layers(net, d_params, d_grads=None):
    layers, out = net.layers, []
    for i, layer in enumerate(layers):
        if isinstance(layer, Linear):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            act = nxt if isinstance(nxt, Activation) else None
            out.append(_Layer(layer, act, d_params, d_grads, net.params))
    return out


def _forward(launch, layers, x, outs):
    """x (B, in) device -> outs[i] (B, out_i) = each layer's activation output."""
    for L, y in zip(layers, outs):
        launch.linear_forward(y, x, L.W, L.b, L.code, L.slope)
        x = y
    return x


class CudaRunner:
    """Whole-``fit`` device state and the per-batch kernel sequence (see module doc)."""

    def __init__(self, ops, net, cost, optimizer, X, targets, batch_size):
        from numba import cuda

        from fastnn.costs import BCE
        from fastnn.kernels.cuda import launch

        if any(getattr(layer, "code", None) == reference.SIGN for layer in net.layers):
            raise ValueError(_SIGN_MSG)
        self.cuda, self.launch = cuda, launch
        self.net, self.cost, self.optimizer = net, cost, optimizer
        n, dt = len(X), net.dtype
        self.n, self.batch_size = n, batch_size
        self.n_batches = -(-n // batch_size)
        # -- parameters, gradients, optimizer state: uploaded once per fit
        self.d_params = cuda.to_device(net.params)
        self.d_grads = cuda.to_device(net.grads)
        self.layers = _device_layers(net, self.d_params, self.d_grads)
        self.state = {name: cuda.to_device(getattr(optimizer, name)) for name in optimizer.state_names()}
        # -- data: inputs, dense targets (CE labels one-hot), labels for accuracy
        self.X = cuda.to_device(X)
        T = targets.T
        if T.ndim == 1:  # CE integer labels: one-hot gives the same loss and gradient
            Td = np.zeros((n, net.outsize), dt)
            Td[np.arange(n), T] = 1
            T = Td
        self.T = cuda.to_device(np.ascontiguousarray(T, dtype=dt))
        if targets.labels is None:
            self.acc_mode = 0
        else:
            self.acc_mode = 2 if isinstance(cost, BCE) else 1
        labels = targets.labels if self.acc_mode == 1 else np.zeros(1, np.int64)
        self.labels = cuda.to_device(np.ascontiguousarray(labels, dtype=np.int64))
        # -- how the cost's gradient enters the last layer
        last = self.layers[-1]
        self.fused = cost.fuses_with(net.layers[-1])
        self.last_softmax = (not self.fused) and last.code == reference.SOFTMAX
        self.dact_last = last.code if (last.has_act and not self.fused and not self.last_softmax) else -1
        # -- per-batch buffers, allocated once for the largest batch
        cap = min(batch_size, n)
        self.xb = cuda.device_array((cap, net.insize), dt)
        self.acts = [cuda.device_array((cap, L.outsize), dt) for L in self.layers]
        self.deltas = [cuda.device_array((cap, L.outsize), dt) for L in self.layers]
        # scratch for softmax backward (not fusable into a matmul epilogue)
        self.tmps = [cuda.device_array((cap, L.outsize), dt) if L.code == reference.SOFTMAX else None
                     for L in self.layers]
        self.rowloss = cuda.device_array(max(n, 1), np.float64)
        self.rowcorrect = cuda.device_array(max(n, 1), np.int64)
        self.out_loss = cuda.device_array(1, np.float64)
        self.out_correct = cuda.device_array(1, np.int64)
        self._views = {}
        self._order_src = None
        self._order = None

    def _batch_views(self, nb):
        """Row slices [:nb] of the batch buffers (cached: only two sizes per fit)."""
        v = self._views.get(nb)
        if v is None:
            cut = (lambda a: None if a is None else a[:nb])
            v = (self.xb[:nb], [cut(a) for a in self.acts], [cut(a) for a in self.deltas],
                 [cut(a) for a in self.tmps])
            self._views[nb] = v
        return v

    def run(self, order, b0, b1):
        """Train batches ``b0 <= b < b1`` of ``order``; see :meth:`fastnn.backends.base.Runner.run`."""
        launch, bs, n = self.launch, self.batch_size, self.n
        if order is not self._order_src:  # a new epoch: upload its order once
            self._order = self.cuda.to_device(np.ascontiguousarray(order, dtype=np.int64))
            self._order_src = order
        d_order = self._order
        layers, opt = self.layers, self.optimizer
        for b in range(b0, b1):
            start = b * bs
            nb = min(bs, n - start)
            xb, acts, deltas, tmps = self._batch_views(nb)
            launch.gather_rows(xb, self.X, d_order, start, nb)
            _forward(launch, layers, xb, acts)
            # dJ/d(last pre-activation) (or dJ/dpred before a softmax), plus per-row loss
            last = len(layers) - 1
            launch.cost_rows(tmps[last] if self.last_softmax else deltas[last], self.rowloss,
                             self.rowcorrect, acts[last], self.T, self.labels, d_order, start, nb, nb,
                             self.cost.code, fused=self.fused, dact=self.dact_last,
                             slope=layers[last].slope, acc_mode=self.acc_mode)
            if self.last_softmax:
                launch.softmax_backward(deltas[last], acts[last], tmps[last])
            for i in range(last, -1, -1):
                L, dz = layers[i], deltas[i]
                launch.linear_backward_weight(L.dW, xb if i == 0 else acts[i - 1], dz)
                if L.db is not None:
                    launch.linear_backward_bias(L.db, dz)
                if i > 0:
                    P = layers[i - 1]
                    if P.code == reference.SOFTMAX:
                        launch.linear_backward_input(tmps[i - 1], dz, L.W)
                        launch.softmax_backward(deltas[i - 1], acts[i - 1], tmps[i - 1])
                    else:
                        launch.linear_backward_input(deltas[i - 1], dz, L.W, y_prev=acts[i - 1],
                                                     dact=P.code if P.has_act else -1, slope=P.slope)
            self._step(opt)
        lo, hi = b0 * bs, min(n, b1 * bs)
        launch.reduce_rows(self.out_loss, self.out_correct, self.rowloss, self.rowcorrect, lo, hi)
        return float(self.out_loss.copy_to_host()[0]), int(self.out_correct.copy_to_host()[0])

    def _step(self, opt):
        # Hyper-parameters are read from the optimizer every step (schedules may change lr).
        launch, p, g, nd = self.launch, self.d_params, self.d_grads, self.net.n_decay
        opt.t += 1
        kind = opt.kind
        if kind == "sgd":
            launch.sgd_update(p, g, opt.lr, opt.weight_decay, nd)
        elif kind == "momentum":
            launch.momentum_update(p, g, self.state["velocity"], opt.lr, opt.momentum, opt.weight_decay, nd)
        elif kind == "nesterov":
            launch.nesterov_update(p, g, self.state["velocity"], opt.lr, opt.momentum, opt.weight_decay, nd)
        else:
            launch.adam_update(p, g, self.state["m"], self.state["v"], opt.t, opt.lr, opt.beta1,
                               opt.beta2, opt.eps, opt.weight_decay, nd)

    def finish(self):
        """Copy parameters, gradients and optimizer state back into the host objects (in place)."""
        self.d_params.copy_to_host(self.net.params)
        self.d_grads.copy_to_host(self.net.grads)
        for name, d in self.state.items():
            d.copy_to_host(getattr(self.optimizer, name))


class CudaOps(Ops):
    """numba.cuda kernels (``fastnn.kernels.cuda``) in front of the NumPy reference."""

    name = "cuda"
    kernel_modules = (reference,)  # the CUDA module is put in front in __init__
    predict_batch_size = 8192

    @classmethod
    def unavailable_reason(cls):
        """None when the backend can run here, else a sentence saying why not."""
        if importlib.util.find_spec("numba_cuda") is None:
            return ("the numba-cuda package is not installed; install it with "
                    "pip install 'fastnn-numba[cuda]' (it needs an NVIDIA GPU and driver)")
        try:
            from numba import cuda
        except Exception as exc:  # pragma: no cover - broken installs
            return f"numba.cuda failed to import ({type(exc).__name__}: {exc})"
        if _simulated():
            return None
        try:
            ok = cuda.is_available()
        except Exception:  # pragma: no cover - driver errors
            ok = False
        if not ok:
            return ("no usable NVIDIA GPU was found (numba.cuda.is_available() is False: no GPU "
                    "or no NVIDIA driver); use backend='numba' for the CPU, or set "
                    "NUMBA_ENABLE_CUDASIM=1 before importing numba to run the CUDA kernels in "
                    "numba's (slow) simulator")
        return None

    def __init__(self):
        from fastnn.kernels import cuda as kcuda

        type(self).kernel_modules = (kcuda, reference)
        self.simulated = _simulated()

    @property
    def auto_select(self):
        """Whether ``backend="auto"`` may pick this backend: only on a real GPU."""
        return not self.simulated

    def _fast_path(self, net, cost=None, optimizer=None):
        return (is_plain_mlp(net)
                and (cost is None or cost.code in (reference.MSE, reference.CROSS_ENTROPY, reference.BCE))
                and (optimizer is None or getattr(optimizer, "kind", None) in _OPT_KINDS))

    def make_runner(self, net, cost, optimizer, X, targets, batch_size):
        """A :class:`CudaRunner` (device-resident) for plain MLPs, else the generic Runner."""
        if self._fast_path(net, cost, optimizer):
            return CudaRunner(self, net, cost, optimizer, X, targets, batch_size)
        return Runner(self, net, cost, optimizer, X, targets, batch_size)

    def predict(self, net, X, batch_size=None):
        """Forward ``X`` (N, insize) on the device in batches -> (N, outsize) on the host."""
        if not self._fast_path(net) or len(X) == 0:
            return super().predict(net, X, batch_size)
        from numba import cuda

        from fastnn.kernels.cuda import launch

        n, dt = len(X), net.dtype
        bs = min(batch_size or self.predict_batch_size, n)
        layers = _device_layers(net, cuda.to_device(net.params))
        bufs = [cuda.device_array((bs, L.outsize), dt) for L in layers]
        out = np.empty((n, net.outsize), dt)
        for s in range(0, n, bs):
            nb = min(bs, n - s)
            xd = cuda.to_device(np.ascontiguousarray(X[s:s + nb], dtype=dt))
            y = _forward(launch, layers, xd, [a[:nb] for a in bufs])
            y.copy_to_host(out[s:s + nb])
        return out
