"""Divergence is detected, and nothing is lost (issue 12, section 1).

Each case trains with a learning rate (or inputs) that make the loss overflow, on every
CPU training path: the Python loop (numpy), and the numba backend's per-sample (batch
1), row-blocked (batch 2) and BLAS (batch 16) epochs.
"""

import warnings

import numpy as np
import pytest

import fastnn as fn
from fastnn.callbacks import Callback, ModelCheckpoint

PATHS = [("numpy", 16), ("numba", 1), ("numba", 2), ("numba", 16)]
RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 4))
Y = RNG.integers(0, 3, 48)


def _net(dtype=np.float32):
    return fn.Sequential(fn.Linear(4, 6), fn.ReLU(), fn.Linear(6, 3), seed=0, dtype=dtype)


def _state(net, opt):
    return net.params.copy(), [getattr(opt, n).copy() for n in opt.state_names()], opt.t


def _assert_state(net, opt, state):
    params, arrays, t = state
    assert np.array_equal(net.params, params)
    for name, a in zip(opt.state_names(), arrays):
        assert np.array_equal(getattr(opt, name), a), name
    assert opt.t == t


@pytest.mark.parametrize("backend, bs", PATHS)
def test_sgd_1e8_raises_and_restores_the_last_finite_weights(backend, bs):
    net, opt = _net(), fn.SGD(1e8, momentum=0.9)
    # one good epoch first: the divergence comes in epoch 2, whose start must be restored
    net.fit(X, Y, fn.MSE(), fn.SGD(0.01), epochs=1, batch_size=bs, seed=0, backend=backend)
    opt.ensure_setup(net)
    before = _state(net, opt)
    with pytest.raises(fn.DivergenceError) as err:
        net.fit(X, Y, fn.MSE(), opt, epochs=3, batch_size=bs, seed=0, backend=backend)
    e = err.value
    assert isinstance(e, FloatingPointError)
    assert e.epoch == 1 and e.batch >= 1, (e.epoch, e.batch)
    msg = str(e)
    assert "epoch 1" in msg and f"batch {e.batch}" in msg and "lr is 1e+08" in msg and "StandardScaler" in msg
    _assert_state(net, opt, before)
    assert np.all(net.grads == 0)
    # the restored network still works
    assert np.all(np.isfinite(net.predict(X, backend=backend)))


@pytest.mark.parametrize("backend, bs", PATHS)
def test_stop_returns_with_diverged_history(backend, bs):
    net, opt = _net(), fn.SGD(1e8)
    opt.ensure_setup(net)
    before = _state(net, opt)
    h = net.fit(X, Y, fn.MSE(), opt, epochs=3, batch_size=bs, seed=0, backend=backend,
                on_nonfinite="stop")
    assert h.diverged and h.stopped_at == (0, 0) and h.history == {}
    _assert_state(net, opt, before)


@pytest.mark.parametrize("backend, bs", PATHS)
def test_ignore_keeps_the_old_behaviour(backend, bs):
    net = _net()
    h = net.fit(X, Y, fn.MSE(), fn.SGD(1e8), epochs=2, batch_size=bs, seed=0, backend=backend,
                on_nonfinite="ignore")
    assert not h.diverged and not np.all(np.isfinite(h.history["loss"]))
    assert not np.all(np.isfinite(net.params))
    with pytest.raises(ValueError, match="NaN or inf"):
        net.predict(X)
    with pytest.raises(ValueError, match="NaN or inf"):
        net.evaluate(X, Y, fn.CrossEntropy())
    with pytest.raises(ValueError, match="NaN or inf"):
        net.save("never-written.safetensors")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_adam_on_unscaled_inputs_is_caught(backend):
    net = _net(np.float32)
    with pytest.raises(fn.DivergenceError, match=r"largest \|X\| is 2.4e\+30"):
        net.fit(X * 1e30, Y, fn.MSE(), fn.Adam(1e-3), epochs=2, batch_size=8, seed=0, backend=backend)
    assert np.all(np.isfinite(net.params))


def test_overflowing_last_update_is_caught_at_the_epoch_end():
    """A finite loss on every batch, but the last update overflows: the weights check catches it."""
    net = fn.Sequential(fn.Linear(1, 1, bias=False), seed=0, dtype=np.float64)
    net[0].W[...] = 2.0  # gradient 2: the step lr * 2 overflows
    Xo, Yo = np.array([[1.0]]), np.array([[0.0]])
    with pytest.raises(fn.DivergenceError, match="epoch 1, batch 1 of 1"):
        net.fit(Xo, Yo, fn.MSE(), fn.SGD(1e308), epochs=1, batch_size=1, backend="numpy")
    assert net[0].W[0, 0] == 2.0


@pytest.mark.parametrize("bad", [{"lr": -1.0}, {"momentum": 1.5}, {"weight_decay": np.nan}])
def test_hyper_parameters_changed_after_construction_are_checked(bad):
    net, opt = _net(), fn.SGD(0.1, momentum=0.5)
    net.fit(X, Y, fn.CrossEntropy(), opt, epochs=1, batch_size=8, backend="numba")
    before = _state(net, opt)
    for k, v in bad.items():
        setattr(opt, k, v)
    with pytest.raises(ValueError, match=list(bad)[0]):
        net.fit(X, Y, fn.CrossEntropy(), opt, epochs=1, batch_size=8, backend="numba")
    _assert_state(net, opt, before)


class _BreakBetas(Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.trainer.optimizer.beta1 = 1.0


def test_a_callback_that_breaks_hyper_parameters_stops_at_the_next_chunk():
    net, opt = _net(), fn.Adam(0.01)
    with pytest.raises(ValueError, match="beta1"):
        net.fit(X, Y, fn.CrossEntropy(), opt, epochs=3, batch_size=8, backend="numba", callbacks=[_BreakBetas()])
    assert opt.t == 6  # one epoch of 6 batches ran, nothing after the bad value


def test_model_checkpoint_never_writes_nonfinite_weights(tmp_path):
    path = tmp_path / "best.safetensors"
    ck = ModelCheckpoint(path, monitor="loss", save_best_only=False)
    net = _net()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net.fit(X, Y, fn.MSE(), fn.SGD(1e8), epochs=2, batch_size=8, backend="numba",
                on_nonfinite="ignore", callbacks=[ck])
    assert not path.exists() and ck.saved == []
    assert any("NaN or inf" in str(w.message) for w in caught)


def test_save_with_allow_nonfinite_round_trips(tmp_path):
    net = _net()
    net.params[0] = np.nan
    back = fn.load(net.save(tmp_path / "nan.safetensors", allow_nonfinite=True))
    assert np.isnan(back.params[0]) and np.array_equal(back.params[1:], net.params[1:])
    with pytest.raises(ValueError, match="NaN or inf"):
        back.predict(X)


def test_on_nonfinite_is_checked():
    with pytest.raises(ValueError, match="on_nonfinite"):
        _net().fit(X, Y, fn.CrossEntropy(), fn.SGD(0.1), on_nonfinite="warn")
