"""Every reference op, whole-network gradients and optimizer steps against torch
autograd / torch.optim in float64 (torch is an independent oracle; skipped without it)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn
from conftest import TORCH_RTOL64, tol
from fastnn.backends import get_ops
from fastnn.kernels import reference as ref

T64 = tol(np.float64)
SLOPE = 0.05


def tt(torch, a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def npy(t):
    return t.detach().numpy()


# ------------------------------------------------------------------------ single ops


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 4), (9, 7, 2)])
def test_linear_ops(torch, rng, shape):
    B, n_in, n_out = shape
    x, W, b, dy = (rng.normal(size=s) for s in ((B, n_in), (n_in, n_out), (n_out,), (B, n_out)))
    tx, tW, tb = tt(torch, x, True), tt(torch, W, True), tt(torch, b, True)
    ty = tx @ tW + tb
    ty.backward(tt(torch, dy))
    assert_allclose(ref.linear_forward(x, W, b), npy(ty), **T64)
    assert_allclose(ref.linear_backward_input(dy, W), npy(tx.grad), **T64)
    assert_allclose(ref.linear_backward_weight(x, dy), npy(tW.grad), **T64)
    assert_allclose(ref.linear_backward_bias(dy), npy(tb.grad), **T64)


def _torch_act(torch, name):
    F = torch.nn.functional
    return {
        "identity": lambda z: z * 1,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, SLOPE),
        "softmax": lambda z: torch.softmax(z, dim=1),
    }[name]


ACT_CODES = {"identity": ref.IDENTITY, "sigmoid": ref.SIGMOID, "tanh": ref.TANH, "relu": ref.RELU,
             "leaky_relu": ref.LEAKY_RELU, "softmax": ref.SOFTMAX}


@pytest.mark.parametrize("name", list(ACT_CODES))
def test_activation_ops(torch, rng, name):
    x = rng.normal(size=(6, 4)) * 3
    x[np.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink
    dy = rng.normal(size=x.shape)
    tx = tt(torch, x, True)
    ty = _torch_act(torch, name)(tx)
    ty.backward(tt(torch, dy))
    code = ACT_CODES[name]
    y = ref.activation_forward(code, x, SLOPE)
    assert_allclose(y, npy(ty), **T64)
    assert_allclose(ref.activation_backward(code, y, dy, SLOPE), npy(tx.grad), **T64)


def test_mse_op(torch, rng):
    p, t = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    tp = tt(torch, p, True)
    loss = 0.5 * ((tp - tt(torch, t)) ** 2).sum() / 7
    loss.backward()
    assert ref.mse_value(p, t) == pytest.approx(loss.item(), rel=1e-12)
    assert_allclose(ref.mse_grad(p, t), npy(tp.grad), **T64)


@pytest.mark.parametrize("onehot", [False, True])
def test_cross_entropy_op(torch, rng, onehot):
    s = rng.normal(size=(8, 5)) * 4
    labels = rng.integers(0, 5, size=8)
    target = np.eye(5)[labels] if onehot else labels
    ts = tt(torch, s, True)
    loss = torch.nn.functional.cross_entropy(ts, torch.tensor(labels))
    loss.backward()
    assert ref.cross_entropy_value(s, target) == pytest.approx(loss.item(), rel=1e-12)
    assert_allclose(ref.cross_entropy_grad(s, target), npy(ts.grad), **T64)


def test_bce_ops(torch, rng):
    z = rng.normal(size=(6, 3)) * 2
    t = rng.uniform(size=(6, 3))
    p = ref.sigmoid_forward(z)
    tp = tt(torch, p, True)
    loss = torch.nn.functional.binary_cross_entropy(tp, tt(torch, t), reduction="sum") / 6
    loss.backward()
    assert ref.bce_value(p, t) == pytest.approx(loss.item(), rel=1e-12)
    assert_allclose(ref.bce_grad(p, t), npy(tp.grad), rtol=1e-9, atol=1e-12)
    tz = tt(torch, z, True)
    loss2 = torch.nn.functional.binary_cross_entropy_with_logits(tz, tt(torch, t), reduction="sum") / 6
    loss2.backward()
    assert_allclose(ref.bce_sigmoid_delta(p, t), npy(tz.grad), **T64)


# ------------------------------------------------------------------ whole networks

ACT_LAYERS = {
    "identity": fn.Identity, "sigmoid": fn.Sigmoid, "tanh": fn.Tanh, "relu": fn.ReLU,
    "leaky_relu": lambda: fn.LeakyReLU(SLOPE),
}


def random_net(rng, cost_name, seed):
    """A random plain MLP (float64) plus a description to rebuild it in torch."""
    n_hidden = int(rng.integers(0, 3))
    sizes = [int(rng.integers(1, 6))] + [int(rng.integers(1, 7)) for _ in range(n_hidden)]
    sizes.append(int(rng.integers(2, 5)) if cost_name == "ce" else int(rng.integers(1, 4)))
    layers, acts = [], []
    names = list(ACT_LAYERS)
    for i in range(len(sizes) - 1):
        bias = bool(rng.integers(0, 4))  # mostly with bias, sometimes without
        layers.append(fn.Linear(sizes[i], sizes[i + 1], bias=bias))
        last = i == len(sizes) - 2
        if last:
            act = {"mse": str(rng.choice(names + ["softmax"])), "ce": None, "bce": "sigmoid"}[cost_name]
        else:
            act = str(rng.choice(names))
        if act is not None:
            layers.append(ACT_LAYERS[act]() if act != "softmax" else fn.Softmax())
        acts.append(act)
    net = fn.Sequential(*layers, seed=seed, dtype=np.float64)
    return net, sizes, acts


def torch_params(torch, net):
    return [(tt(torch, lin.W, True), tt(torch, lin.b, True) if lin.bias else None) for lin in net.linears]


def torch_forward(torch, params, acts, x):
    for (W, b), act in zip(params, acts):
        x = x @ W
        if b is not None:
            x = x + b
        if act is not None:
            x = _torch_act(torch, act)(x)
    return x


def torch_loss(torch, cost_name, out, Y):
    F = torch.nn.functional
    n = out.shape[0]
    if cost_name == "mse":
        return 0.5 * ((out - tt(torch, Y)) ** 2).sum() / n
    if cost_name == "ce":
        return F.cross_entropy(out, torch.tensor(Y))
    return F.binary_cross_entropy(out, tt(torch, Y), reduction="sum") / n


def make_data(rng, cost_name, sizes, n):
    X = rng.normal(size=(n, sizes[0]))
    k = sizes[-1]
    if cost_name == "mse":
        Y = rng.normal(size=(n, k))
    elif cost_name == "ce":
        Y = rng.integers(0, k, size=n)
    else:
        Y = (rng.uniform(size=(n, k)) > 0.5).astype(np.float64)
    return X, Y


COSTS = {"mse": fn.MSE, "ce": fn.CrossEntropy, "bce": fn.BCE}


def flat_torch_grads(net, params):
    """torch grads in the network's flat layout [W_1..W_k | b_1..b_k]."""
    ws = [npy(W.grad).ravel() for W, _ in params]
    bs = [npy(b.grad) for _, b in params if b is not None]
    return np.concatenate(ws + bs)


