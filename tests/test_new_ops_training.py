"""Training with the new ops: backend="numba" (the three fused epoch paths) equals backend="numpy".

Every new activation, cost, optimizer and Dropout, in float64, ~200 optimizer steps, batch
sizes 1 (per-sample epoch, or the minibatch one for optimizers with state), 3 (row-blocked
minibatches, short last batch) and 16 (BLAS). The fused runner must be the one used, and
combinations the fused epochs do not cover must fall back and still agree.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from fastnn.backends import get_ops
from fastnn.backends.numba import BlasRunner, MinibatchRunner, OnlineRunner

from conftest import TRAIN_RTOL64

N = 67  # 22 batches of 3 and a short one; 4 of 16 and a short one


def _data(kind, k=3, n=N, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if kind == "labels":
        return X, rng.integers(0, k, n)
    if kind == "dist":
        return X, rng.dirichlet(np.ones(k), size=n)
    return X, np.tanh(X[:, :k] + X[:, 1:k + 1] ** 2 / 3)


def _epochs(bs, steps=200):
    return max(1, -(-steps // -(-N // bs)))


def _runner_type(net, cost, opt, X, Y, bs):
    o = opt()
    o.ensure_setup(net)
    r = get_ops("numba").make_runner(net, cost, o, X, cost.prepare(Y, net.outsize, np.float64), bs)
    return type(r)


def _compare(layers, cost, opt, kind, bs, fused=True):
    X, Y = _data(kind, k=layers[-1].outsize if hasattr(layers[-1], "outsize") else layers[-2].outsize)
    net = fn.Sequential(*layers, seed=5, dtype=np.float64)
    want = {1: OnlineRunner if opt().kind == "sgd" else MinibatchRunner, 3: MinibatchRunner, 16: BlasRunner}[bs]
    got = _runner_type(net.copy(), cost, opt, X, Y, bs)
    assert got is (want if fused else type(None)), got
    a, b = net.copy(), net.copy()
    ha = a.fit(X, Y, cost, opt(), epochs=_epochs(bs), batch_size=bs, seed=7, backend="numpy")
    hb = b.fit(X, Y, cost, opt(), epochs=_epochs(bs), batch_size=bs, seed=7, backend="numba")
    assert not np.allclose(a.params, net.params), "training did not change the weights"
    assert_allclose(b.params, a.params, rtol=TRAIN_RTOL64, atol=TRAIN_RTOL64 * np.abs(a.params).max())
    for key in ha.history:
        assert_allclose(hb.history[key], ha.history[key], rtol=TRAIN_RTOL64, atol=1e-13, err_msg=key)
    return a, b


def _hidden(act):
    return [fn.Linear(4, 7), act, fn.Linear(7, 5), fn.Tanh(), fn.Linear(5, 3)]


ACTS = {"elu": lambda: fn.ELU(0.7), "softplus": lambda: fn.Softplus(2.0), "gelu": fn.GELU,
        "gelu-tanh": lambda: fn.GELU("tanh"), "silu": fn.SiLU, "relu6": fn.ReLU6}


@pytest.mark.parametrize("bs", [1, 3, 16])
@pytest.mark.parametrize("act", list(ACTS))
def test_new_activations(act, bs):
    _compare(_hidden(ACTS[act]()), fn.CrossEntropy(), lambda: fn.SGD(0.1), "labels", bs)


@pytest.mark.parametrize("bs", [1, 3, 16])
@pytest.mark.parametrize("act", ["gelu", "silu", "elu", "relu6"])
def test_new_activation_at_the_output(act, bs):
    """The last layer's activation: GELU and SiLU from the kept pre-activation."""
    layers = [fn.Linear(4, 6), fn.Sigmoid(), fn.Linear(6, 3), ACTS[act]()]
    _compare(layers, fn.MSE(), lambda: fn.SGD(0.05, momentum=0.5), "float", bs)


COSTS = {"l1": (fn.L1, "float"), "huber": (lambda: fn.Huber(0.3), "float"), "hinge": (fn.Hinge, "labels"),
         "kl": (fn.KLDivergence, "dist"), "kl-labels": (fn.KLDivergence, "labels")}


