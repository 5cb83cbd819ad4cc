"""kernels/reference.py against central finite differences (float64), hand-written
optimizer formulas, dtype preservation and numerical stability for large |x|.

Backward ops are vector-Jacobian products, so each is checked as the gradient of the
scalar ``L(x) = sum(forward(x) * dy)`` for a random ``dy``.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from conftest import DTYPES, numgrad, tol
from fastnn.kernels import reference as ref

# Central differences in float64 with step 1e-6 are good to ~1e-8 relative.
FD_TOL = dict(rtol=1e-6, atol=1e-8)

SLOPE = 0.1


def away_from_zero(rng, shape, margin=0.1):
    """Random values with |x| >= margin, so kinks (ReLU at 0) are never straddled."""
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-300) * margin + x, x)


# ------------------------------------------------------------------------- linear


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 4), (7, 2, 1)])
def test_linear_forward_matches_definition(rng, shape):
    B, n_in, n_out = shape
    x, W, b = rng.normal(size=(B, n_in)), rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
    expected = np.array([[sum(x[i, k] * W[k, j] for k in range(n_in)) + b[j] for j in range(n_out)]
                         for i in range(B)])
    assert_allclose(ref.linear_forward(x, W, b), expected, **tol(np.float64))
    assert_allclose(ref.linear_forward(x, W), expected - b, **tol(np.float64))


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 4), (6, 4, 2)])
def test_linear_backward_against_finite_differences(rng, shape):
    B, n_in, n_out = shape
    x, W, b = rng.normal(size=(B, n_in)), rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
    dy = rng.normal(size=(B, n_out))
    # x: (B, in), W: (in, out), b: (out,), dy: (B, out)
    assert_allclose(ref.linear_backward_input(dy, W),
                    numgrad(lambda v: np.sum(ref.linear_forward(v, W, b) * dy), x), **FD_TOL)
    assert_allclose(ref.linear_backward_weight(x, dy),
                    numgrad(lambda v: np.sum(ref.linear_forward(x, v, b) * dy), W), **FD_TOL)
    assert_allclose(ref.linear_backward_bias(dy),
                    numgrad(lambda v: np.sum(ref.linear_forward(x, W, v) * dy), b), **FD_TOL)


# -------------------------------------------------------------------- activations

ACTS = {
    "identity": (ref.identity_forward, ref.identity_backward),
    "sigmoid": (ref.sigmoid_forward, ref.sigmoid_backward),
    "tanh": (ref.tanh_forward, ref.tanh_backward),
    "relu": (ref.relu_forward, ref.relu_backward),
    "leaky_relu": (lambda x: ref.leaky_relu_forward(x, SLOPE),
                   lambda y, dy: ref.leaky_relu_backward(y, dy, SLOPE)),
    "softmax": (ref.softmax_forward, ref.softmax_backward),
}
CODES = {"identity": ref.IDENTITY, "sigmoid": ref.SIGMOID, "tanh": ref.TANH, "relu": ref.RELU,
         "leaky_relu": ref.LEAKY_RELU, "softmax": ref.SOFTMAX}


@pytest.mark.parametrize("name", list(ACTS))
@pytest.mark.parametrize("shape", [(1, 1), (4, 3), (3, 5)])
def test_activation_backward_against_finite_differences(rng, name, shape):
    fwd, bwd = ACTS[name]
    x = away_from_zero(rng, shape) * 2
    dy = rng.normal(size=shape)
    y = fwd(x)
    expected = numgrad(lambda v: np.sum(fwd(v) * dy), x)
    assert_allclose(bwd(y, dy), expected, **FD_TOL)
    # The dispatchers route to the same functions.
    assert_allclose(ref.activation_forward(CODES[name], x, SLOPE), y, **tol(np.float64))
    assert_allclose(ref.activation_backward(CODES[name], y, dy, SLOPE), expected, **FD_TOL)


def test_activation_forward_values():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    assert_allclose(ref.sigmoid_forward(x), 1 / (1 + np.exp(-x)), **tol(np.float64))
    assert_allclose(ref.tanh_forward(x), np.tanh(x), **tol(np.float64))
    assert_allclose(ref.relu_forward(x), [[0, 0, 0, 0.5, 2]])
    assert_allclose(ref.leaky_relu_forward(x, 0.1), [[-0.2, -0.05, 0, 0.5, 2]], **tol(np.float64))
    assert_allclose(ref.identity_forward(x), x)
    s = ref.softmax_forward(x)
    assert_allclose(s, np.exp(x) / np.exp(x).sum(), **tol(np.float64))
    assert_allclose(ref.sign_forward(x), [[-1, -1, -1, 1, 1]])  # sign(0) = -1 as in seed 004


def test_forward_and_backward_do_not_modify_inputs(rng):
    x = rng.normal(size=(3, 4))
    dy = rng.normal(size=(3, 4))
    x0, dy0 = x.copy(), dy.copy()
    for name, (fwd, bwd) in ACTS.items():
        y = fwd(x)
        y0 = y.copy()
        bwd(y, dy)
        assert np.array_equal(x, x0) and np.array_equal(dy, dy0) and np.array_equal(y, y0), name


def test_sign_has_no_backward_and_unknown_codes_raise():
    x = np.ones((2, 2))
    with pytest.raises(ValueError, match="forward-only"):
        ref.activation_backward(ref.SIGN, x, x)
    with pytest.raises(ValueError, match="unknown activation"):
        ref.activation_forward(99, x)
    with pytest.raises(ValueError, match="unknown activation"):
        ref.activation_backward(99, x, x)


# -------------------------------------------------------------------------- costs


def test_mse_value_is_the_seed_convention(rng):
    p, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    expected = sum(np.sum((p[n] - t[n]) ** 2) for n in range(5)) / (2 * 5)
    assert ref.mse_value(p, t) == pytest.approx(expected, rel=1e-12)
    assert ref.cost_value(ref.MSE, p, t) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape", [(1, 1), (6, 3)])
def test_mse_grad_against_finite_differences(rng, shape):
    p, t = rng.normal(size=shape), rng.normal(size=shape)
    expected = numgrad(lambda v: ref.mse_value(v, t), p)
    assert_allclose(ref.mse_grad(p, t), expected, **FD_TOL)
    assert_allclose(ref.cost_grad(ref.MSE, p, t), expected, **FD_TOL)


@pytest.mark.parametrize("shape", [(1, 2), (6, 3), (4, 10)])
def test_cross_entropy_grad_int_labels_and_one_hot(rng, shape):
    N, C = shape
    s = rng.normal(size=shape) * 3
    labels = rng.integers(0, C, size=N)
    onehot = np.eye(C)[labels]
    # value by definition
    expected_value = -np.mean(np.log(np.exp(s[np.arange(N), labels]) / np.exp(s).sum(axis=1)))
    assert ref.cross_entropy_value(s, labels) == pytest.approx(expected_value, rel=1e-12)
    assert ref.cross_entropy_value(s, onehot) == pytest.approx(expected_value, rel=1e-12)
    for target in (labels, onehot):
        expected = numgrad(lambda v: ref.cross_entropy_value(v, target), s)
        assert_allclose(ref.cross_entropy_grad(s, target), expected, **FD_TOL)
        assert_allclose(ref.cost_grad(ref.CROSS_ENTROPY, s, target), expected, **FD_TOL)


def test_cross_entropy_with_soft_targets(rng):
    s = rng.normal(size=(4, 3))
    t = rng.dirichlet(np.ones(3), size=4)
    assert_allclose(ref.cross_entropy_grad(s, t),
                    numgrad(lambda v: ref.cross_entropy_value(v, t), s), **FD_TOL)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3)])
def test_bce_value_and_grad_against_finite_differences(rng, shape):
    p = rng.uniform(0.05, 0.95, size=shape)
    t = rng.uniform(0, 1, size=shape)
    expected_value = -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)) / shape[0]
    assert ref.bce_value(p, t) == pytest.approx(expected_value, rel=1e-12)
    expected = numgrad(lambda v: ref.bce_value(v, t), p)
    assert_allclose(ref.bce_grad(p, t), expected, **FD_TOL)
    assert_allclose(ref.cost_grad(ref.BCE, p, t), expected, **FD_TOL)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3)])
def test_bce_sigmoid_delta_is_gradient_through_the_sigmoid(rng, shape):
    z = rng.normal(size=shape) * 2
    t = (rng.uniform(size=shape) > 0.5).astype(np.float64)
    expected = numgrad(lambda v: ref.bce_value(ref.sigmoid_forward(v), t), z)
    assert_allclose(ref.bce_sigmoid_delta(ref.sigmoid_forward(z), t), expected, **FD_TOL)
    # ... which is bce_grad chained with sigmoid_backward
    p = ref.sigmoid_forward(z)
    assert_allclose(ref.bce_sigmoid_delta(p, t), ref.sigmoid_backward(p, ref.bce_grad(p, t)), rtol=1e-9)


# --------------------------------------------------------------------- optimizers


def _opt_case(rng, dtype, P=7, n_decay=4):
    p = rng.normal(size=P).astype(dtype)
    gs = [rng.normal(size=P).astype(dtype) for _ in range(4)]
    return p, gs, n_decay


def _decay(p, g, wd, n_decay):
    g = g.astype(np.float64).copy()
    g[:n_decay] += wd * p[:n_decay]
    return g


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_sgd_update(rng, dtype, wd):
    p, gs, nd = _opt_case(rng, dtype)
    expect = p.astype(np.float64)
    for g in gs:
        expect = expect - 0.3 * _decay(expect, g, wd, nd)
        ref.sgd_update(p, g, 0.3, wd, nd)
        assert p.dtype == dtype
    assert_allclose(p, expect, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_momentum_update_is_seed_003_form(rng, dtype, wd):
    p, gs, nd = _opt_case(rng, dtype)
    vel = np.zeros_like(p)
    ep, ev = p.astype(np.float64), np.zeros(p.size)
    for g in gs:
        ev = 0.9 * ev - 0.2 * _decay(ep, g, wd, nd)
        ep = ep + ev
        ref.momentum_update(p, g, vel, 0.2, 0.9, wd, nd)
    assert p.dtype == dtype and vel.dtype == dtype
    assert_allclose(vel, ev, **tol(dtype))
    assert_allclose(p, ep, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_nesterov_update_is_lookahead_form(rng, dtype, wd):
    # Sutskever's form: the gradient is taken at the look-ahead point p + m*v.
    # Written on phi = p + m*v (the point whose gradient we are given) it reads
    # v' = m v - lr g(phi); phi' = phi + m v' - lr g(phi).
    p, gs, nd = _opt_case(rng, dtype)
    vel = np.zeros_like(p)
    ep, ev = p.astype(np.float64), np.zeros(p.size)
    for g in gs:
        gd = _decay(ep, g, wd, nd)
        ev_new = 0.9 * ev - 0.2 * gd
        ep = ep + 0.9 * ev_new - 0.2 * gd
        ev = ev_new
        ref.nesterov_update(p, g, vel, 0.2, 0.9, wd, nd)
    assert p.dtype == dtype
    assert_allclose(vel, ev, **tol(dtype))
    assert_allclose(p, ep, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_update(rng, dtype, wd):
    p, gs, nd = _opt_case(rng, dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    ep, em, ev = p.astype(np.float64), np.zeros(p.size), np.zeros(p.size)
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-8
    for t, g in enumerate(gs, start=1):
        gd = _decay(ep, g, wd, nd)
        em = b1 * em + (1 - b1) * gd
        ev = b2 * ev + (1 - b2) * gd ** 2
        ep = ep - lr * (em / (1 - b1 ** t)) / (np.sqrt(ev / (1 - b2 ** t)) + eps)
        ref.adam_update(p, g, m, v, t, lr, b1, b2, eps, wd, nd)
    assert p.dtype == m.dtype == v.dtype == dtype
    assert_allclose(m, em, **tol(dtype))
    assert_allclose(v, ev, **tol(dtype))
    assert_allclose(p, ep, rtol=max(tol(dtype)["rtol"], 1e-9), atol=tol(dtype)["atol"])


def test_weight_decay_touches_weights_only(rng):
    p = rng.normal(size=6)
    zero = np.zeros(6)
    before = p.copy()
    ref.sgd_update(p, zero, 0.5, weight_decay=0.1, n_decay=4)
    assert_allclose(p[:4], before[:4] * (1 - 0.05), **tol(np.float64))
    assert np.array_equal(p[4:], before[4:])


# ----------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved_by_every_op(rng, dtype):
    x = rng.normal(size=(4, 3)).astype(dtype)
    W = rng.normal(size=(3, 3)).astype(dtype)
    b = rng.normal(size=3).astype(dtype)
    dy = rng.normal(size=(4, 3)).astype(dtype)
    labels = np.array([0, 2, 1, 1])
    prob = rng.uniform(0.1, 0.9, size=(4, 3)).astype(dtype)
    outs = {
        "linear_forward": ref.linear_forward(x, W, b),
        "linear_forward_nobias": ref.linear_forward(x, W),
        "linear_backward_input": ref.linear_backward_input(dy, W),
        "linear_backward_weight": ref.linear_backward_weight(x, dy),
        "linear_backward_bias": ref.linear_backward_bias(dy),
        "sign_forward": ref.sign_forward(x),
        "log_softmax": ref.log_softmax(x),
        "mse_grad": ref.mse_grad(x, dy),
        "ce_grad_labels": ref.cross_entropy_grad(x, labels),
        "ce_grad_onehot": ref.cross_entropy_grad(x, np.eye(3, dtype=dtype)[labels]),
        "bce_grad": ref.bce_grad(prob, (dy > 0).astype(dtype)),
        "bce_sigmoid_delta": ref.bce_sigmoid_delta(prob, (dy > 0).astype(dtype)),
    }
    for name, (fwd, bwd) in ACTS.items():
        y = fwd(x)
        outs[name + "_forward"] = y
        outs[name + "_backward"] = bwd(y, dy)
    for name, out in outs.items():
        assert out.dtype == dtype, f"{name} returned {out.dtype}, expected {np.dtype(dtype)}"
    for v in (ref.mse_value(x, dy), ref.cross_entropy_value(x, labels), ref.bce_value(prob, prob)):
        assert isinstance(v, float)


# --------------------------------------------------------------------- stability


def _strict():
    """Turn numpy floating-point problems into errors. Underflow (exp(-1e4) -> 0)
    is exact-enough rounding, not a problem, so it stays allowed."""
    return np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")


BIG = np.array([[-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_stable_for_large_inputs(dtype):
    x = BIG.astype(dtype)
    with warnings.catch_warnings(), _strict():
        warnings.simplefilter("error")
        y = ref.sigmoid_forward(x)
        dx = ref.sigmoid_backward(y, np.ones_like(y))
    assert y.dtype == dtype and np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    assert y[0, 0] == 0 and y[0, -1] == 1 and y[0, 3] == 0.5
    assert np.all(np.diff(y[0]) >= 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_cross_entropy_stable_for_large_inputs(dtype):
    s = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4 + 1, -1e4], [1e4, 1e4, 1e4],
                  [5e3, -5e3, 1e4]], dtype=dtype)
    labels = np.array([0, 0, 2, 1])
    with warnings.catch_warnings(), _strict():
        warnings.simplefilter("error")
        p = ref.softmax_forward(s)
        ls = ref.log_softmax(s)
        v = ref.cross_entropy_value(s, labels)
        g = ref.cross_entropy_grad(s, labels)
        g1 = ref.cross_entropy_grad(s, np.eye(3, dtype=dtype)[labels])
        dx = ref.softmax_backward(p, np.ones_like(p))
    for a in (p, ls, g, g1, dx):
        assert a.dtype == dtype and np.all(np.isfinite(a))
    assert np.isfinite(v)
    assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert_allclose(p[2], [1 / 3] * 3, rtol=1e-6)
    assert ls[0, 0] == 0 and ls[0, 1] == pytest.approx(-2e4, rel=1e-6)
    # row 3's label scores 1.5e4 below the max: the loss is large but exact
    assert v == pytest.approx((0 + (-ls[1, 0]) + np.log(3) + 1.5e4) / 4, rel=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_stable_for_saturated_outputs(dtype):
    z = BIG.astype(dtype).reshape(-1, 1)
    t = np.array([[1], [0], [1], [0], [1], [0], [0]], dtype=dtype)
    with warnings.catch_warnings(), _strict():
        warnings.simplefilter("error")
        p = ref.sigmoid_forward(z)          # contains exact 0 and 1
        v = ref.bce_value(p, t)
        g = ref.bce_grad(p, t)
        d = ref.bce_sigmoid_delta(p, t)
        v_edge = ref.bce_value(np.array([[0.0], [1.0]], dtype), np.array([[0.0], [1.0]], dtype))
    assert np.isfinite(v) and np.all(np.isfinite(g)) and np.all(np.isfinite(d))
    assert g.dtype == d.dtype == dtype
    assert 0 <= v_edge < 1e-5  # a perfect saturated prediction costs (almost) nothing
