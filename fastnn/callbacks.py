"""Callbacks: hooks the Trainer calls during ``fit``.

A callback subclasses :class:`Callback` and overrides any of its ``on_*`` methods.
``self.trainer`` (and ``self.net``) are set before training starts. Setting
``trainer.stop_training = True`` ends training after the current epoch's batches.

Batch hooks: compiled backends run many batches per call, so ``on_batch_end`` is
called after each *chunk* of batches (``logs["batch"]`` is the index of the chunk's
last batch). A callback that sets ``wants_batches = True`` asks the Trainer to use
small chunks (about 1/100 of an epoch); otherwise whole epochs run in one call.

``net.params`` holds the trained values in ``on_epoch_end`` and ``on_train_end``
(the backend has written its state back by then); in ``on_batch_end`` it does so
only on the numpy backend. Callbacks that read or write weights therefore do it
at epoch ends.

Provided here: :class:`ProgressBar` (what ``fit(progress=True)`` shows),
:class:`EpochLogger`, :class:`EarlyStopping`, the learning-rate schedules
:class:`StepDecay`, :class:`ExponentialDecay`, :class:`CosineDecay` (and
:class:`LearningRateScheduler` for any function of the epoch), and
:class:`ModelCheckpoint`.
"""

import math
import os
import sys
import warnings


