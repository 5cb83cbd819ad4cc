"""Callbacks: early stopping, learning-rate schedules, checkpoints, progress, Ctrl-C."""

import io as _io
import math
import signal
import threading

import numpy as np
import pytest

import fastnn as fn
from fastnn import io as fio
from fastnn.callbacks import (Callback, CosineDecay, EarlyStopping, EpochLogger, ExponentialDecay,
                              LearningRateScheduler, ModelCheckpoint, ProgressBar, StepDecay)


def data(n=40, seed=0):
    X, y = fn.datasets.circles(n, noise=0.1, seed=seed)
    return X, y


def make_net(seed=0, dtype=np.float32):
    return fn.Sequential(fn.Linear(2, 6), fn.Tanh(), fn.Linear(6, 2), seed=seed, dtype=dtype)


def fit(net, callbacks=(), epochs=6, backend=None, **kw):
    X, y = data()
    kw.setdefault("optimizer", fn.SGD(0.1, momentum=0.9))
    return net.fit(X, y, cost=fn.CrossEntropy(), epochs=epochs, batch_size=4, seed=0,
                   backend=backend, callbacks=list(callbacks), **kw)


class Inject(Callback):
    """Puts a scripted metric ``fake`` into the epoch logs and records the weights there."""

    def __init__(self, values):
        self.values, self.params = list(values), []

    def on_epoch_end(self, epoch, logs=None):
        logs["fake"] = self.values[epoch]
        self.params.append(self.net.params.copy())


# -- EarlyStopping ---------------------------------------------------------------------------

def test_early_stopping_stops_and_restores_best_weights():
    inj = Inject([5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 0.1, 0.1])
    es = EarlyStopping(monitor="fake", patience=2)
    net = make_net()
    hist = fit(net, [inj, es], epochs=8)
    # best at epoch 2; epochs 3, 4 wait; epoch 5 is the third without improvement -> stop
    assert es.best_epoch == 2 and es.best == 3.0 and es.stopped_epoch == 5
    assert hist.epoch == [0, 1, 2, 3, 4, 5] and hist.stopped_early
    assert np.array_equal(net.params, inj.params[2])
    assert not np.array_equal(net.params, inj.params[5])


def test_early_stopping_without_restore_keeps_last_weights():
    inj = Inject([1.0, 2.0, 3.0, 4.0])
    es = EarlyStopping(monitor="fake", patience=1, restore_best=False)
    net = make_net()
    hist = fit(net, [inj, es], epochs=4)
    assert len(hist.epoch) == 3
    assert np.array_equal(net.params, inj.params[-1])


def test_early_stopping_min_delta_and_max_mode():
    inj = Inject([0.50, 0.505, 0.509, 0.6, 0.6, 0.6])
    es = EarlyStopping(monitor="fake", mode="max", patience=1, min_delta=0.01)
    fit(make_net(), [inj, es], epochs=6)
    # +0.005 and +0.009 are below min_delta: stop after epoch 2
    assert es.best_epoch == 0 and es.stopped_epoch == 2
    assert EarlyStopping(monitor="val_accuracy")._m.mode == "max"
    assert EarlyStopping(monitor="val_loss")._m.mode == "min"


def test_early_stopping_on_real_val_loss():
    X, y = data(80, seed=3)
    net = make_net()
    es = EarlyStopping(patience=0)
    hist = net.fit(X[:60], y[:60], cost="ce", optimizer=fn.SGD(2.0, momentum=0.9), epochs=30, batch_size=4,
                   seed=0, validation_data=(X[60:], y[60:]), callbacks=[es])
    v = hist["val_loss"]
    assert es.best == min(v) and es.best_epoch == int(np.argmin(v))
    if hist.stopped_early:
        assert v[-1] >= es.best


def test_monitoring_a_missing_metric_is_a_clear_error():
    with pytest.raises(ValueError, match="validation_data"):
        fit(make_net(), [EarlyStopping()], epochs=2)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


# -- learning-rate schedules -------------------------------------------------------------------

class LrLog(Callback):
    def __init__(self):
        self.lrs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.lrs.append(self.trainer.optimizer.lr)