@pytest.mark.parametrize("cost_name", list(COSTS))
@pytest.mark.parametrize("seed", range(6))
def test_network_gradients_match_torch(torch, cost_name, seed):
    rng = np.random.default_rng(seed)
    net, sizes, acts = random_net(rng, cost_name, seed)
    cost = COSTS[cost_name]()
    X, Y = make_data(rng, cost_name, sizes, n=int(rng.integers(1, 9)))
    T = cost.prepare(Y, net.outsize, np.float64).T

    params = torch_params(torch, net)
    tx = tt(torch, X, True)
    out_t = torch_forward(torch, params, acts, tx)
    loss_t = torch_loss(torch, cost_name, out_t, Y)
    loss_t.backward()

    out = net.forward(X, backend="numpy")
    assert_allclose(out, npy(out_t), **T64)
    assert cost.value(out, T) == pytest.approx(loss_t.item(), rel=1e-10, abs=1e-12)
    dx = net.backward(cost.grad(out, T), backend="numpy")
    assert_allclose(dx, npy(tx.grad), rtol=1e-8, atol=1e-11)
    assert_allclose(net.grads, flat_torch_grads(net, params), rtol=1e-8, atol=1e-11)
    # per-layer views agree with the flat buffer
    for lin, (W, b) in zip(net.linears, params):
        assert_allclose(lin.dW, npy(W.grad), rtol=1e-8, atol=1e-11)
        if b is not None:
            assert_allclose(lin.db, npy(b.grad), rtol=1e-8, atol=1e-11)

    if cost.fuses_with(net.layers[-1]):  # the trainers' fused BCE+Sigmoid path
        net.grads[...] = 0
        delta = cost.output_delta(get_ops("numpy"), out, T, net.layers[-1])
        net.backward(delta, backend="numpy", skip_last=True)
        assert_allclose(net.grads, flat_torch_grads(net, params), rtol=1e-8, atol=1e-11)


