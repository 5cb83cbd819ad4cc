"""PyTorch interoperability (fastnn.from_torch, net.to_torch, fastnn.torch.fit) and ONNX export
(net.to_onnx, ``fastnn export``) checked with onnxruntime."""

import importlib.util

import numpy as np
import pytest
from numpy.testing import assert_allclose

import fastnn as fn

HAS_ONNX = importlib.util.find_spec("onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="onnx and onnxruntime are not installed "
                                "(pip install 'fastnn-numba[onnx]' onnxruntime)")


def _torch_module(torch, dtype):
    nn = torch.nn
    m = nn.Sequential(nn.Linear(5, 8), nn.GELU(), nn.Dropout(0.3), nn.Linear(8, 8, bias=False), nn.ELU(0.5),
                      nn.Linear(8, 7), nn.Softplus(beta=2.0), nn.Linear(7, 6), nn.SiLU(), nn.Linear(6, 6),
                      nn.ReLU6(), nn.Linear(6, 6), nn.LeakyReLU(0.1), nn.Linear(6, 6), nn.GELU(approximate="tanh"),
                      nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 4), nn.ReLU(),
                      nn.Linear(4, 3), nn.Identity(), nn.Softmax(dim=-1))
    return m.to(dtype)


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_round_trip_is_bit_identical_and_outputs_agree(torch, dt):
    tdt = getattr(torch, dt)
    torch.manual_seed(0)
    m = _torch_module(torch, tdt).eval()
    net = fn.from_torch(m)
    assert net.dtype == np.dtype(dt) and not net.training
    assert [type(x).__name__ for x in net.layers][:4] == ["Linear", "GELU", "Dropout", "Linear"]
    assert np.array_equal(net[0].W, m[0].weight.detach().numpy().T)  # W is (in, out)
    back = net.to_torch()
    assert not back.training
    for (ka, a), (kb, b) in zip(m.state_dict().items(), back.state_dict().items()):
        assert ka == kb and a.dtype == b.dtype and torch.equal(a, b)
    X = np.random.default_rng(1).normal(size=(20, 5)).astype(dt)
    want = m(torch.from_numpy(X)).detach().numpy()
    assert_allclose(net.predict(X), want, rtol=1e-6, atol=1e-6 if dt == "float32" else 1e-12)
    assert_allclose(back(torch.from_numpy(X)).detach().numpy(), want, rtol=0, atol=0)


def test_unsupported_layers_are_named(torch):
    nn = torch.nn
    with pytest.raises(ValueError, match=r"layer 1 \(Conv1d"):
        fn.from_torch(nn.Sequential(nn.Linear(3, 3), nn.Conv1d(1, 1, 1)))
    with pytest.raises(ValueError, match="negative slope"):
        fn.from_torch(nn.Sequential(nn.Linear(3, 3), nn.LeakyReLU(-0.1)))
    with pytest.raises(ValueError, match="threshold"):
        fn.from_torch(nn.Sequential(nn.Linear(3, 3), nn.Softplus(threshold=5)))
    with pytest.raises(ValueError, match="torch.nn.Sequential"):
        fn.from_torch(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="Sign"):
        fn.Sequential(fn.Linear(2, 2), fn.Sign()).to_torch()


@pytest.mark.parametrize("loss, optimizer", [("ce", "adam"), ("mse", "momentum"), ("ce", "rmsprop"),
                                             ("ce", "adamw"), ("bce", "adagrad"), ("mse", "adadelta")])
def test_fit_a_torch_module(torch, loss, optimizer):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    last = [torch.nn.Sigmoid()] if loss == "bce" else []
    k = 1 if loss == "bce" else 2
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, k), *last)
    Y = y.reshape(-1, 1).astype(np.float32) if loss == "bce" else y
    before = [p.detach().clone() for p in m.parameters()]
    net = fn.from_torch(m)
    hist = fn.torch.fit(m, torch.from_numpy(X), torch.from_numpy(Y), loss=loss, optimizer=optimizer, epochs=3,
                        batch_size=16, seed=0, backend="numpy")
    assert len(hist.history["loss"]) == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))
    # the same training on fastnn's own network gives the same weights, now in the module
    opt = fn.optimizers.get_optimizer(optimizer)
    net.fit(X, Y, fn.costs.get_cost(loss), opt, epochs=3, batch_size=16, seed=0, backend="numpy")
    assert np.array_equal(fn.from_torch(m).params, net.params)


