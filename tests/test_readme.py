"""The README's Python examples run and do what the README says."""

import os
import re

import pytest

from conftest import ROOT, mnist_dir


def _python_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _block(startswith):
    for b in _python_blocks():
        if b.lstrip().startswith(startswith):
            return b
    raise AssertionError(f"README has no python block starting with {startswith!r}")


def test_quickstart_runs_and_classifies_circles(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(_block("import fastnn as fn\n\nX, y = fn.datasets.circles"), "README-quickstart", "exec"), ns)
    assert ns["net"].evaluate(ns["X"], ns["y"], ns["fn"].CrossEntropy())["accuracy"] >= 0.99
    assert (tmp_path / "circles.safetensors").is_file()
    assert (ns["net2"].params == ns["net"].params).all()


def test_seed_examples_run(monkeypatch, capsys):
    code = _block("import numpy as np\nimport fastnn as fn\nfrom fastnn import datasets")
    d = mnist_dir()
    if d is None:
        code = code.split("# Seed 002")[0]  # the rest needs MNIST, absent here
    else:
        monkeypatch.setenv("FASTNN_DATA", str(d))
    ns = {}
    exec(compile(code, "README-seeds", "exec"), ns)
    W, b = ns["neuron"][0].W[0, 0], ns["neuron"][0].b[0]
    assert abs(W - 2) < 1e-3 and abs(b - 3) < 1e-3
    if d is not None:
        assert max(ns["hist"].history["val_accuracy"]) >= 0.95
