"""Every CUDA kernel against kernels/reference.py, in float32 and float64.

Shapes: 1x1, a batch of 1, and sizes that leave partial blocks: 3*BM+1 for the
matmuls (BM = TILE*WPT outputs per block side) and 3*TPB+1 for the 1-D kernels.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install 'fastnn-numba[cuda]')")

from conftest import DTYPES, knobs, tol  # noqa: E402
from numba import cuda  # noqa: E402

from fastnn.kernels import cuda as kc  # noqa: E402
from fastnn.kernels import reference as ref  # noqa: E402
from fastnn.kernels.cuda import config, launch  # noqa: E402

TILE, WPT, TPB = knobs()
BM = TILE * WPT
P = 3 * BM + 1  # matmul side leaving a partial block
Q = 3 * TPB + 1  # 1-D length leaving a partial block
SLOPE = 0.1
ELEMENTWISE = [ref.IDENTITY, ref.SIGMOID, ref.TANH, ref.RELU, ref.LEAKY_RELU]

MM_SHAPES = [(1, 1, 1), (1, P, 3), (P, 5, P), (2 * BM, P, BM + 1)]  # (B, in, out)


def arr(rng, shape, dt, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dt)


@pytest.fixture
def odd_tile():
    """A second, odd matmul tile (3x3 threads, one output each) instead of the configured one."""
    old = config.TILE, config.WPT
    config.TILE, config.WPT = 3, 1
    yield 3
    config.TILE, config.WPT = old


# ------------------------------------------------------------------------ linear


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", MM_SHAPES, ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_forward(rng, dt, shape, bias):
    B, i, o = shape
    x, W = arr(rng, (B, i), dt), arr(rng, (i, o), dt)
    b = arr(rng, o, dt) if bias else None
    ref_y = ref.linear_forward(x, W, b)
    got = kc.linear_forward(x, W, b)
    assert got.dtype == dt and got.shape == ref_y.shape
    assert_allclose(got, ref_y, **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", MM_SHAPES, ids=str)
def test_linear_backward_input(rng, dt, shape):
    B, i, o = shape
    dy, W = arr(rng, (B, o), dt), arr(rng, (i, o), dt)
    assert_allclose(kc.linear_backward_input(dy, W), ref.linear_backward_input(dy, W), **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", MM_SHAPES, ids=str)
def test_linear_backward_weight(rng, dt, shape):
    B, i, o = shape
    x, dy = arr(rng, (B, i), dt), arr(rng, (B, o), dt)
    assert_allclose(kc.linear_backward_weight(x, dy), ref.linear_backward_weight(x, dy), **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
def test_matmuls_with_odd_tile(rng, dt, odd_tile):
    B, i, o = 3 * odd_tile + 1, 2 * odd_tile + 2, 3 * odd_tile + 1
    x, W, b, dy = arr(rng, (B, i), dt), arr(rng, (i, o), dt), arr(rng, o, dt), arr(rng, (B, o), dt)
    assert_allclose(kc.linear_forward(x, W, b), ref.linear_forward(x, W, b), **tol(dt))
    assert_allclose(kc.linear_backward_input(dy, W), ref.linear_backward_input(dy, W), **tol(dt))
    assert_allclose(kc.linear_backward_weight(x, dy), ref.linear_backward_weight(x, dy), **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (Q, 3), (7, 33)], ids=str)
def test_linear_backward_bias(rng, dt, shape):
    dy = arr(rng, shape, dt)
    assert_allclose(kc.linear_backward_bias(dy), ref.linear_backward_bias(dy), **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code", ELEMENTWISE + [ref.SOFTMAX, ref.SIGN], ids=lambda c: ref.ACTIVATION_NAMES[c])
def test_fused_forward_epilogue(rng, dt, code):
    # y = act(x @ W + b) in one kernel (softmax: a second, row-wise kernel)
    x, W, b = arr(rng, (P, 6), dt), arr(rng, (6, BM + 3), dt), arr(rng, BM + 3, dt)
    y = cuda.device_array((P, BM + 3), dt)
    launch.linear_forward(y, cuda.to_device(x), cuda.to_device(W), cuda.to_device(b), code, SLOPE)
    want = ref.activation_forward(code, ref.linear_forward(x, W, b), SLOPE)
    assert_allclose(y.copy_to_host(), want, **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code", ELEMENTWISE, ids=lambda c: ref.ACTIVATION_NAMES[c])
def test_fused_input_gradient_epilogue(rng, dt, code):
    # dx = act_backward(y_prev, dy @ W.T) in one kernel
    dy, W = arr(rng, (P, 5), dt), arr(rng, (BM + 2, 5), dt)
    y_prev = ref.activation_forward(code, arr(rng, (P, BM + 2), dt), SLOPE)
    dx = cuda.device_array((P, BM + 2), dt)
    launch.linear_backward_input(dx, cuda.to_device(dy), cuda.to_device(W), y_prev=cuda.to_device(y_prev),
                                 dact=code, slope=SLOPE)
    want = ref.activation_backward(code, y_prev, ref.linear_backward_input(dy, W), SLOPE)
    assert_allclose(dx.copy_to_host(), want, **tol(dt))


def test_linear_rejects_bad_shapes(rng):
    with pytest.raises(ValueError, match="columns"):
        kc.linear_forward(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="dtype"):
        kc.linear_forward(np.ones((2, 3), np.float32), np.ones((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        kc.linear_forward(np.ones((2, 3)), np.ones((3, 2)), np.ones(3))


def test_device_arrays_stay_on_device(rng):
    x, W = arr(rng, (3, 4), np.float64), arr(rng, (4, 2), np.float64)
    got = kc.linear_forward(cuda.to_device(x), cuda.to_device(W))
    assert hasattr(got, "copy_to_host")
    assert_allclose(got.copy_to_host(), ref.linear_forward(x, W), **tol(np.float64))


# ------------------------------------------------------------------- activations


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code", ELEMENTWISE + [ref.SIGN], ids=lambda c: ref.ACTIVATION_NAMES[c])
@pytest.mark.parametrize("shape", [(1, 1), (Q,), (3, Q)], ids=str)
def test_activation_forward(rng, dt, code, shape):
    x = arr(rng, shape, dt, scale=3.0)
    x.flat[0] = 40.0  # saturating inputs must not overflow
    if x.size > 1:
        x.flat[1] = -40.0
    want = ref.activation_forward(code, x, SLOPE)
    got = kc.activation_forward(code, x, SLOPE)
    assert got.shape == want.shape and got.dtype == dt
    assert_allclose(got, want, **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code", ELEMENTWISE, ids=lambda c: ref.ACTIVATION_NAMES[c])
@pytest.mark.parametrize("shape", [(1, 1), (Q,), (3, Q)], ids=str)
def test_activation_backward(rng, dt, code, shape):
    y = ref.activation_forward(code, arr(rng, shape, dt), SLOPE)
    dy = arr(rng, shape, dt)
    assert_allclose(kc.activation_backward(code, y, dy, SLOPE), ref.activation_backward(code, y, dy, SLOPE),
                    **tol(dt))


@pytest.mark.parametrize("name", ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"])
def test_named_activation_functions(rng, name):
    x, dy = arr(rng, (3, 5), np.float64), arr(rng, (3, 5), np.float64)
    fwd_ref, fwd = getattr(ref, name + "_forward"), getattr(kc, name + "_forward")
    bwd_ref, bwd = getattr(ref, name + "_backward"), getattr(kc, name + "_backward")
    y = fwd_ref(x)
    assert_allclose(fwd(x), y, **tol(np.float64))
    assert_allclose(bwd(y, dy), bwd_ref(y, dy), **tol(np.float64))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (Q, 4)], ids=str)
def test_softmax(rng, dt, shape):
    x = arr(rng, shape, dt, scale=5.0)
    x.flat[0] = 500.0  # the row max shift keeps exp finite
    y = ref.softmax_forward(x)
    assert_allclose(kc.softmax_forward(x), y, **tol(dt))
    dy = arr(rng, shape, dt)
    assert_allclose(kc.softmax_backward(y, dy), ref.softmax_backward(y, dy), **tol(dt))


def test_sign_backward_raises():
    with pytest.raises(ValueError, match="forward-only"):
        kc.activation_backward(ref.SIGN, np.ones(3), np.ones(3))


# ------------------------------------------------------------------------- costs


def _targets(rng, code, n, k, dt, labels):
    if code == ref.CROSS_ENTROPY and labels:
        return rng.integers(0, k, n)
    if code == ref.CROSS_ENTROPY:
        return np.eye(k, dtype=dt)[rng.integers(0, k, n)]
    if code == ref.BCE:
        return rng.integers(0, 2, (n, k)).astype(dt)
    return arr(rng, (n, k), dt)


COST_CASES = [(ref.MSE, False), (ref.CROSS_ENTROPY, True), (ref.CROSS_ENTROPY, False), (ref.BCE, False)]


# cross-entropy is only used with at least 2 classes (a 1-class softmax is constant)
COST_SHAPE_CASES = [
    pytest.param(code, labels, shape, id=f"{name}-{shape}")
    for (code, labels), name in zip(COST_CASES, ["mse", "ce-labels", "ce-onehot", "bce"])
    for shape in [(1, 1), (1, 3), (Q, 3)]
    if not (code == ref.CROSS_ENTROPY and shape[1] == 1)
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code,labels,shape", COST_SHAPE_CASES)
def test_cost_value_and_grad(rng, dt, code, labels, shape):
    n, k = shape
    pred = arr(rng, shape, dt, scale=2.0)
    if code == ref.BCE:
        pred = ref.sigmoid_forward(pred)
        pred.flat[0] = 1.0  # saturated output: clipping keeps the loss finite
    t = _targets(rng, code, n, k, dt, labels)
    assert kc.cost_value(code, pred, t) == pytest.approx(ref.cost_value(code, pred, t), **_scalar_tol(dt))
    assert_allclose(kc.cost_grad(code, pred, t), ref.cost_grad(code, pred, t), **tol(dt))


def _scalar_tol(dt):
    # the loss is summed in float64 on the device, in dtype by the reference
    return dict(rel=1e-5, abs=1e-6) if dt == np.float32 else dict(rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("dt", DTYPES)
def test_named_costs(rng, dt):
    pred = arr(rng, (5, 3), dt)
    prob = ref.sigmoid_forward(pred)
    t = rng.integers(0, 2, (5, 3)).astype(dt)
    lab = rng.integers(0, 3, 5)
    assert kc.mse_value(pred, t) == pytest.approx(ref.mse_value(pred, t), **_scalar_tol(dt))
    assert_allclose(kc.mse_grad(pred, t), ref.mse_grad(pred, t), **tol(dt))
    assert kc.cross_entropy_value(pred, lab) == pytest.approx(ref.cross_entropy_value(pred, lab),
                                                              **_scalar_tol(dt))
    assert_allclose(kc.cross_entropy_grad(pred, lab), ref.cross_entropy_grad(pred, lab), **tol(dt))
    assert kc.bce_value(prob, t) == pytest.approx(ref.bce_value(prob, t), **_scalar_tol(dt))
    assert_allclose(kc.bce_grad(prob, t), ref.bce_grad(prob, t), **tol(dt))
    assert_allclose(kc.bce_sigmoid_delta(prob, t), ref.bce_sigmoid_delta(prob, t), **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("code,acc_mode", [(ref.MSE, 1), (ref.CROSS_ENTROPY, 1), (ref.BCE, 2)],
                         ids=["mse", "ce", "bce"])
def test_cost_rows_by_index(rng, dt, code, acc_mode):
    # A batch in the middle of a shuffled epoch: rows are order[start:start+nb] of the data.
    N, K, start, nb = Q + 5, 4, 5, Q
    order = rng.permutation(N).astype(np.int64)
    pred = arr(rng, (nb, K), dt)
    if code == ref.BCE:
        pred = ref.sigmoid_forward(pred)
    labels = rng.integers(0, K, N)
    T = np.eye(K, dtype=dt)[labels] if code != ref.BCE else rng.integers(0, 2, (N, K)).astype(dt)
    pred[0] = pred[0, 0]  # a tie: argmax takes the first maximum, as numpy does
    delta = cuda.device_array((nb, K), dt)
    rowloss = cuda.to_device(np.full(N, np.nan))
    rowcorrect = cuda.to_device(np.full(N, -1, np.int64))
    d_order = cuda.to_device(order)
    launch.cost_rows(delta, rowloss, rowcorrect, cuda.to_device(pred), cuda.to_device(T), cuda.to_device(labels),
                     d_order, start, nb, nb, code, acc_mode=acc_mode)
    idx = order[start:start + nb]
    t = T[idx]
    assert_allclose(delta.copy_to_host(), ref.cost_grad(code, pred, t), **tol(dt))
    rl, rc = rowloss.copy_to_host(), rowcorrect.copy_to_host()
    assert np.isnan(rl[:start]).all() and (rc[:start] == -1).all()  # other positions untouched
    want_loss = [ref.cost_value(code, pred[r:r + 1], t[r:r + 1]) for r in range(nb)]
    assert_allclose(rl[start:], want_loss, rtol=1e-5 if dt == np.float32 else 1e-10, atol=1e-6)
    if acc_mode == 1:
        want_c = (pred.argmax(axis=1) == labels[idx]).astype(np.int64)
    else:
        want_c = ((pred > 0.5) == (t > 0.5)).sum(axis=1)
    assert_array_equal(rc[start:], want_c)
    # the single-block reduction over a range leaving a partial block
    out_l, out_c = cuda.device_array(1, np.float64), cuda.device_array(1, np.int64)
    launch.reduce_rows(out_l, out_c, rowloss, rowcorrect, start, N)
    assert out_l.copy_to_host()[0] == pytest.approx(rl[start:].sum(), rel=1e-12)
    assert out_c.copy_to_host()[0] == rc[start:].sum()


@pytest.mark.parametrize("dt", DTYPES)
def test_cost_rows_fused_activation_backward(rng, dt):
    # MSE through a final tanh: delta = tanh_backward(y, (y - t) / N)
    y = np.tanh(arr(rng, (6, 3), dt))
    t = arr(rng, (6, 3), dt)
    delta = cuda.device_array((6, 3), dt)
    launch.cost_rows(delta, cuda.device_array(6, np.float64), cuda.device_array(6, np.int64), cuda.to_device(y),
                     cuda.to_device(t), cuda.to_device(np.zeros(1, np.int64)),
                     cuda.to_device(np.arange(6, dtype=np.int64)), 0, 6, 6, ref.MSE, dact=ref.TANH)
    assert_allclose(delta.copy_to_host(), ref.tanh_backward(y, ref.mse_grad(y, t)), **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
def test_gather_rows(rng, dt):
    X = arr(rng, (Q, 3), dt)
    order = rng.permutation(Q).astype(np.int64)
    xb = cuda.device_array((TPB + 1, 3), dt)
    launch.gather_rows(xb, cuda.to_device(X), cuda.to_device(order), 2, TPB + 1)
    assert_array_equal(xb.copy_to_host(), X[order[2:TPB + 3]])


# -------------------------------------------------------------------- optimizers


def _opt_case(rng, dt, n=Q):
    p, g = arr(rng, n, dt), arr(rng, n, dt)
    s1, s2 = arr(rng, n, dt, 0.1), np.abs(arr(rng, n, dt, 0.1))
    return p, g, s1, s2


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("wd,n_decay", [(0.0, 0), (0.01, TPB + 3)], ids=["nowd", "wd"])
def test_sgd_update(rng, dt, wd, n_decay):
    p, g, _, _ = _opt_case(rng, dt)
    want = p.copy()
    ref.sgd_update(want, g, 0.1, wd, n_decay)
    kc.sgd_update(p, g, 0.1, wd, n_decay)
    assert_allclose(p, want, **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["momentum", "nesterov"])
@pytest.mark.parametrize("wd,n_decay", [(0.0, 0), (0.01, TPB + 3)], ids=["nowd", "wd"])
def test_momentum_updates(rng, dt, kind, wd, n_decay):
    p, g, v, _ = _opt_case(rng, dt)
    wp, wv = p.copy(), v.copy()
    getattr(ref, kind + "_update")(wp, g, wv, 0.1, 0.9, wd, n_decay)
    getattr(kc, kind + "_update")(p, g, v, 0.1, 0.9, wd, n_decay)
    assert_allclose(p, wp, **tol(dt))
    assert_allclose(v, wv, **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("t", [1, 7])
@pytest.mark.parametrize("wd,n_decay", [(0.0, 0), (0.01, TPB + 3)], ids=["nowd", "wd"])
def test_adam_update(rng, dt, t, wd, n_decay):
    p, g, m, v = _opt_case(rng, dt)
    wp, wm, wv = p.copy(), m.copy(), v.copy()
    ref.adam_update(wp, g, wm, wv, t, 1e-3, 0.9, 0.999, 1e-8, wd, n_decay)
    kc.adam_update(p, g, m, v, t, 1e-3, 0.9, 0.999, 1e-8, wd, n_decay)
    for got, want in ((p, wp), (m, wm), (v, wv)):
        assert_allclose(got, want, **tol(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kind", ["momentum", "nesterov", "adam"])
def test_subnormal_state_is_flushed_as_in_the_reference(rng, dt, kind):
    """State that decays below the smallest normal number is stored as 0; NaN is kept."""
    tiny = np.finfo(dt).tiny
    p, g, s1, s2 = _opt_case(rng, dt)
    g[:40] = 0
    s1[:20] = dt(tiny * 0.5)      # decays to a subnormal number: flushed
    s1[20:40] = dt(tiny * 1e3)    # stays normal after one step
    s2[:20] = dt(tiny * 0.5)
    s1[40] = np.nan
    wants = [a.copy() for a in (p, s1, s2)]
    if kind == "adam":
        ref.adam_update(wants[0], g, wants[1], wants[2], 3, 1e-3, 0.9, 0.999, 1e-8)
        kc.adam_update(p, g, s1, s2, 3, 1e-3, 0.9, 0.999, 1e-8)
        assert_array_equal(s2[:20], 0)
    else:
        getattr(ref, kind + "_update")(wants[0], g, wants[1], 0.1, 0.9)
        getattr(kc, kind + "_update")(p, g, s1, 0.1, 0.9)
    assert_array_equal(s1[:20], 0)
    assert np.all(s1[20:40] != 0) and np.isnan(s1[40])
    for got, want in zip((p, s1, s2), wants):
        assert_allclose(got, want, **tol(dt))


def test_update_rejects_mismatched_buffers():
    with pytest.raises(ValueError, match="shape and dtype"):
        kc.momentum_update(np.zeros(3), np.zeros(3), np.zeros(4), 0.1, 0.9)
