"""The Numba CPU kernels (kernels/cpu) against the NumPy reference, in float32 and float64.

Shapes are reused across tests so that each compiled kernel specialises only once per
dtype (compile time dominates this file's runtime).
"""

import inspect
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from fastnn import config
from fastnn.kernels import cpu, reference as ref

from conftest import DTYPES, GRADCHECK_TOL, ROOT, tol

# (B, in, out): 1x1, batch 1, partial blocks, and one big enough for the threaded kernels
LINEAR_SHAPES = [(1, 1, 1), (1, 5, 3), (7, 13, 4), (3 * 32 + 1, 17, 9), (130, 60, 40)]
ACT_CODES = [ref.IDENTITY, ref.SIGMOID, ref.TANH, ref.RELU, ref.LEAKY_RELU, ref.SOFTMAX]


def _data(rng, shape, dt, sparse=False):
    a = rng.normal(size=shape).astype(dt)
    if sparse:
        a[rng.random(shape) < 0.6] = 0
    return a


# ------------------------------------------------------------------------------ API


def test_same_names_and_signatures_as_reference():
    public = [n for n, f in vars(ref).items() if inspect.isfunction(f) and not n.startswith("_")]
    assert len(public) > 25
    for name in public:
        assert hasattr(cpu, name), f"kernels.cpu lacks {name}"
        assert inspect.signature(getattr(cpu, name)) == inspect.signature(getattr(ref, name)), name
    for const in ("IDENTITY", "SIGMOID", "SOFTMAX", "SIGN", "MSE", "CROSS_ENTROPY", "BCE"):
        assert getattr(cpu, const) == getattr(ref, const)


