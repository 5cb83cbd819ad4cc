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
import threading
import time

import numpy as np

from fastnn import _checks
from fastnn.backends import get_ops
from fastnn.callbacks import CallbackList, progress_callback
from fastnn.costs import get_cost
from fastnn.optimizers import get_optimizer

# With Ctrl-C handling on, epochs of at least ADAPTIVE_MIN_BATCHES batches run in
# chunks of about INTERRUPT_LATENCY_S seconds, so that an interrupt is honoured
# within that time. (Smaller epochs keep running in one call, as without the handler.)
INTERRUPT_LATENCY_S = 0.5
ADAPTIVE_MIN_BATCHES = 100


class _InterruptGuard:
    """Turns the first SIGINT (Ctrl-C) during training into a flag that the loop
    checks between chunks of batches, so training stops with nothing half-updated.
    A second Ctrl-C gets the previous handler (normally an immediate KeyboardInterrupt).
    Signal handlers can only be installed from the main thread; elsewhere it is inactive.
    """

    def __init__(self):
        self.flag = self.active = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            old = signal.getsignal(signal.SIGINT)
            if old is not signal.SIG_IGN:
                try:
                    signal.signal(signal.SIGINT, self._handle)
                except ValueError:  # e.g. a sub-interpreter
                    return self
                self._old = old if old is not None else signal.default_int_handler
                self.active = True
        return self

    def _handle(self, signum, frame):
        self.flag = True
        signal.signal(signal.SIGINT, self._old)

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self._old)
            self.active = False


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
        self.n_batches = -(-len(X) // batch_size)
        self.fused_last = cost.fuses_with(net.layers[-1]) if net.layers else False

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
        ops, net, cost, opt = self.ops, self.net, self.cost, self.optimizer
        bs, labels = self.batch_size, self.targets.labels
        loss_sum, correct, bad = 0.0, 0, -1
        for b in range(b0, b1):
            idx = order[b * bs:(b + 1) * bs]
            out, t = self.X[idx], self.targets.T[idx]
            for layer in net.layers:
                out = layer.forward(out, ops)
            ls = ops.cost_value(cost.code, out, t) * len(idx)
            if bad < 0 and not math.isfinite(ls):
                bad = b
            loss_sum += ls
            if labels is not None:
                correct += cost.count_correct(out, labels[idx])
            delta = cost.output_delta(ops, out, t, net.layers[-1])
            net.backward(delta, ops, skip_last=self.fused_last, need_input_grad=False)
            opt.step(net, ops)
        return loss_sum, correct, bad

    def finish(self):
        """The layers work in the network's own buffers: nothing to copy back."""


class History:
    """What ``fit`` returns: ``history`` maps a metric name to its per-epoch values.

    Keys: ``"loss"`` always; ``"accuracy"`` for classification; ``"val_loss"`` and
    ``"val_accuracy"`` with validation data. ``epoch`` lists the epoch indices and
    ``times`` the seconds each epoch took.

    ``interrupted`` is True when Ctrl-C (or a callback raising KeyboardInterrupt)
    stopped training: the History then holds the completed epochs, and the network
    the weights after the last completed chunk of batches. ``stopped_at`` is
    ``(epoch, batches)``: the epoch in progress and how many of its batches were
    trained (``(k, 0)`` when the stop came right after k complete epochs).
    """

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.times = []
        self.stopped_early = False
        self.interrupted = False
        self.stopped_at = None

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
    """

    def __init__(self, net, cost, optimizer, batch_size=32, backend=None, shuffle=True, seed=None):
        self.net = net
        self.cost = get_cost(cost)
        self.optimizer = get_optimizer(optimizer)
        self.batch_size = _checks.check_positive_int("batch_size", batch_size)
        self.ops = get_ops(backend)
        self.shuffle = bool(shuffle)
        self.rng = np.random.default_rng(seed)
        self.stop_training = False
        self.epochs = 0
        if not net.linears:
            raise ValueError("the network has no Linear layer, so nothing to train")

    def _prepare(self, X, Y, name="X", yname="Y"):
        X = _checks.check_X(X, self.net.insize, self.net.dtype, name=name)
        targets = self.cost.prepare(Y, self.net.outsize, self.net.dtype)
        _checks.check_rows(X, targets.T, name, yname)
        return X, targets

    def fit(self, X, Y, epochs=1, validation_data=None, callbacks=None, progress=False):
        """Train for ``epochs`` epochs; returns a :class:`History`.

        Every argument is checked before any parameter changes.
        """
        epochs = _checks.check_positive_int("epochs", epochs)
        self.optimizer.check()
        X, targets = self._prepare(X, Y)
        val = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("validation_data must be a tuple (X_val, Y_val)")
            val = self._prepare(*validation_data, name="X_val", yname="Y_val")
        cbs = list(callbacks or [])
        if progress:
            cbs.append(progress_callback())
        cbs = CallbackList(cbs)

        net, n = self.net, len(X)
        self.epochs, self.stop_training = epochs, False
        history = self.history = History()
        cbs.set_trainer(self)
        self.optimizer.ensure_setup(net)
        bs = min(self.batch_size, n)  # a batch larger than the data is the whole data: size buffers by it
        runner = self.ops.make_runner(net, self.cost, self.optimizer, X, targets, bs)
        if runner is None:
            runner = BatchLoop(self.ops, net, self.cost, self.optimizer, X, targets, bs)
        nb = runner.n_batches
        acc_den = self.cost.accuracy_denominator(n, net.outsize)
        cbs.on_train_begin({})
        guard, in_run, sec_per_batch = _InterruptGuard(), False, None
        epoch, b1 = 0, 0
        try:
            guard.__enter__()
            adaptive = guard.active and not cbs.wants_batches and nb >= ADAPTIVE_MIN_BATCHES
            for epoch in range(epochs):
                b1 = 0
                cbs.on_epoch_begin(epoch, {})
                t0 = time.perf_counter()
                order = self.rng.permutation(n) if self.shuffle else np.arange(n)
                order = order.astype(np.int64)
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
                    in_run, tr = True, time.perf_counter()
                    ls, c, bad = runner.run(order, b0, b1)
                    in_run = False
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
                logs = {"loss": loss_sum / n}
                if targets.labels is not None:
                    logs["accuracy"] = correct / acc_den
                if val is not None:
                    vX, vt = val
                    pred = self.ops.predict(net, vX, None)
                    logs["val_loss"] = self.cost.value(pred, vt.T)
                    if vt.labels is not None:
                        logs["val_accuracy"] = (self.cost.count_correct(pred, vt.labels)
                                                / self.cost.accuracy_denominator(len(vX), net.outsize))
                history.append(epoch, logs, time.perf_counter() - t0)
                cbs.on_epoch_end(epoch, logs)
                if guard.flag and epoch + 1 < epochs:
                    raise KeyboardInterrupt
                if self.stop_training:
                    history.stopped_early = epoch + 1 < epochs
                    break
        except KeyboardInterrupt:
            if in_run:
                raise  # inside a chunk (a second Ctrl-C): no clean state to return
            history.interrupted = True
            # after a complete epoch the run stands at the start of the next one
            history.stopped_at = (epoch + 1, 0) if len(history.epoch) > epoch else (epoch, b1)
        finally:
            guard.__exit__()
            runner.finish()
        cbs.on_train_end({"history": history})
        return history

    def train(self, X, Y, epochs=1, **kwargs):
        """Alias of :meth:`fit`."""
        return self.fit(X, Y, epochs=epochs, **kwargs)
