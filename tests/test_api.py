"""The public API contract of issue 2, section 2 (numpy backend unless stated)."""

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from conftest import tol
from fastnn import backends
from fastnn.backends.numpy import Ops
from fastnn.kernels import reference as ref


@pytest.fixture(autouse=True)
def numpy_default_backend(monkeypatch):
    """Calls that take the default backend use the numpy reference here (the compiled
    backends have their own tests); the backend tests below reset this."""
    monkeypatch.setattr(backends, "_default", "numpy")


def small_net(seed=0, dtype=np.float32):
    return fn.Sequential(fn.Linear(3, 5), fn.Tanh(), fn.Linear(5, 2), seed=seed, dtype=dtype)


def class_data(n=23, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64)
    return X, y


# ------------------------------------------------------------------------ Linear init


@pytest.mark.parametrize("init, expected_std", [
    ("gaussian", 0.5),                                 # N(0, wscale)
    ("uniform", 0.5 / np.sqrt(3)),                     # U(-wscale, wscale)
    ("xavier", np.sqrt(2 / (200 + 300))),              # U(+-sqrt(6/(in+out)))
    ("xavier_uniform", np.sqrt(2 / (200 + 300))),
    ("he", np.sqrt(2 / 200)),
    ("lecun", np.sqrt(1 / 200)),
])
def test_linear_init_statistics(init, expected_std):
    wscale = 0.5 if init in ("gaussian", "uniform") else 1.0
    net = fn.Sequential(fn.Linear(200, 300, init=init, wscale=wscale), seed=1)
    W = net[0].W
    assert W.shape == (200, 300)
    assert abs(W.mean()) < 0.05 * expected_std
    assert W.std() == pytest.approx(expected_std, rel=0.03)
    assert np.all(net[0].b == 0)
    if init in ("uniform", "xavier", "xavier_uniform"):
        bound = 0.5 if init == "uniform" else np.sqrt(6 / 500)
        assert np.abs(W).max() <= bound * (1 + 1e-6)
        assert np.abs(W).max() > 0.95 * bound
    else:  # normal: tails beyond 3 std exist but are rare
        assert 0 < np.mean(np.abs(W) > 3 * expected_std) < 0.01


def test_wscale_scales_fan_based_init():
    a = fn.Sequential(fn.Linear(50, 60, init="he"), seed=3)[0].W
    b = fn.Sequential(fn.Linear(50, 60, init="he", wscale=2.0), seed=3)[0].W
    assert_allclose(b, 2 * a, rtol=1e-6)


# ---------------------------------------------------------------------- Sequential


def test_seed_reproducibility():
    a, b, c = small_net(seed=5), small_net(seed=5), small_net(seed=6)
    assert np.array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    d, e = small_net(seed=None), small_net(seed=None)
    assert not np.array_equal(d.params, e.params)


def test_structure_append_len_indexing():
    net = fn.Sequential(fn.Linear(3, 4), fn.ReLU(), seed=0)
    assert len(net) == 2 and isinstance(net[0], fn.Linear) and isinstance(net[1], fn.ReLU)
    assert net.layers == [net[0], net[1]]
    W0 = net[0].W.copy()
    net.append(fn.Linear(4, 2))
    assert len(net) == 3 and net[-1].outsize == 2 and net.outsize == 2
    assert np.array_equal(net[0].W, W0)  # existing weights kept
    assert np.any(net[2].W != 0)  # the new layer was initialised
    assert net.params.size == 3 * 4 + 4 * 2 + 4 + 2
    # flat layout [W_1 | W_2 | b_1 | b_2] and views into it
    assert np.shares_memory(net[0].W, net.params) and np.shares_memory(net[2].b, net.params)
    assert_allclose(net.params[:12], net[0].W.ravel())
    assert_allclose(net.params[12:20], net[2].W.ravel())
    assert net.n_decay == 20
    net[2].b[...] = 7
    assert np.all(net.params[24:] == 7)


def test_append_same_seed_gives_same_weights_as_construction():
    a = fn.Sequential(fn.Linear(3, 4), fn.ReLU(), seed=9)
    a.append(fn.Linear(4, 2))
    b = fn.Sequential(fn.Linear(3, 4), fn.ReLU(), fn.Linear(4, 2), seed=9)
    assert np.array_equal(a.params, b.params)


