"""fastnn.sklearn: scikit-learn's own estimator checks, plus behaviour against
scikit-learn's MLP (same parameters, same data: comparable results)."""

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.6",
                              reason="fastnn.sklearn tests need scikit-learn >= 1.6 (the 'sklearn' extra)")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn.sklearn as fsk  # noqa: E402
import sklearn.neural_network as snn  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Small models and few epochs keep the ~100 checks fast; they still learn the
# checks' toy problems well enough (check_classifiers_train wants 83% accuracy).
CHECK_PARAMS = dict(hidden_layer_sizes=(20,), max_iter=100, learning_rate_init=0.01, random_state=0)

# Expected failures, each with its reason (the list stays short on purpose): only the float32
# opt-in's, where the weighted and the repeated fit round differently.
_FLOAT32 = ("float32 arithmetic (dtype='float32', an opt-in): the weighted and the repeated-samples fits agree to "
            "~1e-6 relative, the check asks 1e-7 (the float64 default passes it)")
EXPECTED_FAILED_FLOAT32 = {"check_sample_weight_equivalence_on_dense_data": _FLOAT32,
                           "check_sample_weight_equivalence_on_sparse_data": _FLOAT32}


def _expected_failed(estimator):
    return EXPECTED_FAILED_FLOAT32 if estimator.dtype == "float32" else {}


@parametrize_with_checks([MLPClassifier(**CHECK_PARAMS), MLPRegressor(**CHECK_PARAMS),
                          MLPClassifier(dtype="float32", **CHECK_PARAMS), MLPRegressor(dtype="float32", **CHECK_PARAMS),
                          MLPClassifier(solver="lbfgs", **CHECK_PARAMS)],
                         expected_failed_checks=_expected_failed)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# -- helpers ------------------------------------------------------------------------------

def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# -- the drop-in promise ------------------------------------------------------------------

@pytest.mark.parametrize("ours, theirs", [("MLPClassifier", "MLPClassifier"), ("MLPRegressor", "MLPRegressor")])
def test_same_parameters_and_defaults_as_sklearn(ours, theirs):
    import fastnn.sklearn as fsk
    import sklearn.neural_network as snn

    mine = getattr(fsk, ours)().get_params()
    ref = getattr(snn, theirs)().get_params()
    assert mine.pop("backend") == "auto"
    assert mine.pop("dtype") is None  # follow X, as scikit-learn does
    assert mine == ref


def test_pipeline_drop_in_matches_sklearn_accuracy():
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    params = dict(hidden_layer_sizes=(32,), max_iter=20, learning_rate_init=0.01, random_state=0)
    acc = {}
    for name, cls in (("fastnn", MLPClassifier), ("sklearn", SkMLP)):
        pipe = make_pipeline(StandardScaler(), cls(**params)).fit(Xtr, ytr)
        acc[name] = pipe.score(Xte, yte)
        assert pipe.predict(Xte).dtype == yte.dtype
    assert acc["fastnn"] > 0.93
    assert abs(acc["fastnn"] - acc["sklearn"]) < 0.03, acc


@pytest.mark.parametrize("Est", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
def test_lbfgs_follows_sklearns_lbfgs(Est, activation):
    """The same start (scikit-learn's random stream), loss and gradient: L-BFGS-B takes the same
    steps, so the final loss agrees to 1% (observed: to 1e-6) and n_iter_ too."""
    import warnings

    X, y = _digits()
    X, y = X[:300], (y[:300] if Est == "MLPClassifier" else y[:300] / 9.0)
    kw = dict(solver="lbfgs", hidden_layer_sizes=(20,), activation=activation, max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter, in both
        ours = getattr(fsk, Est)(**kw).fit(X, y)
        ref = getattr(snn, Est)(**kw).fit(X, y)
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-2)
    assert abs(ours.n_iter_ - ref.n_iter_) <= 2
    assert not hasattr(ours, "partial_fit") and not hasattr(ours, "loss_curve_")
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=0.02)


