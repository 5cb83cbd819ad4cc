"""Callbacks: hooks the Trainer calls during ``fit``.

A callback subclasses :class:`Callback` and overrides any of its ``on_*`` methods.
``self.trainer`` (and ``self.net``) are set before training starts. Setting
``trainer.stop_training = True`` ends training after the current epoch's batches.

Batch hooks: compiled backends run many batches per call, so ``on_batch_end`` is
called after each *chunk* of batches (``logs["batch"]`` is the index of the chunk's
last batch). A callback that sets ``wants_batches = True`` asks the Trainer to use
small chunks (about 1/100 of an epoch); otherwise whole epochs run in one call.
"""

import sys


class Callback:
    """Base class; every hook does nothing."""

    wants_batches = False
    trainer = None
    net = None

    def set_trainer(self, trainer):
        self.trainer, self.net = trainer, trainer.net

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


class EpochLogger(Callback):
    """Prints one line per epoch: ``epoch 3/10  loss 0.1234  accuracy 0.9712 ...``."""

    def __init__(self, stream=None):
        self.stream = stream

    def on_epoch_end(self, epoch, logs=None):
        parts = [f"epoch {epoch + 1}/{self.trainer.epochs}"]
        parts += [f"{k} {v:.4f}" for k, v in (logs or {}).items() if isinstance(v, float)]
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


def progress_callback():
    """The callback ``fit(progress=True)`` adds."""
    return EpochLogger()
