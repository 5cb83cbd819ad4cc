"""Messages that name the real problem (issue 12, section 5), on both CPU backends."""

import numpy as np
import pytest
import scipy.sparse as sp

import fastnn as fn

BACKENDS = ["numpy", "numba"]
X = np.random.default_rng(0).normal(size=(6, 3))


def _net(k=3, dtype=np.float32):
    return fn.Sequential(fn.Linear(3, k), seed=0, dtype=dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float64_beyond_float32_range_is_named_as_overflow(backend):
    big = X.copy()
    big[2, 1] = 1e39
    net = _net()
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"X has values up to 1e\+39, beyond the range of float32") as e:
        net.fit(big, np.arange(6) % 3, fn.CrossEntropy(), fn.SGD(0.1), backend=backend)
    assert "NaN" not in str(e.value)
    assert np.array_equal(net.params, before)
    # in float64 the same data is fine
    _net(dtype=np.float64).fit(big, np.arange(6) % 3, fn.CrossEntropy(), fn.SGD(1e-42), backend=backend)
    with pytest.raises(ValueError, match=r"Y \(the targets\) has values up to"):
        _net(1).fit(X, np.full(6, 1e39), fn.MSE(), fn.SGD(0.1), backend=backend)
    with pytest.raises(ValueError, match="NaN or inf"):  # a real inf is still called that
        big[0, 0] = np.inf
        _net().fit(big, np.arange(6) % 3, fn.CrossEntropy(), fn.SGD(0.1), backend=backend)


def test_bad_sparse_input_is_named():
    """scipy.sparse X is taken (tests/test_sparse.py); its problems get their own messages."""
    y = np.arange(6) % 3
    bad = sp.csr_matrix(X)
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        _net().fit(bad, y, fn.CrossEntropy(), fn.SGD(0.1))
    with pytest.raises(ValueError, match="X has 4 features but the network expects 3"):
        _net().fit(sp.csr_matrix(np.ones((6, 4))), y, fn.CrossEntropy(), fn.SGD(0.1))
    with pytest.raises(ValueError, match="X has 5 samples but Y has 6"):
        _net().fit(sp.csr_matrix(X[:5]), y, fn.CrossEntropy(), fn.SGD(0.1))
    with pytest.raises(ValueError, match="X_val has 2 features but the network expects 3"):
        _net().fit(X, y, fn.CrossEntropy(), fn.SGD(0.1), validation_data=(sp.csr_matrix(np.ones((6, 2))), y))
    huge = sp.csr_matrix(X * 1e38 * 10)
    with pytest.raises(ValueError, match="beyond the range of float32"):
        _net().fit(huge, y, fn.CrossEntropy(), fn.SGD(0.1))
    with pytest.raises(ValueError, match="Dropout cannot take scipy.sparse input"):
        fn.Sequential(fn.Dropout(0.5), fn.Linear(3, 3), seed=0).fit(sp.csr_matrix(X), y, fn.CrossEntropy(),
                                                                    fn.SGD(0.1), backend="numpy")


@pytest.mark.parametrize("cost", [fn.CrossEntropy, fn.MSE])
def test_uint64_labels_above_2_63_print_correctly(cost):
    y = np.array([0, 1, 2**63 + 5, 2, 1, 0], np.uint64)
    with pytest.raises(ValueError, match="got values from 0 to 9223372036854775813"):
        _net().fit(X, y, cost(), fn.SGD(0.1), backend="numpy")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cost", [fn.CrossEntropy, fn.MSE])
@pytest.mark.parametrize("labels", [
    np.array([0, 1, 2, 2, 1, 0]), np.array([0, 1, 2, 2, 1, 0], np.uint8), np.array([0., 1., 2., 2., 1., 0.]),
    np.array([[0], [1], [2], [2], [1], [0]]), np.array([[0.], [1.], [2.], [2.], [1.], [0.]])],
    ids=["int64", "uint8", "whole floats", "(N, 1) int", "(N, 1) float"])
def test_mse_and_cross_entropy_take_the_same_labels(backend, cost, labels):
    net = _net()
    h = net.fit(X, labels, cost(), fn.SGD(0.1), epochs=2, batch_size=4, seed=0, backend=backend)
    assert "accuracy" in h.history
    ref = _net().fit(X, labels.ravel().astype(np.int64), cost(), fn.SGD(0.1), epochs=2, batch_size=4, seed=0,
                     backend=backend)
    assert h.history["loss"] == ref.history["loss"]


def test_bool_labels_and_regression_shape_errors():
    h = _net(2).fit(X, np.arange(6) % 2 == 1, fn.MSE(), fn.SGD(0.1), backend="numpy")
    assert "accuracy" in h.history
    with pytest.raises(ValueError, match="2-D"):  # not whole numbers: regression of the wrong shape
        _net().fit(X, np.linspace(0, 1, 6), fn.MSE(), fn.SGD(0.1), backend="numpy")


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_size_larger_than_the_data(backend):
    a, b = _net(), _net()
    ha = a.fit(X, np.arange(6) % 3, fn.CrossEntropy(), fn.Adam(0.01), epochs=3, batch_size=10**12, seed=0,
               backend=backend)
    hb = b.fit(X, np.arange(6) % 3, fn.CrossEntropy(), fn.Adam(0.01), epochs=3, batch_size=6, seed=0,
               backend=backend)
    assert np.array_equal(a.params, b.params) and ha.history == hb.history