def test_float32_default_and_astype():
    net = small_net()
    assert net.dtype == np.float32 and net.params.dtype == np.float32 and net[0].W.dtype == np.float32
    X, _ = class_data()
    assert net.predict(X, backend="numpy").dtype == np.float32
    n64 = net.astype(np.float64)
    assert n64 is not net and n64.dtype == np.float64 and n64.params.dtype == np.float64
    assert n64[0].W.dtype == np.float64 and n64[2].b.dtype == np.float64
    assert np.array_equal(n64.params, net.params.astype(np.float64))
    assert net.params.dtype == np.float32  # original unchanged
    n64.params[...] = 0
    assert np.any(net.params != 0)  # the copy has its own buffers
    assert_allclose(n64.astype(np.float32).predict(X), np.zeros((len(X), 2)))


def test_size_mismatch_names_both_layers():
    with pytest.raises(ValueError) as exc:
        fn.Sequential(fn.Linear(2, 3), fn.Sigmoid(), fn.Linear(4, 1))
    msg = str(exc.value)
    assert "layer 0" in msg and "layer 2" in msg and "3" in msg and "4" in msg
    net = fn.Sequential(fn.Linear(2, 3), seed=0)
    params = net.params.copy()
    with pytest.raises(ValueError, match="layer 0.*layer 1"):
        net.append(fn.Linear(5, 1))
    assert len(net) == 1 and np.array_equal(net.params, params)


def test_call_equals_forward_equals_manual():
    net = small_net()
    X, _ = class_data()
    W1, b1, W2, b2 = (a.astype(np.float64) for a in (net[0].W, net[0].b, net[2].W, net[2].b))
    manual = np.tanh(X @ W1 + b1) @ W2 + b2
    a = net(X)
    b = net.forward(X)
    assert np.array_equal(a, b)
    assert_allclose(a, manual, rtol=1e-5, atol=1e-6)


def test_backward_overwrites_grads_and_returns_input_grad():
    net = small_net(dtype=np.float64)
    X, y = class_data()
    cost = fn.CrossEntropy()
    out = net.forward(X, backend="numpy")
    g = cost.grad(out, y)
    dx = net.backward(g, backend="numpy")
    assert dx.shape == X.shape
    first = net.grads.copy()
    assert np.any(first != 0)
    net.forward(X, backend="numpy")
    net.backward(g, backend="numpy")
    assert_allclose(net.grads, first, **tol(np.float64))  # not 2 * first
    assert np.shares_memory(net[0].dW, net.grads)
    # by hand: the last Linear's dW = H.T @ g
    H = np.tanh(X @ net[0].W + net[0].b)
    assert_allclose(net[2].dW, H.T @ g, **tol(np.float64))
    assert_allclose(net[2].db, g.sum(axis=0), **tol(np.float64))


def test_optimizer_step_uses_net_grads():
    net = small_net(dtype=np.float64)
    X, y = class_data()
    net.backward(fn.CrossEntropy().grad(net.forward(X), y))
    p0, g0 = net.params.copy(), net.grads.copy()
    fn.SGD(0.1).step(net, "numpy")
    assert_allclose(net.params, p0 - 0.1 * g0, **tol(np.float64))


def test_costs_value_and_grad():
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    t = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert fn.MSE().value(p, t) == pytest.approx(ref.mse_value(p, t))
    assert_allclose(fn.MSE().grad(p, t), (p - t) / 2)
    assert fn.CrossEntropy().value(p, np.array([1, 0])) == pytest.approx(ref.cross_entropy_value(p, t))
    assert_allclose(fn.BCE().grad(p, t), ref.bce_grad(p, t))


# ----------------------------------------------------------------------- predict etc.


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 33])
def test_predict_any_n_in_batches(n):
    net = small_net()
    X = np.random.default_rng(1).normal(size=(n, 3)).astype(np.float32)
    full = net.predict(X, batch_size=10**6, backend="numpy")
    assert full.shape == (n, 2) and full.dtype == np.float32
    batched = net.predict(X, batch_size=4, backend="numpy")
    assert_allclose(batched, full, **tol(np.float32))
    if n:
        assert_allclose(full, net.forward(X, backend="numpy"), **tol(np.float32))


def test_evaluate_returns_dict():
    net = small_net()
    X, y = class_data()
    r = net.evaluate(X, y, fn.CrossEntropy(), backend="numpy")
    assert isinstance(r, dict) and set(r) == {"loss", "accuracy"}
    pred = net.predict(X, backend="numpy")
    assert r["accuracy"] == pytest.approx(np.mean(pred.argmax(1) == y))
    assert r["loss"] == pytest.approx(ref.cross_entropy_value(pred.astype(np.float64), y), rel=1e-5)
    r2 = fn.Sequential(fn.Linear(3, 1), seed=0).evaluate(X, X[:, :1] * 2, fn.MSE(), backend="numpy")
    assert set(r2) == {"loss"} and r2["loss"] > 0