def test_lbfgs_gradient_matches_finite_differences():
    X, y = _digits()
    clf = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(7,), alpha=1e-3, max_iter=1, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X[:40].astype(np.float64), y[:40])
    Y = clf._label_binarizer.transform(y[:40])
    theta = np.concatenate([c.ravel() for c in clf.coefs_ + clf.intercepts_])
    loss, grad = clf._loss_grad_lbfgs(theta, X[:40], Y)
    idx = np.random.default_rng(0).choice(theta.size, 40, replace=False)
    num = []
    for i in idx:
        e = np.zeros_like(theta)
        e[i] = 1e-6
        num.append((clf._loss_grad_lbfgs(theta + e, X[:40], Y)[0] - clf._loss_grad_lbfgs(theta - e, X[:40], Y)[0]) / 2e-6)
    np.testing.assert_allclose(num, grad[idx], rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("params, match", [(dict(dtype="float16"), "dtype"), (dict(backend="gpu"), "backend"),
                                           (dict(hidden_layer_sizes=(3, 0)), "hidden_layer_sizes"),
                                           (dict(momentum=1.5), "momentum")])
def test_bad_parameters_raise_at_fit(params, match):
    X, y = _digits()
    est = MLPClassifier(**params)  # construction never validates (scikit-learn's rule)
    with pytest.raises(ValueError, match=match):
        est.fit(X[:50], y[:50])


# -- fitted attributes --------------------------------------------------------------------

def test_fitted_attributes_multiclass():
    X, y = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=5, random_state=0).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(64, 16), (16, 8), (8, 10)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (8,), (10,)]
    assert clf.coefs_[0].dtype == X.dtype  # the weights follow X's dtype, as in scikit-learn
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 10 and clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 64 and list(clf.classes_) == list(range(10))
    assert clf.n_iter_ == 5 and clf.t_ == 5 * len(X) and len(clf.loss_curve_) == 5
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.loss_ == clf.loss_curve_[-1]
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    proba = clf.predict_proba(X[:7])
    assert proba.shape == (7, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_log_proba(X[:7]), np.log(proba))
    np.testing.assert_array_equal(clf.predict(X[:7]), clf.classes_[proba.argmax(axis=1)])


def test_binary_and_string_labels_use_a_logistic_output():
    X, y = _digits()
    labels = np.where(y < 5, "small", "large")
    clf = MLPClassifier(hidden_layer_sizes=(10,), max_iter=20, learning_rate_init=0.01,
                        random_state=0).fit(X, labels)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert list(clf.classes_) == ["large", "small"]
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(proba[:, 1] > 0.5).astype(int)])
    assert clf.score(X, labels) > 0.9


def test_multilabel_targets():
    from sklearn.datasets import make_multilabel_classification
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, Y = make_multilabel_classification(n_samples=400, n_features=10, n_classes=4, random_state=0)
    params = dict(hidden_layer_sizes=(32,), max_iter=100, learning_rate_init=0.01, random_state=0)
    clf = MLPClassifier(**params).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    pred = clf.predict(X)
    assert pred.shape == Y.shape and set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(pred.dtype))
    sk = SkMLP(**params).fit(X, Y)
    assert abs(clf.score(X, Y) - sk.score(X, Y)) < 0.1


def test_regressor_multioutput_matches_sklearn():
    from sklearn.datasets import make_regression
    from sklearn.neural_network import MLPRegressor as SkMLP

    X, Y = make_regression(n_samples=300, n_features=8, n_targets=3, noise=0.1, random_state=0)
    Y = Y / Y.std()
    params = dict(hidden_layer_sizes=(32,), max_iter=200, learning_rate_init=0.01, random_state=0)
    reg = MLPRegressor(**params).fit(X, Y)
    assert reg.out_activation_ == "identity" and reg.n_outputs_ == 3
    assert reg.predict(X).shape == Y.shape and reg.predict(X).dtype == np.float64
    sk = SkMLP(**params).fit(X, Y)
    assert reg.score(X, Y) > 0.95 and abs(reg.score(X, Y) - sk.score(X, Y)) < 0.05
    # Both report the loss as half the mean squared error over all outputs.
    assert abs(reg.loss_curve_[0] / sk.loss_curve_[0] - 1) < 0.5


# -- scikit-learn's loss and update conventions ---------------------------------------------

def _second_epoch(est, X, y):
    """Fit one epoch, copy the weights, then one more (warm start): the second epoch's
    reported loss is measured at the copied weights (one full batch, before its update)."""
    est.set_params(max_iter=1, warm_start=True, batch_size=len(X), shuffle=False, solver="sgd",
                   momentum=0.0, dtype="float64")
    est.fit(X, y)
    W = [c.copy() for c in est.coefs_]
    b = [c.copy() for c in est.intercepts_]
    est.fit(X, y)
    return W, b


