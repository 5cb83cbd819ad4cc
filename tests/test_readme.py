"""The README runs top to bottom, as written.

Every ```python block runs in order, in one namespace, in a temporary directory; every
``$ `` line of the ```console blocks runs as a command there too. MNIST is the real one when
the tests can find it, else a small learnable stand-in written as IDX files (the examples'
numbers then differ, the code paths do not). Two substitutions only, both for hardware or
services a test machine lacks: ``backend="cuda"`` trains on numba when no GPU is present, and
the Dask block's remote scheduler becomes an in-process local cluster.
"""

import gzip
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, mnist_dir

README = (ROOT / "README.md").read_text()


def _blocks(lang):
    """(line number, text) of every fenced block of ``lang``, in README order."""
    out = []
    for m in re.finditer(r"^```" + lang + r"\n(.*?)^```", README, flags=re.S | re.M):
        out.append((README[:m.start()].count("\n") + 2, m.group(1)))
    return out


def _idx_gz(path, magic, array):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _write_small_mnist(folder, n_train=3000, n_test=500, seed=0):
    """Four IDX files shaped like MNIST's: class k lights a 6x6 square at its own place, plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, size=(n, 28, 28))
        for i, k in enumerate(labels):
            r, c = 3 + 8 * (k // 4), 2 + 6 * (k % 4)
            images[i, r:r + 6, c:c + 6] = rng.integers(180, 256, size=(6, 6))
        _idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", 2051, images)
        _idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", 2049, labels)
    return folder


@pytest.fixture
def readme_env(tmp_path, monkeypatch):
    """A working directory and an MNIST folder: the real one if found, else the small stand-in."""
    real = mnist_dir()
    data = real if real is not None else _write_small_mnist(tmp_path / "mnist")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("FASTNN_DATA", str(data))
    return work, real is not None


def _cuda_works():
    import fastnn as fn
    return fn.available_backends()["cuda"] is None   # name -> None, or why it is unavailable


def _adapt(code):
    if 'backend="cuda"' in code and not _cuda_works():
        code = code.replace('backend="cuda"', 'backend="numba"')
    return code.replace('Client("tcp://scheduler:8786")',
                        "Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None)")


def test_every_python_block_runs_in_order(readme_env, capsys):
    work, real_mnist = readme_env
    blocks = _blocks("python")
    assert len(blocks) == README.count("```python") >= 10, "a python block the regex missed, or lost examples"
    ns = {"__name__": "__readme__"}
    printed = []
    for line, code in blocks:
        try:
            exec(compile(_adapt(code), f"README.md:{line}", "exec"), ns)
        except Exception as exc:
            raise AssertionError(f"the README's python block at line {line} failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
        printed.append(capsys.readouterr().out)

    fn = ns["fn"]
    # Quickstart
    assert ns["net2"] is not None and (work / "circles.safetensors").is_file()
    # seeds: the printed numbers are the ones in the comments
    seeds = next(out for (line, code), out in zip(blocks, printed) if "# Seed 001" in code)
    assert "[[2.]] [3.]" in seeds and "[] 0.33" in seeds and "True" in seeds
    if real_mnist:
        val = re.findall(r"^\[(0\.\d+), (0\.\d+), (0\.\d+)\]$", seeds, flags=re.M)   # seed 002's print
        assert len(val) == 1 and float(val[0][-1]) >= 0.95, seeds
    # every file the examples say they write
    for name in ("best.safetensors", "history.png", "boundary.png", "fit.png", "weights.png",
                 "confusion.png", "model.safetensors", "model.onnx"):
        assert (work / name).stat().st_size > 0, name
    assert ns["pred"].shape == (ns["X_test"].shape[0], 10)
    assert isinstance(ns["search"].best_params_, dict)
    assert ns["clf"].score(ns["X_test"], ns["y_test"]) > (0.9 if real_mnist else 0.5)
    assert fn.load("model.safetensors").params.shape == ns["mnist_net"].params.shape


def _commands():
    """Every ``$ `` command of the console blocks (continued lines joined) with the output shown."""
    out = []
    for line, text in _blocks("console"):
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            cmd = lines[i][2:]
            while cmd.endswith("\\"):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            i += 1
            shown = []
            while i < len(lines) and not lines[i].startswith("$ "):
                shown.append(lines[i])
                i += 1
            out.append((line, cmd, [s for s in shown if s.strip()]))
    return out


def _stable_text(text):
    """The first words of a shown output line that hold no number (numbers depend on data and
    machine): the text before its first number, or, for a line that starts with one, after it."""
    return next(p.strip() for p in re.split(r"[-+]?\d[\d.e+-]*", text) if p.strip())


def test_every_console_example_runs(readme_env):
    work, _ = readme_env
    commands = _commands()
    assert sum(c.startswith("fastnn train") for _, c, _ in commands) == 1
    for line, cmd, shown in commands:
        argv = shlex.split(cmd, comments=True)
        if argv[0] == "fastnn":
            argv = [sys.executable, "-m", "fastnn", *argv[1:]]
        elif argv[0] == "python":
            argv = [sys.executable, *argv[1:]]
        else:
            raise AssertionError(f"README.md:{line}: unexpected command {cmd!r}")
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600)   # FASTNN_DATA: readme_env
        assert r.returncode == 0, f"README.md:{line}: {cmd}\n{r.stdout}\n{r.stderr}"
        for s in shown:
            assert _stable_text(s) in r.stdout, f"README.md:{line}: {cmd}: no {s!r} in\n{r.stdout}"
    assert (work / "mnist.safetensors").is_file() and (work / "preds.csv").is_file()
    assert (work / "mnist.onnx").is_file()
    assert (work / "figs" / "linear").is_dir() and (work / "fastnn-demo" / "circles").is_dir()
