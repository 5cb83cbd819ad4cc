"""fastnn.sklearn's ``sample_weight`` and ``loss="poisson"`` against scikit-learn's own MLPs.

With ``shuffle=False`` and one ``random_state`` both libraries start from the same weights
and visit the same batches, so plain SGD must give the same weights (float64, to 1e-10),
with early stopping's split and validation scores too; Adam differs in the place of its
epsilon (README, "Differences"), so it is checked more loosely.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

sklearn = pytest.importorskip("sklearn", reason="needs scikit-learn (the 'sklearn' extra)")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkC, MLPRegressor as SkR  # noqa: E402

from conftest import numgrad  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(seed=0, n=61):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1)
    yr = X @ rng.normal(size=4) + 0.1 * rng.normal(size=n)
    w = rng.uniform(0.05, 3, n)
    return X, y, yr, w


def _both(kind, **kw):
    a, b = (SkC, MLPClassifier) if kind == "clf" else (SkR, MLPRegressor)
    base = dict(hidden_layer_sizes=(5,), max_iter=4, shuffle=False, random_state=1, alpha=0.01,
                learning_rate_init=0.01, n_iter_no_change=100)
    base.update(kw)
    return a(**base), b(**base)


def _same_weights(sk, fa, tol):
    for x, y in zip(sk.coefs_ + sk.intercepts_, fa.coefs_ + fa.intercepts_):
        assert_allclose(y, x, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize("batch_size", [1, 10])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_weighted_sgd_is_sklearns(kind, batch_size, early_stopping):
    X, y, yr, w = _data()
    t = y if kind == "clf" else yr
    sk, fa = _both(kind, solver="sgd", batch_size=batch_size, early_stopping=early_stopping)
    sk.fit(X, t, sample_weight=w)
    fa.fit(X, t, sample_weight=w)
    _same_weights(sk, fa, 1e-10)
    assert fa.n_iter_ == sk.n_iter_
    # the L2 term of loss_curve_ takes ||W||^2 as the mean of the epoch's start and end
    assert_allclose(fa.loss_curve_, sk.loss_curve_, rtol=3e-2 if batch_size == 1 else 1e-3)
    if early_stopping:
        assert_allclose(fa.validation_scores_, sk.validation_scores_, rtol=1e-10)
    unweighted = _both(kind, solver="sgd", batch_size=batch_size, early_stopping=early_stopping)[1].fit(X, t)
    assert np.abs(unweighted.coefs_[0] - fa.coefs_[0]).max() > 1e-4


def test_weighted_adam_and_partial_fit_are_close_to_sklearns():
    X, y, _, w = _data(1)
    sk, fa = _both("clf", solver="adam", batch_size=8)
    sk.fit(X, y, sample_weight=w)
    fa.fit(X, y, sample_weight=w)
    _same_weights(sk, fa, 1e-3)
    sk, fa = _both("reg", solver="sgd", batch_size=7)
    for _ in range(2):
        sk.partial_fit(X, X[:, 0], sample_weight=w)
        fa.partial_fit(X, X[:, 0], sample_weight=w)
    _same_weights(sk, fa, 1e-10)


@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])  # the compiled epoch, and the Python loop
def test_weighted_lbfgs_is_sklearns(kind, backend):
    X, y, yr, w = _data(2)
    t = y if kind == "clf" else yr
    sk, fa = _both(kind, solver="lbfgs", max_iter=30)
    fa.set_params(backend=backend)
    sk.fit(X, t, sample_weight=w)
    fa.fit(X, t, sample_weight=w)
    assert fa.n_iter_ == sk.n_iter_
    assert_allclose(fa.loss_, sk.loss_, rtol=1e-8)
    _same_weights(sk, fa, 1e-6)


def test_weighted_lbfgs_gradient_matches_finite_differences():
    X, y, _, w = _data(3, n=23)
    est = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=1, alpha=0.1, random_state=0).fit(X, y)
    Y = est._label_binarizer.transform(y)
    theta = est._current_net().params.astype(np.float64).copy()
    loss, grad = est._loss_grad_lbfgs(theta, X, Y, w)
    num = numgrad(lambda th: est._loss_grad_lbfgs(th, X, Y, w)[0], theta.copy())
    assert_allclose(grad, num, rtol=1e-5, atol=1e-7)
    assert abs(loss - est._loss_grad_lbfgs(theta, X, Y, None)[0]) > 1e-6


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_poisson_regressor_is_sklearns(solver):
    rng = np.random.default_rng(4)
    X = np.linspace(0, 1, 80).reshape(-1, 1)
    y = rng.poisson(np.exp(X[:, 0] + 1))
    kw = dict(loss="poisson", hidden_layer_sizes=(3,), activation="identity", alpha=0, solver=solver, tol=1e-7,
              random_state=2, max_iter=40, shuffle=False)
    sk, fa = SkR(**kw).fit(X, y), MLPRegressor(**kw).fit(X, y)
    assert fa.out_activation_ == sk.out_activation_ == "exp"
    assert_allclose(fa.predict(X), sk.predict(X), rtol=1e-6)
    assert_allclose(fa.loss_, sk.loss_, rtol=1e-6)
    assert np.all(fa.predict(X) > 0)


def test_sample_weight_and_poisson_messages():
    X, y, yr, w = _data()
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        MLPClassifier(max_iter=2).fit(X, y, sample_weight=w[:-1])
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        MLPRegressor(max_iter=2).fit(X, yr, sample_weight=-w)
    with pytest.raises(ValueError, match="Poisson targets must be >= 0"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, yr - 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = MLPRegressor(loss="poisson", max_iter=3, random_state=0).fit(X, np.abs(yr))
    assert fitted.score(X, np.abs(yr), sample_weight=w) < 1