def _forward(W, b, X, hidden):
    acts = [X]
    for i, (w, c) in enumerate(zip(W, b)):
        z = acts[-1] @ w + c
        acts.append(hidden(z) if i < len(W) - 1 else z)
    return acts


def test_reported_loss_follows_sklearn_conventions():
    from sklearn.datasets import make_multilabel_classification

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    alpha, tanh = 0.3, np.tanh
    # multiclass: mean log-loss on the softmax + 0.5 * alpha * ||W||^2 / n
    y = rng.integers(0, 3, 40)
    clf = MLPClassifier(hidden_layer_sizes=(4,), activation="tanh", alpha=alpha, learning_rate_init=1e-8,
                        random_state=0)
    W, b = _second_epoch(clf, X, y)
    p = _softmax(_forward(W, b, X, tanh)[-1])
    pen = 0.5 * alpha * sum((w ** 2).sum() for w in W) / len(X)
    np.testing.assert_allclose(clf.loss_curve_[-1], -np.log(p[np.arange(40), y]).mean() + pen, rtol=1e-6)
    # multilabel: binary log-loss summed over labels, averaged over samples
    X2, Y2 = make_multilabel_classification(n_samples=40, n_features=5, n_classes=3, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(4,), activation="tanh", alpha=alpha, learning_rate_init=1e-8,
                        random_state=0)
    W, b = _second_epoch(clf, X2, Y2)
    q = 1 / (1 + np.exp(-_forward(W, b, X2, tanh)[-1]))
    bce = -(Y2 * np.log(q) + (1 - Y2) * np.log(1 - q)).sum(axis=1).mean()
    pen = 0.5 * alpha * sum((w ** 2).sum() for w in W) / len(X2)
    np.testing.assert_allclose(clf.loss_curve_[-1], bce + pen, rtol=1e-6)
    # regression: half the squared error averaged over samples AND outputs
    Y = rng.normal(size=(40, 2))
    reg = MLPRegressor(hidden_layer_sizes=(4,), activation="tanh", alpha=alpha, learning_rate_init=1e-8,
                       random_state=0)
    W, b = _second_epoch(reg, X, Y)
    out = _forward(W, b, X, tanh)[-1]
    pen = 0.5 * alpha * sum((w ** 2).sum() for w in W) / len(X)
    np.testing.assert_allclose(reg.loss_curve_[-1], 0.5 * ((out - Y) ** 2).mean() + pen, rtol=1e-6)


def test_sgd_step_equals_sklearns_gradient_with_alpha_over_batch():
    """One full-batch SGD step: W -= lr * (X^T delta + alpha * W) / n (scikit-learn's
    _backprop), i.e. fastnn's weight_decay = alpha / batch_size."""
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(30, 4)), rng.normal(size=(30, 2))
    lr, alpha, n = 0.05, 0.7, len(X)
    reg = MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", alpha=alpha, learning_rate_init=lr,
                       random_state=0)
    W, b = _second_epoch(reg, X, Y)
    x0, h, out = _forward(W, b, X, np.tanh)
    d2 = out - Y
    gW2, gb2 = (h.T @ d2 + alpha * W[1]) / n, d2.sum(axis=0) / n
    d1 = (d2 @ W[1].T) * (1 - h ** 2)
    gW1, gb1 = (X.T @ d1 + alpha * W[0]) / n, d1.sum(axis=0) / n
    np.testing.assert_allclose(reg.coefs_[0], W[0] - lr * gW1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reg.coefs_[1], W[1] - lr * gW2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reg.intercepts_[0], b[0] - lr * gb1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reg.intercepts_[1], b[1] - lr * gb2, rtol=1e-10, atol=1e-12)


def test_initialisation_is_sklearns_glorot_uniform():
    X, y = _digits()
    for act, factor in (("relu", 6.0), ("logistic", 2.0)):
        clf = MLPClassifier(hidden_layer_sizes=(200,), activation=act, solver="sgd",
                            learning_rate_init=1e-12, momentum=0.0, max_iter=1, random_state=0)
        clf.fit(X[:20], y[:20])
        bound = np.sqrt(factor / (64 + 200))
        w = clf.coefs_[0]
        assert np.abs(w).max() <= bound * (1 + 1e-5)
        assert np.abs(w).max() > 0.95 * bound  # fills the interval: U(-bound, bound)
        np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.05)
        assert np.abs(clf.intercepts_[0]).max() <= bound * (1 + 1e-5) and np.any(clf.intercepts_[0] != 0)


