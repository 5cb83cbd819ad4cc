"""fn.gradcheck on random small architectures, and that it raises on a broken backward."""

import numpy as np
import pytest

import fastnn as fn
from conftest import GRADCHECK_TOL
from fastnn.kernels import reference as ref, reference_costs

HIDDEN_ACTS = [fn.Identity, fn.Sigmoid, fn.Tanh, fn.ReLU, lambda: fn.LeakyReLU(0.1)]


def random_case(seed):
    """A random plain MLP with a random cost and matching data (float32 net)."""
    rng = np.random.default_rng(seed)
    cost_name = ("mse", "ce", "bce")[seed % 3]
    n_hidden = int(rng.integers(0, 3))
    sizes = [int(rng.integers(1, 5))] + [int(rng.integers(1, 6)) for _ in range(n_hidden)]
    sizes.append(int(rng.integers(2, 4)) if cost_name == "ce" else int(rng.integers(1, 4)))
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(fn.Linear(sizes[i], sizes[i + 1], bias=bool(rng.integers(0, 4)),
                                init=str(rng.choice(["xavier", "he", "lecun"]))))
        if i < len(sizes) - 2:
            layers.append(HIDDEN_ACTS[int(rng.integers(len(HIDDEN_ACTS)))]())
    if cost_name == "bce":
        layers.append(fn.Sigmoid())
    elif cost_name == "mse" and rng.integers(0, 2):
        layers.append(fn.Softmax() if sizes[-1] > 1 and rng.integers(0, 2) else fn.Tanh())
    net = fn.Sequential(*layers, seed=seed)
    n = int(rng.integers(1, 7))
    X = rng.normal(size=(n, sizes[0]))
    k = sizes[-1]
    if cost_name == "mse":
        Y, cost = rng.normal(size=(n, k)), fn.MSE()
    elif cost_name == "ce":
        Y, cost = rng.integers(0, k, size=n), fn.CrossEntropy()
    else:
        Y, cost = (rng.uniform(size=(n, k)) > 0.5).astype(np.float64), fn.BCE()
    return net, X, Y, cost


@pytest.mark.parametrize("seed", range(15))
def test_gradcheck_random_architectures(seed):
    net, X, Y, cost = random_case(seed)
    before = net.params.copy()
    err = fn.gradcheck(net, X, Y, cost, tol=GRADCHECK_TOL)
    assert isinstance(err, float) and 0 <= err <= GRADCHECK_TOL
    # gradcheck works on a float64 copy: the network itself is untouched
    assert net.dtype == np.float32 and net.params.dtype == np.float32
    assert np.array_equal(net.params, before)


def test_gradcheck_max_params_subset():
    net, X, Y, cost = random_case(4)
    assert fn.gradcheck(net, X, Y, cost, max_params=3, seed=1) <= GRADCHECK_TOL


def _circles_case():
    X, y = fn.datasets.circles(20, seed=0)
    net = fn.Sequential(fn.Linear(2, 3), fn.Sigmoid(), fn.Linear(3, 2), seed=0)
    return net, X, y, fn.CrossEntropy()


@pytest.mark.parametrize("kernel, broken", [
    ("sigmoid_backward", lambda y, dy: dy * y),                       # forgot (1 - y)
    ("linear_backward_weight", lambda x, dy: 1.01 * (x.T @ dy)),      # 1% off
    ("linear_backward_bias", lambda dy: dy.mean(axis=0)),             # mean instead of sum
    ("linear_backward_input", lambda dy, W: dy @ W.T * 0.5),
])
def test_gradcheck_raises_on_broken_backward(monkeypatch, kernel, broken):
    net, X, y, cost = _circles_case()
    assert fn.gradcheck(net, X, y, cost) <= GRADCHECK_TOL  # sane before breaking it
    monkeypatch.setattr(ref, kernel, broken)
    with pytest.raises(fn.GradientCheckError, match="gradient check failed"):
        fn.gradcheck(net, X, y, cost)


def test_gradcheck_raises_on_broken_cost_grad(monkeypatch):
    net, X, y, cost = _circles_case()
    # (cost_grad dispatches through reference_costs, where the costs live)
    monkeypatch.setattr(reference_costs, "cross_entropy_grad", lambda s, t: 2 * (ref.softmax_forward(s) - np.eye(2)[t]) / len(s))
    with pytest.raises(AssertionError):  # GradientCheckError is an AssertionError
        fn.gradcheck(net, X, y, cost)