def test_backend_uses_cpu_kernels(monkeypatch):
    ops = fn.get_ops("numba")
    assert ops.adam_update is cpu.adam_update
    # the two first-layer ops are methods (a scipy.sparse batch goes to SciPy); dense ones reach cpu
    calls = []
    for name in ("linear_forward", "linear_backward_weight"):
        real = getattr(cpu, name)
        monkeypatch.setattr(cpu, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    x, W = np.ones((3, 2)), np.ones((2, 4))
    assert_allclose(ops.linear_forward(x, W), ref.linear_forward(x, W))
    assert_allclose(ops.linear_backward_weight(x, np.ones((3, 4))), ref.linear_backward_weight(x, np.ones((3, 4))))
    assert calls == ["linear_forward", "linear_backward_weight"]


# --------------------------------------------------------------------------- linear


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", LINEAR_SHAPES)
def test_linear(rng, dt, shape):
    B, nin, nout = shape
    x = _data(rng, (B, nin), dt, sparse=True)
    W, b, dy = _data(rng, (nin, nout), dt), _data(rng, nout, dt), _data(rng, (B, nout), dt)
    for got, want in [
        (cpu.linear_forward(x, W, b), ref.linear_forward(x, W, b)),
        (cpu.linear_forward(x, W), ref.linear_forward(x, W)),
        (cpu.linear_backward_input(dy, W), ref.linear_backward_input(dy, W)),
        (cpu.linear_backward_weight(x, dy), ref.linear_backward_weight(x, dy)),
        (cpu.linear_backward_bias(dy), ref.linear_backward_bias(dy)),
    ]:
        assert got.dtype == want.dtype and got.shape == want.shape
        assert_allclose(got, want, **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
def test_threaded_kernels(rng, dt, monkeypatch):
    """The threaded variants (used for big shapes) give the reference's results too."""
    monkeypatch.setattr(config, "PARALLEL", "1")
    B, nin, nout = LINEAR_SHAPES[-1]
    x = _data(rng, (B, nin), dt, sparse=True)
    W, b, dy = _data(rng, (nin, nout), dt), _data(rng, nout, dt), _data(rng, (B, nout), dt)
    assert_allclose(cpu.linear_forward(x, W, b), ref.linear_forward(x, W, b), **tol(dt))
    assert_allclose(cpu.linear_backward_input(dy, W), ref.linear_backward_input(dy, W), **tol(dt))
    assert_allclose(cpu.linear_backward_weight(x, dy), ref.linear_backward_weight(x, dy), **tol(dt))
    p0, g, v0 = _data(rng, 70000, dt), _data(rng, 70000, dt), _data(rng, 70000, dt)
    pr, pc, vr, vc = p0.copy(), p0.copy(), v0.copy(), v0.copy()
    ref.nesterov_update(pr, g, vr, 0.1, 0.9, 0.01, 30000)
    cpu.nesterov_update(pc, g, vc, 0.1, 0.9, 0.01, 30000)
    assert_allclose(pc, pr, **tol(dt))
    assert_allclose(vc, vr, **tol(dt))


def test_linear_rejects_bad_shapes(rng):
    with pytest.raises(ValueError, match="columns"):
        cpu.linear_forward(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="b has"):
        cpu.linear_forward(np.zeros((2, 3)), np.zeros((3, 5)), np.zeros(4))
    with pytest.raises(ValueError, match="rows"):
        cpu.linear_backward_weight(np.zeros((2, 3)), np.zeros((3, 5)))


# ---------------------------------------------------------------------- activations


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code", ACT_CODES)
@pytest.mark.parametrize("shape", [(1, 1), (7, 13)])
def test_activations(rng, dt, code, shape):
    x = _data(rng, shape, dt) * 4
    x[0, 0] = 0  # relu/leaky/sign boundary
    y_ref = ref.activation_forward(code, x, 0.1)
    y = cpu.activation_forward(code, x, 0.1)
    assert y.dtype == y_ref.dtype
    assert_allclose(y, y_ref, **tol(dt))
    dy = _data(rng, shape, dt)
    assert_allclose(cpu.activation_backward(code, y_ref, dy, 0.1), ref.activation_backward(code, y_ref, dy, 0.1),
                    **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
def test_named_activation_functions(rng, dt):
    x = _data(rng, (7, 13), dt) * 3
    dy = _data(rng, (7, 13), dt)
    for name in ("identity", "sigmoid", "tanh", "relu", "softmax"):
        y = getattr(ref, f"{name}_forward")(x)
        assert_allclose(getattr(cpu, f"{name}_forward")(x), y, **tol(dt))
        assert_allclose(getattr(cpu, f"{name}_backward")(y, dy), getattr(ref, f"{name}_backward")(y, dy), **tol(dt))
    y = ref.leaky_relu_forward(x, 0.2)
    assert_allclose(cpu.leaky_relu_forward(x, 0.2), y, **tol(dt))
    assert_allclose(cpu.leaky_relu_backward(y, dy, 0.2), ref.leaky_relu_backward(y, dy, 0.2), **tol(dt))
    assert_allclose(cpu.sign_forward(x), ref.sign_forward(x))
    # 1-D input for an elementwise activation, and extreme inputs for the stable sigmoid
    v = np.array([-1000, -30, 0, 30, 1000], dt)
    assert_allclose(cpu.sigmoid_forward(v), ref.sigmoid_forward(v), **tol(dt))
    assert_allclose(cpu.softmax_forward(np.array([[-np.inf, 1, 2]], dt)), ref.softmax_forward(np.array([[-np.inf, 1, 2]], dt)),
                    **tol(dt))


def test_activation_errors():
    with pytest.raises(ValueError, match="forward-only"):
        cpu.activation_backward(ref.SIGN, np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="unknown activation"):
        cpu.activation_forward(99, np.ones((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        cpu.softmax_forward(np.ones(3))


# ---------------------------------------------------------------------------- costs


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("n", [1, 7])
def test_costs(rng, dt, n):
    k = 4
    pred = _data(rng, (n, k), dt)
    labels = rng.integers(0, k, n)
    onehot = np.eye(k, dtype=dt)[labels]
    prob = rng.uniform(0.01, 0.99, (n, k)).astype(dt)
    prob[0, 0] = 1.0  # clipped
    t01 = (rng.random((n, k)) > 0.5).astype(dt)
    cases = [("mse", pred, onehot), ("cross_entropy", pred, labels), ("cross_entropy", pred, onehot),
             ("bce", prob, t01)]
    for name, p, t in cases:
        assert cpu.__dict__[f"{name}_value"](p, t) == pytest.approx(ref.__dict__[f"{name}_value"](p, t), rel=tol(dt)["rtol"])
        assert_allclose(cpu.__dict__[f"{name}_grad"](p, t), ref.__dict__[f"{name}_grad"](p, t), **tol(dt))
    assert_allclose(cpu.bce_sigmoid_delta(prob, t01), ref.bce_sigmoid_delta(prob, t01), **tol(dt))
    assert_allclose(cpu.log_softmax(pred), ref.log_softmax(pred), **tol(dt))
    for code in (ref.MSE, ref.CROSS_ENTROPY):
        assert cpu.cost_value(code, pred, onehot) == pytest.approx(ref.cost_value(code, pred, onehot), rel=tol(dt)["rtol"])
        assert_allclose(cpu.cost_grad(code, pred, onehot), ref.cost_grad(code, pred, onehot), **tol(dt))


def test_cost_errors():
    with pytest.raises(ValueError, match="labels"):
        cpu.cross_entropy_value(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="shape"):
        cpu.mse_value(np.zeros((2, 3)), np.zeros((2, 2)))


# ----------------------------------------------------------------------- optimizers


def _opt_cases(P):
    return [
        ("sgd", lambda m, p, g, s: m.sgd_update(p, g, 0.1, 0.01, P // 2)),
        ("sgd-nowd", lambda m, p, g, s: m.sgd_update(p, g, 0.1)),
        ("momentum", lambda m, p, g, s: m.momentum_update(p, g, s[0], 0.1, 0.9, 0.01, P // 2)),
        ("nesterov", lambda m, p, g, s: m.nesterov_update(p, g, s[0], 0.1, 0.9, 0.0, 0)),
    ]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("P", [1, 70000])
def test_optimizer_updates(rng, dt, P):
    p0 = _data(rng, P, dt)
    grads = [_data(rng, P, dt) for _ in range(3)]
    for name, step in _opt_cases(P):
        pr, pc = p0.copy(), p0.copy()
        sr, sc = [np.zeros(P, dt)], [np.zeros(P, dt)]
        for g in grads:
            step(ref, pr, g, sr)
            step(cpu, pc, g, sc)
        assert_allclose(pc, pr, **tol(dt), err_msg=name)
        assert_allclose(sc[0], sr[0], **tol(dt), err_msg=name)
    pr, pc = p0.copy(), p0.copy()
    mr, vr, mc, vc = (np.zeros(P, dt) for _ in range(4))
    for t, g in enumerate(grads, 1):
        ref.adam_update(pr, g, mr, vr, t, 0.01, 0.9, 0.999, 1e-8, 0.01, P // 2)
        cpu.adam_update(pc, g, mc, vc, t, 0.01, 0.9, 0.999, 1e-8, 0.01, P // 2)
    assert_allclose(pc, pr, **tol(dt))
    assert_allclose(vc, vr, **tol(dt))


def test_optimizer_errors():
    p = np.zeros(10)
    with pytest.raises(ValueError, match="contiguous"):
        cpu.sgd_update(np.zeros(20)[::2], np.zeros(10), 0.1)
    with pytest.raises(ValueError, match="entries"):
        cpu.sgd_update(p, np.zeros(9), 0.1)
    with pytest.raises(ValueError, match="n_decay"):
        cpu.sgd_update(p, np.zeros(10), 0.1, 0.1, 11)
    with pytest.raises(ValueError, match="t must be"):
        cpu.adam_update(p, p.copy(), p.copy(), p.copy(), 0, 0.1, 0.9, 0.99, 1e-8)
    with pytest.raises(ValueError, match="dtype"):
        cpu.momentum_update(p, p.copy(), np.zeros(10, np.float32), 0.1, 0.9)


# --------------------------------------------------------- gradients: finite differences and torch


@pytest.mark.parametrize("seed", range(4))
def test_gradcheck_numba_random_architectures(seed):
    r = np.random.default_rng(seed)
    acts = [fn.Sigmoid, fn.Tanh, fn.Identity, lambda: fn.LeakyReLU(0.1), fn.Softmax]
    sizes = [int(s) for s in r.integers(1, 6, r.integers(2, 4))]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [fn.Linear(a, b, bias=bool(r.integers(0, 2)) or a == 1), acts[r.integers(len(acts))]()]
    net = fn.Sequential(*layers, seed=seed, dtype=np.float64)
    X = r.normal(size=(5, sizes[0]))
    Y = r.normal(size=(5, sizes[-1]))
    err = fn.gradcheck(net, X, Y, fn.MSE(), backend="numba", tol=GRADCHECK_TOL)
    assert err <= GRADCHECK_TOL


def test_gradcheck_numba_fails_on_wrong_gradient(monkeypatch):
    """The gradient check really compares: a broken numba kernel is caught."""
    net = fn.Sequential(fn.Linear(3, 2), fn.Tanh(), seed=0, dtype=np.float64)
    ops = fn.get_ops("numba")
    monkeypatch.setattr(type(ops), "kernel_modules", (_Broken(cpu), ref))
    with pytest.raises(fn.GradientCheckError):
        fn.gradcheck(net, np.ones((2, 3)), np.zeros((2, 2)), fn.MSE(), backend="numba")


class _Broken:
    def __init__(self, mod):
        self.mod = mod

    def __getattr__(self, name):
        if name == "tanh_backward" or name == "activation_backward":
            return lambda code, y, dy, slope=0.0: 2 * self.mod.activation_backward(code, y, dy, slope)
        return getattr(self.mod, name)


def test_against_torch_autograd(torch, rng):
    """Forward and every gradient of a small MLP step, numba kernels vs torch float64."""
    B, sizes = 6, [5, 4, 3]
    X = rng.normal(size=(B, sizes[0]))
    labels = rng.integers(0, 3, B)
    Ws = [rng.normal(size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=b) for b in sizes[1:]]
    # numba kernels: Linear -> tanh -> Linear -> cross-entropy
    h_pre = cpu.linear_forward(X, Ws[0], bs[0])
    h = cpu.tanh_forward(h_pre)
    s = cpu.linear_forward(h, Ws[1], bs[1])
    loss = cpu.cross_entropy_value(s, labels)
    ds = cpu.cross_entropy_grad(s, labels)
    dW1, db1 = cpu.linear_backward_weight(h, ds), cpu.linear_backward_bias(ds)
    dh = cpu.tanh_backward(h, cpu.linear_backward_input(ds, Ws[1]))
    dW0, db0 = cpu.linear_backward_weight(X, dh), cpu.linear_backward_bias(dh)
    # torch
    tW = [torch.tensor(w, requires_grad=True) for w in Ws]
    tb = [torch.tensor(b, requires_grad=True) for b in bs]
    ts = torch.tanh(torch.tensor(X) @ tW[0] + tb[0]) @ tW[1] + tb[1]
    tl = torch.nn.functional.cross_entropy(ts, torch.tensor(labels))
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-12)
    for got, want in ((dW0, tW[0]), (db0, tb[0]), (dW1, tW[1]), (db1, tb[1])):
        assert_allclose(got, want.grad.numpy(), rtol=1e-10, atol=1e-12)
    # sigmoid + BCE, softmax, relu, leaky relu vector-Jacobian products
    x = rng.normal(size=(B, 3))
    t = (rng.random((B, 3)) > 0.5).astype(float)
    g = rng.normal(size=(B, 3))
    for name, tf, ours in (
        ("sigmoid", torch.sigmoid, cpu.sigmoid_forward),
        ("softmax", lambda z: torch.softmax(z, 1), cpu.softmax_forward),
        ("relu", torch.relu, cpu.relu_forward),
        ("leaky_relu", lambda z: torch.nn.functional.leaky_relu(z, 0.1), lambda z: cpu.leaky_relu_forward(z, 0.1)),
    ):
        tx = torch.tensor(x, requires_grad=True)
        ty = tf(tx)
        ty.backward(torch.tensor(g))
        y = ours(x)
        assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
        back = cpu.activation_backward(getattr(ref, name.upper()), y, g, 0.1)
        assert_allclose(back, tx.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    p = cpu.sigmoid_forward(x)
    tx = torch.tensor(x, requires_grad=True)
    tbce = torch.nn.functional.binary_cross_entropy(torch.sigmoid(tx), torch.tensor(t), reduction="sum") / B
    tbce.backward()
    assert cpu.bce_value(p, t) == pytest.approx(tbce.item(), rel=1e-10)
    assert_allclose(cpu.bce_sigmoid_delta(p, t), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------- config and caching


def test_num_threads_knob():
    n = config.get_num_threads()
    try:
        config.set_num_threads(1)
        assert config.get_num_threads() == 1
    finally:
        config.set_num_threads(n)
    with pytest.raises(ValueError, match="threads"):
        config.set_num_threads(0)
    with pytest.raises(ValueError, match="FASTNN_FASTMATH"):
        config._read_fastmath("maybe")


_SCRIPT = """
import numpy as np, fastnn
from fastnn.kernels import cpu, reference as ref
x = np.arange(6.0).reshape(2, 3); W = np.ones((3, 2))
assert np.allclose(cpu.linear_forward(x, W), ref.linear_forward(x, W))
print("OK", cpu.linear_forward.__module__)
"""


def _copy_tree(dst):
    """A copy of the package as a read-only install would have it (no __pycache__)."""
    for name in ("fastnn", "kernels"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))


def test_unwritable_cache_still_works(tmp_path):
    """No writable cache directory anywhere: kernels compile without caching instead of failing.

    (Tests run as root, so chmod cannot make a directory read-only here; a regular file where
    numba wants a directory makes every cache location unusable the same way.)
    """
    _copy_tree(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    for pkg in ("fastnn", "kernels", "kernels/cpu", "fastnn/backends"):
        (tmp_path / pkg / "__pycache__").write_text("not a directory")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(blocker / "numba"), HOME=str(blocker),
               XDG_CACHE_HOME=str(blocker / "cache"), PYTHONPATH=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout


def test_read_only_tree_caches_elsewhere(tmp_path):
    """An unwritable install directory with a writable NUMBA_CACHE_DIR caches there."""
    _copy_tree(tmp_path)
    (tmp_path / "kernels" / "cpu" / "__pycache__").write_text("not a directory")
    cache = tmp_path / "numba-cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert list(pathlib.Path(cache).rglob("*.nbi")), "no numba cache index written to NUMBA_CACHE_DIR"