# -- stopping rules, compared with scikit-learn's iteration counts -----------------------------

@pytest.mark.parametrize("params", [
    dict(tol=1e9, n_iter_no_change=3),                                   # training loss never improves by tol
    dict(tol=1e9, n_iter_no_change=2, early_stopping=True),               # validation score never does
    dict(tol=1e9, n_iter_no_change=2, solver="sgd", learning_rate="adaptive", learning_rate_init=0.1),
    dict(tol=0.0, n_iter_no_change=20),                                   # runs to max_iter
], ids=["tol", "early_stopping", "adaptive", "max_iter"])
def test_iteration_counts_match_sklearn(params):
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, y = _digits()
    base = dict(hidden_layer_sizes=(8,), max_iter=15, random_state=0)
    ours = MLPClassifier(**base, **params).fit(X[:300], y[:300])
    ref = SkMLP(**base, **params).fit(X[:300], y[:300])
    assert ours.n_iter_ == ref.n_iter_
    assert ours.t_ == ref.t_
    assert len(ours.loss_curve_) == len(ref.loss_curve_)
    if params.get("early_stopping"):
        assert len(ours.validation_scores_) == ours.n_iter_
        assert ours.best_validation_score_ == max(ours.validation_scores_)
        assert ours.best_loss_ is None


def test_adaptive_divides_by_five_and_invscaling_follows_t():
    X, y = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                        tol=1e9, n_iter_no_change=1, max_iter=5, random_state=0).fit(X[:100], y[:100])
    # epochs 2 and 4 fail to improve twice in a row -> two divisions by 5
    assert clf.n_iter_ == 5
    np.testing.assert_allclose(clf._optimizer.lr, 0.1 / 25)
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="invscaling", power_t=0.5,
                        learning_rate_init=0.1, max_iter=3, random_state=0).fit(X[:100], y[:100])
    np.testing.assert_allclose(clf._optimizer.lr, 0.1 / (clf.t_ + 1) ** 0.5)
    assert clf.t_ == 300


def test_early_stopping_restores_the_best_weights():
    from sklearn.model_selection import train_test_split

    X, y = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, validation_fraction=0.2, max_iter=30,
                        learning_rate_init=0.05, random_state=0).fit(X[:500], y[:500])
    # Rebuild the validation split: fit draws the initial weights from
    # check_random_state(random_state) as scikit-learn does (each layer's W, then its b), then
    # splits with that RandomState, as scikit-learn does (then 4 integers seed its shuffles).
    rs = np.random.RandomState(0)
    for fan_in, fan_out in ((64, 8), (8, 10)):
        rs.uniform(size=(fan_in, fan_out))
        rs.uniform(size=fan_out)
    _, Xv, _, yv = train_test_split(X[:500], y[:500], random_state=rs, test_size=0.2)
    assert len(clf.validation_scores_) == clf.n_iter_ and clf.n_iter_ > 1
    assert clf.score(Xv, yv) == pytest.approx(clf.best_validation_score_)


# -- partial_fit, warm_start, clone, pickle ------------------------------------------------------

def test_partial_fit():
    X, y = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X[:100], y[:100])
    for i in range(0, 600, 100):
        clf.partial_fit(X[i:i + 100], y[i:i + 100], classes=np.arange(10))
    assert clf.n_iter_ == 1 and clf.t_ == 600 and len(clf.loss_curve_) == 6
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X[:10], y[:10] + 20)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X[:10], y[:10], classes=np.arange(10))
    reg = MLPRegressor(hidden_layer_sizes=(4,), random_state=0)
    for _ in range(3):
        reg.partial_fit(X[:50], y[:50].astype(float))
    assert reg.t_ == 150


def test_warm_start_continues_and_checks_classes():
    X, y = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, warm_start=True, random_state=0).fit(X, y)
    first = clf.loss_curve_[-1]
    W = clf.coefs_[0].copy()
    clf.fit(X, y)
    assert clf.n_iter_ == 3 and clf.t_ == 6 * len(X) and len(clf.loss_curve_) == 6
    assert clf.loss_curve_[3] < first and not np.array_equal(W, clf.coefs_[0])
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(X[y < 5], y[y < 5])


