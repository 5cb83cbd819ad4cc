"""The command line under hostile conditions (issue 12, section 4): CSV files that used to
be misread, Ctrl-C and SIGTERM at the worst moments, and one clear line per mistake."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastnn as fn
from fastnn import cli
from fastnn import io as fio

from conftest import ROOT


def run(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastnn: error:") and "Traceback" not in err, err
    return lines[0]


def test_a_first_row_with_an_empty_cell_is_an_error_not_a_header(tmp_path, capsys):
    p = tmp_path / "gap.csv"
    p.write_text("1.0,,0\n2.0,3.0,1\n")
    rc, _, err = run(["train", "--data", p, "--epochs", 1], capsys)
    assert rc == 2 and "line 1: column 2 is empty" in _one_error_line(err)


def test_the_header_rule(tmp_path):
    from fastnn.cli.data import _read_csv

    (tmp_path / "h.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    (tmp_path / "n.csv").write_text("1,2,0\n3,4,1\n")
    (tmp_path / "e.csv").write_text("1e3,-2,0\n3,4,1\n")  # numbers in any notation are data
    assert _read_csv(tmp_path / "h.csv").shape == (2, 3)
    assert _read_csv(tmp_path / "n.csv").shape == (2, 3)
    assert _read_csv(tmp_path / "e.csv")[0, 0] == 1000.0
    (tmp_path / "b.csv").write_text("\n\na,b,label\n1,2,0\n3,4,1\n")  # blank lines before the header
    assert _read_csv(tmp_path / "b.csv").tolist() == [[1, 2, 0], [3, 4, 1]]
    (tmp_path / "bn.csv").write_text("\n1,2,0\n3,4,1\n")               # and before data
    assert _read_csv(tmp_path / "bn.csv").shape == (2, 3)


@pytest.mark.parametrize("content, message", [
    (b"", "no data rows"),
    (b"x,y\n", "only a header"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text CSV file"),
    (b"1,2,3\n4,5\n", "line 2: 2 values"),
    (b"1,2,3\n4,five,6\n", "'five', not a number"),
])
def test_bad_csv_files_are_one_line_naming_the_file(tmp_path, capsys, content, message):
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    rc, _, err = run(["train", "--data", p, "--epochs", 1], capsys)
    line = _one_error_line(err)
    assert rc == 2 and message in line and "bad.csv" in line


def test_years_are_regression_targets_and_the_choice_is_printed(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    years = rng.integers(1990, 2021, 60)
    np.savetxt(tmp_path / "y.csv", np.column_stack([X, years]), delimiter=",")
    rc, out, err = run(["train", "--data", tmp_path / "y.csv", "--epochs", 1, "--lr", 1e-6], capsys)
    assert rc == 0, err
    assert re.search(r"^cost: mse \(the targets are numbers, not class labels", out, re.M)
    assert "-2-64-1 " in out.replace("training 2-64-1", "-2-64-1 ")  # one output, not 2021 classes


def test_huge_whole_targets_do_not_make_a_huge_classifier(tmp_path, capsys):
    X = np.random.default_rng(0).normal(size=(20, 2))
    np.savetxt(tmp_path / "t.csv", np.column_stack([X, np.arange(20) * 1e12]), delimiter=",")
    rc, out, err = run(["train", "--data", tmp_path / "t.csv", "--epochs", 1, "--lr", 1e-30], capsys)
    assert rc == 0 and "cost: mse" in out, err
    rc, _, err = run(["train", "--data", tmp_path / "t.csv", "--cost", "ce", "--epochs", 1], capsys)
    assert rc == 2 and "use --cost mse" in _one_error_line(err)


def test_labels_are_ce_only_when_they_look_like_classes(tmp_path, capsys):
    X = np.random.default_rng(0).normal(size=(40, 2))
    np.savetxt(tmp_path / "c.csv", np.column_stack([X, np.arange(40) % 4]), delimiter=",")
    rc, out, _ = run(["train", "--data", tmp_path / "c.csv", "--epochs", 1], capsys)
    assert rc == 0 and "cost: ce (the targets are class labels 0..3" in out
    sparse = np.where(np.arange(40) % 2, 0, 9)  # classes 0 and 9 only: 2 of 10 present
    np.savetxt(tmp_path / "s.csv", np.column_stack([X, sparse]), delimiter=",")
    rc, out, _ = run(["train", "--data", tmp_path / "s.csv", "--epochs", 1], capsys)
    assert rc == 0 and "cost: mse" in out


def test_ctrl_c_during_the_test_evaluation_keeps_the_saved_model(tmp_path, capsys, monkeypatch):
    """The model is saved right after training, before evaluating: a second Ctrl-C there loses nothing."""
    X, y = fn.datasets.circles(64, seed=0)
    Xte = X[:16]

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("fastnn.cli.train._load_mnist", lambda d: (X, y, Xte, y[:16]))
    monkeypatch.setattr(fn.Sequential, "evaluate", interrupt)
    model = tmp_path / "m.safetensors"
    rc, out, err = run(["train", "--data", "mnist", "--layers", "2,4,2", "--epochs", 1, "--save", model,
                        "--quiet"], capsys)
    assert rc == 130 and "Traceback" not in err and "interrupted" in err
    assert "saved the model" in out and fio.load(model).insize == 2


def test_sigterm_during_fit_saves_the_model(tmp_path):
    """What a batch scheduler sends: the fit stops at the next chunk and the model is saved."""
    X = np.random.default_rng(0).normal(size=(20000, 20))
    np.savez(tmp_path / "big.npz", X=X, y=(X[:, 0] > 0).astype(np.int64))
    model = tmp_path / "m.safetensors"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "fastnn", "train", "--data", str(tmp_path / "big.npz"),
                             "--epochs", "1000", "--batch-size", "1", "--backend", "numpy", "--save", str(model)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:  # wait until training has started (the command prints this line first)
        seen.append(line)
        if line.startswith("training "):
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    out = "".join(seen) + out
    assert proc.returncode == 128 + signal.SIGTERM, (out, err)
    assert "interrupted (SIGTERM)" in out and "saved the model" in out, out
    assert fio.load(model).insize == 20
