"""The fastnn command: in-process through cli.main, plus one real `python -m fastnn` run."""

import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import fastnn as fn
from fastnn import cli
from fastnn import io as fio

from conftest import ROOT

PNG = b"\x89PNG\r\n\x1a\n"


def run(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def files(tmp_path):
    X, y = fn.datasets.circles(200, noise=0.05, seed=1)
    np.savez(tmp_path / "c.npz", X=X, y=y)
    np.savetxt(tmp_path / "c.csv", np.column_stack([X, y]), delimiter=",", header="x1,x2,label", comments="")
    np.savetxt(tmp_path / "feat.csv", X, delimiter=",")
    Xr = np.random.default_rng(0).normal(size=(100, 3))
    np.savetxt(tmp_path / "r.csv", np.column_stack([Xr, Xr @ [1.0, 2.0, 3.0] + 0.5]), delimiter=",")
    return tmp_path


def test_demo_default_is_circles_and_learns_them(tmp_path, capsys):
    rc, out, _ = run(["demo", "--out", tmp_path / "d"], capsys)
    assert rc == 0
    acc = float(re.search(r"^accuracy: (\d\.\d{4})$", out, re.M).group(1))
    assert acc >= 0.99
    for name in ("boundary.png", "history.png"):
        assert (tmp_path / "d" / "circles" / name).read_bytes().startswith(PNG)


@pytest.mark.parametrize("name, figures, expect", [
    ("linear", ["fit.png", "history.png"], r"y = [-\d.]+ x \+ [-\d.]+"),
    ("sine", ["fit.png", "history.png"], r"tanh"),
    ("xor", ["boundary.png", "history.png"], r"xor 1 1 -> \d"),
])
def test_other_demos(tmp_path, capsys, name, figures, expect):
    rc, out, _ = run(["demo", name, "--epochs", 3, "--out", tmp_path], capsys)
    assert rc == 0 and re.search(expect, out)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # each demo in its own subfolder
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted(figures)
    assert "0.000000" not in out and " 1 epochs" not in out


@pytest.mark.parametrize("optimizer, activation, cls, lr", [
    ("rmsprop", "elu", "RMSprop", 0.01), ("adagrad", "softplus", "Adagrad", 0.01),
    ("adadelta", "gelu", "Adadelta", 1.0), ("adamw", "silu", "AdamW", 1e-3), ("nesterov", "relu6", "SGD", 0.01),
])
def test_train_takes_every_optimizer_and_activation(files, capsys, monkeypatch, optimizer, activation, cls, lr):
    seen = {}
    real_fit = fn.Sequential.fit

    def spy(self, *a, **kw):
        seen["opt"], seen["layers"] = kw.get("optimizer"), [type(layer).__name__ for layer in self.layers]
        return real_fit(self, *a, **kw)
    monkeypatch.setattr(fn.Sequential, "fit", spy)
    rc, out, err = run(["train", "--data", files / "c.csv", "--layers", "2,8,2", "--activation", activation,
                        "--optimizer", optimizer, "--epochs", 2, "--quiet"], capsys)
    assert rc == 0, err
    assert type(seen["opt"]).__name__ == cls and seen["opt"].lr == pytest.approx(lr)  # its own default lr
    act = {"elu": "ELU", "softplus": "Softplus", "gelu": "GELU", "silu": "SiLU", "relu6": "ReLU6"}[activation]
    assert seen["layers"] == ["Linear", act, "Linear"]


def test_train_evaluate_predict_csv(files, capsys):
    model = files / "m.safetensors"
    rc, out, err = run(["train", "--data", files / "c.csv", "--layers", "2,16,2", "--activation", "tanh",
                        "--optimizer", "adam", "--lr", 0.02, "--epochs", 40, "--batch-size", 16,
                        "--val-split", 0.25, "--save", model, "--plot", files / "figs", "--quiet"], capsys)
    assert rc == 0, err
    assert "val_accuracy" in out and "saved the model" in out
    assert (files / "figs" / "history.png").read_bytes().startswith(PNG)
    assert (files / "figs" / "boundary.png").read_bytes().startswith(PNG)
    net = fio.load(model)
    assert [layer.outsize for layer in net.linears] == [16, 2] and fio.info(model)["cost"] == "CrossEntropy"

    rc, out, _ = run(["evaluate", model, "--data", files / "c.npz"], capsys)
    assert rc == 0
    acc = float(re.search(r"^accuracy: (\d\.\d{4})$", out, re.M).group(1))
    loss = float(re.search(r"^loss: (\d+\.\d{4})$", out, re.M).group(1))
    X, y = fn.datasets.circles(200, noise=0.05, seed=1)
    ref = net.evaluate(X, y, fn.CrossEntropy())
    assert acc == pytest.approx(ref["accuracy"], abs=1e-4) and acc > 0.9
    assert loss == pytest.approx(ref["loss"], abs=1e-4)

    for data in ("c.csv", "feat.csv"):  # with and without the target column
        rc, out, _ = run(["predict", model, "--data", files / data, "--out", files / "p.csv"], capsys)
        assert rc == 0
        table = np.loadtxt(files / "p.csv", delimiter=",", skiprows=1)
        assert table.shape == (200, 3)
        np.testing.assert_array_equal(table[:, 0], net.predict(X).argmax(axis=1))
        np.testing.assert_allclose(table[:, 1:].sum(axis=1), 1, rtol=1e-6)
    rc, out, _ = run(["predict", model, "--data", files / "c.npz"], capsys)
    assert rc == 0 and out.splitlines()[0] == "class,p_0,p_1" and len(out.splitlines()) == 201


def test_sparse_npz_trains_sparse(tmp_path, capsys, monkeypatch):
    """A scipy.sparse.save_npz file is trained as CSR (never densified), targets from --targets."""
    import scipy.sparse as sp

    X = sp.random(300, 400, density=0.02, format="csr", random_state=1, dtype=np.float32)
    y = (np.asarray(X[:, :200].sum(axis=1)).ravel() > np.asarray(X[:, 200:].sum(axis=1)).ravel()).astype(int)
    sp.save_npz(tmp_path / "X.npz", X)
    np.save(tmp_path / "y.npy", y)
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    seen = []
    real_fit = fn.Sequential.fit

    def spy(self, X, *a, **kw):
        seen.append(type(X).__module__)
        return real_fit(self, X, *a, **kw)

    monkeypatch.setattr(fn.Sequential, "fit", spy)
    model = tmp_path / "m.safetensors"
    rc, out, err = run(["train", "--data", tmp_path / "X.npz", "--targets", tmp_path / "y.npy", "--epochs", 3,
                        "--val-split", 0.2, "--save", model, "--quiet", "--backend", "numpy"], capsys)
    assert rc == 0, err
    assert seen and seen[0].startswith("scipy.sparse") and "trained 3 epochs" in out
    rc, out, _ = run(["evaluate", model, "--data", tmp_path / "X.npz", "--targets", tmp_path / "y.csv"], capsys)
    assert rc == 0 and re.search(r"^accuracy: \d\.\d{4}$", out, re.M)
    rc, out, _ = run(["predict", model, "--data", tmp_path / "X.npz"], capsys)
    assert rc == 0 and len(out.splitlines()) == 301
    rc, _, err = run(["train", "--data", tmp_path / "X.npz", "--quiet"], capsys)
    assert rc == 2 and "name their file with --targets" in err
    rc, _, err = run(["train", "--data", tmp_path / "X.npz", "--targets", tmp_path / "nope.npy", "--quiet"], capsys)
    assert rc == 2 and "--targets: file not found" in err
    np.save(tmp_path / "short.npy", y[:10])
    rc, _, err = run(["train", "--data", tmp_path / "X.npz", "--targets", tmp_path / "short.npy", "--quiet"], capsys)
    assert rc == 2 and "300 input rows but 10 targets" in err


def test_plural():
    from fastnn.cli._common import plural

    assert [plural(1, "epoch"), plural(3, "epoch"), plural(2, "batch"), plural(0, "sample")] == [
        "1 epoch", "3 epochs", "2 batches", "0 samples"]


def test_train_regression_defaults(files, capsys):
    model = files / "r.safetensors"
    rc, out, err = run(["train", "--data", files / "r.csv", "--epochs", 30, "--lr", 0.01, "--save", model],
                       capsys)
    assert rc == 0, err
    assert "epoch 30/30" in out  # not a terminal: one line per epoch instead of a bar
    assert fio.info(model)["cost"] == "MSE" and fio.load(model).insize == 3
    rc, out, _ = run(["evaluate", model, "--data", files / "r.csv"], capsys)
    assert rc == 0 and "loss: " in out and "accuracy" not in out


@pytest.mark.parametrize("argv, message", [
    ([], "choose a command"),
    (["train"], "--data"),
    (["train", "--data", "{d}/nope.csv"], "not found"),
    (["train", "--data", "{d}/c.csv", "--layers", "3,8,2"], "2 features"),
    (["train", "--data", "{d}/c.csv", "--layers", "2,x,2"], "--layers"),
    (["train", "--data", "{d}/c.csv", "--layers", "2,8,1", "--cost", "ce"], "labels"),
    (["train", "--data", "{d}/r.csv", "--layers", "3,8,2", "--cost", "mse"], "column"),
    (["train", "--data", "{d}/c.csv", "--optimizer", "lbfgs"], "invalid choice"),
    (["train", "--data", "{d}/c.csv", "--lr", "-1"], "positive"),
    (["train", "--data", "{d}/c.csv", "--epochs", "0"], "--epochs"),
    (["train", "--data", "{d}/c.csv", "--val-split", "1.5"], "--val-split"),
    (["train", "--data", "{d}/c.txt"], ".npz"),
    (["train", "--data", "{d}/r.csv", "--cost", "bce"], "BCE targets"),
    (["train", "--data", "{d}/c.csv", "--save", "{d}/no/dir/m.safetensors"], "does not exist"),
    (["evaluate", "{d}/nope.safetensors", "--data", "{d}/c.csv"], "not found"),
    (["evaluate", "{d}/c.csv", "--data", "{d}/c.csv"], "c.csv"),
    (["demo", "bogus"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
])
def test_user_mistakes_give_one_line_and_exit_2(files, capsys, argv, message):
    rc, out, err = run([a.format(d=files) for a in argv], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("fastnn")
    assert message in lines[0]


def test_model_that_does_not_fit_the_data(files, capsys):
    model = files / "m.safetensors"
    fn.Sequential(fn.Linear(2, 2), seed=0).save(model)
    rc, _, err = run(["evaluate", model, "--data", files / "r.csv"], capsys)
    assert rc == 2 and "takes 2 inputs" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["demo", "train", "evaluate", "predict", "info", None])
def test_help(capsys, command):
    rc, out, _ = run(([command] if command else []) + ["--help"], capsys)
    assert rc == 0 and "usage: fastnn" in out


def test_info(capsys):
    rc, out, _ = run(["info"], capsys)
    assert rc == 0
    assert f"fastnn {fn.__version__}" in out
    assert re.search(r"^  numpy +available", out, re.M)
    for word in ("threads:", "GPU:", "numba cache dir:"):
        assert word in out
    for name, why in fn.available_backends().items():
        assert (why or "available") in out


def test_bench_forwards_its_arguments(capsys, monkeypatch):
    seen = []
    monkeypatch.setitem(sys.modules, "fastnn.bench",
                        types.SimpleNamespace(main=lambda argv, prog: seen.append((argv, prog)) or 0))
    assert cli.main(["bench", "--quick", "--help"]) == 0
    assert seen == [(["--quick", "--help"], "fastnn bench")]


def test_bench_help_names_itself(capsys):
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fastnn bench") and "python -m fastnn.bench" not in out.split("\n")[0]


def test_bench_missing_is_a_clear_message(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastnn.bench", None)  # makes the import fail
    rc, _, err = run(["bench"], capsys)
    assert rc == 1 and "not available" in err and "Traceback" not in err


def test_python_dash_m_fastnn_demo(tmp_path):
    """The real entry point in a fresh interpreter, as a user runs it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "fastnn", "demo", "--out", str(tmp_path / "out")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^accuracy: (0\.99\d\d|1\.0000)$", proc.stdout, re.M), proc.stdout
    assert (tmp_path / "out" / "circles" / "boundary.png").read_bytes().startswith(PNG)
    bad = subprocess.run([sys.executable, "-m", "fastnn", "train", "--data", "missing.csv"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
