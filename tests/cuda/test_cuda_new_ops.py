"""The new ops' CUDA kernels against the reference, and training with them against the numpy
backend (float64, TRAIN_RTOL64): ELU, Softplus, GELU, SiLU, ReLU6; L1, Huber, Hinge, KL;
RMSprop, Adagrad, Adadelta, AdamW; Dropout (the same masks as the reference)."""

import copy
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install 'fastnn-numba[cuda]')")

import fastnn as fn  # noqa: E402
from conftest import DTYPES, TRAIN_RTOL64, knobs, tol  # noqa: E402
from fastnn.backends import cuda as cuda_backend  # noqa: E402
from fastnn.kernels import cuda as kc  # noqa: E402
from fastnn.kernels import reference as ref  # noqa: E402

# the simulator runs the uint64 hash on NumPy scalars, which warn when they wrap (as intended)
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

TILE, WPT, TPB = knobs()
Q = 3 * TPB + 1
NEW_ACTS = [(ref.ELU, 0.8), (ref.SOFTPLUS, 2.0), (ref.GELU, 0.0), (ref.GELU_TANH, 0.0), (ref.SILU, 0.0),
            (ref.RELU6, 0.0)]


def _x(rng, shape, dt):
    x = (rng.standard_normal(shape) * 4).astype(dt)
    x[np.abs(x) < 1e-3] = 0.5
    x[np.abs(x - 6) < 1e-3] = 5.0
    return x


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code, p", NEW_ACTS)
@pytest.mark.parametrize("shape", [(1, 1), (3, Q)])
def test_activations(rng, dt, code, p, shape):
    x = _x(rng, shape, dt)
    dy = rng.standard_normal(shape).astype(dt)
    y = ref.activation_forward(code, x, p)
    assert_allclose(kc.activation_forward(code, x, p), y, **tol(dt))
    t = dict(tol(dt), atol=1e-5) if dt == np.float32 else tol(dt)  # GELU-tanh's 1 + tanh cancels in float32
    assert_allclose(kc.activation_backward(code, y, dy, p, x=x), ref.activation_backward(code, y, dy, p, x=x), **t)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code, p", NEW_ACTS)
def test_activation_fused_in_the_matmul_epilogues(rng, dt, code, p):
    """Forward epilogue act(x W + b), and the input gradient's epilogue with act' at V (output or input)."""
    from numba import cuda

    from fastnn.kernels.cuda import launch

    B, i, o = 5, 2 * TILE * WPT + 1, 3
    x, W, b = _x(rng, (B, i), dt) / 4, _x(rng, (i, o), dt) / 4, _x(rng, o, dt)
    y = cuda.device_array((B, o), dt)
    launch.linear_forward(y, cuda.to_device(x), cuda.to_device(W), cuda.to_device(b), code, p)
    z = ref.linear_forward(x, W, b)
    assert_allclose(y.copy_to_host(), ref.activation_forward(code, z, p), **tol(dt))
    dy, Wt = _x(rng, (B, o), dt), _x(rng, (i, o), dt)
    dz = cuda.device_array((B, i), dt)
    vv = _x(rng, (B, i), dt)  # what the backward reads: the previous layer's input or output
    vv = vv if code in ref.NEEDS_INPUT else ref.activation_forward(code, vv, p)
    launch.linear_backward_input(dz, cuda.to_device(dy), cuda.to_device(Wt), y_prev=cuda.to_device(vv), dact=code,
                                 slope=p)
    want = ref.activation_backward(code, vv, ref.linear_backward_input(dy, Wt), p, x=vv)
    scale = max(1.0, float(np.abs(want).max()))  # float32: GELU-tanh's 1 + tanh(u) cancels, times |dx|
    assert_allclose(dz.copy_to_host(), want, **dict(tol(dt), atol=(1e-5 if dt == np.float32 else 1e-12) * scale))


