"""The ``"numba"`` backend: compiled CPU kernels and fused whole-epoch training.

* Every op comes from :mod:`fastnn.kernels.cpu` (same names as the reference),
  with the reference as fallback for anything missing.
* ``make_runner`` returns a :class:`FusedRunner` when the network is a plain MLP
  (Linear [activation])* with MSE, CrossEntropy or BCE and an SGD/momentum/
  Nesterov/Adam optimizer: each ``run`` call trains its whole range of batches in
  one compiled call. Anything else (a Sign layer, a custom layer, cost or
  optimizer, state arrays it cannot update in place) gets the generic
  :class:`~fastnn.backends.base.Runner`, which calls the compiled per-op kernels
  from Python: slower, never different.
* ``predict`` runs the compiled forward of a plain MLP over chunks of rows in
  parallel.

Threads and fastmath are set in :mod:`fastnn.config`.
"""

import time

import numpy as np

from fastnn import config
from fastnn.backends.base import Ops, Runner
from fastnn.kernels import cpu, reference
from fastnn.kernels.cpu import fused
from fastnn.kernels.cpu._common import NO_ACT, OPT_ADAM, OPT_MOMENTUM, OPT_NESTEROV, OPT_SGD, fill_hp
from fastnn.network import is_plain_mlp


#: Optimizer kind (``optimizer.kind``) -> the fused kernels' optimizer code.
OPT_CODES = {"sgd": OPT_SGD, "momentum": OPT_MOMENTUM, "nesterov": OPT_NESTEROV, "adam": OPT_ADAM}


def kernel_targets(targets, n_out, dt):
    """Targets in the form the fused kernels take.

    Returns ``(use_int, T, has_acc, labels)``: ``use_int`` when ``targets.T`` holds
    integer labels (CE), ``T`` float (N, K) (a (1, K) dummy with labels), ``labels``
    int64 (N,) for argmax accuracy (empty for BCE, which counts from ``T``, and for
    regression).
    """
    T = targets.T
    use_int = T.ndim == 1
    Tk = np.zeros((1, n_out), dt) if use_int else np.ascontiguousarray(T, dtype=dt)
    has_acc = targets.labels is not None
    if use_int:
        labels = np.ascontiguousarray(T, dtype=np.int64)
    elif has_acc and targets.labels.ndim == 1:
        labels = np.ascontiguousarray(targets.labels, dtype=np.int64)
    else:
        labels = np.zeros(0, np.int64)
    return use_int, Tk, has_acc, labels


class NumbaOps(Ops):
    """Numba ``@njit`` CPU backend."""

    name = "numba"
    #: Kernel modules searched in order for an op by name.
    kernel_modules = (cpu, reference)
    predict_batch_size = 4096
    #: Rows per task of the parallel ``predict``.
    predict_chunk = 256
    #: Multiply-adds from which ``predict`` uses threads (config.PARALLEL "auto").
    predict_parallel_work = 20_000_000

    @classmethod
    def unavailable_reason(cls):
        try:
            import numba  # noqa: F401
        except ImportError:  # pragma: no cover - numba is a core dependency
            return "numba is not installed (pip install numba)"
        return None

    def make_runner(self, net, cost, optimizer, X, targets, batch_size):
        """A :class:`FusedRunner` when the fused kernels cover this training, else the generic Runner."""
        if FusedRunner.supports(net, cost, optimizer, X):
            # --- BLAS minibatch path (big batches, wide layers): fastnn/backends/numba_gemm.py ---
            from fastnn.backends import numba_gemm
            if numba_gemm.wants_gemm(net, batch_size):
                return numba_gemm.GemmRunner(self, net, cost, optimizer, X, targets, batch_size)
            # --- end BLAS minibatch path ---
            return FusedRunner(self, net, cost, optimizer, X, targets, batch_size)
        return Runner(self, net, cost, optimizer, X, targets, batch_size)

    def predict(self, net, X, batch_size=None):
        """Forward ``X`` (N, insize) through ``net`` -> (N, outsize), compiled for plain MLPs."""
        if not is_plain_mlp(net) or len(X) == 0:
            return super().predict(net, X, batch_size)

        spec, slopes, _ = _describe(net, 0)
        X = np.ascontiguousarray(X, dtype=net.dtype)
        out = np.empty((len(X), net.outsize), net.dtype)
        chunk = min(self.predict_chunk, batch_size or self.predict_chunk)
        width = max([int(r[1]) for r in spec[:-1]] + [1])
        work = len(X) * int(sum(int(r[0] * r[1]) for r in spec))
        mode = config.PARALLEL
        if mode != "0" and config.get_num_threads() > 1 and work >= (
                config.PARALLEL_MIN_WORK if mode == "1" else self.predict_parallel_work):
            fused.predict_par(out, X, net.params, spec, slopes, chunk, width)
        else:
            fused.predict_serial(out, X, net.params, spec, slopes, chunk, width)
        return out