# ------------------------------------------------------------------- optimizers


def torch_optimizer(torch, kind, params, lr, wd):
    weights = [W for W, _ in params]
    biases = [b for _, b in params if b is not None]
    groups = [{"params": weights, "weight_decay": wd}, {"params": biases, "weight_decay": 0.0}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if kind == "momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    if kind == "nesterov":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.99), eps=1e-8)


def fastnn_optimizer(kind, lr, wd):
    if kind == "adam":
        return fn.Adam(lr, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=wd)
    return fn.SGD(lr, momentum=0.0 if kind == "sgd" else 0.9, nesterov=kind == "nesterov", weight_decay=wd)


def torch_flat_params(params):
    ws = [npy(W).ravel() for W, _ in params]
    bs = [npy(b) for _, b in params if b is not None]
    return np.concatenate(ws + bs)


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("cost_name", ["mse", "ce", "bce"])
def test_training_steps_match_torch_optim(torch, kind, cost_name):
    """Several fit epochs (minibatches, short last batch, no shuffle) == torch.optim steps."""
    rng = np.random.default_rng(7)
    lr = 0.05 if kind == "adam" else 0.3
    wd = 0.01
    sizes, acts = [3, 5, 4, 3], ["tanh", "sigmoid", {"mse": "identity", "ce": None, "bce": "sigmoid"}[cost_name]]
    layers = [fn.Linear(3, 5), fn.Tanh(), fn.Linear(5, 4, bias=False), fn.Sigmoid(), fn.Linear(4, 3)]
    if acts[-1] == "identity":
        layers.append(fn.Identity())
    elif acts[-1] == "sigmoid":
        layers.append(fn.Sigmoid())
    net = fn.Sequential(*layers, seed=3, dtype=np.float64)
    X, Y = make_data(rng, cost_name, sizes, n=11)
    params = torch_params(torch, net)
    topt = torch_optimizer(torch, kind, params, lr, wd)
    opt = fastnn_optimizer(kind, lr, wd)

    bs, epochs = 4, 5  # batches of 4, 4, 3
    net.fit(X, Y, cost=COSTS[cost_name](), optimizer=opt, epochs=epochs, batch_size=bs,
            shuffle=False, backend="numpy")
    for _ in range(epochs):
        for s in range(0, len(X), bs):
            topt.zero_grad()
            out = torch_forward(torch, params, acts, tt(torch, X[s:s + bs]))
            torch_loss(torch, cost_name, out, Y[s:s + bs]).backward()
            topt.step()
    assert_allclose(net.params, torch_flat_params(params), rtol=TORCH_RTOL64, atol=1e-12)
    if kind in ("momentum", "nesterov"):
        # seed 003's v = m*v - lr*g equals torch's buffer b = m*b + g as v = -lr*b (constant lr)
        bufs = [topt.state[W]["momentum_buffer"] for W, _ in params]
        bufs += [topt.state[b]["momentum_buffer"] for _, b in params if b is not None]
        tv = np.concatenate([npy(b).ravel() for b in bufs])
        assert_allclose(opt.velocity, -lr * tv, rtol=TORCH_RTOL64, atol=1e-12)
    if kind == "adam":
        assert opt.t == epochs * 3
