"""The reference's new ops (ELU, Softplus, GELU, SiLU, ReLU6; L1, Huber, Hinge, KL divergence;
Dropout) against central finite differences and torch autograd, in float64."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from fastnn.kernels import reference as ref

from conftest import numgrad, tol

T64 = tol(np.float64)
FD_TOL = dict(rtol=1e-6, atol=1e-8)

#: name -> (code, parameter, torch function of (torch, x), backward takes the input)
ACTS = {
    "elu": (ref.ELU, 0.7, lambda t, x: t.nn.functional.elu(x, 0.7), False),
    "elu-0": (ref.ELU, 0.0, lambda t, x: t.nn.functional.elu(x, 0.0), False),
    "softplus": (ref.SOFTPLUS, 1.0, lambda t, x: t.nn.functional.softplus(x), False),
    "softplus-beta": (ref.SOFTPLUS, 2.5, lambda t, x: t.nn.functional.softplus(x, beta=2.5), False),
    "gelu": (ref.GELU, 0.0, lambda t, x: t.nn.functional.gelu(x), True),
    "gelu-tanh": (ref.GELU_TANH, 0.0, lambda t, x: t.nn.functional.gelu(x, approximate="tanh"), True),
    "silu": (ref.SILU, 0.0, lambda t, x: t.nn.functional.silu(x), True),
    "relu6": (ref.RELU6, 0.0, lambda t, x: t.nn.functional.relu6(x), False),
}


def _inputs(rng, shape, scale=3.0):
    x = rng.normal(size=shape) * scale
    x[np.abs(x) < 1e-2] = 0.5  # away from the kinks at 0
    x[np.abs(x - 6) < 1e-2] = 5.0  # and ReLU6's at 6
    return x


def _backward(code, y, dy, p, x):
    return ref.activation_backward(code, y, dy, p, x=x)


@pytest.mark.parametrize("name", list(ACTS))
@pytest.mark.parametrize("shape", [(1, 1), (4, 5)])
def test_activation_against_finite_differences(rng, name, shape):
    code, p, _, _ = ACTS[name]
    x = _inputs(rng, shape)
    x[0, 0] = 7.0 if shape[1] > 1 else x[0, 0]  # past ReLU6's clip and Softplus's threshold (beta 2.5)
    dy = rng.normal(size=shape)
    y = ref.activation_forward(code, x, p)
    expected = numgrad(lambda v: np.sum(ref.activation_forward(code, v, p) * dy), x)
    assert_allclose(_backward(code, y, dy, p, x), expected, **FD_TOL)


@pytest.mark.parametrize("name", list(ACTS))
def test_activation_against_torch(torch, rng, name):
    code, p, tf, _ = ACTS[name]
    x = _inputs(rng, (7, 9)) * 2  # -> beyond softplus's threshold and ReLU6's clip too
    dy = rng.normal(size=x.shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = tf(torch, tx)
    ty.backward(torch.tensor(dy))
    y = ref.activation_forward(code, x, p)
    assert_allclose(y, ty.detach().numpy(), **T64)
    assert_allclose(_backward(code, y, dy, p, x), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_named_ops_and_their_parameters():
    x = np.array([[-2.0, -0.5, 0.5, 3.0, 7.0]])
    assert_allclose(ref.elu_forward(x, 2.0), np.where(x > 0, x, 2 * (np.exp(x) - 1)), **T64)
    assert_allclose(ref.softplus_forward(x, 0.5), np.log1p(np.exp(0.5 * x)) / 0.5, **T64)
    assert_allclose(ref.relu6_forward(x), [[0, 0, 0.5, 3, 6]])
    assert_allclose(ref.silu_forward(x), x / (1 + np.exp(-x)), **T64)
    assert_allclose(ref.gelu_forward(x), [[0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x[0]]], **T64)
    # the activations whose backward needs the input say so
    assert set(ref.NEEDS_INPUT) == {ref.GELU, ref.GELU_TANH, ref.SILU}
    with pytest.raises(ValueError, match="needs the activation's input"):
        ref.activation_backward(ref.GELU, x, x)


def test_erf_is_accurate_to_the_last_bits():
    xs = np.concatenate([np.linspace(-9, 9, 40001), np.geomspace(1e-300, 1, 400), [0.0, np.inf, -np.inf, 30.0]])
    want = np.array([math.erf(v) for v in xs])
    assert_allclose(ref._erf(xs), want, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_new_activations_keep_the_dtype_and_stay_finite(dtype):
    x = np.array([[-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4]], dtype)
    for code, p, _, _ in ACTS.values():
        y = ref.activation_forward(code, x, p)
        assert y.dtype == dtype and np.all(np.isfinite(y)), code
        dx = ref.activation_backward(code, y, np.ones_like(x), p, x=x)
        assert dx.dtype == dtype and np.all(np.isfinite(dx)), code


# -------------------------------------------------------------------------- costs


def _cost_case(rng, name, n, k):
    s = rng.normal(size=(n, k)) * 2
    if name in ("hinge", "kl-labels"):
        return s, rng.integers(0, k, n)
    if name == "kl":
        return s, rng.dirichlet(np.ones(k), size=n)
    t = s + rng.normal(size=(n, k))
    return s, t


COSTS = {"l1": (ref.L1, 1.0), "huber": (ref.HUBER, 1.0), "huber-delta": (ref.HUBER, 0.4),
         "hinge": (ref.HINGE, 1.0), "kl": (ref.KL_DIVERGENCE, 1.0), "kl-labels": (ref.KL_DIVERGENCE, 1.0)}


@pytest.mark.parametrize("name", list(COSTS))
@pytest.mark.parametrize("shape", [(1, 2), (6, 3)])
def test_cost_against_finite_differences(rng, name, shape):
    code, param = COSTS[name]
    s, t = _cost_case(rng, name, *shape)
    if code == ref.HINGE:  # away from the hinge's kinks at c s = 1
        s[np.abs(np.abs(s) - 1) < 1e-2] += 0.1
    expected = numgrad(lambda v: ref.cost_value(code, v, t, param), s)
    assert_allclose(ref.cost_grad(code, s, t, param), expected, **FD_TOL)


def _torch_cost(torch, name, s, t):
    F = torch.nn.functional
    n = s.shape[0]
    if name == "l1":
        return F.l1_loss(s, torch.tensor(t), reduction="sum") / n
    if name.startswith("huber"):
        return F.huber_loss(s, torch.tensor(t), reduction="sum", delta=COSTS[name][1]) / n
    if name == "hinge":  # one class against the rest, summed over classes (PuzzleLib's SVM l1)
        c = 2 * F.one_hot(torch.tensor(t), s.shape[1]).double() - 1
        return torch.clamp(1 - c * s, min=0).sum() / n
    tt = torch.tensor(np.eye(s.shape[1])[t] if name == "kl-labels" else t)
    return F.kl_div(torch.log_softmax(s, dim=1), tt, reduction="batchmean")


@pytest.mark.parametrize("name", list(COSTS))
def test_cost_against_torch(torch, rng, name):
    code, param = COSTS[name]
    s, t = _cost_case(rng, name, 9, 4)
    ts = torch.tensor(s, requires_grad=True)
    loss = _torch_cost(torch, name, ts, t)
    loss.backward()
    assert ref.cost_value(code, s, t, param) == pytest.approx(loss.item(), rel=1e-12, abs=1e-14)
    assert_allclose(ref.cost_grad(code, s, t, param), ts.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_costs_follow_the_seed_convention(rng):
    """Summed over outputs, averaged over samples."""
    s, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    assert ref.l1_value(s, t) == pytest.approx(np.abs(s - t).sum() / 5)
    d = np.abs(s - t)
    assert ref.huber_value(s, t, 0.5) == pytest.approx(np.where(d < 0.5, d * d / 2, 0.5 * (d - 0.25)).sum() / 5)
    labels = np.array([0, 2, 1, 1, 0])
    c = 2 * np.eye(3)[labels] - 1
    assert ref.hinge_value(s, labels) == pytest.approx(np.maximum(0, 1 - c * s).sum() / 5)
    assert ref.hinge_value(s, np.eye(3)[labels]) == ref.hinge_value(s, labels)
    # KL against one-hot rows is the cross-entropy
    assert ref.kl_divergence_value(s, labels) == pytest.approx(ref.cross_entropy_value(s, labels), rel=1e-12)


def test_cost_classes_and_names():
    assert isinstance(fn.costs.get_cost("huber"), fn.Huber) and fn.Huber(0.3).param == 0.3
    for name, cls in [("l1", fn.L1), ("hinge", fn.Hinge), ("kl", fn.KLDivergence)]:
        assert type(fn.costs.get_cost(name)) is cls
    with pytest.raises(ValueError, match="delta"):
        fn.Huber(0)
    with pytest.raises(ValueError, match="at least 2 outputs"):
        fn.Hinge().prepare(np.zeros(3), 1, np.float64)
    with pytest.raises(ValueError, match="one-hot"):
        fn.Hinge().prepare(np.full((2, 2), 0.5), 2, np.float64)
    with pytest.raises(ValueError, match="sum to 1"):
        fn.KLDivergence().prepare(np.ones((2, 3)), 3, np.float64)
    assert fn.Huber(0.5).value(np.array([[2.0]]), np.array([[0.0]])) == pytest.approx(0.5 * (2 - 0.25))


# ------------------------------------------------------------------------ dropout


def test_dropout_mask_is_deterministic_and_keeps_1_minus_p():
    m = ref.dropout_mask(12345, 2, 0, (400, 300), 0.3)
    assert m.dtype == bool and m.shape == (400, 300)
    assert np.array_equal(m, ref.dropout_mask(12345, 2, 0, (400, 300), 0.3))
    assert abs(m.mean() - 0.7) < 0.01
    # rows at later positions are the continuation of the same stream
    assert np.array_equal(ref.dropout_mask(12345, 2, 100, (300, 300), 0.3), m[100:])
    # another key or stream is another mask
    assert (ref.dropout_mask(12346, 2, 0, (400, 300), 0.3) != m).mean() > 0.3
    assert (ref.dropout_mask(12345, 3, 0, (400, 300), 0.3) != m).mean() > 0.3
    assert ref.dropout_mask(1, 0, 0, (3, 4), 0.0).all()
    assert ref.dropout_mask(2**64 - 1, 7, 10**9, (3, 4), 0.5).shape == (3, 4)  # no overflow error


def test_dropout_matches_splitmix64_written_out():
    """The mask's definition, with Python integers (splitmix64: seed s, counter c)."""
    M = (1 << 64) - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        return z ^ (z >> 31)

    G, key, stream, pos0, cols, p = 0x9E3779B97F4A7C15, 987654321, 1, 5, 4, 0.5
    s = mix((key + (stream + 1) * G) & M)
    want = [[(mix((s + ((pos0 + r) * cols + j + 1) * G) & M) >> 11) >= int(p * 2**53) for j in range(cols)]
            for r in range(3)]
    assert ref.dropout_mask(key, stream, pos0, (3, cols), p).tolist() == want


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_forward_backward(rng, dtype):
    x = rng.normal(size=(6, 5)).astype(dtype)
    y = ref.dropout_forward(x, 7, 0, 3, 0.25)
    keep = ref.dropout_mask(7, 0, 3, x.shape, 0.25)
    assert y.dtype == dtype
    assert_allclose(y, np.where(keep, x * dtype(1 / 0.75), 0))
    dy = rng.normal(size=x.shape).astype(dtype)
    # the backward is the forward's Jacobian (linear in x): finite differences in float64
    x64 = x.astype(np.float64)
    expected = numgrad(lambda v: np.sum(ref.dropout_forward(v, 7, 0, 3, 0.25) * dy), x64)
    assert_allclose(ref.dropout_backward(dy.astype(np.float64), 7, 0, 3, 0.25), expected, **FD_TOL)