@pytest.mark.parametrize("bs", [1, 3, 16])
@pytest.mark.parametrize("cost", list(COSTS))
def test_new_costs(cost, bs):
    make, kind = COSTS[cost]
    _compare(_hidden(fn.ReLU()), make(), lambda: fn.SGD(0.05), kind, bs)
    if bs > 1:
        _compare(_hidden(fn.GELU()), make(), lambda: fn.Adam(0.01), kind, bs)


OPTS = {
    "rmsprop": lambda: fn.RMSprop(0.01, weight_decay=1e-3), "rmsprop-momentum": lambda: fn.RMSprop(0.005, momentum=0.9),
    "rmsprop-centered": lambda: fn.RMSprop(0.005, centered=True),
    "rmsprop-centered-momentum-wd": lambda: fn.RMSprop(0.005, centered=True, momentum=0.5, weight_decay=1e-2),
    "adagrad": lambda: fn.Adagrad(0.1, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1),
    "adadelta": lambda: fn.Adadelta(1.0, weight_decay=1e-3), "adamw": lambda: fn.AdamW(0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("bs", [1, 3, 16])
@pytest.mark.parametrize("opt", list(OPTS))
def test_new_optimizers(opt, bs):
    a, b = _compare(_hidden(fn.Tanh()), fn.CrossEntropy(), OPTS[opt], "labels", bs)


def test_new_optimizer_state_equal_to_numpy():
    X, y = _data("labels")
    for make in OPTS.values():
        net = fn.Sequential(*_hidden(fn.SiLU()), seed=1, dtype=np.float64)
        oa, ob = make(), make()
        net.copy().fit(X, y, "ce", oa, epochs=3, batch_size=8, seed=2, backend="numpy")
        net.copy().fit(X, y, "ce", ob, epochs=3, batch_size=8, seed=2, backend="numba")
        assert oa.t == ob.t
        for name in oa.state_names():
            assert_allclose(getattr(ob, name), getattr(oa, name), rtol=TRAIN_RTOL64, atol=1e-14, err_msg=name)


DROPOUT_NETS = {
    "after-activation": lambda: [fn.Linear(4, 16), fn.ReLU(), fn.Dropout(0.3), fn.Linear(16, 3)],
    "after-linear": lambda: [fn.Linear(4, 16), fn.Dropout(0.5), fn.Linear(16, 8), fn.Tanh(), fn.Linear(8, 3)],
    "two-and-gelu": lambda: [fn.Linear(4, 16), fn.GELU(), fn.Dropout(0.2), fn.Linear(16, 8), fn.ELU(),
                             fn.Dropout(0.4), fn.Linear(8, 3)],
    "softmax-hidden": lambda: [fn.Linear(4, 6), fn.Softmax(), fn.Dropout(0.25), fn.Linear(6, 3)],
}


@pytest.mark.parametrize("bs", [1, 3, 16])
@pytest.mark.parametrize("net", list(DROPOUT_NETS))
def test_dropout_same_weights_on_every_path(net, bs):
    a, _ = _compare(DROPOUT_NETS[net](), fn.CrossEntropy(), lambda: fn.SGD(0.1), "labels", bs)
    if bs == 16:
        _compare(DROPOUT_NETS[net](), fn.CrossEntropy(), lambda: fn.Adam(0.01), "labels", bs)


@pytest.mark.parametrize("bs", [1, 10, 32])
def test_dropout_on_sparse_input(bs):
    """The sparse first layer (CSR) and the per-sample SIMD path, with a Dropout after it."""
    rng = np.random.default_rng(4)
    X = rng.uniform(0.1, 1, size=(150, 60)) * (rng.random((150, 60)) < 0.2)
    y = rng.integers(0, 4, 150)
    net = fn.Sequential(fn.Linear(60, 12), fn.SiLU(), fn.Dropout(0.3), fn.Linear(12, 4), seed=3, dtype=np.float64)
    a, b = net.copy(), net.copy()
    a.fit(X, y, "ce", fn.SGD(0.2), epochs=2, batch_size=bs, seed=1, backend="numpy")
    b.fit(X, y, "ce", fn.SGD(0.2), epochs=2, batch_size=bs, seed=1, backend="numba")
    assert_allclose(b.params, a.params, rtol=TRAIN_RTOL64, atol=TRAIN_RTOL64 * np.abs(a.params).max())


@pytest.mark.parametrize("layers", [
    lambda: [fn.Dropout(0.2), fn.Linear(4, 6), fn.Tanh(), fn.Linear(6, 3)],          # on the input
    lambda: [fn.Linear(4, 6), fn.Tanh(), fn.Linear(6, 3), fn.Dropout(0.2)],          # on the output
    lambda: [fn.Linear(4, 6), fn.Dropout(0.2), fn.Tanh(), fn.Linear(6, 3)],          # before the activation
    lambda: [fn.Linear(4, 6), fn.Tanh(), fn.Dropout(0.2), fn.Dropout(0.3), fn.Linear(6, 3)],
])
def test_unfusable_dropout_falls_back_and_agrees(layers):
    _compare(layers(), fn.CrossEntropy(), lambda: fn.SGD(0.1), "labels", 16, fused=False)


def test_dropout_active_in_fit_only():
    X, y = _data("labels")
    net = fn.Sequential(fn.Linear(4, 32), fn.ReLU(), fn.Dropout(0.5), fn.Linear(32, 3), seed=0, dtype=np.float64)
    plain = fn.Sequential(fn.Linear(4, 32), fn.ReLU(), fn.Linear(32, 3), seed=0, dtype=np.float64)
    assert np.array_equal(net.params, plain.params)
    # inference ignores the Dropout, in either mode and on every backend
    for backend in ("numpy", "numba"):
        assert np.array_equal(net.predict(X, backend=backend), plain.predict(X, backend=backend))
        assert net.evaluate(X, y, "ce", backend=backend) == plain.evaluate(X, y, "ce", backend=backend)
    # training mode: forward masks (a new mask each call); eval mode: it does not
    assert net.training
    out1, out2 = net.forward(X), net.forward(X)
    assert not np.array_equal(out1, out2)
    net.eval()
    assert not net.training and not net.layers[2].training
    assert np.array_equal(net.forward(X), plain.forward(X))
    # fit trains with Dropout even in eval mode, and restores the mode
    a, b = net.copy(), net.copy().train()
    a.fit(X, y, "ce", fn.SGD(0.1), epochs=2, seed=3, backend="numba")
    b.fit(X, y, "ce", fn.SGD(0.1), epochs=2, seed=3, backend="numba")
    assert not a.training and b.training
    assert np.array_equal(a.params, b.params)
    c = plain.copy()
    c.fit(X, y, "ce", fn.SGD(0.1), epochs=2, seed=3, backend="numba")
    assert not np.allclose(c.params, a.params)  # the masks changed the training


def test_dropout_masks_come_from_the_fit_seed():
    X, y = _data("labels")
    net = fn.Sequential(fn.Linear(4, 16), fn.ReLU(), fn.Dropout(0.5), fn.Linear(16, 3), seed=0, dtype=np.float64)
    runs = {}
    for seed in (1, 1, 2):
        n = net.copy()
        n.fit(X, y, "ce", fn.SGD(0.1), epochs=2, seed=seed, backend="numba")
        runs.setdefault(seed, []).append(n.params)
    assert np.array_equal(*runs[1])
    assert not np.allclose(runs[1][0], runs[2][0])
    # a network without Dropout draws nothing: its shuffles are those of before Dropout existed
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    fn.Sequential(fn.Linear(4, 3)).draw_dropout_key(rng_a)
    assert rng_a.random() == rng_b.random()


def test_dropout_layer_and_config():
    with pytest.raises(ValueError, match="Dropout p"):
        fn.Dropout(1.0)
    with pytest.raises(ValueError, match="Dropout p"):
        fn.Dropout(-0.1)
    d = fn.Dropout(0.25)
    assert d.config() == {"type": "Dropout", "p": 0.25} and d.n_params == 0
    net = fn.Sequential(fn.Linear(3, 4), fn.GELU("tanh"), d, fn.Linear(4, 2), fn.Softplus(3.0), seed=0)
    back = fn.Sequential.from_config(net.config())
    assert [repr(x) for x in back.layers] == [repr(x) for x in net.layers]


def test_save_and_load_keep_the_new_layers(tmp_path):
    net = fn.Sequential(fn.Linear(3, 4), fn.ELU(0.5), fn.Dropout(0.1), fn.Linear(4, 4), fn.SiLU(),
                        fn.Linear(4, 2), fn.ReLU6(), seed=0)
    net.save(tmp_path / "m.safetensors")
    back = fn.load(tmp_path / "m.safetensors")
    assert [repr(x) for x in back.layers] == [repr(x) for x in net.layers]
    assert np.array_equal(back.params, net.params)