class Callback:
    """Base class; every hook does nothing."""

    wants_batches = False
    #: Whether this callback shows the compile notices itself (fit then prints none).
    reports_compile = False
    trainer = None
    net = None

    def set_trainer(self, trainer):
        self.trainer, self.net = trainer, trainer.net

    def on_compile_begin(self, logs=None):
        """Before the first epoch, when the kernels are about to be compiled (first run only);
        ``logs["message"]`` says so."""

    def on_compile_end(self, logs=None):
        """After compiling: ``logs["seconds"]`` and ``logs["message"]``."""

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class CallbackList(Callback):
    """Calls each hook on every callback in order."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks or ())
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastnn.callbacks.Callback instances, got {cb!r}")

    @property
    def wants_batches(self):
        return any(cb.wants_batches for cb in self.callbacks)

    def set_trainer(self, trainer):
        for cb in self.callbacks:
            cb.set_trainer(trainer)

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batch_end(self, batch, logs=None):
        for cb in self.callbacks:
            cb.on_batch_end(batch, logs)

    @property
    def reports_compile(self):
        return any(cb.reports_compile for cb in self.callbacks)

    def on_compile_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_compile_begin(logs)

    def on_compile_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_compile_end(logs)


# -- progress ------------------------------------------------------------------------

def _is_tty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _fmt_logs(logs):
    return {k: f"{v:.4f}" for k, v in (logs or {}).items()
            if k in ("loss", "accuracy", "val_loss", "val_accuracy") and isinstance(v, float)}


class ProgressBar(Callback):
    """tqdm progress bars: one over epochs, one over the batches of the current epoch,
    with loss and accuracy in the postfix.

    Parameters
    ----------
    stream : file, optional
        Where to draw (default ``sys.stderr``).
    enabled : bool or None
        None (default) shows the bars only when ``stream`` is a terminal, so logs
        and pipes stay clean; True or False forces them on or off.
    batches : bool
        Also show the per-epoch batch bar. It makes compiled backends run an epoch
        in about 100 chunks instead of one call, which costs a little time.
    """

    def __init__(self, stream=None, enabled=None, batches=True):
        self.stream = stream
        out = stream if stream is not None else sys.stderr
        self.enabled = _is_tty(out) if enabled is None else bool(enabled)
        self.batches = bool(batches)
        self._epochs = self._batch_bar = None

    @property
    def wants_batches(self):
        return self.enabled and self.batches

    @property
    def reports_compile(self):
        return self.enabled

    def on_compile_begin(self, logs=None):
        if self.enabled and self._epochs is not None:
            self._epochs.set_description("compiling kernels (first run only)")
            self._epochs.refresh()

    def on_compile_end(self, logs=None):
        if self.enabled and self._epochs is not None:
            self._epochs.write(logs["message"], file=self._out())
            self._epochs.set_description("epochs")
            self._epochs.reset(total=self.trainer.epochs)  # the epochs' rate starts now, without the compile

    def _out(self):
        return self.stream if self.stream is not None else sys.stderr

    def on_train_begin(self, logs=None):
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._epochs = tqdm(total=self.trainer.epochs, desc="epochs", unit="epoch",
                            file=self._out(), dynamic_ncols=True)

    def on_epoch_begin(self, epoch, logs=None):
        if self.enabled and self.batches:
            self._close_batches()
            self._batch_bar = None  # created on the first chunk, when n_batches is known
            self._batch_pos = 0

    def on_batch_end(self, batch, logs=None):
        if not (self.enabled and self.batches):
            return
        logs = logs or {}
        if self._batch_bar is None:
            self._batch_bar = self._tqdm(total=logs.get("n_batches"), desc="batches", unit="batch",
                                         leave=False, file=self._out(), dynamic_ncols=True)
        self._batch_bar.update(batch + 1 - self._batch_pos)
        self._batch_pos = batch + 1
        self._batch_bar.set_postfix(_fmt_logs(logs), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if not self.enabled:
            return
        self._close_batches()
        self._epochs.set_postfix(_fmt_logs(logs), refresh=False)
        self._epochs.update(1)

    def _close_batches(self):
        if self._batch_bar is not None:
            self._batch_bar.close()
            self._batch_bar = None

    def on_train_end(self, logs=None):
        if not self.enabled:
            return
        self._close_batches()
        if self._epochs is not None:
            self._epochs.close()
            self._epochs = None


class EpochLogger(Callback):
    """Prints one line per epoch: ``epoch 3/10  loss 0.1234  accuracy 0.9712 ...``."""

    reports_compile = True

    def __init__(self, stream=None):
        self.stream = stream

    def on_compile_begin(self, logs=None):
        print(logs["message"], file=self.stream or sys.stdout, flush=True)

    def on_compile_end(self, logs=None):
        print(logs["message"], file=self.stream or sys.stdout, flush=True)

    def on_epoch_end(self, epoch, logs=None):
        parts = [f"epoch {epoch + 1}/{self.trainer.epochs}"]
        parts += [f"{k} {v:.4f}" for k, v in (logs or {}).items() if isinstance(v, float)]
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


def progress_callback():
    """The callback ``fit(progress=True)`` adds: a :class:`ProgressBar`, quiet unless
    stderr is a terminal."""
    return ProgressBar()


# -- monitoring a metric ---------------------------------------------------------------

class _Monitor:
    """Tracks the best value of one metric in the epoch logs."""

    def __init__(self, monitor, mode, min_delta):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.reset()

    def reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs, who):
        logs = logs or {}
        if self.monitor not in logs:
            have = ", ".join(sorted(logs)) or "none"
            hint = " (pass validation_data to fit)" if self.monitor.startswith("val_") else ""
            raise ValueError(f"{who} monitors {self.monitor!r}, which this training does not "
                             f"report{hint}; available: {have}")
        return float(logs[self.monitor])

    def improved(self, value):
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop training when a metric has stopped improving.

    Parameters
    ----------
    monitor : str
        A key of the epoch logs: ``"val_loss"`` (default), ``"val_accuracy"``,
        ``"loss"``, ``"accuracy"``.
    patience : int
        Number of epochs without improvement after which training stops.
    min_delta : float
        Smallest change that counts as an improvement.
    mode : "auto", "min" or "max"
        Whether smaller or larger is better; "auto" means larger for accuracies.
    restore_best : bool
        At the end of training, put back the weights of the best epoch.

    Attributes
    ----------
    best : float
        Best value seen. ``best_epoch``: its epoch; ``stopped_epoch``: the epoch
        after which training stopped, or None.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto", restore_best=True):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        self._m = _Monitor(monitor, mode, min_delta)
        self.monitor, self.patience, self.restore_best = monitor, patience, bool(restore_best)
        self.best_params = None
        self.best_epoch = self.stopped_epoch = None
        self.wait = 0

    @property
    def best(self):
        return self._m.best

    def on_train_begin(self, logs=None):
        self._m.reset()
        self.best_params, self.best_epoch, self.stopped_epoch, self.wait = None, None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        value = self._m.value(logs, "EarlyStopping")
        if self._m.improved(value):
            self._m.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_params = self.net.params.copy()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best and self.best_params is not None:
            self.net.params[...] = self.best_params


# -- learning-rate schedules ------------------------------------------------------------

class LearningRateScheduler(Callback):
    """Sets ``optimizer.lr = schedule(epoch, base_lr)`` before every epoch.

    ``base_lr`` is the optimizer's learning rate when training starts (the first
    time this callback is used), and ``epoch`` counts from 0 in each ``fit`` call.
    The rate used in each epoch is recorded in ``self.lrs``.
    """

    def __init__(self, schedule=None):
        if schedule is not None:
            self.schedule = schedule
        self.base_lr = None
        self.lrs = []

    def schedule(self, epoch, base_lr):  # pragma: no cover - overridden
        raise NotImplementedError

    def on_train_begin(self, logs=None):
        if self.base_lr is None:
            self.base_lr = float(self.trainer.optimizer.lr)

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.schedule(epoch, self.base_lr))
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"{type(self).__name__} gave a learning rate of {lr!r} at epoch {epoch}; "
                             "it must be a positive number")
        self.trainer.optimizer.lr = lr
        self.lrs.append(lr)


def _check_pos(name, v, upper=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0 \
            or (upper is not None and v > upper):
        rng = f"in (0, {upper}]" if upper is not None else "> 0"
        raise ValueError(f"{name} must be a number {rng}, got {v!r}")
    return v


class StepDecay(LearningRateScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)``: divide the rate every few epochs."""

    def __init__(self, step_size, gamma=0.1):
        super().__init__()
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size must be an integer >= 1, got {step_size!r}")
        self.step_size, self.gamma = step_size, float(_check_pos("gamma", gamma, 1))

    def schedule(self, epoch, base_lr):
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(LearningRateScheduler):
    """``lr = base_lr * gamma ** epoch``."""

    def __init__(self, gamma):
        super().__init__()
        self.gamma = float(_check_pos("gamma", gamma, 1))

    def schedule(self, epoch, base_lr):
        return base_lr * self.gamma ** epoch