@pytest.mark.parametrize("sched, expected", [
    (StepDecay(2, gamma=0.5), [0.1, 0.1, 0.05, 0.05, 0.025]),
    (ExponentialDecay(0.9), [0.1 * 0.9 ** e for e in range(5)]),
    (CosineDecay(), [0.1 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)]),
    (CosineDecay(epochs=3, min_lr=0.01), [0.01 + 0.09 * (1 + math.cos(math.pi * e / 3)) / 2
                                          for e in (0, 1, 2, 2, 2)]),
    (LearningRateScheduler(lambda e, base: base / (1 + e)), [0.1 / (1 + e) for e in range(5)]),
])
def test_schedules_set_lr_each_epoch(sched, expected):
    log = LrLog()
    fit(make_net(), [sched, log], epochs=5, optimizer=fn.SGD(0.1))
    np.testing.assert_allclose(log.lrs, expected, rtol=1e-12)
    np.testing.assert_allclose(sched.lrs, expected, rtol=1e-12)


@pytest.mark.parametrize("make_opt", [lambda: fn.SGD(0.2, momentum=0.5), lambda: fn.Adam(0.05)])
def test_schedule_reaches_the_backend(make_opt):
    """Training with a schedule equals training epoch by epoch with lr set by hand."""
    X, y = data()
    kw = dict(cost=fn.CrossEntropy(), batch_size=4, shuffle=False)
    a, b = make_net(dtype=np.float64), make_net(dtype=np.float64)
    opt_a, opt_b = make_opt(), make_opt()
    sched = StepDecay(1, gamma=0.3)
    a.fit(X, y, optimizer=opt_a, epochs=3, callbacks=[sched], **kw)
    for e in range(3):
        opt_b.lr = sched.lrs[e]
        b.fit(X, y, optimizer=opt_b, epochs=1, **kw)
    assert np.array_equal(a.params, b.params)
    assert sched.lrs[0] > sched.lrs[1] > sched.lrs[2]


def test_schedule_arguments_are_checked():
    for bad in (lambda: StepDecay(0), lambda: StepDecay(2, gamma=0), lambda: ExponentialDecay(1.5),
                lambda: CosineDecay(epochs=0), lambda: CosineDecay(min_lr=-1)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="learning rate"):
        fit(make_net(), [LearningRateScheduler(lambda e, base: 0.0)], epochs=1)


# -- ModelCheckpoint ----------------------------------------------------------------------------

def test_checkpoint_saves_only_on_improvement(tmp_path, monkeypatch):
    path = tmp_path / "best.safetensors"
    inj = Inject([3.0, 2.0, 2.5, 1.0, 1.5])
    ck = ModelCheckpoint(path, monitor="fake")
    writes = []
    orig = fio.save
    monkeypatch.setattr(fio, "save", lambda *a, **k: writes.append(a[1]) or orig(*a, **k))
    fit(make_net(), [inj, ck], epochs=5)
    monkeypatch.undo()
    assert [e for e, _ in ck.saved] == [0, 1, 3]
    assert len(writes) == 3
    assert np.array_equal(fio.load(path).params, inj.params[3])
    assert fio.info(path)["cost"] == "CrossEntropy"


def test_checkpoint_every_epoch_with_pattern(tmp_path):
    ck = ModelCheckpoint(tmp_path / "m-{epoch:02d}.safetensors", save_best_only=False)
    net = make_net()
    fit(net, [ck], epochs=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-01.safetensors", "m-02.safetensors",
                                                          "m-03.safetensors"]
    assert np.array_equal(fio.load(tmp_path / "m-03.safetensors").params, net.params)


# -- progress -------------------------------------------------------------------------------------

def test_progress_bar_draws_when_enabled():
    out = _io.StringIO()
    bar = ProgressBar(stream=out, enabled=True)
    assert bar.wants_batches
    fit(make_net(), [bar], epochs=3)
    text = out.getvalue()
    assert "epochs" in text and "loss=" in text and "accuracy=" in text and "3/3" in text


def test_progress_bar_is_quiet_off_a_terminal(capsys):
    out = _io.StringIO()  # not a TTY
    bar = ProgressBar(stream=out)
    assert not bar.enabled and not bar.wants_batches
    fit(make_net(), [bar], epochs=2)
    assert out.getvalue() == ""
    fit(make_net(), epochs=2, progress=True)  # pytest's captured stderr is not a terminal
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_epoch_logger_prints_one_line_per_epoch():
    out = _io.StringIO()
    fit(make_net(), [EpochLogger(out)], epochs=3)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("epoch 3/3") and "loss" in lines[-1]


# -- Ctrl-C ---------------------------------------------------------------------------------------

class Snapshot(Callback):
    """Records the weights after every chunk (the numpy backend updates them in place)."""

    wants_batches = True

    def __init__(self):
        self.at = {}

    def on_batch_end(self, batch, logs=None):
        self.at[(len(self.trainer.history.epoch), batch)] = self.net.params.copy()


