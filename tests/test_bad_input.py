"""Issue 2 section 6: bad input raises ValueError before anything changes.

Each case first trains a little (so the optimizer has non-zero state), snapshots the
parameters and the optimizer state, then checks that the bad call raises ValueError
and leaves both exactly as they were.
"""

import numpy as np
import pytest

import fastnn as fn
from fastnn import backends

@pytest.fixture(autouse=True)
def numpy_default_backend(monkeypatch):
    """Calls that take the default backend use the numpy reference here (the compiled
    backends have their own tests); the backend tests below reset this."""
    monkeypatch.setattr(backends, "_default", "numpy")


RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3)).astype(np.float32)
Y_REG = RNG.normal(size=(12, 2)).astype(np.float32)
Y_LAB = RNG.integers(0, 2, size=12)
Y_BIN = (RNG.uniform(size=(12, 2)) > 0.5).astype(np.float32)


def with_nan(a, v=np.nan):
    a = np.array(a, dtype=np.float64)
    a.flat[3] = v
    return a


def make(optimizer):
    net = fn.Sequential(fn.Linear(3, 4), fn.Tanh(), fn.Linear(4, 2), seed=0)
    # warm up so the optimizer state is non-trivial
    net.fit(X, Y_LAB, cost=fn.CrossEntropy(), optimizer=optimizer, epochs=1, batch_size=5, seed=0,
            backend="numpy")
    return net


def snapshot(net, opt):
    state = {k: np.copy(v) for k, v in vars(opt).items() if isinstance(v, np.ndarray)}
    state["t"] = getattr(opt, "t", None)
    return net.params.copy(), state


def assert_unchanged(net, opt, snap):
    params, state = snap
    assert np.array_equal(net.params, params), "parameters changed before the ValueError"
    for k, v in state.items():
        now = getattr(opt, k)
        assert np.array_equal(now, v) if isinstance(v, np.ndarray) else now == v, f"optimizer {k} changed"


OPTIMIZERS = [lambda: fn.SGD(0.1, momentum=0.9), lambda: fn.Adam(0.01)]

# (cost, X, Y, extra fit kwargs, message regex)
BAD_FIT = {
    "X 1-D": (fn.CrossEntropy, X[:, 0], Y_LAB, {}, "2-D"),
    "X 3-D": (fn.CrossEntropy, X[:, :, None], Y_LAB, {}, "2-D"),
    "X wrong features": (fn.CrossEntropy, X[:, :2], Y_LAB, {}, "features"),
    "X strings": (fn.CrossEntropy, X.astype(str), Y_LAB, {}, "numeric"),
    "Y 3-D (MSE)": (fn.MSE, X, Y_REG[:, :, None], {}, "2-D"),
    "Y 1-D float for 2 outputs (MSE)": (fn.MSE, X, Y_REG[:, 0], {}, "2-D"),
    "Y wrong columns (MSE)": (fn.MSE, X, Y_REG[:, :1], {}, "columns"),
    "labels 2-D wrong width (CE)": (fn.CrossEntropy, X, np.eye(3)[Y_LAB], {}, "columns"),
    "rows mismatch": (fn.CrossEntropy, X, Y_LAB[:-1], {}, "12 samples.*11"),
    "rows mismatch (MSE)": (fn.MSE, X[:5], Y_REG, {}, "5 samples"),
    "NaN in X": (fn.CrossEntropy, with_nan(X), Y_LAB, {}, "NaN or inf"),
    "inf in X": (fn.CrossEntropy, with_nan(X, np.inf), Y_LAB, {}, "NaN or inf"),
    "NaN in Y (MSE)": (fn.MSE, X, with_nan(Y_REG), {}, "NaN or inf"),
    "-inf in Y (BCE)": (fn.BCE, X, with_nan(Y_BIN, -np.inf), {}, "NaN or inf"),
    "NaN in labels (CE)": (fn.CrossEntropy, X, with_nan(Y_LAB), {}, "NaN or inf"),
    "label == C": (fn.CrossEntropy, X, np.r_[Y_LAB[:-1], 2], {}, r"0\.\.1"),
    "label < 0": (fn.CrossEntropy, X, np.r_[-1, Y_LAB[1:]], {}, r"0\.\.1"),
    "non-integer labels": (fn.CrossEntropy, X, Y_LAB + 0.5, {}, "whole numbers"),
    "MSE int labels out of range": (fn.MSE, X, np.r_[Y_LAB[:-1], 5], {}, r"0\.\.1"),
    "BCE targets outside [0, 1]": (fn.BCE, X, Y_BIN * 2, {}, r"\[0, 1\]"),
    "CE rows not summing to 1": (fn.CrossEntropy, X, np.full((12, 2), 0.7), {}, "sum to 1"),
    "empty X and Y": (fn.CrossEntropy, X[:0], Y_LAB[:0], {}, "empty"),
    "empty MSE": (fn.MSE, X[:0], Y_REG[:0], {}, "empty"),
    "batch_size 0": (fn.CrossEntropy, X, Y_LAB, {"batch_size": 0}, "batch_size"),
    "batch_size -3": (fn.CrossEntropy, X, Y_LAB, {"batch_size": -3}, "batch_size"),
    "batch_size 2.5": (fn.CrossEntropy, X, Y_LAB, {"batch_size": 2.5}, "batch_size"),
    "epochs 0": (fn.CrossEntropy, X, Y_LAB, {"epochs": 0}, "epochs"),
    "epochs -1": (fn.CrossEntropy, X, Y_LAB, {"epochs": -1}, "epochs"),
    "val NaN in X": (fn.CrossEntropy, X, Y_LAB, {"validation_data": (with_nan(X), Y_LAB)}, "X_val"),
    "val label out of range": (fn.CrossEntropy, X, Y_LAB,
                               {"validation_data": (X, np.r_[Y_LAB[:-1], 7])}, r"0\.\.1"),
    "val rows mismatch": (fn.CrossEntropy, X, Y_LAB, {"validation_data": (X[:4], Y_LAB[:5])}, "X_val"),
    "val wrong features": (fn.CrossEntropy, X, Y_LAB, {"validation_data": (X[:, :2], Y_LAB)}, "X_val"),
    "val empty": (fn.CrossEntropy, X, Y_LAB, {"validation_data": (X[:0], Y_LAB[:0])}, "empty"),
    "val not a pair": (fn.CrossEntropy, X, Y_LAB, {"validation_data": (X,)}, "validation_data"),
    "unknown backend": (fn.CrossEntropy, X, Y_LAB, {"backend": "tpu"}, "unknown backend"),
}


