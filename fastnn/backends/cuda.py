"""The ``"cuda"`` backend: training and inference on an NVIDIA GPU with numba.cuda.

For a plain MLP ((Linear [activation])*, see :func:`fastnn.backends.plan.fusable`)
with a built-in cost and optimizer, :class:`CudaRunner` keeps everything on the
device for the whole ``fit``: the flat parameter and gradient buffers, the
optimizer state, the training inputs and targets, and one set of per-layer batch
buffers. Each epoch the Trainer's sample order (host int64) is uploaded once and
batches are gathered by index on the device. A batch is a handful of kernel
launches (:mod:`fastnn.kernels.cuda.epoch`: gather, a fused matmul+bias+activation
per layer, a per-row cost kernel, weight/input-gradient matmuls with the activation
backward fused in, bias column sums, the optimizer update) with no host transfer; each
``run`` call ends with one reduction of the per-row losses and correct counts, read
back once.

Other networks, costs or optimizers fall back to the Python batch loop, which
still runs every op on the GPU through the host launchers of ``fastnn.kernels.cuda``
(with a copy in and out per op).

Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the backend works when
asked for by name, which is how the tests run without a GPU. ``"auto"`` never picks it
(:attr:`CudaOps.auto_select`) until its tests and benchmark have passed on a real GPU
and the result is recorded in :data:`HARDWARE_RECORD`.
"""

import importlib.util
import warnings

import numpy as np

from fastnn import _checks
from fastnn.backends import plan as _plan
from fastnn.backends.numpy import Ops
from fastnn.kernels import reference


#: Where the CUDA tests and the GPU benchmark passed on real hardware (GPU, date, commit,
#: the README section with the numbers), or None while they never have. Until it is set,
#: ``backend="auto"`` does not pick CUDA: from launch costs alone it should be far slower
#: than the CPU at batches of 1-10, and it has never been measured. After that, "auto"
#: should pick it by work per step, with the threshold measured and stated.
HARDWARE_RECORD = None

_warned = set()


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _simulated():
    from numba import config

    return bool(getattr(config, "ENABLE_CUDASIM", 0))