def test_clone_pickle_and_continue_training():
    import copy

    X, y = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(X, y)
    assert clone(clf).get_params() == clf.get_params() and not hasattr(clone(clf), "coefs_")
    for other in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
        other.partial_fit(X, y)
        clf2 = pickle.loads(pickle.dumps(clf))
        clf2.partial_fit(X, y)
        np.testing.assert_allclose(other.coefs_[0], clf2.coefs_[0], rtol=1e-6)
    # replacing coefs_ (as some user code does) changes the predictions
    clf.coefs_ = [np.zeros_like(c) for c in clf.coefs_]
    clf.intercepts_ = [np.zeros_like(c) for c in clf.intercepts_]
    np.testing.assert_allclose(clf.predict_proba(X[:3]), 0.1)


# A pickle made by the code before fastnn.sklearn became a package (one module, fastnn/sklearn.py),
# with pickle protocol 2:
#     X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
#     y = np.array(["no", "yes", "yes", "no"])
#     clf = MLPClassifier(hidden_layer_sizes=(3,), learning_rate_init=0.1, max_iter=100, random_state=0,
#                         backend="numpy").fit(X, y)
#     base64.b64encode(pickle.dumps(clf, protocol=2))
# and what that clf.predict_proba(X)[:, 1] returned then.
_OLD_PICKLE_B64 = (
    "gAJjZmFzdG5uLnNrbGVhcm4KTUxQQ2xhc3NpZmllcgpxACmBcQF9cQIoWBIAAABoaWRkZW5fbGF5ZXJfc2l6ZXNxA0sDhXEE"
    "WAoAAABhY3RpdmF0aW9ucQVYBAAAAHJlbHVxBlgGAAAAc29sdmVycQdYBAAAAGFkYW1xCFgFAAAAYWxwaGFxCUc/Gjbi6xxD"
    "LVgKAAAAYmF0Y2hfc2l6ZXEKWAQAAABhdXRvcQtYDQAAAGxlYXJuaW5nX3JhdGVxDFgIAAAAY29uc3RhbnRxDVgSAAAAbGVh"
    "cm5pbmdfcmF0ZV9pbml0cQ5HP7mZmZmZmZpYBwAAAHBvd2VyX3RxD0c/4AAAAAAAAFgIAAAAbWF4X2l0ZXJxEEtkWAcAAABz"
    "aHVmZmxlcRGIWAwAAAByYW5kb21fc3RhdGVxEksAWAMAAAB0b2xxE0c/Gjbi6xxDLVgHAAAAdmVyYm9zZXEUiVgKAAAAd2Fy"
    "bV9zdGFydHEViVgIAAAAbW9tZW50dW1xFkc/7MzMzMzMzVgSAAAAbmVzdGVyb3ZzX21vbWVudHVtcReIWA4AAABlYXJseV9z"
    "dG9wcGluZ3EYiVgTAAAAdmFsaWRhdGlvbl9mcmFjdGlvbnEZRz+5mZmZmZmaWAYAAABiZXRhXzFxGkc/7MzMzMzMzVgGAAAA"
    "YmV0YV8ycRtHP+/3ztkWhytYBwAAAGVwc2lsb25xHEc+RXmO4jCMOlgQAAAAbl9pdGVyX25vX2NoYW5nZXEdSwpYBwAAAG1h"
    "eF9mdW5xHk2YOlgHAAAAYmFja2VuZHEfWAUAAABudW1weXEgWAUAAABkdHlwZXEhWAcAAABmbG9hdDMycSJYDgAAAG5fZmVh"
    "dHVyZXNfaW5fcSNLAlgQAAAAX2xhYmVsX2JpbmFyaXplcnEkY3NrbGVhcm4ucHJlcHJvY2Vzc2luZy5fbGFiZWwKTGFiZWxC"
    "aW5hcml6ZXIKcSUpgXEmfXEnKFgJAAAAbmVnX2xhYmVscShLAFgJAAAAcG9zX2xhYmVscSlLAVgNAAAAc3BhcnNlX291dHB1"
    "dHEqiVgHAAAAeV90eXBlX3ErWAYAAABiaW5hcnlxLFgNAAAAc3BhcnNlX2lucHV0X3EtiVgIAAAAY2xhc3Nlc19xLmNudW1w"
    "eS5fY29yZS5tdWx0aWFycmF5Cl9yZWNvbnN0cnVjdApxL2NudW1weQpuZGFycmF5CnEwSwCFcTFjX2NvZGVjcwplbmNvZGUK"
    "cTJYAQAAAGJxM1gGAAAAbGF0aW4xcTSGcTVScTaHcTdScTgoSwFLAoVxOWNudW1weQpkdHlwZQpxOlgCAAAAVTNxO4mIh3E8"
    "UnE9KEsDWAEAAAA8cT5OTk5LDEsESwh0cT9iiWgyWBgAAABuAAAAbwAAAAAAAAB5AAAAZQAAAHMAAABxQGg0hnFBUnFCdHFD"
    "YlgQAAAAX3NrbGVhcm5fdmVyc2lvbnFEWAUAAAAxLjkuMXFFdWJoLmg4WAcAAABuX2l0ZXJfcUZLZFgCAAAAdF9xR02QAVgK"
    "AAAAbl9vdXRwdXRzX3FISwFYCQAAAG5fbGF5ZXJzX3FJSwNYDwAAAG91dF9hY3RpdmF0aW9uX3FKWAgAAABsb2dpc3RpY3FL"
    "WAYAAABjb2Vmc19xTF1xTShoL2gwSwCFcU5oNodxT1JxUChLAUsCSwOGcVFoOlgCAAAAZjRxUomIh3FTUnFUKEsDaD5OTk5K"
    "/////0r/////SwB0cVViiWgyWB8AAAAgfV3DgDkkwoc/XlEeQEnDtXtARsOvecK/fcOdHMOAcVZoNIZxV1JxWHRxWWJoL2gw"
    "SwCFcVpoNodxW1JxXChLAUsDSwGGcV1oVIloMlgQAAAAVMOjUEBNwrF/PsKOZcKIQHFeaDSGcV9ScWB0cWFiZVgLAAAAaW50"
    "ZXJjZXB0c19xYl1xYyhoL2gwSwCFcWRoNodxZVJxZihLAUsDhXFnaFSJaDJYFAAAAMOefAfCv8OnwonCiMK+Mn/CtcK8cWho"
    "NIZxaVJxanRxa2JoL2gwSwCFcWxoNodxbVJxbihLAUsBhXFvaFSJaDJYBwAAAMORLcKPw4BxcGg0hnFxUnFydHFzYmVYDAAA"
    "AF9iZXN0X3BhcmFtc3F0aC9oMEsAhXF1aDaHcXZScXcoSwFLDYVxeGhUiWgyWEkAAABYMsONwr7CrMOMPT1iHTfCv8KtDMK7"
    "Pmc0w43CvcOzfsKRPSt1BD/CocOzw5E9F1tcwrzDsU9rP8O7TBI/JRkZwr5gwpjCnMK/cXloNIZxelJxe3RxfGJYCwAAAGxv"
    "c3NfY3VydmVfcX1dcX4oRz/oLFg3AMpRRz/moHQpu+QtRz/mdpX6mXXbRz/nAhLPLKJkRz/m1kAbx/8qRz/mbP1Ps7OGRz/m"
    "PVy5Uj31Rz/mT1vDP+IBRz/mcsbDg0xzRz/mgcya5Hf3Rz/mdGYWrU9iRz/mVbACGI8YRz/mNzBMVU5IRz/mJUeXZzlyRz/m"
    "ImPxWcRwRz/mEppADloERz/mFzvTO5MmRz/l7nFmC3sERz/lm6NNVkF6Rz/lL8VrfvkmRz/k6WOdCZPLRz/ke1Ml4ZGNRz/j"
    "+9kmc+6/Rz/jntfciRKBRz/jGCqAmktfRz/ibFD6tD13Rz/iGUZH+jOLRz/hh90JVRh8Rz/g2mR+ArI4Rz/gcqFUQEGuRz/f"
    "+w41Cs0LRz/fAjL0YbibRz/eBR+sd/doRz/dCfM4634/Rz/cqlFooLX1Rz/bPYREzFCbRz/aQyTz0HK4Rz/ZJ5cEzC6tRz/X"
    "6M1bXwHpRz/Wg2Ik8mHzRz/U9rE00gkGRz/TTZ/cuCDxRz/RewS1W9rpRz/PPokU7EV8Rz/L/se+mU6ERz/IwbV879A/Rz/F"
    "qtda71/LRz/C0XzNMYXSRz/APwj8Vc4CRz+75yYfDsgGRz+32Hh0AYO1Rz+0TU8hbfdZRz+yM20PkfQ2Rz+wZDOtGrmTRz+t"
    "ln5chMK+Rz+qyXav6ZTkRz+oVgg2J5SoRz+mPyO2SGWsRz+kY34D5qAaRz+ixiiOMERIRz+hU5xYs0XBRz+gB37b61G0Rz+d"
    "u3lNvfMZRz+bpUjnF3qKRz+ZxbR5SfEsRz+YT9tDxNYfRz+WnfUUArUfRz+VSQY1iUEDRz+UN3fgd910Rz+TBenA+U5xRz+S"
    "EGkN/AtXRz+RMOzXh9c1Rz+QZP/Hu1+ZRz+PVP1H1VChRz+N/vm9PVRhRz+MxJozUVMMRz+LovHxFE2XRz+Kl2LG+rYqRz+J"
    "n6pzxGqdRz+Iud0MvyMfRz+H5C4EC/uNRz+HHSBMzGhlRz+GgZQgTOfYRz+FwSa/0VH6Rz+FKI6xe+dFRz+EmKVerbEXRz+E"
    "EKc4cZQ5Rz+Dj98dIRYlRz+DFcRAOzrLRz+CocbM+alERz+CNg2k475eRz+B01fh4/p2Rz+BdwXRtEaTRz+BHj70YLrHRz+A"
    "yNEmHeQdRz+AlEL8N6TiRz+ALI5E6oBaRz9/zaT2bJo0Rz9/SJXKXpuaRz9+x2XySNtRZVgVAAAAX25vX2ltcHJvdmVtZW50"
    "X2NvdW50cX9LAFgKAAAAYmVzdF9sb3NzX3GARz9+x2XySNtRWBIAAAB2YWxpZGF0aW9uX3Njb3Jlc19xgU5YFgAAAGJlc3Rf"
    "dmFsaWRhdGlvbl9zY29yZV9xgk5YCgAAAF9vcHRpbWl6ZXJxg2NmYXN0bm4ub3B0aW1pemVycwpBZGFtCnGEKYFxhX1xhihY"
    "AgAAAGxycYdHP7mZmZmZmZpYDAAAAHdlaWdodF9kZWNheXGIRz76NuLrHEMtWAgAAABfbmV0X2tleXGJaC9oMEsAhXGKaDaH"
    "cYtScYwoSwFLDYVxjWhUiWgyWEoAAAAgfV3DgDkkwoc/XlEeQEnDtXtARsOvecK/fcOdHMOAVMOjUEBNwrF/PsKOZcKIQMOe"
    "fAfCv8OnwonCiMK+Mn/CtcK8w5Etwo/DgHGOaDSGcY9ScZB0cZFiWAUAAABiZXRhMXGSRz/szMzMzMzNWAUAAABiZXRhMnGT"
    "Rz/v987ZFocrWAMAAABlcHNxlEc+RXmO4jCMOlgBAAAAbXGVaC9oMEsAhXGWaDaHcZdScZgoSwFLDYVxmWhUiWgyWFcAAABJ"
    "DMOMOsOpw6XDtsK4KFrDk8K6wqBJJzlNw5zDhMK3w7XDrMKCOsOiwrbDkcK6C8Kjw7XCuV3CiMK/wrrDtsK8w705Um4OwrnC"
    "rcK4w5DCusOIwrHDpDtxmmg0hnGbUnGcdHGdYlgBAAAAdnGeaC9oMEsAhXGfaDaHcaBScaEoSwFLDYVxomhUiWgyWEgAAABi"
    "JjU4FhQPNsKlwrUEOcO7wqrCijhiwpIVNsKFwoLDsTjDtsKGejlhOBY4w5XDgzU4wrjCoEA4AcK6wp42OcOjwpM5esKAADlx"
    "o2g0hnGkUnGldHGmYlgBAAAAdHGnS2R1YlgFAAAAbG9zc19xqEc/fsdl8kjbUXViLg=="
)
_OLD_PICKLE_P_YES = [0.011269264854490757, 0.9987045526504517, 0.9979177117347717, 0.011295052245259285]


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.0.0",
                    reason="the embedded pickle holds arrays pickled by NumPy 2 (numpy._core), which NumPy 1 "
                    "cannot unpickle")
