"""Trainer (the loop behind ``Sequential.fit``), History, and the Python batch loop.

The epoch loop is backend-independent: per epoch it draws the sample order from the
Trainer's own generator, then has a runner train chunks of batches. A compiled
backend's runner (``ops.make_runner``) trains a whole chunk, normally a whole epoch,
in one kernel call; otherwise :class:`BatchLoop` runs the batches in Python through
the backend's per-op kernels. The shuffle order and the initial weights never depend
on the backend, so two backends can be compared step by step.

How data reaches a kernel (at most five hops, never back up a layer)::

    Sequential.fit -> Trainer.fit -> runner.run (fastnn/backends/numba.py, cuda.py)
                   -> kernels/cpu/epoch_*.train, kernels/cuda/epoch.train
    Sequential.fit -> Trainer.fit -> BatchLoop.run -> Layer.forward/backward
                   -> kernels/reference.py (or any backend's per-op kernel)
"""

import math
import signal
import sys
import threading
import time

import numpy as np

from fastnn import _checks
from fastnn._interrupt import StopGuard
from fastnn.backends import get_ops, resolves_automatically
from fastnn.backends.plan import batch_weights
from fastnn.callbacks import CallbackList, progress_callback
from fastnn.costs import get_cost
from fastnn.optimizers import get_optimizer

# With signal handling on, epochs of at least ADAPTIVE_MIN_BATCHES batches run in chunks
# of about INTERRUPT_LATENCY_S seconds, so that Ctrl-C or SIGTERM is honoured within that
# time. (Smaller epochs keep running in one call, as without the handler.)
INTERRUPT_LATENCY_S = 0.5
ADAPTIVE_MIN_BATCHES = 100
#: backend="auto" trains on the NumPy reference when NumPy is estimated to take less than
#: this for the whole fit: compiling the numba kernels costs ~10 s once per install (loading
#: them from the cache ~0.3 s), more than such a fit (the README's Quickstart: 0.06 s).
AUTO_NUMPY_SECONDS = 0.5
#: The estimate: NumPy's per-layer overhead per batch (measured: ~45 us for Linear and
#: activation layers on the 2-vCPU development machine) plus the FLOPs at NUMPY_FLOPS.
NUMPY_LAYER_SECONDS = 50e-6
NUMPY_FLOPS = 5e9
#: What ``fit(on_nonfinite=...)`` takes.
ON_NONFINITE = ("raise", "stop", "ignore")


class DivergenceError(FloatingPointError):
    """Training diverged: a batch loss became NaN or inf (or the weights did).

    ``fit`` restored the weights and optimizer state of the last finite chunk of batches
    before raising; ``epoch`` and ``batch`` (counted from 1) say where it happened.
    """

    def __init__(self, message, epoch, batch):
        super().__init__(message)
        self.epoch, self.batch = epoch, batch


# Networks being trained now (ids): fit refuses a second, concurrent fit of the same one.
_ACTIVE = set()
_ACTIVE_LOCK = threading.Lock()