COSTS = [(ref.L1, 1.0, "float"), (ref.HUBER, 0.4, "float"), (ref.HINGE, 1.0, "labels"),
         (ref.KL_DIVERGENCE, 1.0, "dist"), (ref.KL_DIVERGENCE, 1.0, "labels")]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code, param, kind", COSTS)
@pytest.mark.parametrize("n", [1, Q])
def test_costs(rng, dt, code, param, kind, n):
    s = (rng.standard_normal((n, 3)) * 2).astype(dt)
    t = {"float": lambda: rng.standard_normal((n, 3)).astype(dt), "labels": lambda: rng.integers(0, 3, n),
         "dist": lambda: rng.dirichlet(np.ones(3), size=n).astype(dt)}[kind]()
    assert kc.cost_value(code, s, t, param) == pytest.approx(ref.cost_value(code, s, t, param),
                                                             rel=1e-5 if dt == np.float32 else 1e-12)
    assert_allclose(kc.cost_grad(code, s, t, param), ref.cost_grad(code, s, t, param), **tol(dt))


UPDATES = {
    "rmsprop": lambda m, p, g, s: m.rmsprop_update(p, g, s[0], None, None, 0.01, 0.9, 1e-8, 0.0, 0.05, 7),
    "rmsprop-momentum": lambda m, p, g, s: m.rmsprop_update(p, g, s[0], s[1], None, 0.01, 0.9, 1e-8, 0.7),
    "rmsprop-centered": lambda m, p, g, s: m.rmsprop_update(p, g, s[0], None, s[1], 0.01, 0.95, 1e-8, 0.0, 0.1, 7),
    "rmsprop-centered-momentum": lambda m, p, g, s: m.rmsprop_update(p, g, s[0], s[2], s[1], 0.01, 0.9, 1e-8, 0.5),
    "adagrad": lambda m, p, g, s: m.adagrad_update(p, g, s[0], s[3], 0.1, 0.05, 1e-10, 0.05, 7),
    "adadelta": lambda m, p, g, s: m.adadelta_update(p, g, s[0], s[1], 1.0, 0.9, 1e-6, 0.05, 7),
    "adamw": lambda m, p, g, s: m.adamw_update(p, g, s[0], s[1], s[3], 0.01, 0.9, 0.99, 1e-8, 0.1, 7),
}


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", list(UPDATES))
def test_optimizer_updates(rng, dt, name):
    p0 = rng.standard_normal(Q).astype(dt)
    runs = []
    for mod in (ref, kc):
        p = p0.copy()
        states = [np.zeros(Q, dt) for _ in range(3)]
        grads = np.random.default_rng(2)
        for t in range(1, 4):
            UPDATES[name](mod, p, grads.standard_normal(Q).astype(dt), states + [t])
        runs.append((p, states))
    (pr, sr), (pc, sc) = runs
    assert_allclose(pc, pr, **tol(dt))
    for a, b in zip(sc, sr):
        assert_allclose(a, b, **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape, pos0, p", [((1, 1), 0, 0.5), ((3, Q), 17, 0.3)])
def test_dropout_same_mask_as_the_reference(rng, dt, shape, pos0, p):
    x = rng.standard_normal(shape).astype(dt)
    key = 2**63 + 12345
    assert np.array_equal(kc.dropout_forward(x, key, 2, pos0, p), ref.dropout_forward(x, key, 2, pos0, p))
    assert np.array_equal(kc.dropout_mask(key, 2, pos0, shape, p), ref.dropout_mask(key, 2, pos0, shape, p))


def _data(kind, n=13, d=3, k=3, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if kind == "labels":
        return X, rng.integers(0, k, n)
    if kind == "dist":
        return X, rng.dirichlet(np.ones(k), size=n)
    return X, rng.uniform(-0.8, 0.8, (n, k))


CASES = {
    # name: (layers, cost, optimizer, target kind, batch size)
    "elu-softplus-l1-rmsprop": ([fn.Linear(3, 5), fn.ELU(0.6), fn.Linear(5, 4), fn.Softplus(2.0), fn.Linear(4, 3)],
                                fn.L1(), fn.RMSprop(0.01, weight_decay=0.01), "float", 4),
    "gelu-huber-centered-momentum": ([fn.Linear(3, 5), fn.GELU(), fn.Linear(5, 3), fn.GELU("tanh")], fn.Huber(0.3),
                                     fn.RMSprop(0.01, centered=True, momentum=0.5), "float", 5),
    "silu-hinge-adagrad": ([fn.Linear(3, 6), fn.SiLU(), fn.Linear(6, 3)], fn.Hinge(),
                           fn.Adagrad(0.1, lr_decay=0.1, weight_decay=0.01), "labels", 4),
    "relu6-kl-adadelta": ([fn.Linear(3, 6), fn.ReLU6(), fn.Linear(6, 3)], fn.KLDivergence(), fn.Adadelta(),
                          "dist", 3),
    "silu-out-mse-adamw": ([fn.Linear(3, 4), fn.Tanh(), fn.Linear(4, 3), fn.SiLU()], fn.MSE(),
                           fn.AdamW(0.01, weight_decay=0.1), "float", 1),
    "dropout-relu-sgd": ([fn.Linear(3, 8), fn.ReLU(), fn.Dropout(0.4), fn.Linear(8, 3)], fn.CrossEntropy(),
                         fn.SGD(0.2), "labels", 4),
    "dropout-gelu-after-linear-adam": ([fn.Linear(3, 6), fn.GELU(), fn.Dropout(0.3), fn.Linear(6, 5),
                                        fn.Dropout(0.5), fn.Linear(5, 3)], fn.CrossEntropy(), fn.Adam(0.02),
                                       "labels", 5),
    "dropout-softmax-hidden": ([fn.Linear(3, 5), fn.Softmax(), fn.Dropout(0.2), fn.Linear(5, 3)], fn.MSE(),
                               fn.SGD(0.3, momentum=0.5), "float", 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_training_matches_numpy_float64(case):
    layers, cost, opt, kind, bs = CASES[case]
    X, Y = _data(kind)
    out = []
    for backend in ("numpy", "cuda"):
        net = fn.Sequential(*copy.deepcopy(layers), seed=7, dtype=np.float64)
        o = copy.deepcopy(opt)
        hist = net.fit(X, Y, copy.deepcopy(cost), o, epochs=2, batch_size=bs, seed=11, backend=backend)
        out.append((net, hist, o))
    (na, ha, oa), (nb, hb, ob) = out
    assert not np.allclose(na.params, fn.Sequential(*copy.deepcopy(layers), seed=7, dtype=np.float64).params)
    assert_allclose(nb.params, na.params, rtol=TRAIN_RTOL64, atol=1e-12)
    for name in oa.state_names():
        assert_allclose(getattr(ob, name), getattr(oa, name), rtol=TRAIN_RTOL64, atol=1e-12, err_msg=name)
    for key in ha.history:
        assert_allclose(hb.history[key], ha.history[key], rtol=TRAIN_RTOL64, atol=1e-12, err_msg=key)


def test_new_ops_take_the_device_path():
    X, y = _data("labels")
    net = fn.Sequential(fn.Linear(3, 6), fn.GELU(), fn.Dropout(0.3), fn.Linear(6, 3), seed=0, dtype=np.float64)
    opt = fn.RMSprop(0.01, centered=True, momentum=0.9)
    opt.ensure_setup(net)
    runner = fn.get_ops("cuda").make_runner(net, fn.Hinge(), opt, X, fn.Hinge().prepare(y, 3, np.float64), 4)
    assert isinstance(runner, cuda_backend.CudaRunner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_allclose(net.predict(X, backend="cuda"), net.predict(X, backend="numpy"), rtol=1e-12, atol=1e-14)