def test_pickles_from_before_the_package_split_still_load():
    import base64

    blob = base64.b64decode(_OLD_PICKLE_B64)
    assert b"cfastnn.sklearn\nMLPClassifier\n" in blob  # the class path the old module recorded
    clf = pickle.loads(blob)
    assert type(clf) is MLPClassifier
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], _OLD_PICKLE_P_YES, rtol=1e-6)
    assert clf.predict(X).tolist() == ["no", "yes", "yes", "no"]
    clf.partial_fit(X, ["no", "yes", "yes", "no"])  # and it trains on from where it was
    assert clf.n_iter_ == 1 and clf.t_ == 101 * len(X)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_estimators_pickle_under_their_public_module_path(cls):
    assert cls.__module__ == "fastnn.sklearn"
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0])
    est = cls(hidden_layer_sizes=(3,), max_iter=5, random_state=0, backend="numpy").fit(X, y)
    blob = pickle.dumps(est, protocol=2)
    assert b"cfastnn.sklearn\n" + cls.__name__.encode() + b"\n" in blob
    for again in (pickle.loads(blob), pickle.loads(pickle.dumps(est))):
        assert type(again) is cls
        np.testing.assert_array_equal(again.predict(X), est.predict(X))


def test_float64_dtype():
    X, y = _digits()
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, learning_rate_init=0.01, dtype="float64",
                        random_state=0).fit(X, y)
    assert clf.coefs_[0].dtype == np.float64 and clf.score(X, y) > 0.8