# -------------------------------------------------------------------------- fit


def test_fit_returns_history_with_all_keys():
    net = small_net()
    X, y = class_data()
    h = net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(0.1), epochs=3, batch_size=5,
                seed=0, validation_data=(X[:7], y[:7]), backend="numpy")
    assert isinstance(h, fn.History)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in h.history.values())
    assert h.epoch == [0, 1, 2]
    assert all(0 <= a <= 1 for a in h["accuracy"] + h["val_accuracy"])
    assert h["val_loss"][-1] == pytest.approx(
        net.evaluate(X[:7], y[:7], fn.CrossEntropy(), backend="numpy")["loss"], rel=1e-6)
    h2 = fn.Sequential(fn.Linear(3, 1), seed=0).fit(X, X[:, :1], cost=fn.MSE(), optimizer=fn.SGD(0.1),
                                                   epochs=2, batch_size=8, backend="numpy")
    assert set(h2.history) == {"loss"}


def test_fit_loss_decreases():
    net = small_net()
    X, y = class_data(200)
    h = net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.Adam(0.01), epochs=30, batch_size=16,
                seed=0, backend="numpy")
    assert h["loss"][-1] < 0.7 * h["loss"][0]


def test_short_last_minibatch_matches_manual_steps():
    """N=10, batch 4: batches of 4, 4 and 2 (the last one is used, not dropped)."""
    net = small_net(dtype=np.float64)
    manual = net.copy()
    X, y = class_data(10)
    cost, lr = fn.CrossEntropy(), 0.2
    h = net.fit(X, y, cost=cost, optimizer=fn.SGD(lr), epochs=1, batch_size=4, shuffle=False,
                backend="numpy")
    losses = []
    for s in (slice(0, 4), slice(4, 8), slice(8, 10)):
        out = manual.forward(X[s])
        losses.append(cost.value(out, y[s]) * len(X[s]))
        manual.backward(cost.grad(out, y[s]))
        manual.params -= lr * manual.grads
    assert_allclose(net.params, manual.params, **tol(np.float64))
    assert h["loss"][0] == pytest.approx(sum(losses) / 10, rel=1e-12)


def test_fit_twice_continues():
    X, y = class_data(40)
    kw = dict(cost=fn.CrossEntropy(), batch_size=8, backend="numpy", shuffle=False)
    a = small_net(dtype=np.float64)
    opt_a = fn.SGD(0.1, momentum=0.9)
    a.fit(X, y, optimizer=opt_a, epochs=2, **kw)
    a.fit(X, y, optimizer=opt_a, epochs=2, **kw)
    b = small_net(dtype=np.float64)
    b.fit(X, y, optimizer=fn.SGD(0.1, momentum=0.9), epochs=4, **kw)
    assert_allclose(a.params, b.params, **tol(np.float64))
    assert not np.array_equal(a.params, small_net(dtype=np.float64).params)


def test_same_seeds_bit_identical_and_different_seed_differs():
    X, y = class_data(50)

    def run(net_seed, fit_seed):
        net = small_net(seed=net_seed)
        h = net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.Adam(0.01), epochs=3, batch_size=7,
                    seed=fit_seed, backend="numpy")
        return net.params.copy(), h["loss"]

    p1, l1 = run(1, 2)
    p2, l2 = run(1, 2)
    assert np.array_equal(p1, p2) and l1 == l2
    p3, _ = run(1, 3)  # other shuffle order
    assert not np.array_equal(p1, p3)
    p4, _ = run(4, 2)  # other initial weights
    assert not np.array_equal(p1, p4)


def test_trainer_usable_directly_and_same_as_fit():
    X, y = class_data(30)
    a, b = small_net(), small_net()
    tr = fn.Trainer(a, fn.CrossEntropy(), fn.SGD(0.1, momentum=0.5), batch_size=8, backend="numpy", seed=3)
    h = tr.fit(X, y, epochs=2)
    assert isinstance(h, fn.History) and len(h["loss"]) == 2
    b.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(0.1, momentum=0.5), epochs=2, batch_size=8,
          seed=3, backend="numpy")
    assert np.array_equal(a.params, b.params)