class CosineDecay(LearningRateScheduler):
    """``lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * epoch / T)) / 2`` (PyTorch's
    CosineAnnealingLR), with ``T`` = ``epochs``, or the ``fit`` call's epochs when None.
    Epochs after the first ``T`` keep the rate of epoch ``T - 1`` (it never reaches 0)."""

    def __init__(self, epochs=None, min_lr=0.0):
        super().__init__()
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        if not (isinstance(min_lr, (int, float)) and math.isfinite(min_lr) and min_lr >= 0):
            raise ValueError(f"min_lr must be a number >= 0, got {min_lr!r}")
        self.epochs, self.min_lr = epochs, float(min_lr)

    def schedule(self, epoch, base_lr):
        T = self.epochs or self.trainer.epochs
        epoch = min(epoch, T - 1)  # the rate must stay > 0, so hold the last one
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * epoch / T)) / 2


# -- checkpoints ----------------------------------------------------------------------------

class ModelCheckpoint(Callback):
    """Save the network to a model file at the end of epochs.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (``*.safetensors``). May contain ``{epoch}`` (1-based), e.g.
        ``"model-{epoch:03d}.safetensors"``, to keep one file per save.
    monitor : str
        Metric that decides what "best" means (default ``"val_loss"``).
    save_best_only : bool
        Save only when ``monitor`` improves on the best value so far; otherwise
        save after every epoch.
    mode, min_delta : as in :class:`EarlyStopping`.

    Writes are atomic (see :func:`fastnn.io.save`), so the file on disk is always a
    complete model. A network whose weights are NaN or inf (a diverged training under
    ``on_nonfinite="ignore"``) is never written: that epoch is skipped with a warning.
    ``self.saved`` lists ``(epoch, path)`` of every save.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=True, mode="auto", min_delta=0.0):
        self.path = os.fspath(path)
        self.monitor, self.save_best_only = monitor, bool(save_best_only)
        self._m = _Monitor(monitor, mode, min_delta)
        self.saved = []

    @property
    def best(self):
        return self._m.best

    def on_train_begin(self, logs=None):
        self._m.reset()

    def on_epoch_end(self, epoch, logs=None):
        from fastnn import _checks, io

        if not _checks.all_finite(self.net.params):
            warnings.warn(f"ModelCheckpoint: epoch {epoch + 1} left NaN or inf weights; not saving them over "
                          f"{self.path}", RuntimeWarning, stacklevel=2)
            return
        if self.save_best_only:
            value = self._m.value(logs, "ModelCheckpoint")
            if not self._m.improved(value):
                return
            self._m.best = value
        path = self.path.format(epoch=epoch + 1)
        io.save(self.net, path, cost=self.trainer.cost)
        self.saved.append((epoch, path))