def test_same_random_state_same_model():
    X, y = _digits()
    a = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=3).fit(X, y)
    b = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=3).fit(X, y)
    c = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=4).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_backends_agree():
    import fastnn

    if fastnn.available_backends()["numba"] is not None:
        pytest.skip("the numba backend is unavailable: " + fastnn.available_backends()["numba"])
    X, y = _digits()
    params = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0, dtype="float64")
    a = MLPClassifier(backend="numpy", **params).fit(X, y)
    b = MLPClassifier(backend="numba", **params).fit(X, y)
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), rtol=1e-6, atol=1e-9)


# -- parallel searches (joblib processes) ------------------------------------------------------

def test_worker_thread_cap_in_joblib_workers():
    import os

    from joblib import Parallel, delayed

    from fastnn.sklearn import worker_thread_cap

    assert worker_thread_cap() is None  # the main process is not capped
    caps = Parallel(n_jobs=2)(delayed(worker_thread_cap)() for _ in range(2))
    assert caps == [max(1, (os.cpu_count() or 1) // 2)] * 2


def test_grid_and_randomized_search_with_n_jobs():
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    X, y = _digits()
    X, y = X[:300], y[:300]
    base = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, batch_size=30, random_state=0)
    grid = GridSearchCV(base, {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-2, 3e-2]}, cv=2, n_jobs=2)
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4 and grid.best_score_ > 0.6
    rnd = RandomizedSearchCV(base, {"hidden_layer_sizes": [(4,), (8,), (16,)], "alpha": [1e-4, 1e-3]},
                             n_iter=3, cv=2, n_jobs=2, random_state=0).fit(X, y)
    assert len(rnd.cv_results_["params"]) == 3 and hasattr(rnd.best_estimator_, "coefs_")


def test_threaded_search_survives_numbas_workqueue_layer():
    """joblib's threading backend runs fits in parallel threads; Numba's workqueue layer
    aborts the process on concurrent entry unless the fits take turns."""
    import os
    import subprocess
    import sys

    import fastnn

    if fastnn.available_backends()["numba"] is not None:
        pytest.skip("the numba backend is unavailable: " + fastnn.available_backends()["numba"])
    code = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "import numba, numpy as np\n"
        "from joblib import parallel_backend\n"
        "from sklearn.model_selection import GridSearchCV\n"
        "from fastnn.sklearn import MLPClassifier\n"
        "rng = np.random.default_rng(0); X = rng.random((600, 64)); y = rng.integers(0, 3, 600)\n"
        "est = MLPClassifier(hidden_layer_sizes=(128,), max_iter=3, batch_size=64, early_stopping=True,"
        " backend='numba', random_state=0)\n"
        "with parallel_backend('threading', n_jobs=2):\n"
        "    GridSearchCV(est, {'alpha': [1e-4, 1e-3]}, cv=2).fit(X, y)\n"
        "print('layer', numba.threading_layer())\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "layer workqueue" in res.stdout