@pytest.fixture
def sigint_restored():
    """These tests raise SIGINT themselves: give it its default handler (Ctrl-C ->
    KeyboardInterrupt) for their duration, also when the suite runs with SIGINT ignored
    (``nohup``, a background job of a non-interactive shell, ``trap "" INT``)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class Interrupt(Callback):
    wants_batches = True

    def __init__(self, epoch, batch, how):
        self.epoch, self.batch, self.how = epoch, batch, how

    def on_batch_end(self, batch, logs=None):
        if len(self.trainer.history.epoch) == self.epoch and batch == self.batch:
            if self.how == "raise":
                raise KeyboardInterrupt
            signal.raise_signal(signal.SIGINT)  # as a user's Ctrl-C


@pytest.mark.parametrize("how", ["raise", "sigint"])
def test_ctrl_c_stops_cleanly_after_the_current_batch(how, sigint_restored):
    ref_snap = Snapshot()
    ref = make_net()
    ref_hist = fit(ref, [ref_snap], epochs=4, backend="numpy")
    handler = signal.getsignal(signal.SIGINT)
    net = make_net()
    hist = fit(net, [Interrupt(2, 4, how)], epochs=4, backend="numpy")
    assert signal.getsignal(signal.SIGINT) is handler  # handler restored
    assert hist.interrupted and not hist.stopped_early
    assert hist.stopped_at == (2, 5)
    assert hist.epoch == [0, 1]  # only complete epochs
    for k, v in hist.history.items():
        assert v == ref_hist.history[k][:2]
    # the weights are exactly those after batch 4 of epoch 2 of an uninterrupted run
    assert np.array_equal(net.params, ref_snap.at[(2, 4)])
    # and training can go on from there
    more = fit(net, epochs=1, backend="numpy")
    assert len(more.epoch) == 1 and not more.interrupted and np.all(np.isfinite(net.params))


def test_ctrl_c_on_the_default_backend_keeps_a_consistent_state(sigint_restored):
    net = make_net(dtype=np.float64)
    opt = fn.Adam(0.01)
    hist = fit(net, [Interrupt(1, 3, "sigint")], epochs=3, optimizer=opt)
    assert hist.interrupted and hist.epoch == [0] and hist.stopped_at == (1, 4)
    # 10 batches per epoch: 10 full + 4 -> Adam took 14 steps, and the weights agree with it
    assert opt.t == 14
    ref = make_net(dtype=np.float64)
    ref_opt = fn.Adam(0.01)
    X, y = data()
    order_rng = np.random.default_rng(0)
    orders = [order_rng.permutation(len(X)) for _ in range(2)]
    for e, nb in ((0, 10), (1, 4)):
        for b in range(nb):
            idx = orders[e][b * 4:(b + 1) * 4]
            out = ref.forward(X[idx], backend="numpy")
            ref.backward(fn.CrossEntropy().grad(out, y[idx]), backend="numpy")
            ref_opt.step(ref, "numpy")
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n", [40, 400])  # 10 batches: one call per epoch; 100: adaptive chunks
def test_training_in_a_thread_matches_the_main_thread(n):
    """Off the main thread no SIGINT handler is installed (whole-epoch calls); the
    weights are the same, and the History too up to the order of summing chunk losses."""
    X, y = data(n)
    kw = dict(cost=fn.CrossEntropy(), optimizer=fn.SGD(0.1, momentum=0.9), epochs=3, batch_size=4, seed=0)
    a, b = make_net(dtype=np.float64), make_net(dtype=np.float64)
    ha = a.fit(X, y, **kw)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("h", b.fit(X, y, **kw)))
    t.start()
    t.join()
    assert np.array_equal(a.params, b.params)
    for k, v in ha.history.items():
        np.testing.assert_allclose(box["h"].history[k], v, rtol=1e-13)
        if n == 40:
            assert box["h"].history[k] == v


def test_ctrl_c_from_outside_stops_a_long_epoch_early(sigint_restored):
    """A SIGINT from another thread (like a user's Ctrl-C) interrupts an epoch of many
    batches without any batch-level callback: the loop runs it in short chunks."""
    X, y = data(4000)

    class Later(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                self.timer = threading.Timer(0.2, signal.raise_signal, (signal.SIGINT,))
                self.timer.start()

    net = make_net(dtype=np.float64)
    hist = net.fit(X, y, cost="ce", optimizer=fn.SGD(0.01), epochs=500, batch_size=1, seed=0,
                   backend="numpy", callbacks=[Later()])
    assert hist.interrupted
    epoch, batches = hist.stopped_at
    assert len(hist.epoch) == epoch < 500 and 0 <= batches < 4000
    assert np.all(np.isfinite(net.params))
