"""The ``"numba"`` backend: compiled CPU kernels and whole-epoch training.

* Every op comes from :mod:`fastnn.kernels.cpu` (the reference's names), with the
  reference as fallback for anything missing.
* ``make_runner`` picks one of three runners when the fused epochs cover the
  training (:func:`fastnn.backends.plan.fusable`: a plain MLP, a built-in cost and
  optimizer); each ``run`` call trains its whole range of batches in one compiled call
  of that path's epoch module, ``kernels/cpu/epoch_*.py``:

  ========================  ==========================  ================================
  runner                    epoch kernel                when
  ========================  ==========================  ================================
  :class:`BlasRunner`       ``epoch_blas.train``        batch >= :data:`BLAS_MIN_BATCH`
                                                        (SciPy's BLAS present)
  :class:`OnlineRunner`     ``epoch_online.train``      batch 1, plain SGD
  :class:`MinibatchRunner`  ``epoch_minibatch.train``   the rest (batches 2-3, no BLAS)
  ========================  ==========================  ================================

  Anything else returns None: the Trainer's Python batch loop then calls the compiled
  per-op kernels, slower, never different.
* ``predict`` runs the compiled forward of a plain MLP over chunks of rows.

Threads and fastmath are set in :mod:`fastnn.config`.
"""

import time

import numpy as np

from fastnn import config
from fastnn.backends import plan as _plan
from fastnn.backends.numpy import Ops
from fastnn.kernels import cpu, reference
from fastnn.kernels.cpu import epoch_blas, epoch_minibatch, epoch_online, predict as _predict, sparse
from fastnn.kernels.layout import OPT_SGD, WD

#: Smallest batch size that goes through BLAS. Measured (one thread, MNIST 784-50-10
#: sigmoid SGD): BLAS 0.57 s vs the sparse minibatch loop 0.68 s per epoch at batch 4,
#: 0.38 vs 0.57 s at batch 10; at batch 2 the minibatch loop wins (1.8 vs 2.0 s). Tiny
#: nets (2-3-2) were also faster through BLAS from batch 4 on.
BLAS_MIN_BATCH = 4


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
        """The runner of the fastest path that covers this training, or None (see module doc)."""
        if not _plan.fusable(net, cost, optimizer):
            return None
        args = (net, cost, optimizer, X, targets, batch_size)
        if batch_size >= BLAS_MIN_BATCH and epoch_blas.blas_available():
            return BlasRunner(*args)
        if batch_size == 1 and optimizer.kind == "sgd":
            return OnlineRunner(*args)
        return MinibatchRunner(*args)

    def predict(self, net, X, batch_size=None):
        """Forward ``X`` (N, insize) through ``net`` -> (N, outsize), compiled for plain MLPs."""
        if not _plan.is_plain_mlp(net) or len(X) == 0:
            return super().predict(net, X, batch_size)
        spec, slopes, _ = _plan.layer_table(net, 0)
        X = np.ascontiguousarray(X, dtype=net.dtype)
        out = np.empty((len(X), net.outsize), net.dtype)
        chunk = min(self.predict_chunk, batch_size or self.predict_chunk)
        width = max([int(r[1]) for r in spec[:-1]] + [1])
        work = len(X) * int(sum(int(r[0] * r[1]) for r in spec))
        mode = config.PARALLEL
        if mode != "0" and config.get_num_threads() > 1 and work >= (
                config.PARALLEL_MIN_WORK if mode == "1" else self.predict_parallel_work):
            _predict.predict_par(out, X, net.params, spec, slopes, chunk, width)
        else:
            _predict.predict_serial(out, X, net.params, spec, slopes, chunk, width)
        return out


