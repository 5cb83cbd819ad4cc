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

import contextlib
import os
import warnings

import numpy as np
from numba.core.errors import NumbaError

from fastnn import _checks, config
from fastnn.backends import plan as _plan
from fastnn.backends.numpy import Ops
from fastnn.kernels import cpu, reference
from fastnn.kernels.cpu import epoch_blas, epoch_minibatch, epoch_online, epoch_sparse, predict as _predict, sparse
from fastnn.kernels.layout import OPT_SGD, WD

#: Smallest batch size that goes through BLAS. Measured (one thread, MNIST 784-50-10
#: sigmoid SGD): BLAS 0.57 s vs the sparse minibatch loop 0.68 s per epoch at batch 4,
#: 0.38 vs 0.57 s at batch 10; at batch 2 the minibatch loop wins (1.8 vs 2.0 s). Tiny
#: nets (2-3-2) were also faster through BLAS from batch 4 on.
BLAS_MIN_BATCH = 4
#: Multiply-adds per batch from which "auto" threads the row-blocked minibatch kernels.
AUTO_THREAD_WORK = 2_000_000
#: Multiply-adds per batch (on the non-zeros) from which "auto" threads the sparse epochs.
AUTO_SPARSE_THREAD_WORK = 2_000_000
#: Multiply-adds per batch from which "auto" gives BLAS all threads (see threads_for).
#: Measured on the 2-vCPU development VM (notes: /work/notes/blas_threads.py), one epoch
#: of MNIST, 1 vs 2 OpenBLAS threads: no gain up to ~13 M (784-256-10 at batch 64), a
#: gain at 784-256-10 batch 128 (26 M) on a quiet machine. Below it one thread is kept.
AUTO_BLAS_THREAD_WORK = 20_000_000


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

    def make_runner(self, net, cost, optimizer, X, targets, batch_size, sparse="auto"):
        """The runner of the fastest path that covers this training, or None (see module doc).

        ``sparse`` ("auto", True, False; ``fit(sparse=...)``): whether the first layer works on
        the non-zero inputs only. "auto": when at most SPARSE_MAX_DENSITY of a dense X is non-zero and
        batches have at least SPARSE_MIN_BATCH samples;
        a scipy.sparse ``X`` always does.
        """
        if not _plan.fusable(net, cost, optimizer):
            return None
        blas = epoch_blas.blas_available()
        if _checks.is_sparse(X):
            if blas:
                return SparseRunner(net, cost, optimizer, csr_input(X, net.dtype), targets, batch_size)
            X = X.toarray()  # pragma: no cover - SciPy (a core dependency) brings BLAS with it
        args = (net, cost, optimizer, X, targets, batch_size)
        if batch_size == 1 and optimizer.kind == "sgd" and sparse is not True:
            return OnlineRunner(*args)  # finds each sample's non-zeros itself
        if blas and sparse is not False and (sparse is True or batch_size >= SPARSE_MIN_BATCH):
            csr = csr_input(X, net.dtype, 1.0 if sparse is True else SPARSE_MAX_DENSITY)
            if csr is not None:
                return SparseRunner(net, cost, optimizer, csr, targets, batch_size)
        if batch_size >= BLAS_MIN_BATCH and blas:
            return BlasRunner(*args)
        return MinibatchRunner(*args)

    def predict(self, net, X, batch_size=None):
        """Forward ``X`` (N, insize) through ``net`` -> (N, outsize), compiled for plain MLPs."""
        if not _plan.is_plain_mlp(net) or X.shape[0] == 0 or _checks.is_sparse(X):
            return super().predict(net, X, batch_size)
        spec, slopes, _ = _plan.layer_table(net, 0)
        X = np.ascontiguousarray(X, dtype=net.dtype)
        out = np.empty((X.shape[0], net.outsize), net.dtype)
        chunk = min(self.predict_chunk, batch_size or self.predict_chunk)
        width = max([int(r[1]) for r in spec[:-1]] + [1])
        work = X.shape[0] * int(sum(int(r[0] * r[1]) for r in spec))
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
        self.n_batches = -(-X.shape[0] // batch_size)
        self.plan = _plan.Plan(net, cost, optimizer, targets, batch_size, self.transposed)
        dt = net.dtype
        self.ws = np.zeros(max(self.plan.ws_size, 1), dt)
        self.data = self.plan.data(np.ascontiguousarray(X, dtype=dt))

    def _args(self):
        """(model, optim) for one call: hyper-parameters are re-read (schedules change lr)."""
        return self.plan.model(self.net.params, self.net.grads, self.ws), self.plan.optim(self.optimizer)

    def finish(self):
        """The kernels work in the network's own buffers: nothing to copy back."""

    def weigh(self, s, wdf):
        """This epoch's sample-weight factors (see :func:`fastnn.backends.plan.batch_weights`)."""
        sw, wdf = self.plan.weights(s, wdf)
        self.data = self.data._replace(sw=sw, wdf=wdf)

    @property
    def kernel(self):
        """This path's epoch kernel (``epoch_*.train``, looked up when used)."""
        return self.epoch.train

    def will_compile(self):
        """Whether :meth:`prepare` will compile (not only load) this path's epoch kernel: it is
        compiled for nothing in this process and has no entry in the on-disk cache."""
        return kernel_will_compile(self.kernel)

    def prepare(self):
        """Compile (or load from the cache) this path's epoch kernel, training nothing; returns
        True when it compiled. The Trainer calls it before the first epoch, so that compile
        time is reported on its own and never counted in the epochs' times."""
        stats = getattr(self.kernel, "stats", None)
        misses = sum(stats.cache_misses.values()) if stats else 0
        self.run(np.zeros(0, np.int64), 0, 0)
        stats = getattr(self.kernel, "stats", None)
        return stats is None or sum(stats.cache_misses.values()) > misses or not stats.cache_path


def kernel_will_compile(kernel):
    """Whether calling the numba dispatcher ``kernel`` for a new signature compiles it (a guess
    that errs towards yes: in memory for no signature, and no index in the on-disk cache)."""
    if getattr(kernel, "overloads", None):
        return False
    index = getattr(getattr(getattr(kernel, "_cache", None), "_cache_file", None), "_index_path", None)
    return not (index and os.path.exists(index))


def _with_plain_fallback(module, args):
    """``module.train(*args)``; if its LLVM-vector intrinsics fail to compile here, warn once
    and retry with the plain loops, which give the same bits (``module``: epoch_online or
    epoch_sparse)."""
    try:
        return module.train(*args)
    except (NumbaError, RuntimeError) as exc:
        if not module.uses_simd():
            raise
        warnings.warn(f"fastnn: the {module.__name__.rsplit('.', 1)[-1]} kernels' LLVM-vector intrinsics failed "
                      f"to compile ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                      "using plain loops (same results, slower; FASTNN_SIMD=0 chooses them)",
                      RuntimeWarning, stacklevel=3)
        module.use_plain_loops()
        return module.train(*args)


class OnlineRunner(_Runner):
    """Batch size 1 with plain SGD: the per-sample path (``kernels/cpu/epoch_online.py``)."""

    epoch = epoch_online

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of ``order`` (see :meth:`fastnn.backends.numpy.Ops.make_runner`)."""
        model, optim = self._args()  # b1 <= b0 trains nothing (prepare: compiles only)
        order = np.ascontiguousarray(order, np.int64)
        loss, correct, bad = _with_plain_fallback(epoch_online, (model, optim, self.data, order, b0, b1))
        self.optimizer.t += b1 - b0
        return float(loss), int(correct), int(bad)


class MinibatchRunner(_Runner):
    """Row-blocked minibatches (``kernels/cpu/epoch_minibatch.py``), sparse-aware and threaded.

    The first layer reads X through its sparsity pattern when at most
    :attr:`sparse_density` of it is non-zero.
    """

    epoch = epoch_minibatch
    #: Fraction of non-zero inputs below which the first layer reads X as CSR.
    sparse_density = 0.5

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
        # small batches of plain SGD on sparse input update the first layer's weights
        # straight from the non-zero inputs (sparse.sgd_sparse_rows); big batches keep
        # the dense gradient, whose weight rows the threads can share
        self.sparse_sgd_ok = (self.sparse and not big and self.plan.opt_code == OPT_SGD
                              and int(spec[0, 2]) == 0)
        #: whether this fit's minibatches run on the threads (decided once, see threads_for)
        self.parallel = threads_for(batch_size * per_sample, AUTO_THREAD_WORK) > 1

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of ``order`` (see :meth:`fastnn.backends.numpy.Ops.make_runner`)."""
        model, optim = self._args()  # b1 <= b0 trains nothing (prepare: compiles only)
        return self._train(model, optim, np.ascontiguousarray(order, dtype=np.int64), b0, b1, self.parallel)

    def _train(self, model, optim, order, b0, b1, parallel):
        opt = self.optimizer
        sparse_sgd = bool(self.sparse_sgd_ok and optim.hp[WD] == 0)
        loss, correct, bad = epoch_minibatch.train(model, optim, self.data, self.pattern, order, b0, b1,
                                                   self.batch_size, self.A0, opt.t, parallel, sparse_sgd)
        opt.t += b1 - b0
        return float(loss), int(correct), int(bad)


class SparseRunner(_Runner):
    """Sparse input at any batch size (``kernels/cpu/epoch_sparse.py``): the first layer reads
    only the non-zero inputs, pixel-major per batch; the later layers are BLAS products (on
    one BLAS thread: the Numba threads take blocks of the first layer's outputs)."""

    transposed = False
    epoch = epoch_sparse

    def __init__(self, net, cost, optimizer, csr, targets, batch_size):
        self.csr = csr
        super().__init__(net, cost, optimizer, np.zeros((csr.indptr.shape[0] - 1, 0), net.dtype), targets,
                         batch_size)
        spec = self.plan.spec
        nnz_rows = np.diff(csr.indptr)
        cap = int(np.sort(nnz_rows)[-batch_size:].sum()) if len(nnz_rows) else 0
        self.cols = sparse.batch_columns_scratch(int(spec[0, 0]), cap, int(spec[0, 1]), net.dtype)
        # multiply-adds per batch: the first layer's on the non-zeros only
        per_sample = len(csr.data) / max(len(nnz_rows), 1) * int(spec[0, 1]) + sum(
            int(r[0] * r[1]) for r in spec[1:])
        n = threads_for(batch_size * per_sample, AUTO_SPARSE_THREAD_WORK)
        #: blocks of the first layer's outputs, one per thread (decided once)
        self.nblk = max(1, min(n, int(spec[0, 1])))
        self.sparse_sgd_ok = self.plan.opt_code == OPT_SGD and int(spec[0, 2]) == 0
        self.ctl = _blas_controller()

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of ``order`` (see :meth:`fastnn.backends.numpy.Ops.make_runner`)."""
        model, optim = self._args()  # b1 <= b0 trains nothing (prepare: compiles only)
        order = np.ascontiguousarray(order, dtype=np.int64)
        sparse_sgd = bool(self.sparse_sgd_ok and optim.hp[WD] == 0)
        args = (model, optim, self.data, self.csr, self.cols, order, b0, b1, self.batch_size, self.optimizer.t,
                self.nblk, sparse_sgd)
        with (self.ctl.limit(limits=1) if self.ctl else contextlib.nullcontext()):
            loss, correct, bad = _with_plain_fallback(epoch_sparse, args)
        self.optimizer.t += b1 - b0
        return float(loss), int(correct), int(bad)


class BlasRunner(_Runner):
    """Minibatches whose matrix products are BLAS calls (``kernels/cpu/epoch_blas.py``).

    BLAS runs on the threads that :func:`threads_for` gives this fit's work per batch
    (at most ``config.get_num_threads()`` and BLAS's own limit), set through
    ``threadpoolctl`` around each call; no Numba threads are used here. The summation
    order inside a product is BLAS's: the same for the same thread count, not
    guaranteed across thread counts.
    """

    transposed = False
    epoch = epoch_blas

    def __init__(self, net, cost, optimizer, X, targets, batch_size):
        super().__init__(net, cost, optimizer, X, targets, batch_size)
        self.xbuf = np.zeros(batch_size * self.data.X.shape[1], net.dtype)
        work = batch_size * sum(int(r[0] * r[1]) for r in self.plan.spec)
        self.ctl = _blas_controller()
        limit = max([int(d.get("num_threads") or 1) for d in self.ctl.info()] or [1]) if self.ctl else 1
        #: BLAS threads of this fit (decided once)
        self.blas_threads = min(threads_for(work, AUTO_BLAS_THREAD_WORK), limit)

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of ``order`` (see :meth:`fastnn.backends.numpy.Ops.make_runner`)."""
        order = np.ascontiguousarray(order, dtype=np.int64)
        model, optim = self._args()  # b1 <= b0 trains nothing (prepare: compiles only)
        with (self.ctl.limit(limits=self.blas_threads) if self.ctl else contextlib.nullcontext()):
            loss, correct, bad = epoch_blas.train(model, optim, self.data, order, b0, b1, self.batch_size,
                                                  self.xbuf, self.optimizer.t)
        self.optimizer.t += b1 - b0
        return float(loss), int(correct), int(bad)


#: Density (non-zero inputs / all) up to which "auto" trains a dense X on its non-zero
#: inputs (the sparse epochs, SparseRunner), from batches of SPARSE_MIN_BATCH on. Measured
#: with benchmarks/bench_sparse_crossover.py (784-256-10 batch 128 momentum, 2 threads):
#: sparse/BLAS fit time 1.35 at density 0.19 (MNIST), 1.04 at 0.13, 0.91 at 0.09, 0.62 at
#: 0.035; 784-50-10 batch 32 SGD: 1.29, 0.94, 1.03, 0.87.
SPARSE_MAX_DENSITY = 0.1
SPARSE_MIN_BATCH = 32


def csr_input(X, dtype, max_density=1.0):
    """X (scipy.sparse, or dense with many zeros) as the kernels' :class:`~fastnn.kernels.cpu.sparse.CSR`:
    int64 row pointers, int32 ascending column indices, values in ``dtype``; O(nnz) memory.
    A dense X with more than ``max_density`` of its entries non-zero gives None."""
    if not _checks.is_sparse(X):
        csr = sparse.csr_of(np.ascontiguousarray(X, dtype), max_density, values=True)
        return None if csr is None else sparse.CSR(*csr)
    m = X.tocsr()
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()  # also sorts the indices
    return sparse.CSR(np.ascontiguousarray(m.indptr, np.int64), np.ascontiguousarray(m.indices, np.int32),
                      np.ascontiguousarray(m.data, dtype))


def threads_for(work, auto_work):
    """Threads one fit uses for batches of ``work`` multiply-adds: decided once per fit, from
    the work alone (never from timings), so the same fit gives the same bits every run.

    ``FASTNN_PARALLEL`` (``fastnn.config.PARALLEL``) overrides: ``"0"`` one thread, ``"1"``
    all of ``fastnn.set_num_threads`` from ``PARALLEL_MIN_WORK`` on, ``"auto"`` all from
    ``auto_work`` on (the measured crossover of the path).
    """
    n = config.get_num_threads()
    if n == 1 or config.PARALLEL == "0":
        return 1
    limit = config.PARALLEL_MIN_WORK if config.PARALLEL == "1" else auto_work
    return n if work >= limit else 1


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
