"""Minibatch training through BLAS for the ``"numba"`` backend (big batches, wide layers).

:class:`GemmRunner` runs whole ranges of batches in one compiled call,
:func:`fastnn.kernels.cpu.fused_gemm.train_gemm`, whose matrix products are BLAS
calls (``np.dot`` inside ``@njit``, which needs SciPy). ``NumbaOps.make_runner``
picks it through :func:`wants_gemm` when it pays; otherwise the sparse/threaded
:class:`~fastnn.backends.numba_cpu.FusedRunner` (or the generic Runner) trains.

BLAS threads follow ``fastnn.config`` (at most ``get_num_threads()``, and timed
against one thread when ``PARALLEL`` is "auto") when ``threadpoolctl`` is installed;
without it BLAS keeps its own setting. No Numba threads are used on this path.
"""

import time

import numpy as np

from fastnn import config
from fastnn.backends.base import Runner
from fastnn.kernels.cpu import fused_gemm
from fastnn.backends.numba_cpu import OPT_CODES, kernel_targets
from fastnn.kernels.cpu._common import fill_hp

#: Smallest batch size that goes through BLAS. Measured here (one thread, MNIST 784-50-10
#: sigmoid SGD): BLAS 0.57 s vs the sparse fused loop 0.68 s per epoch at batch 4, 0.38 vs
#: 0.57 s at batch 10; at batch 2 the fused loop wins (1.8 vs 2.0 s). Tiny nets (2-3-2)
#: were also faster through BLAS from batch 4 on.
MIN_BATCH = 4
#: Smallest multiply-adds per sample (all layers) that go through BLAS.
MIN_WORK_PER_SAMPLE = 0


def wants_gemm(net, batch_size):
    """Whether BLAS training pays for this net and batch size (and SciPy is there)."""
    if batch_size < MIN_BATCH:
        return False
    spec, _, _ = fused_gemm.describe(net, 1)
    if int((spec[:, 0] * spec[:, 1]).sum()) < MIN_WORK_PER_SAMPLE:
        return False
    return fused_gemm.blas_available()


class GemmRunner(Runner):
    """Minibatch training of a plain MLP with BLAS products (see :mod:`fastnn.kernels.cpu.fused_gemm`).

    The caller has checked that the fused kernels support the network, cost and
    optimizer (``FusedRunner.supports``). Loss and correct counts are those of the
    generic Runner.
    """

    #: Batches per timing probe (1 BLAS thread vs all) when ``config.PARALLEL == "auto"``.
    probe_batches = 3

    def __init__(self, ops, net, cost, optimizer, X, targets, batch_size):
        super().__init__(ops, net, cost, optimizer, X, targets, batch_size)
        dt = net.dtype
        self.spec, self.slopes, ws = fused_gemm.describe(net, batch_size)
        self.ws = np.zeros(max(ws, 1), dt)
        self.X = np.ascontiguousarray(X, dtype=dt)
        self.xbuf = np.zeros(batch_size * self.X.shape[1], dt)
        self.eps = float(np.finfo(dt).eps)
        self.use_int, self.T, self.has_acc, self.labels = kernel_targets(targets, net.outsize, dt)
        self.opt_code = OPT_CODES[optimizer.kind]
        self.hp = np.zeros(10, dt)
        self._empty = np.zeros(0, dt)
        #: whether threaded BLAS won the last timing probe
        self.threads_pay = False

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of ``order`` (see :meth:`Runner.run`).

        BLAS runs on at most ``config.get_num_threads()`` threads (and never more
        than its own setting). With ``config.PARALLEL == "auto"`` a few batches are
        timed on one BLAS thread and on all of them at the start of each call, and
        the faster is kept: on a busy machine threaded BLAS can be many times slower.
        The thread count never changes the results' meaning, only BLAS's summation split.
        """
        if b1 <= b0:
            return 0.0, 0
        order = np.ascontiguousarray(order, dtype=np.int64)
        hp = fill_hp(self.hp, self.optimizer, self.optimizer.t)  # lr schedules may change opt.lr
        ctl = _blas_controller()
        n = config.get_num_threads()
        if ctl is None:
            return self._train(order, b0, b1, hp)
        n = max(1, min(n, max(int(d.get("num_threads") or 1) for d in ctl.info())))
        mode = config.PARALLEL
        if n == 1 or mode == "0":
            with ctl.limit(limits=1):
                return self._train(order, b0, b1, hp)
        if mode == "1" or b1 - b0 < 8 * self.probe_batches:
            with ctl.limit(limits=n if mode == "1" or self.threads_pay else 1):
                return self._train(order, b0, b1, hp)
        p = self.probe_batches
        acc, times = [0.0, 0], []
        for k, th in enumerate((1, n, 1)):
            t = time.perf_counter()
            with ctl.limit(limits=th):
                res = self._train(order, b0 + k * p, b0 + (k + 1) * p, hp)
            times.append(time.perf_counter() - t)
            acc[0] += res[0]
            acc[1] += res[1]
        self.threads_pay = times[1] < 0.8 * min(times[0], times[2])
        with ctl.limit(limits=n if self.threads_pay else 1):
            res = self._train(order, b0 + 3 * p, b1, hp)
        return acc[0] + res[0], acc[1] + res[1]

    def _train(self, order, b0, b1, hp):
        opt, net = self.optimizer, self.net
        names = opt.state_names()
        s1 = getattr(opt, names[0]) if names else self._empty
        s2 = getattr(opt, names[1]) if len(names) > 1 else self._empty
        loss, correct, t = fused_gemm.train_gemm(
            net.params, net.grads, s1, s2, hp, self.X, self.T, self.labels, self.use_int, self.has_acc,
            order, b0, b1, self.batch_size, self.spec, self.slopes, self.ws, self.xbuf, self.cost.code,
            self.fused_last, self.opt_code, net.n_decay, opt.t, float(getattr(opt, "beta1", 0.0)),
            float(getattr(opt, "beta2", 0.0)), self.eps)
        opt.t = int(t)
        return float(loss), int(correct)


_CONTROLLER = []


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, or None without threadpoolctl.

    Made once, after SciPy's BLAS is loaded (:func:`wants_gemm`), so that it sees the
    library Numba calls (threadpoolctl only knows the libraries loaded when it looks).
    """
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController().select(user_api="blas"))
    return _CONTROLLER[0]