class _Runner:
    """What the three runners share: the plan, the workspace, the data in kernel form."""

    #: Whether the workspace holds W.T scratch (the row-blocked input gradients).
    transposed = True

    def __init__(self, net, cost, optimizer, X, targets, batch_size):
        self.net, self.optimizer, self.batch_size = net, optimizer, batch_size
        self.n_batches = -(-len(X) // batch_size)
        self.plan = _plan.Plan(net, cost, optimizer, targets, batch_size, self.transposed)
        dt = net.dtype
        self.ws = np.zeros(max(self.plan.ws_size, 1), dt)
        self.data = self.plan.data(np.ascontiguousarray(X, dtype=dt))

    def _args(self):
        """(model, optim) for one call: hyper-parameters are re-read (schedules change lr)."""
        return self.plan.model(self.net.params, self.net.grads, self.ws), self.plan.optim(self.optimizer)

    def finish(self):
        """The kernels work in the network's own buffers: nothing to copy back."""


class OnlineRunner(_Runner):
    """Batch size 1 with plain SGD: the per-sample path (``kernels/cpu/epoch_online.py``)."""

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of ``order`` (see :meth:`fastnn.backends.numpy.Ops.make_runner`)."""
        if b1 <= b0:
            return 0.0, 0
        model, optim = self._args()
        loss, correct = epoch_online.train(model, optim, self.data, np.ascontiguousarray(order, np.int64), b0, b1)
        self.optimizer.t += b1 - b0
        return float(loss), int(correct)


class MinibatchRunner(_Runner):
    """Row-blocked minibatches (``kernels/cpu/epoch_minibatch.py``), sparse-aware and threaded.

    The first layer reads X through its sparsity pattern when at most
    :attr:`sparse_density` of it is non-zero.
    """

    #: Fraction of non-zero inputs below which the first layer reads X as CSR.
    sparse_density = 0.5
    #: Batches per timing probe when ``config.PARALLEL == "auto"``.
    probe_batches = 3
    #: Threaded batches between checks that threads still pay.
    check_every = 32

    def __init__(self, net, cost, optimizer, X, targets, batch_size):
        super().__init__(net, cost, optimizer, X, targets, batch_size)
        dt, spec = net.dtype, self.plan.spec
        csr = sparse.csr_of(self.data.X, self.sparse_density)
        nin0 = int(spec[0, 0])
        if csr is not None:
            self.pattern = sparse.Pattern(True, *csr)
            density = len(csr[1]) / max(self.data.X.size, 1)
            self.A0 = np.zeros((1, nin0), dt)
        else:
            self.pattern = sparse.no_pattern()
            density = 1.0  # > sparse_density: only an estimate is needed below
            self.A0 = np.zeros((batch_size, nin0), dt)
        #: whether the first layer reads only the non-zero inputs
        self.sparse = self.pattern.on
        # multiply-adds per batch (the first layer's scaled by its input density)
        per_sample = sum(int(r[0] * r[1]) for r in spec)
        per_sample -= int((1 - density) * spec[0, 0] * spec[0, 1])
        # decided by size only (not by config.PARALLEL or the threads) so that the
        # choice of the sparse SGD path below never depends on the thread settings
        big = batch_size > 1 and batch_size * per_sample >= config.PARALLEL_MIN_WORK
        self.can_parallel = config.PARALLEL != "0" and big
        # small batches of plain SGD on sparse input update the first layer's weights
        # straight from the non-zero inputs (sparse.sgd_sparse_rows); big batches keep
        # the dense gradient, whose weight rows the threads can share
        self.sparse_sgd_ok = (self.sparse and not big and self.plan.opt_code == OPT_SGD
                              and int(spec[0, 2]) == 0)
        #: whether the last minibatches ran threaded (decided per run when PARALLEL is "auto")
        self.parallel = self.can_parallel and config.PARALLEL == "1"

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of ``order`` (see :meth:`fastnn.backends.numpy.Ops.make_runner`)."""
        order = np.ascontiguousarray(order, dtype=np.int64)
        if b1 <= b0:
            return 0.0, 0
        model, optim = self._args()
        can = self.can_parallel and config.get_num_threads() > 1
        if not can or config.PARALLEL == "1":
            self.parallel = can
            return self._train(model, optim, order, b0, b1, can)
        if b1 - b0 < 8 * self.probe_batches:
            return self._train(model, optim, order, b0, b1, self.parallel)
        # "auto": time a few batches each way (serial twice, so that a first call's
        # compile or cache load is not held against it) and go on the faster way; while
        # threaded, fall back to one thread as soon as a stretch of batches runs slower
        # than the serial probe (the machine got busy: parallel regions then stall).
        p = self.probe_batches
        loss, correct, times = 0.0, 0, []
        for k, par in enumerate((False, True, False)):
            t = time.perf_counter()
            ls, c = self._train(model, optim, order, b0 + k * p, b0 + (k + 1) * p, par)
            loss, correct = loss + ls, correct + c
            times.append((time.perf_counter() - t) / p)
        serial = min(times[0], times[2])
        self.parallel = times[1] < 0.8 * serial
        b = b0 + 3 * p
        while b < b1:
            e = min(b1, b + (self.check_every if self.parallel else b1))
            t = time.perf_counter()
            ls, c = self._train(model, optim, order, b, e, self.parallel)
            loss, correct = loss + ls, correct + c
            if self.parallel and (time.perf_counter() - t) / (e - b) > serial:
                self.parallel = False
            b = e
        return loss, correct

    def _train(self, model, optim, order, b0, b1, parallel):
        opt = self.optimizer
        sparse_sgd = bool(self.sparse_sgd_ok and optim.hp[WD] == 0)
        loss, correct = epoch_minibatch.train(model, optim, self.data, self.pattern, order, b0, b1,
                                              self.batch_size, self.A0, opt.t, parallel, sparse_sgd)
        opt.t += b1 - b0
        return float(loss), int(correct)


class BlasRunner(_Runner):
    """Minibatches whose matrix products are BLAS calls (``kernels/cpu/epoch_blas.py``).

    BLAS threads follow ``fastnn.config`` (at most ``get_num_threads()``, and timed
    against one thread when ``PARALLEL`` is "auto") when ``threadpoolctl`` is
    installed; without it BLAS keeps its own setting. No Numba threads are used here.
    """

    transposed = False
    #: Batches per timing probe (1 BLAS thread vs all) when ``config.PARALLEL == "auto"``.
    probe_batches = 3

    def __init__(self, net, cost, optimizer, X, targets, batch_size):
        super().__init__(net, cost, optimizer, X, targets, batch_size)
        self.xbuf = np.zeros(batch_size * self.data.X.shape[1], net.dtype)
        #: whether threaded BLAS won the last timing probe
        self.threads_pay = False

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of ``order`` (see :meth:`fastnn.backends.numpy.Ops.make_runner`).

        BLAS runs on at most ``config.get_num_threads()`` threads (and never more
        than its own setting). With ``config.PARALLEL == "auto"`` a few batches are
        timed on one BLAS thread and on all of them at the start of each call, and
        the faster is kept: on a busy machine threaded BLAS can be many times slower.
        """
        if b1 <= b0:
            return 0.0, 0
        order = np.ascontiguousarray(order, dtype=np.int64)
        model, optim = self._args()
        ctl = _blas_controller()
        if ctl is None:
            return self._train(model, optim, order, b0, b1)
        n = config.get_num_threads()
        n = max(1, min(n, max(int(d.get("num_threads") or 1) for d in ctl.info())))
        mode = config.PARALLEL
        if n == 1 or mode == "0":
            with ctl.limit(limits=1):
                return self._train(model, optim, order, b0, b1)
        if mode == "1" or b1 - b0 < 8 * self.probe_batches:
            with ctl.limit(limits=n if mode == "1" or self.threads_pay else 1):
                return self._train(model, optim, order, b0, b1)
        p = self.probe_batches
        loss, correct, times = 0.0, 0, []
        for k, th in enumerate((1, n, 1)):
            t = time.perf_counter()
            with ctl.limit(limits=th):
                ls, c = self._train(model, optim, order, b0 + k * p, b0 + (k + 1) * p)
            times.append(time.perf_counter() - t)
            loss, correct = loss + ls, correct + c
        self.threads_pay = times[1] < 0.8 * min(times[0], times[2])
        with ctl.limit(limits=n if self.threads_pay else 1):
            ls, c = self._train(model, optim, order, b0 + 3 * p, b1)
        return loss + ls, correct + c

    def _train(self, model, optim, order, b0, b1):
        opt = self.optimizer
        loss, correct = epoch_blas.train(model, optim, self.data, order, b0, b1, self.batch_size, self.xbuf,
                                         opt.t)
        opt.t += b1 - b0
        return float(loss), int(correct)


_CONTROLLER = []


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, or None without threadpoolctl.

    Made once, after SciPy's BLAS is loaded (``epoch_blas.blas_available``), so that it
    sees the library Numba calls (threadpoolctl only knows the libraries loaded when it looks).
    """
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController().select(user_api="blas"))
    return _CONTROLLER[0]