def test_fit_with_a_learning_rate_and_objects(torch):
    m = torch.nn.Sequential(torch.nn.Linear(3, 2))
    X, y = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2
    fn.torch.fit(m, X, y, loss=fn.CrossEntropy(), optimizer="sgd", lr=0.5, epochs=1, batch_size=5, seed=0)
    fn.torch.fit(m, X, y, loss="ce", optimizer=fn.RMSprop(0.01), epochs=1, batch_size=5, seed=0)
    with pytest.raises(ValueError, match="by name"):
        fn.torch.fit(m, X, y, optimizer=fn.SGD(0.1), lr=0.1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        fn.torch.fit(m, X, y, optimizer="lbfgs")


# ---------------------------------------------------------------------------- ONNX

ONNX_ACTS = {"sigmoid": fn.Sigmoid, "tanh": fn.Tanh, "relu": fn.ReLU, "leaky_relu": lambda: fn.LeakyReLU(0.2),
             "identity": fn.Identity, "softmax": fn.Softmax, "sign": fn.Sign, "elu": lambda: fn.ELU(0.6),
             "softplus": fn.Softplus, "softplus-beta": lambda: fn.Softplus(3.0), "gelu": fn.GELU,
             "gelu-tanh": lambda: fn.GELU("tanh"), "silu": fn.SiLU, "relu6": fn.ReLU6}


def _run_onnx(path, X):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape for i in sess.get_inputs()][0][0] == "batch"  # dynamic batch dimension
    return sess.run(None, {"input": X})[0]


@needs_onnx
@pytest.mark.parametrize("act", list(ONNX_ACTS))
@pytest.mark.parametrize("opset", [None, 20])
def test_onnx_equals_predict(tmp_path, act, opset):
    import onnx

    net = fn.Sequential(fn.Linear(6, 9), ONNX_ACTS[act](), fn.Dropout(0.5), fn.Linear(9, 4, bias=False),
                        ONNX_ACTS[act](), fn.Linear(4, 3), seed=1)
    path = tmp_path / "m.onnx"
    net.to_onnx(path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)))
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert "Dropout" not in ops and {"Gemm", "MatMul"} <= ops
    if act == "gelu":
        assert ("Gelu" in ops) == (opset == 20) and ("Erf" in ops) == (opset != 20)
    for n in (1, 37):  # any batch size
        X = np.random.default_rng(n).normal(size=(n, 6)).astype(np.float32) * 3
        assert_allclose(_run_onnx(path, X), net.predict(X), rtol=1e-5, atol=1e-5)


@needs_onnx
def test_onnx_softmax_and_float64(tmp_path):
    from fastnn import softmax

    net = fn.Sequential(fn.Linear(4, 5), fn.GELU(), fn.Linear(5, 3), seed=2)
    net.to_onnx(tmp_path / "p.onnx", softmax=True)
    X = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    assert_allclose(_run_onnx(tmp_path / "p.onnx", X), softmax(net.predict(X)), rtol=1e-5, atol=1e-6)
    n64 = fn.Sequential(fn.Linear(4, 5), fn.Tanh(), fn.Linear(5, 3), seed=2, dtype=np.float64)
    n64.to_onnx(tmp_path / "d.onnx")
    assert_allclose(_run_onnx(tmp_path / "d.onnx", X.astype(np.float64)), n64.predict(X), rtol=1e-12)
    with pytest.raises(ValueError, match="opset 13"):
        net.to_onnx(tmp_path / "x.onnx", opset=11)


@needs_onnx
def test_cli_export(tmp_path, capsys):
    from fastnn.cli import main

    net = fn.Sequential(fn.Linear(4, 8), fn.SiLU(), fn.Dropout(0.1), fn.Linear(8, 3), seed=0)
    net.save(tmp_path / "m.safetensors")
    assert main(["export", str(tmp_path / "m.safetensors"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert_allclose(_run_onnx(tmp_path / "m.onnx", X), net.predict(X), rtol=1e-5, atol=1e-6)
    assert main(["export", str(tmp_path / "missing.safetensors"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "model file not found" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "m.safetensors"), "--onnx", str(tmp_path / "no" / "x.onnx")]) == 2