class BatchLoop:
    """Trains one ``fit``'s batches in Python, through a backend's per-op kernels.

    The loop of the ``"numpy"`` backend, and of every training a compiled backend's
    fused epochs do not cover (custom layers, costs, optimizers). X was checked once,
    by the Trainer: the layers are called directly, never ``Sequential.forward``.

    Parameters
    ----------
    ops : Ops
    net, cost, optimizer : Sequential, Cost, Optimizer
    X : ndarray (N, insize), checked and in the network's dtype
    targets : fastnn.costs.Targets
    batch_size : int
    """

    def __init__(self, ops, net, cost, optimizer, X, targets, batch_size):
        self.ops, self.net, self.cost, self.optimizer = ops, net, cost, optimizer
        self.X, self.targets, self.batch_size = X, targets, batch_size
        self.n_batches = -(-X.shape[0] // batch_size)
        self.fused_last = cost.fuses_with(net.layers[-1]) if net.layers else False
        self.s = self.wdf = None

    def weigh(self, s, wdf):
        """This epoch's sample-weight factors (:func:`fastnn.backends.plan.batch_weights`):
        ``s`` (N,) on each sample's loss and delta, ``wdf`` (batches,) on each batch's weight
        decay; None for none."""
        self.s = None if s is None else s.astype(self.net.dtype)
        self.wdf = wdf

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of the sample order ``order`` (int64 (N,)).

        Batch ``b`` is ``order[b*batch_size:(b+1)*batch_size]`` (the last may be short).

        Returns
        -------
        loss_sum : float
            Sum over the batches of (batch mean loss * batch size), measured on each
            batch's forward pass before its update.
        correct : int
            Correct predictions on those forward passes (0 without labels).
        bad : int
            The first batch whose loss is not finite (training diverged), or -1.
        """
        wd = self.optimizer.weight_decay
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported through ``bad``
                return self._run(order, b0, b1)
        finally:
            self.optimizer.weight_decay = wd  # per-batch decay (sample weights) ends with the call

    def _run(self, order, b0, b1):
        ops, net, cost, opt = self.ops, self.net, self.cost, self.optimizer
        bs, labels, s = self.batch_size, self.targets.labels, self.s
        wd = opt.weight_decay
        loss_sum, correct, bad = 0.0, 0, -1
        for b in range(b0, b1):
            idx = order[b * bs:(b + 1) * bs]
            out, t = self.X[idx], self.targets.T[idx]
            for layer in net.layers:
                out = layer.forward(out, ops)
            if s is None:
                ls = ops.cost_value(cost.code, out, t, cost.param) * len(idx)
            else:  # sum_i s_i l_i: the weighted mean loss times the batch size
                ls = float(np.dot(ops.cost_rows(cost.code, out, t, cost.param), s[idx].astype(np.float64)))
            if bad < 0 and not math.isfinite(ls):
                bad = b
            loss_sum += ls
            if labels is not None:
                correct += cost.count_correct(out, labels[idx])
            delta = cost.output_delta(ops, out, t, net.layers[-1])
            if s is not None:
                delta = delta * s[idx][:, None]
            net.backward(delta, ops, skip_last=self.fused_last, need_input_grad=False)
            if self.wdf is not None:
                opt.weight_decay = float(wd * self.wdf[b])
            opt.step(net, ops)
        return loss_sum, correct, bad

    def finish(self):
        """The layers work in the network's own buffers: nothing to copy back."""


class History:
    """What ``fit`` returns: ``history`` maps a metric name to its per-epoch values.

    Keys: ``"loss"`` always; ``"accuracy"`` for classification; ``"val_loss"`` and
    ``"val_accuracy"`` with validation data. ``epoch`` lists the epoch indices and
    ``times`` the seconds each epoch took.

    ``interrupted`` is True when Ctrl-C or SIGTERM (or a callback raising
    KeyboardInterrupt) stopped training: the History then holds the completed epochs,
    and the network the weights after the last completed chunk of batches.
    ``stopped_at`` is ``(epoch, batches)``: the epoch in progress and how many of its
    batches were trained (``(k, 0)`` when the stop came right after k complete epochs).
    ``compile_seconds`` is the time spent compiling (or loading from the cache) the compiled
    kernels before the first epoch; ``times`` never includes it.
    ``stop_signal`` names the signal (``"SIGINT"``, ``"SIGTERM"``) when one stopped it.
    ``diverged`` is True when ``fit(on_nonfinite="stop")`` stopped at a non-finite loss
    (the network then holds the weights of the last finite chunk).
    """

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.times = []
        self.stopped_early = False
        self.interrupted = False
        self.diverged = False
        self.stopped_at = None
        self.stop_signal = None
        self.compile_seconds = 0.0

    def append(self, epoch, logs, seconds):
        self.epoch.append(epoch)
        self.times.append(seconds)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


class _Snapshot:
    """The weights and optimizer state at the start of the last chunk of batches, so that a
    diverged fit can go back to them. Host buffers are allocated once and copied into; a
    runner whose state lives elsewhere (the GPU) offers ``snapshot()``/``restore()``."""

    def __init__(self, runner, net, optimizer):
        self.runner, self.net, self.opt = runner, net, optimizer
        self.device = hasattr(runner, "snapshot")
        self.bufs = None if self.device else [np.empty_like(a) for a in self._arrays()]
        self.state = None

    def _arrays(self):
        return [self.net.params] + [getattr(self.opt, name) for name in self.opt.state_names()]

    def take(self):
        if self.device:
            self.state = self.runner.snapshot()
        else:
            for buf, a in zip(self.bufs, self._arrays()):
                np.copyto(buf, a)
            self.state = self.opt.t

    def restore(self):
        """Back to the snapshot (gradients are zeroed: they belonged to a diverged batch)."""
        if self.device:
            self.runner.restore(self.state)
            self.runner.finish()
        else:
            for buf, a in zip(self.bufs, self._arrays()):
                np.copyto(a, buf)
            self.opt.t = self.state
        self.net.grads[...] = 0


def _divergence_message(epoch, batch, nb, optimizer, X):
    big = float(np.max(np.abs(X))) if X.size else 0.0
    return (f"training diverged in epoch {epoch + 1}, batch {batch + 1} of {nb}: the loss (or the weights) "
            f"became NaN or inf. The weights and optimizer state are back to the last finite chunk of batches. "
            f"Try a smaller learning rate (lr is {optimizer.lr:g}) or scaled inputs (the largest |X| is "
            f"{big:.3g}; e.g. sklearn's StandardScaler); fit(on_nonfinite='stop') returns instead of raising.")


class Trainer:
    """Holds what one training run needs and runs it (PuzzleLib's Trainer).

    Parameters
    ----------
    net : Sequential
    cost : Cost
    optimizer : Optimizer
    batch_size : int
    backend : str or None
        ``"auto"``, ``"numpy"``, ``"numba"``, ``"cuda"``; None means the default.
    shuffle : bool
    seed : int or None
        Seed of the shuffle order.
    decay_per_weight : bool
        scikit-learn's L2 rule: each step's weight decay is ``weight_decay * batch_size /
        sum(w)`` over that batch's sample weights (its size without weights), so the penalty
        is per unit of sample weight. False (default): the same decay every step, as
        ``torch.optim``.
    """

    def __init__(self, net, cost, optimizer, batch_size=32, backend=None, shuffle=True, seed=None,
                 decay_per_weight=False):
        self.net = net
        self.cost = get_cost(cost)
        self.optimizer = get_optimizer(optimizer)
        self.batch_size = _checks.check_positive_int("batch_size", batch_size)
        self._auto = resolves_automatically(backend)
        # "auto" is resolved on first use: a tiny fit then trains on NumPy without ever loading
        # numba and numba.cuda (about a second of imports)
        self._backend, self._chosen, self._ops = backend, None, None
        if not self._auto:
            self._chosen = get_ops(backend)
        self.shuffle = bool(shuffle)
        self.rng = np.random.default_rng(seed)
        self.stop_training = False
        self.epochs = 0
        self.decay_per_weight = bool(decay_per_weight)
        #: this epoch's weight-decay factor per batch (with ``decay_per_weight``), else None
        self.decay_factors = None
        if not net.linears:
            raise ValueError("the network has no Linear layer, so nothing to train")

    @property
    def _chosen_ops(self):
        """The backend the user chose (``backend=``, or what "auto" resolves to)."""
        if self._chosen is None:
            self._chosen = get_ops(self._backend)
        return self._chosen

    @property
    def ops(self):
        """The backend that trains: the chosen one, or NumPy for a tiny fit under "auto"."""
        return self._ops if self._ops is not None else self._chosen_ops

    @ops.setter
    def ops(self, value):
        self._ops = value

    def _prepare(self, X, Y, name="X", yname="Y"):
        X = _checks.check_X(X, self.net.insize, self.net.dtype, name=name)
        targets = self.cost.prepare(Y, self.net.outsize, self.net.dtype)
        _checks.check_rows(X, targets.T, name, yname)
        return X, targets

    def fit(self, X, Y, epochs=1, validation_data=None, callbacks=None, progress=False, on_nonfinite="raise",
            sparse="auto", sample_weight=None):
        """Train for ``epochs`` epochs; returns a :class:`History`.

        Every argument is checked before any parameter changes. ``on_nonfinite`` says what
        a NaN or inf loss does: ``"raise"`` (:class:`DivergenceError`, after restoring the
        last finite chunk's weights and optimizer state), ``"stop"`` (the same restore,
        then return with ``history.diverged``) or ``"ignore"`` (train on). ``sparse``
        ("auto", True, False) chooses whether the first layer works on the non-zero inputs
        only; "auto" decides from the input's density (a scipy.sparse X always does).
        ``sample_weight`` (N,) >= 0: each batch trains on the weighted mean of its samples'
        losses, ``sum w_i l_i / sum w_i`` (scikit-learn's rule; Keras divides by the batch
        size instead), on every backend and path; the History's loss is that weighted mean
        times each batch's size, summed, over N (scikit-learn's ``loss_``).
        """
        epochs = _checks.check_positive_int("epochs", epochs)
        if on_nonfinite not in ON_NONFINITE:
            raise ValueError(f"on_nonfinite must be one of {', '.join(ON_NONFINITE)}, got {on_nonfinite!r}")
        if sparse not in ("auto", True, False):
            raise ValueError(f"sparse must be 'auto', True or False, got {sparse!r}")
        self._sparse = sparse
        self.optimizer.check()
        X, targets = self._prepare(X, Y)
        weight = None if sample_weight is None else _checks.check_sample_weight(sample_weight, _checks.n_rows(X))
        val = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("validation_data must be a tuple (X_val, Y_val)")
            val = self._prepare(*validation_data, name="X_val", yname="Y_val")
        cbs = list(callbacks or [])
        if progress:
            cbs.append(progress_callback())
        with _ACTIVE_LOCK:
            if id(self.net) in _ACTIVE:
                raise RuntimeError("this network is being trained by another fit (another thread?) right now; "
                                   "train a copy (net.copy()) or wait for that fit to end")
            _ACTIVE.add(id(self.net))
        try:
            return self._fit(X, targets, epochs, val, CallbackList(cbs), on_nonfinite, weight)
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(id(self.net))

    def numpy_estimate(self, n, epochs):
        """Seconds the NumPy reference is estimated to take for ``epochs`` over ``n`` samples."""
        net = self.net
        batches = epochs * -(-n // min(self.batch_size, n))
        flops = 6.0 * n * epochs * sum(layer.n_weights for layer in net.linears)
        return batches * len(net.layers) * NUMPY_LAYER_SECONDS + flops / NUMPY_FLOPS

    def _fit(self, X, targets, epochs, val, cbs, on_nonfinite, weight=None):
        net, opt, n = self.net, self.optimizer, X.shape[0]
        if self._auto and self.numpy_estimate(n, epochs) < AUTO_NUMPY_SECONDS:
            self.ops = get_ops("numpy")  # a tiny fit: less work than loading compiled kernels
        else:
            self.ops = self._chosen_ops
        self.epochs, self.stop_training = epochs, False
        history = self.history = History()
        cbs.set_trainer(self)
        opt.ensure_setup(net)
        bs = min(self.batch_size, n)  # a batch larger than the data is the whole data: size buffers by it
        runner = self.ops.make_runner(net, self.cost, opt, X, targets, bs, sparse=self._sparse)
        if runner is None:
            runner = BatchLoop(self.ops, net, self.cost, opt, X, targets, bs)
        nb = runner.n_batches
        snap = None if on_nonfinite == "ignore" else _Snapshot(runner, net, opt)
        acc_den = self.cost.accuracy_denominator(n, net.outsize)
        cbs.on_train_begin({})
        self._prepare_kernels(runner, cbs, history)
        guard, in_run, sec_per_batch = StopGuard(), False, None
        epoch, b0, b1 = 0, 0, 0
        try:
            guard.__enter__()
            adaptive = guard.active and not cbs.wants_batches and nb >= ADAPTIVE_MIN_BATCHES
            for epoch in range(epochs):
                b1 = 0
                cbs.on_epoch_begin(epoch, {})
                t0 = time.perf_counter()
                order = self.rng.permutation(n) if self.shuffle else np.arange(n)
                order = order.astype(np.int64)
                net.draw_dropout_key(self.rng)  # this epoch's Dropout masks (no draw without Dropout)
                if weight is not None or self.decay_per_weight:
                    s, self.decay_factors = batch_weights(weight, order, bs, self.decay_per_weight)
                    runner.weigh(s, self.decay_factors)
                loss_sum, correct, b0 = 0.0, 0, 0
                while b0 < nb:
                    if cbs.wants_batches:
                        chunk = max(1, nb // 100)
                    elif not adaptive:
                        chunk = nb
                    elif sec_per_batch is None:  # probe: 1 batch (may compile), then 1%
                        chunk = 1 if b0 == 0 else max(1, nb // 100)
                    else:
                        chunk = max(1, int(INTERRUPT_LATENCY_S / sec_per_batch))
                    b1 = min(nb, b0 + chunk)
                    opt.check()  # callbacks may have changed the hyper-parameters
                    if snap is not None:
                        snap.take()
                    in_run, tr = True, time.perf_counter()
                    ls, c, bad = runner.run(order, b0, b1)
                    in_run = False
                    if bad >= 0 and snap is not None:
                        return self._diverged(runner, snap, history, cbs, epoch, bad, nb, b0, X, on_nonfinite)
                    if adaptive and not (epoch == 0 and b0 == 0):  # the first call includes JIT time
                        sec_per_batch = (time.perf_counter() - tr) / (b1 - b0)
                    loss_sum, correct = loss_sum + ls, correct + c
                    seen = min(n, b1 * bs)
                    if cbs.wants_batches:
                        blogs = {"batch": b1 - 1, "n_batches": nb, "loss": loss_sum / seen}
                        if targets.labels is not None:
                            blogs["accuracy"] = correct / self.cost.accuracy_denominator(seen, net.outsize)
                        cbs.on_batch_end(b1 - 1, blogs)
                    if guard.flag and b1 < nb:
                        raise KeyboardInterrupt
                    b0 = b1
                runner.finish()
                if snap is not None and not _checks.all_finite(net.params):  # the last update overflowed
                    return self._diverged(runner, snap, history, cbs, epoch, nb - 1, nb, b0, X, on_nonfinite)
                logs = {"loss": loss_sum / n}
                if targets.labels is not None:
                    logs["accuracy"] = correct / acc_den
                if val is not None:
                    vX, vt = val
                    pred = self.ops.predict(net, vX, None)
                    logs["val_loss"] = self.cost.value(pred, vt.T)
                    if vt.labels is not None:
                        logs["val_accuracy"] = (self.cost.count_correct(pred, vt.labels)
                                                / self.cost.accuracy_denominator(vX.shape[0], net.outsize))
                history.append(epoch, logs, time.perf_counter() - t0)
                cbs.on_epoch_end(epoch, logs)
                if hasattr(runner, "reload"):
                    runner.reload()  # callbacks may have written weights or optimizer state on the host
                if guard.flag and epoch + 1 < epochs:
                    raise KeyboardInterrupt
                if self.stop_training:
                    history.stopped_early = epoch + 1 < epochs
                    break
        except KeyboardInterrupt:
            if in_run:
                raise  # inside a chunk (a second Ctrl-C): no clean state to return
            history.interrupted = True
            history.stop_signal = signal.Signals(guard.signum).name if guard.signum else None
            # after a complete epoch the run stands at the start of the next one
            history.stopped_at = (epoch + 1, 0) if len(history.epoch) > epoch else (epoch, b1)
        finally:
            guard.__exit__()
            runner.finish()
        cbs.on_train_end({"history": history})
        return history

    def _prepare_kernels(self, runner, cbs, history):
        """Compile (or load) the runner's kernels before the first epoch, saying so when it
        compiles: through the callbacks that show progress, else on stderr
        (``fastnn.config.COMPILE_NOTICES``)."""
        if not hasattr(runner, "prepare"):
            return
        from fastnn import config

        say = cbs.reports_compile or config.COMPILE_NOTICES
        compiling = say and runner.will_compile()
        begin = f"compiling the {self.ops.name} kernels for this kind of network (first run only; they are cached)..."
        if compiling:
            if cbs.reports_compile:
                cbs.on_compile_begin({"message": begin})
            else:
                print(f"fastnn: {begin}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        compiled = runner.prepare()
        history.compile_seconds = secs = time.perf_counter() - t0
        if compiling or (compiled and secs > 1.0):
            end = f"compiled the kernels in {secs:.1f} s (the epochs' times leave this out)"
            if cbs.reports_compile:
                cbs.on_compile_end({"seconds": secs, "message": end})
            elif say:
                print(f"fastnn: {end}", file=sys.stderr, flush=True)

    def _diverged(self, runner, snap, history, cbs, epoch, bad, nb, b0, X, on_nonfinite):
        """Restore the last finite chunk, then raise or return (``on_nonfinite``)."""
        runner.finish()
        snap.restore()
        history.diverged = True
        history.stopped_at = (epoch, b0)
        cbs.on_train_end({"history": history, "diverged": True})
        if on_nonfinite == "raise":
            raise DivergenceError(_divergence_message(epoch, bad, nb, self.optimizer, X), epoch + 1, bad + 1)
        return history

    def train(self, X, Y, epochs=1, **kwargs):
        """Alias of :meth:`fit`."""
        return self.fit(X, Y, epochs=epochs, **kwargs)