@pytest.mark.parametrize("make_opt", OPTIMIZERS, ids=["momentum", "adam"])
@pytest.mark.parametrize("case", list(BAD_FIT))
def test_bad_fit_input_raises_before_any_change(case, make_opt):
    cost, Xb, Yb, kw, msg = BAD_FIT[case]
    opt = make_opt()
    net = make(opt)
    snap = snapshot(net, opt)
    args = dict(cost=cost(), optimizer=opt, epochs=2, batch_size=4, seed=1, backend="numpy")
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        net.fit(Xb, Yb, **args)
    assert_unchanged(net, opt, snap)


@pytest.mark.parametrize("make_opt", OPTIMIZERS, ids=["momentum", "adam"])
@pytest.mark.parametrize("lr", [0.0, -0.1, np.nan, np.inf])
def test_lr_mutated_after_construction_raises_before_any_change(make_opt, lr):
    opt = make_opt()
    net = make(opt)
    opt.lr = lr
    snap = snapshot(net, opt)
    with pytest.raises(ValueError, match="lr"):
        net.fit(X, Y_LAB, cost=fn.CrossEntropy(), optimizer=opt, epochs=1, batch_size=4,
                backend="numpy")
    assert_unchanged(net, opt, snap)


def test_trainer_fit_validates_too():
    opt = fn.SGD(0.1, momentum=0.9)
    net = make(opt)
    tr = fn.Trainer(net, fn.CrossEntropy(), opt, batch_size=4, backend="numpy")
    snap = snapshot(net, opt)
    with pytest.raises(ValueError, match="NaN"):
        tr.fit(with_nan(X), Y_LAB, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        tr.fit(X, Y_LAB, epochs=0)
    assert_unchanged(net, opt, snap)


def test_good_input_after_bad_still_trains():
    """The check really is the only thing stopping training (the cases above can fail)."""
    opt = fn.SGD(0.1, momentum=0.9)
    net = make(opt)
    p = net.params.copy()
    net.fit(X.astype(np.float64), Y_LAB.astype(np.int32), cost=fn.CrossEntropy(), optimizer=opt,
            epochs=1, batch_size=4, backend="numpy")
    assert not np.array_equal(net.params, p)


@pytest.mark.parametrize("cost, Y", [(fn.MSE, Y_REG.astype(np.float64)),
                                     (fn.MSE, (Y_REG > 0).astype(np.int64) * 1.0),
                                     (fn.CrossEntropy, Y_LAB.astype(np.uint8)),
                                     (fn.CrossEntropy, Y_LAB.astype(np.float64)),  # whole numbers
                                     (fn.BCE, Y_BIN.astype(np.int32))])
def test_integer_and_float64_input_is_converted(cost, Y):
    net = fn.Sequential(fn.Linear(3, 2), fn.Sigmoid(), seed=0)
    Xi = np.round(X * 4).astype(np.int64)
    h = net.fit(Xi, Y, cost=cost(), optimizer=fn.SGD(0.1), epochs=1, batch_size=5, backend="numpy")
    assert np.isfinite(h["loss"][0]) and net.params.dtype == np.float32
    assert net.predict(Xi.astype(np.int16), backend="numpy").dtype == np.float32


def test_predict_and_evaluate_reject_bad_input():
    net = fn.Sequential(fn.Linear(3, 2), seed=0)
    for bad in (X[:, 0], X[:, :2], with_nan(X)):
        with pytest.raises(ValueError):
            net.predict(bad, backend="numpy")
    with pytest.raises(ValueError, match="batch_size"):
        net.predict(X, batch_size=0, backend="numpy")
    with pytest.raises(ValueError, match="unknown backend"):
        net.predict(X, backend="gpu")
    with pytest.raises(ValueError):
        net.evaluate(X, np.r_[Y_LAB[:-1], 3], fn.CrossEntropy())
    with pytest.raises(ValueError):
        net.evaluate(X[:0], Y_LAB[:0], fn.CrossEntropy())


# --------------------------------------------------------------- constructor args


@pytest.mark.parametrize("args, kwargs", [
    ((0, 3), {}), ((3, 0), {}), ((-1, 3), {}), ((2.5, 3), {}), ((True, 3), {}), (("3", 3), {}),
    ((3, 3), {"init": "glorot"}), ((3, 3), {"init": "normal"}),
    ((3, 3), {"wscale": 0.0}), ((3, 3), {"wscale": -1.0}), ((3, 3), {"wscale": np.nan}),
])
def test_bad_linear_args(args, kwargs):
    with pytest.raises(ValueError):
        fn.Linear(*args, **kwargs)


@pytest.mark.parametrize("slope", [-0.01, np.nan, np.inf])
def test_bad_leaky_relu_slope(slope):
    with pytest.raises(ValueError, match="slope"):
        fn.LeakyReLU(slope)


@pytest.mark.parametrize("make_bad", [
    lambda: fn.SGD(0.0), lambda: fn.SGD(-0.1), lambda: fn.SGD(np.nan), lambda: fn.SGD("0.1"),
    lambda: fn.SGD(0.1, momentum=-0.5), lambda: fn.SGD(0.1, momentum=1.0),
    lambda: fn.SGD(0.1, nesterov=True), lambda: fn.SGD(0.1, weight_decay=-1e-4),
    lambda: fn.SGD(0.1, weight_decay=np.inf),
    lambda: fn.Adam(0.0), lambda: fn.Adam(beta1=1.0), lambda: fn.Adam(beta1=-0.1),
    lambda: fn.Adam(beta2=1.5), lambda: fn.Adam(eps=0.0), lambda: fn.Adam(eps=-1e-8),
    lambda: fn.Adam(weight_decay=-0.1),
])
def test_bad_optimizer_hyperparameters(make_bad):
    with pytest.raises(ValueError):
        make_bad()


def test_unknown_backend_and_dtype_names():
    net = fn.Sequential(fn.Linear(3, 2), seed=0)
    with pytest.raises(ValueError, match="unknown backend"):
        fn.Trainer(net, fn.MSE(), fn.SGD(0.1), backend="opencl")
    with pytest.raises(ValueError, match="unknown backend"):
        fn.set_backend("opencl")
    with pytest.raises(ValueError, match="unknown backend"):
        fn.get_ops("opencl")
    with pytest.raises(ValueError, match="float32 or float64"):
        fn.Sequential(fn.Linear(3, 2), dtype=np.float16)
    with pytest.raises(ValueError, match="float32 or float64"):
        net.astype(np.int32)
    with pytest.raises(ValueError, match="unknown cost"):
        net.fit(X, Y_REG, cost="tweedie", optimizer=fn.SGD(0.1), backend="numpy")
    with pytest.raises(ValueError, match="unknown optimizer"):
        net.fit(X, Y_REG, cost=fn.MSE(), optimizer="lbfgs", backend="numpy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
def test_all_finite_one_pass_check(dtype, bad):
    from fastnn._checks import all_finite
    big = np.finfo(dtype).max / 2  # squares overflow: the one-pass check must fall back, not refuse
    a = np.full((5, 7), big, dtype)
    a[0, 0] = -big
    if bad is not None:
        a[3, 4] = bad
    assert all_finite(a) is (bad is None)
    assert all_finite(np.asfortranarray(a)) is (bad is None)
    small = np.ones((5, 7), np.float16)  # other dtypes take the min/max path
    if bad is not None:
        small[3, 4] = bad
    assert all_finite(small) is (bad is None)