def test_deepcopy_trains_identically():
    X, y = class_data(30)
    a = small_net(seed=None)
    b = copy.deepcopy(a)
    assert b is not a and np.array_equal(a.params, b.params)
    assert not np.shares_memory(a.params, b.params)
    assert np.shares_memory(b[0].W, b.params)  # the copy's views point at its own buffer
    for net in (a, b):
        net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(0.1, momentum=0.9), epochs=2,
                batch_size=4, seed=11, backend="numpy")
    assert np.array_equal(a.params, b.params)
    assert not np.array_equal(a.params, copy.deepcopy(small_net(seed=None)).params)


def test_integer_and_float64_inputs_are_converted():
    X, y = class_data(20)
    Xi = np.round(X * 3).astype(np.int32)
    a, b = small_net(), small_net()
    kw = dict(cost=fn.CrossEntropy(), optimizer=fn.SGD(0.1), epochs=1, batch_size=6, seed=0, backend="numpy")
    a.fit(Xi, y, **kw)
    b.fit(Xi.astype(np.float64), y.astype(np.int32), **kw)
    assert np.array_equal(a.params, b.params)
    assert a.predict(Xi).dtype == np.float32


# ----------------------------------------------------------------------- backends


@pytest.fixture
def clean_backend_state(monkeypatch):
    monkeypatch.setattr(backends, "_default", None)
    monkeypatch.delenv("FASTNN_BACKEND", raising=False)
    return monkeypatch


def test_set_backend_and_use_backend(clean_backend_state):
    fn.set_backend("numpy")
    assert fn.get_backend() == "numpy" and fn.get_ops().name == "numpy"
    fn.set_backend(None)
    assert fn.get_backend() == backends.resolve_backend("auto")
    with fn.use_backend("numpy") as ops:
        assert ops.name == "numpy" and fn.get_backend() == "numpy"
    assert backends._default is None
    with pytest.raises(ValueError, match="unknown backend"):
        fn.set_backend("tensorflow")


def test_env_variable_selects_backend(clean_backend_state):
    clean_backend_state.setenv("FASTNN_BACKEND", "numpy")
    assert fn.get_backend() == "numpy"
    clean_backend_state.setenv("FASTNN_BACKEND", "bogus")
    with pytest.raises(ValueError, match="unknown backend 'bogus'"):
        fn.get_backend()
    fn.set_backend("numpy")  # set_backend wins over the environment
    assert fn.get_backend() == "numpy"


def test_available_backends_reasons_and_errors(clean_backend_state):
    avail = fn.available_backends()
    assert set(avail) == {"numpy", "numba", "cuda"}
    assert avail["numpy"] is None
    X, y = class_data(10)
    for name, reason in avail.items():
        assert reason is None or (isinstance(reason, str) and reason.strip())
        if reason is None:
            assert fn.get_ops(name).name == name
        else:
            with pytest.raises(fn.BackendUnavailable) as exc:
                fn.get_ops(name)
            assert str(exc.value) == reason
            net = small_net()
            p = net.params.copy()
            with pytest.raises(fn.BackendUnavailable):
                net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(0.1), backend=name)
            with pytest.raises(fn.BackendUnavailable):
                fn.set_backend(name)
            assert np.array_equal(net.params, p)
    auto = backends.resolve_backend("auto")
    assert avail[auto] is None
    assert auto == next(n for n in ("cuda", "numba", "numpy") if avail[n] is None)


def test_missing_backend_gives_clear_error_and_auto_falls_back(clean_backend_state):
    mp = clean_backend_state
    mp.setattr(backends, "_instances", {})
    mp.setattr(backends, "_failures", {})
    mp.setitem(backends._IMPL, "cuda", ("fastnn_no_such_module_xyz", "CudaOps"))
    mp.setitem(backends._IMPL, "numba", ("fastnn_no_such_module_xyz", "NumbaOps"))
    with pytest.raises(fn.BackendUnavailable, match="fastnn_no_such_module_xyz"):
        fn.get_ops("cuda")
    reasons = fn.available_backends()
    assert reasons["numpy"] is None and "fastnn_no_such_module_xyz" in reasons["numba"]
    assert backends.resolve_backend("auto") == "numpy"