def _describe(net, batch_size):
    """(spec int64 (L, 8), slopes float64 (L,), workspace size) for the fused kernels.

    See :mod:`fastnn.kernels.cpu.fused` for the columns of ``spec``.
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
        wt_off = ws
        if rows:  # layers after the first need W transposed for their input gradient
            ws += layer.n_weights
        rows.append([layer.insize, layer.outsize, w_off, b_off if layer.bias else -1, act, y_off, d_off, wt_off])
        slopes.append(float(slope))
        w_off += layer.n_weights
        b_off += layer.outsize if layer.bias else 0
    return np.array(rows, np.int64).reshape(-1, 8), np.array(slopes, np.float64), ws


class FusedRunner(Runner):
    """Whole ranges of batches in one compiled call (see :mod:`fastnn.kernels.cpu.fused`).

    Batch size 1 with plain SGD takes the in-place per-sample loop; everything else
    the minibatch loop. Loss and correct counts are those of the generic Runner.
    """

    #: Fraction of non-zero inputs below which the first layer reads X as CSR.
    sparse_density = 0.5
    #: Batches per timing probe when ``config.PARALLEL == "auto"``.
    probe_batches = 3
    #: Threaded batches between checks that threads still pay.
    check_every = 32

    @staticmethod
    def supports(net, cost, optimizer, X):
        from fastnn.costs import BCE, MSE, CrossEntropy
        from fastnn.layers import Activation
        from fastnn.optimizers import SGD, Adam

        if not is_plain_mlp(net) or type(cost) not in (MSE, CrossEntropy, BCE):
            return False
        if type(optimizer) not in (SGD, Adam):
            return False
        if net.dtype not in (np.float32, np.float64) or X.dtype != net.dtype:
            return False
        for layer in net.layers:
            # Sign is forward-only: the generic path raises its clear error
            if isinstance(layer, Activation) and layer.code not in (
                    reference.IDENTITY, reference.SIGMOID, reference.TANH, reference.RELU,
                    reference.LEAKY_RELU, reference.SOFTMAX):
                return False
        for name in optimizer.state_names():
            s = getattr(optimizer, name, None)
            if (not isinstance(s, np.ndarray) or s.dtype != net.dtype or s.shape != net.params.shape
                    or not s.flags.c_contiguous or not s.flags.writeable):
                return False
        return net.params.flags.c_contiguous and net.grads.flags.c_contiguous

    def __init__(self, ops, net, cost, optimizer, X, targets, batch_size):
        super().__init__(ops, net, cost, optimizer, X, targets, batch_size)

        dt = net.dtype
        self.spec, self.slopes, ws = _describe(net, batch_size)
        self.ws = np.zeros(max(ws, 1), dt)
        self.eps = float(np.finfo(dt).eps)
        X = np.ascontiguousarray(X, dtype=dt)
        self.X = X
        online = batch_size == 1 and optimizer.kind == "sgd"
        # the per-sample loop finds each sample's non-zeros itself (no CSR to build)
        csr = None if online else fused.csr_of(X, self.sparse_density)
        #: whether the first layer reads only the non-zero inputs
        self.sparse = online or csr is not None
        nin0 = int(self.spec[0, 0])
        if online:
            self.ptr, self.idx = np.zeros(1, np.int64), np.zeros(0, np.int32)
            self.A0 = np.zeros((1, nin0), dt)
            self.density = 1.0  # unused: batch 1 never threads nor takes sparse_sgd
        elif self.sparse:
            self.ptr, self.idx = csr
            self.density = len(self.idx) / max(X.size, 1)
            self.A0 = np.zeros((1, nin0), dt)
        else:
            self.ptr, self.idx = np.zeros(1, np.int64), np.zeros(0, np.int32)
            self.A0 = np.zeros((batch_size, nin0), dt)
            self.density = 1.0  # > sparse_density: only an estimate is needed below
        self.use_int, self.T, self.has_acc, self.labels = kernel_targets(targets, net.outsize, dt)
        self.opt_code = OPT_CODES[optimizer.kind]
        self.online = online  # == (batch_size == 1 and self.opt_code == OPT_SGD)
        self.hp = np.zeros(10, dt)
        self._empty = np.zeros(0, dt)
        # multiply-adds per batch (the first layer's scaled by its input density)
        per_sample = sum(int(r[0] * r[1]) for r in self.spec)
        per_sample -= int((1 - self.density) * self.spec[0, 0] * self.spec[0, 1])
        # decided by size only (not by config.PARALLEL or the threads) so that the
        # choice of the sparse SGD path below never depends on the thread settings
        big = batch_size > 1 and batch_size * per_sample >= config.PARALLEL_MIN_WORK
        self.can_parallel = config.PARALLEL != "0" and big
        # small batches of plain SGD on sparse input update the first layer's weights
        # straight from the non-zero inputs (fused.sgd_sparse_rows); big batches keep
        # the dense gradient, whose weight rows the threads can share
        self.sparse_sgd_ok = (self.sparse and not big and self.opt_code == OPT_SGD
                              and int(self.spec[0, 2]) == 0)
        #: whether the last minibatches ran threaded (decided per run when PARALLEL is "auto")
        self.parallel = self.can_parallel and config.PARALLEL == "1"

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of ``order`` (see :meth:`Runner.run`)."""
        opt = self.optimizer
        order = np.ascontiguousarray(order, dtype=np.int64)
        if b1 <= b0:
            return 0.0, 0

        hp = fill_hp(self.hp, opt, opt.t)  # read every run: lr schedules may change opt.lr
        if self.online:
            res = self._run_online(order, b0, b1, hp)
            opt.t += b1 - b0
            return self._finish(res)
        can = self.can_parallel and config.get_num_threads() > 1
        if not can or config.PARALLEL == "1":
            self.parallel = can
            return self._finish(self._run_minibatch(order, b0, b1, hp, can))
        if b1 - b0 < 8 * self.probe_batches:
            return self._finish(self._run_minibatch(order, b0, b1, hp, self.parallel))
        # "auto": time a few batches each way (serial twice, so that a first call's
        # compile or cache load is not held against it) and go on the faster way; while
        # threaded, fall back to one thread as soon as a stretch of batches runs slower
        # than the serial probe (the machine got busy: parallel regions then stall).
        p = self.probe_batches
        acc, times = [0.0, 0], []
        for k, par in enumerate((False, True, False)):
            t = time.perf_counter()
            self._add(acc, self._run_minibatch(order, b0 + k * p, b0 + (k + 1) * p, hp, par))
            times.append((time.perf_counter() - t) / p)
        serial = min(times[0], times[2])
        self.parallel = times[1] < 0.8 * serial
        b = b0 + 3 * p
        while b < b1:
            e = min(b1, b + (self.check_every if self.parallel else b1))
            t = time.perf_counter()
            self._add(acc, self._run_minibatch(order, b, e, hp, self.parallel))
            if self.parallel and (time.perf_counter() - t) / (e - b) > serial:
                self.parallel = False
            b = e
        return self._finish(acc)

    @staticmethod
    def _add(acc, res):
        acc[0] += res[0]
        acc[1] += res[1]

    @staticmethod
    def _finish(res):
        return float(res[0]), int(res[1])

    def _run_online(self, order, b0, b1, hp):
        return fused.train_online(
            self.net.params, hp, self.X, self.T, self.labels, self.use_int, self.has_acc, order, b0, b1,
            self.spec, self.slopes, self.ws, self.cost.code, self.fused_last, self.eps)

    def _run_minibatch(self, order, b0, b1, hp, parallel):
        opt, net = self.optimizer, self.net
        names = opt.state_names()
        s1 = getattr(opt, names[0]) if names else self._empty
        s2 = getattr(opt, names[1]) if len(names) > 1 else self._empty
        loss, correct, t = fused.train_minibatch(
            net.params, net.grads, s1, s2, hp, self.X, self.ptr, self.idx, self.sparse,
            self.T, self.labels, self.use_int, self.has_acc, order, b0, b1, self.batch_size, self.spec,
            self.slopes, self.ws, self.A0, self.cost.code, self.fused_last, self.opt_code, net.n_decay,
            opt.t, float(getattr(opt, "beta1", 0.0)), float(getattr(opt, "beta2", 0.0)), self.eps,
            parallel, bool(self.sparse_sgd_ok and hp[1] == 0))
        opt.t = int(t)
        return loss, correct