class CudaRunner:
    """Whole-``fit`` device state; each ``run`` is one call of ``kernels/cuda/epoch.train``."""

    def __init__(self, net, cost, optimizer, X, targets, batch_size):
        from numba import cuda

        from fastnn.kernels.cuda import epoch

        self.cuda, self.epoch = cuda, epoch
        self.net, self.optimizer, self.batch_size = net, optimizer, batch_size
        n, dt = X.shape[0], net.dtype
        self.n_batches = -(-n // batch_size)
        self.plan = p = _plan.Plan(net, cost, optimizer, targets, batch_size, transposed=False)
        # -- parameters, gradients, optimizer state: uploaded once per fit
        self.d_params = cuda.to_device(net.params)
        self.d_grads = cuda.to_device(net.grads)
        self.state = {name: cuda.to_device(getattr(optimizer, name)) for name in optimizer.state_names()}
        self.dev = epoch.State(p.model(self.d_params, self.d_grads, None), n, min(batch_size, n))
        # -- data: inputs, dense targets (CE labels one-hot), labels for argmax accuracy
        T = p.T
        if p.use_int:  # CE integer labels: one-hot gives the same loss and gradient
            T = np.zeros((n, net.outsize), dt)
            T[np.arange(n), p.labels] = 1
        labels = p.labels if (p.has_acc and p.cost_code != reference.BCE) else np.zeros(1, np.int64)
        self.data = p.data(cuda.to_device(X), cuda.to_device(np.ascontiguousarray(T, dtype=dt)),
                           cuda.to_device(np.ascontiguousarray(labels, dtype=np.int64)))
        self._order_src = None
        self._order = None
        self._d_sw = None  # the sample-weight factors on the device (weigh)

    def run(self, order, b0, b1):
        """Train batches ``b0 <= b < b1`` of ``order`` (see :meth:`fastnn.backends.numpy.Ops.make_runner`)."""
        if order is not self._order_src:  # a new epoch: upload its order once
            self._order = self.cuda.to_device(np.ascontiguousarray(order, dtype=np.int64))
            self._order_src = order
        s = list(self.state.values())
        opt = self.plan.optim(self.optimizer, *(s + [None, None, None])[:3])
        loss, correct, bad = self.epoch.train(self.dev, opt, self.data, self._order, b0, b1, self.batch_size,
                                              self.optimizer.t)
        self.optimizer.t += b1 - b0
        return loss, correct, bad

    def weigh(self, s, wdf):
        """This epoch's sample-weight factors (see :func:`fastnn.backends.plan.batch_weights`):
        ``s`` goes to the device, ``wdf`` stays on the host (the weight decay is a launch argument)."""
        sw, wdf = self.plan.weights(s, wdf)
        if sw.shape[0]:
            if self._d_sw is None:
                self._d_sw = self.cuda.to_device(sw)
            else:
                self._d_sw.copy_to_device(sw)
            sw = self._d_sw
        self.data = self.data._replace(sw=sw, wdf=wdf)

    def finish(self):
        """Copy parameters, gradients and optimizer state back into the host objects (in place)."""
        self.d_params.copy_to_host(self.net.params)
        self.d_grads.copy_to_host(self.net.grads)
        for name, d in self.state.items():
            d.copy_to_host(getattr(self.optimizer, name))

    def reload(self):
        """Upload the host parameters and optimizer state again (after callbacks, which may
        have written them at an epoch's end; the Trainer calls this then)."""
        self.d_params.copy_to_device(self.net.params)
        for name, d in self.state.items():
            d.copy_to_device(getattr(self.optimizer, name))

    def snapshot(self):
        """Device copies of the parameters and optimizer state, and the step count."""
        if not hasattr(self, "_snap"):
            self._snap = [self.cuda.device_array_like(d) for d in (self.d_params, *self.state.values())]
        for dst, src in zip(self._snap, (self.d_params, *self.state.values())):
            dst.copy_to_device(src)
        return self.optimizer.t

    def restore(self, t):
        """Back to the last :meth:`snapshot` (whose step count was ``t``)."""
        for src, dst in zip(self._snap, (self.d_params, *self.state.values())):
            dst.copy_to_device(src)
        self.optimizer.t = t


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
        """Whether ``backend="auto"`` may pick this backend: on a real GPU, and only once
        the backend has been verified on one (:data:`HARDWARE_RECORD`)."""
        return not self.simulated and HARDWARE_RECORD is not None

    def __getattr__(self, name):
        op = super().__getattr__(name)
        if not name.startswith("_") and getattr(op, "__module__", "") == reference.__name__:
            _warn_once(name, f"backend 'cuda' has no kernel {name!r}: it runs the NumPy reference on the host "
                             "(each call copies its arrays between host and device)")
        return op

    def make_runner(self, net, cost, optimizer, X, targets, batch_size, sparse="auto"):
        """A :class:`CudaRunner` (device-resident) for plain MLPs, else None (the Python loop)."""
        if _checks.is_sparse(X):
            _warn_once(("sparse", repr(net)),
                       "backend 'cuda' has no sparse-input kernels yet: a scipy.sparse X trains op by op, its "
                       "first layer through SciPy on the host; backend='numba' trains it in compiled code")
            return None
        if _plan.fusable(net, cost, optimizer):
            return CudaRunner(net, cost, optimizer, X, targets, batch_size)
        _warn_once(("loop", type(cost).__name__, type(optimizer).__name__, repr(net)),
                   "backend 'cuda' cannot keep this training on the GPU (not a plain MLP of built-in layers, "
                   "cost and optimizer): it runs op by op, and every op copies its arrays between host and "
                   "device, which is slow; backend='numba' is likely faster")
        return None

    def predict(self, net, X, batch_size=None):
        """Forward ``X`` (N, insize) on the device in batches -> (N, outsize) on the host."""
        if not _plan.is_plain_mlp(net) or X.shape[0] == 0 or _checks.is_sparse(X):
            return super().predict(net, X, batch_size)
        from numba import cuda

        from fastnn.kernels.cuda import epoch

        n, dt = X.shape[0], net.dtype
        bs = min(batch_size or self.predict_batch_size, n)
        spec, slopes, _ = _plan.layer_table(net, 0, transposed=False)
        layers = epoch.device_layers(_plan.layout.Model(cuda.to_device(net.params), None, spec, slopes, None))
        bufs = [cuda.device_array((bs, L.outsize), dt) for L in layers]
        out = np.empty((n, net.outsize), dt)
        for s in range(0, n, bs):
            nb = min(bs, n - s)
            xd = cuda.to_device(np.ascontiguousarray(X[s:s + nb], dtype=dt))
            y = epoch.forward(layers, xd, [a[:nb] for a in bufs])
            y.copy_to_host(out[s:s + nb])
        return out
