"""The seed tutorials' experiments (../shared/seeds) as tests."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from fastnn import datasets


def linear_fit_floor(X, Y):
    """Smallest MSE (seed convention 1/(2N)) any affine map x -> a x + c reaches on (X, Y)."""
    A = np.c_[X.astype(np.float64), np.ones(len(X))]
    coef = np.linalg.lstsq(A, Y.astype(np.float64), rcond=None)[0]
    r = A @ coef - Y
    return float((r * r).sum() / (2 * len(X)))


def test_seed001_single_linear_neuron_restores_2x_plus_3():
    X, Y = datasets.linear()
    net = fn.Sequential(fn.Linear(1, 1), seed=0)
    net.fit(X, Y, cost=fn.MSE(), optimizer=fn.SGD(0.1), epochs=20, batch_size=10, seed=0,
            backend="numpy")
    assert net[0].W[0, 0] == pytest.approx(2.0, abs=1e-3)
    assert net[0].b[0] == pytest.approx(3.0, abs=1e-3)


def test_seed000_linear_hidden_layer_restores_2x_plus_3():
    X, Y = datasets.linear()
    net = fn.Sequential(fn.Linear(1, 2), fn.Linear(2, 1), seed=0)
    net.fit(X, Y, cost=fn.MSE(), optimizer=fn.SGD(0.05, momentum=0.9), epochs=100, batch_size=50,
            seed=0, backend="numpy")
    assert net.evaluate(X, Y, fn.MSE(), backend="numpy")["loss"] < 1e-6
    # the two layers compose to the affine map 2x + 3
    W = net[0].W @ net[1].W
    b = net[0].b @ net[1].W + net[1].b
    assert_allclose([W[0, 0], b[0]], [2.0, 3.0], atol=1e-3)


SINE_LINEAR_FLOOR = 0.33  # best affine fit of 2 sin(x) + 5 on linspace(-3, 3, 1000): J = 0.3309
SINE_FIT = 0.1            # a 1-2-1 net with a sigmoid/tanh hidden layer gets well below this


def test_seed000_linear_net_cannot_fit_sine():
    X, Y = datasets.sine()
    assert linear_fit_floor(X, Y) > SINE_LINEAR_FLOOR
    net = fn.Sequential(fn.Linear(1, 2), fn.Linear(2, 1), seed=0)
    net.fit(X, Y, cost=fn.MSE(), optimizer=fn.Adam(0.05), epochs=100, batch_size=20, seed=0,
            backend="numpy")
    loss = net.evaluate(X, Y, fn.MSE(), backend="numpy")["loss"]
    assert loss > SINE_LINEAR_FLOOR
    assert loss < SINE_LINEAR_FLOOR * 1.1  # it did train: it reached the best line


@pytest.mark.parametrize("act, seed", [(fn.Sigmoid, 1), (fn.Tanh, 0)])
def test_seed000_nonlinear_hidden_layer_fits_sine(act, seed):
    X, Y = datasets.sine()
    net = fn.Sequential(fn.Linear(1, 2), act(), fn.Linear(2, 1), seed=seed)
    net.fit(X, Y, cost=fn.MSE(), optimizer=fn.Adam(0.05), epochs=100, batch_size=20, seed=0,
            backend="numpy")
    loss = net.evaluate(X, Y, fn.MSE(), backend="numpy")["loss"]
    assert loss < SINE_FIT


def test_seed003_circles_with_momentum():
    # Seed 003: make_circles(factor=0.3, noise=0.1), 2-3-2 net, logistic hidden layer,
    # softmax cross-entropy, 300 full-batch momentum iterations.
    X, y = datasets.circles(100, noise=0.1, factor=0.3, seed=0)
    net = fn.Sequential(fn.Linear(2, 3), fn.Sigmoid(), fn.Linear(3, 2), seed=0)
    h = net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(1.0, momentum=0.9), epochs=300,
                batch_size=len(X), seed=0, backend="numpy")
    acc = net.evaluate(X, y, fn.CrossEntropy(), backend="numpy")["accuracy"]
    assert acc >= 0.99
    assert h["loss"][-1] < 0.2 * h["loss"][0]
    # and on fresh samples from the same distribution
    Xt, yt = datasets.circles(200, noise=0.1, factor=0.3, seed=1)
    assert net.evaluate(Xt, yt, fn.CrossEntropy(), backend="numpy")["accuracy"] >= 0.97


def test_seed004_sigmoid_net_without_biases_learns_equal_bits():
    X, Y = datasets.equal_bits()
    net = fn.Sequential(fn.Linear(3, 4, bias=False), fn.Sigmoid(),
                        fn.Linear(4, 1, bias=False), fn.Sigmoid(), seed=0)
    assert net.n_params == 3 * 4 + 4 * 1  # no biases at all
    # batch gradient descent: the whole data set in every step
    h = net.fit(X, Y, cost=fn.MSE(), optimizer=fn.SGD(1.0), epochs=3000, batch_size=len(X),
                backend="numpy")
    pred = net.predict(X, backend="numpy")
    assert np.array_equal(pred > 0.5, Y > 0.5)
    assert h["loss"][-1] < 0.02


def test_seed004_perceptron_conjunction_with_sign():
    # Seed 004: p1 = sign(x1 - 1), p2 = sign(1 - x2), f = sign(p1 + p2), with the
    # bias folded into the matrices' last row. (The seed prints the first matrix as
    # [[1, 0], [1, -1], [-1, 1]], but the product it states, [x1 - 1, 1 - x2], needs
    # [[1, 0], [0, -1], [-1, 1]], used here.)
    M1 = np.array([[1.0, 0.0], [0.0, -1.0], [-1.0, 1.0]])
    M2 = np.array([[1.0], [1.0], [0.0]])
    net = fn.Sequential(fn.Linear(2, 2), fn.Sign(), fn.Linear(2, 1), fn.Sign(), dtype=np.float64)
    net[0].W[...], net[0].b[...] = M1[:2], M1[2]
    net[2].W[...], net[2].b[...] = M2[:2], M2[2]
    # One point per region: s1 (x1>1, x2>1), s2 (x1<1, x2>1), s3 (x1<1, x2<1), s4 (x1>1, x2<1).
    X = np.array([[2.0, 2.0], [0.0, 2.0], [0.0, 0.0], [2.0, 0.0], [3.0, -1.0], [1.5, 0.5]])
    f = net.predict(X, backend="numpy")[:, 0]
    assert_allclose(f, [-1, -1, -1, 1, 1, 1])
    hidden = fn.Sequential(fn.Linear(2, 2), fn.Sign(), dtype=np.float64)
    hidden[0].W[...], hidden[0].b[...] = M1[:2], M1[2]
    assert_allclose(hidden.predict(X[:4]), [[1, -1], [-1, -1], [-1, 1], [1, 1]])


@pytest.mark.slow
def test_seed002_mnist_784_50_10_sigmoid_mse(mnist):
    """Seed 002 needed 30 epochs for 95.45%; with Xavier init and lr 3 (Nielsen's rate) fastnn
    reaches >= 95% within 3 epochs (about 96% on the numpy backend, ~4 s)."""
    X_train, y_train, X_test, y_test = mnist
    net = fn.Sequential(fn.Linear(784, 50), fn.Sigmoid(), fn.Linear(50, 10), fn.Sigmoid(), seed=0)
    h = net.fit(X_train, y_train, cost=fn.MSE(), optimizer=fn.SGD(3.0), epochs=3, batch_size=10,
                seed=0, validation_data=(X_test, y_test), backend="auto")
    assert len(h["val_accuracy"]) == 3
    assert max(h["val_accuracy"]) >= 0.95
    assert net.evaluate(X_test, y_test, fn.MSE(), backend="numpy")["accuracy"] >= 0.95