def test_fastnn_backend_env_applies_to_fit_default(clean_backend_state):
    """backend=None on Trainer uses the default; an unknown env name raises before training."""
    clean_backend_state.setenv("FASTNN_BACKEND", "nope")
    net = small_net()
    p = net.params.copy()
    X, y = class_data(10)
    with pytest.raises(ValueError, match="unknown backend"):
        fn.Trainer(net, fn.CrossEntropy(), fn.SGD(0.1), batch_size=4, backend=None)
    assert np.array_equal(net.params, p)
    clean_backend_state.setenv("FASTNN_BACKEND", "numpy")
    tr = fn.Trainer(net, fn.CrossEntropy(), fn.SGD(0.1), batch_size=4, backend=None)
    assert tr.ops.name == "numpy"


class _RecordingOps(Ops):
    """Stands in for a compiled backend: the numpy kernels, but it records its use."""

    name = "numba"

    def __init__(self):
        self.runs = 0

    def make_runner(self, *args, **kwargs):
        self.runs += 1
        return super().make_runner(*args, **kwargs)


def test_fit_default_honours_set_backend_and_env(clean_backend_state):
    """fit's default backend="auto" picks the best backend, unless set_backend() or
    FASTNN_BACKEND chose one; an explicit name always wins."""
    mp = clean_backend_state
    from fastnn import training

    mp.setattr(training, "AUTO_NUMPY_SECONDS", 0.0)  # these fits are tiny: see the next test
    fake = _RecordingOps()
    mp.setattr(backends, "_instances", {"numba": fake})
    mp.setattr(backends, "_failures", {"cuda": "backend 'cuda' is unavailable: no GPU (test)"})
    X, y = class_data(10)

    def fit(**kw):
        small_net().fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(0.1), epochs=1, batch_size=4, **kw)

    fit()
    assert fake.runs == 1  # auto -> the (fake) numba backend, the best available
    fn.set_backend("numpy")
    fit()
    fit(backend="auto")
    assert fake.runs == 1
    fit(backend="numba")
    assert fake.runs == 2
    fn.set_backend(None)
    mp.setenv("FASTNN_BACKEND", "numpy")
    fit()
    assert fake.runs == 2
    assert small_net().predict(X).shape == (10, 2) and fake.runs == 2
    mp.delenv("FASTNN_BACKEND")
    fit()
    assert fake.runs == 3


def test_auto_trains_tiny_fits_on_numpy_and_the_rest_compiled(clean_backend_state):
    """backend="auto" (and no default set) trains a fit whose whole work NumPy does faster
    than the compiled kernels load on the reference; an explicit backend is always used."""
    mp = clean_backend_state
    fake = _RecordingOps()
    mp.setattr(backends, "_instances", {"numba": fake})
    mp.setattr(backends, "_failures", {"cuda": "backend 'cuda' is unavailable: no GPU (test)"})
    X, y = class_data(10)
    tr = fn.Trainer(small_net(), fn.CrossEntropy(), fn.SGD(0.1), batch_size=4)
    assert tr.numpy_estimate(10, 1) < 1e-3
    tr.fit(X, y, epochs=1)
    assert fake.runs == 0 and tr.ops.name == "numpy"
    Xb, yb = class_data(4000)
    tr.fit(Xb, yb, epochs=50)  # ~50k batches: the compiled backend, same Trainer
    assert fake.runs == 1 and tr.ops is fake
    small_net().fit(X, y, fn.CrossEntropy(), fn.SGD(0.1), backend="numba")
    assert fake.runs == 2


def test_pickle_round_trip_keeps_layers_bound_to_the_flat_buffer():
    import pickle

    net = fn.Sequential(fn.Linear(3, 4), fn.ReLU(), fn.Linear(4, 2), seed=0)
    n2 = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(n2.params, net.params)
    n2[0].W[0, 0] = 42.0  # a write through the layer must reach the flat buffer
    assert n2.params[0] == 42.0
    assert net.params[0] != 42.0
    assert np.shares_memory(n2[2].b, n2.params)


def test_auto_loads_only_what_it_uses():
    """A tiny fit under "auto" trains on NumPy without importing numba; a bigger one loads numba
    but not numba.cuda while no GPU run is on record (it costs half a second of imports)."""
    code = (
        "import sys, numpy as np, fastnn as fn\n"
        "X, y = fn.datasets.circles(200, seed=0)\n"
        "net = fn.Sequential(fn.Linear(2, 4), fn.Tanh(), fn.Linear(4, 2), seed=0)\n"
        "net.fit(X, y, 'ce', fn.SGD(0.5), epochs=5, batch_size=200, seed=0)\n"
        "print('numba' in sys.modules)\n"
        "print(fn.backends.resolve_backend('auto'), 'numba.cuda' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "FASTNN_BACKEND"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "numba", "False"]
