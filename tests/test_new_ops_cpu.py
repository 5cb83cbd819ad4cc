"""The Numba CPU kernels of the new ops against the reference (float32 and float64, awkward
shapes), and the named ops of every backend (same names and signatures as the reference)."""

import importlib.util
import inspect

import numpy as np
import pytest
from numpy.testing import assert_allclose

from fastnn.kernels import cpu, named, reference as ref

from conftest import DTYPES, tol

NEW_ACTS = [(ref.ELU, 0.8), (ref.ELU, 0.0), (ref.SOFTPLUS, 1.0), (ref.SOFTPLUS, 3.0), (ref.GELU, 0.0),
            (ref.GELU_TANH, 0.0), (ref.SILU, 0.0), (ref.RELU6, 0.0)]
SHAPES = [(1, 1), (1, 7), (3 * 32 + 1, 5)]


def _x(rng, shape, dt):
    x = (rng.normal(size=shape) * 4).astype(dt)
    x[np.abs(x) < 1e-3] = 0.5
    x[np.abs(x - 6) < 1e-3] = 5.0
    return x


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code, p", NEW_ACTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_new_activations(rng, dt, code, p, shape):
    x = _x(rng, shape, dt)
    dy = rng.normal(size=shape).astype(dt)
    y_ref = ref.activation_forward(code, x, p)
    y = cpu.activation_forward(code, x, p)
    assert y.dtype == dt and y.shape == shape
    assert_allclose(y, y_ref, **tol(dt))
    got = cpu.activation_backward(code, y_ref, dy, p, x=x)
    assert got.dtype == dt
    # float32: 1 + tanh(u) cancels for u << 0 (GELU's tanh form), ~1e-6 absolute either way
    t = dict(tol(dt), atol=1e-5) if dt == np.float32 else tol(dt)
    assert_allclose(got, ref.activation_backward(code, y_ref, dy, p, x=x), **t)


def test_named_activations_with_parameters(rng):
    x = _x(rng, (4, 6), np.float64)
    y = cpu.elu_forward(x, alpha=0.3)
    assert_allclose(y, ref.elu_forward(x, 0.3), **tol(np.float64))
    assert_allclose(cpu.elu_backward(y, x, alpha=0.3), ref.elu_backward(y, x, 0.3), **tol(np.float64))
    assert_allclose(cpu.softplus_forward(x, beta=2.0), ref.softplus_forward(x, 2.0), **tol(np.float64))
    for name in ("gelu", "gelu_tanh", "silu"):
        assert_allclose(getattr(cpu, f"{name}_backward")(x, x), getattr(ref, f"{name}_backward")(x, x),
                        **tol(np.float64))
    with pytest.raises(ValueError, match="needs the activation's input"):
        cpu.activation_backward(ref.SILU, x, x)


COSTS = [(ref.L1, 1.0), (ref.HUBER, 1.0), (ref.HUBER, 0.3), (ref.HINGE, 1.0), (ref.KL_DIVERGENCE, 1.0)]


def _targets(rng, code, n, k, dt, labels):
    if code in (ref.HINGE, ref.KL_DIVERGENCE) and labels:
        return rng.integers(0, k, n)
    if code == ref.HINGE:
        return np.eye(k, dtype=dt)[rng.integers(0, k, n)]
    if code == ref.KL_DIVERGENCE:
        return rng.dirichlet(np.ones(k), size=n).astype(dt)
    return rng.normal(size=(n, k)).astype(dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code, param", COSTS)
@pytest.mark.parametrize("n, labels", [(1, False), (7, False), (33, True)])
def test_new_costs(rng, dt, code, param, n, labels):
    k = 4
    s = (rng.normal(size=(n, k)) * 2).astype(dt)
    t = _targets(rng, code, n, k, dt, labels)
    assert cpu.cost_value(code, s, t, param) == pytest.approx(ref.cost_value(code, s, t, param),
                                                              rel=1e-5 if dt == np.float32 else 1e-12)
    g = cpu.cost_grad(code, s, t, param)
    assert g.dtype == dt
    assert_allclose(g, ref.cost_grad(code, s, t, param), **tol(dt))


def test_named_costs():
    s, t = np.array([[0.2, -1.5]]), np.array([[1.0, 0.0]])
    assert cpu.huber_value(s, t, delta=0.5) == pytest.approx(ref.huber_value(s, t, 0.5))
    assert_allclose(cpu.huber_grad(s, t, delta=0.5), ref.huber_grad(s, t, 0.5))
    assert cpu.hinge_value(s, np.array([0])) == pytest.approx(ref.hinge_value(s, np.array([0])))
    with pytest.raises(ValueError, match="unknown cost"):
        cpu.cost_value(99, s, t)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape, pos0, p", [((1, 1), 0, 0.5), ((5, 7), 13, 0.2), ((97, 33), 1000, 0.9)])
def test_dropout_equals_the_reference(rng, dt, shape, pos0, p):
    x = rng.normal(size=shape).astype(dt)
    key = int(rng.integers(0, 2**63)) * 2 + 1
    y = cpu.dropout_forward(x, key, 3, pos0, p)
    assert y.dtype == dt
    assert np.array_equal(y, ref.dropout_forward(x, key, 3, pos0, p))  # the same mask, the same scaling
    assert np.array_equal(cpu.dropout_backward(x, key, 3, pos0, p), ref.dropout_backward(x, key, 3, pos0, p))
    assert np.array_equal(cpu.dropout_mask(key, 3, pos0, shape, p), ref.dropout_mask(key, 3, pos0, shape, p))


def _public(mod):
    return {n: f for n, f in vars(mod).items() if inspect.isfunction(f) and not n.startswith("_")}


def test_every_named_op_is_generated():
    """named.NAMES covers every public op of the reference that is not a generic dispatcher."""
    generic = {"linear_forward", "linear_backward_input", "linear_backward_weight", "linear_backward_bias",
               "activation_forward", "activation_backward", "log_softmax", "cost_rows"}
    assert set(_public(ref)) - generic == set(named.NAMES)


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda is not installed")
def test_cuda_module_has_every_op_with_the_reference_signature():
    from fastnn.kernels import cuda

    for name, f in _public(ref).items():
        assert hasattr(cuda, name), f"kernels.cuda lacks {name}"
        assert inspect.signature(getattr(cuda, name)) == inspect.signature(f), name
    for name in named.NAMES:
        assert name in cuda.__all__
