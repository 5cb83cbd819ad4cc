"""Same seeds, same bits (issue 12, section 2), on the paths users get by default.

The numba backend decides one fit's thread count once, from the work per batch (never
from timings), so the same fit gives bit-identical weights every time, in one process or
in two. Across thread counts, the per-sample and row-blocked paths are bit-identical
too; the BLAS path sums inside each product in BLAS's order (README: "Reproducibility").
"""

import subprocess
import sys

import numpy as np
import pytest

import fastnn as fn

from conftest import ROOT

_SCRIPT = """
import sys, numpy as np, fastnn as fn
rng = np.random.default_rng(0)
X = (rng.random((3000, 196)) * (rng.random((3000, 196)) < 0.3)).astype(np.float32)
y = rng.integers(0, 10, 3000)
net = fn.Sequential(fn.Linear(196, 128), fn.ReLU(), fn.Linear(128, 10), seed=0)
opt = fn.Adam(1e-3) if int(sys.argv[1]) == 32 else fn.SGD(0.05, momentum=0.9)
net.fit(X, y, fn.CrossEntropy(), opt, epochs=2, batch_size=int(sys.argv[1]), seed=0)   # defaults otherwise
sys.stdout.write(net.params.tobytes().hex())
"""


def _data():
    rng = np.random.default_rng(1)
    X = (rng.random((600, 64)) * (rng.random((600, 64)) < 0.3)).astype(np.float32)
    return X, rng.integers(0, 10, 600)


@pytest.mark.parametrize("bs", [1, 2, 32, 128])
def test_the_same_fit_twice_gives_the_same_bits(bs):
    X, y = _data()
    out = []
    for _ in range(2):
        net = fn.Sequential(fn.Linear(64, 32), fn.ReLU(), fn.Linear(32, 10), seed=0)  # float32, backend auto
        opt = fn.SGD(0.05) if bs == 1 else fn.Adam(1e-3)
        net.fit(X, y, fn.CrossEntropy(), opt, epochs=3, batch_size=bs, seed=0)
        out.append(net.params.copy())
    assert fn.get_backend() == "numba"
    assert np.array_equal(out[0], out[1])


@pytest.mark.parametrize("bs", [32, 128])
def test_two_processes_give_the_same_bits(bs):
    runs = [subprocess.run([sys.executable, "-c", _SCRIPT, str(bs)], cwd=ROOT, capture_output=True, text=True,
                           timeout=600) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert runs[0].stdout and runs[0].stdout == runs[1].stdout


def test_threads_are_decided_by_work_not_by_time(monkeypatch):
    from fastnn import config
    from fastnn.backends import numba as nb

    monkeypatch.setattr(config, "PARALLEL", "auto")
    n = config.get_num_threads()
    assert nb.threads_for(nb.AUTO_BLAS_THREAD_WORK - 1, nb.AUTO_BLAS_THREAD_WORK) == 1
    assert nb.threads_for(nb.AUTO_BLAS_THREAD_WORK, nb.AUTO_BLAS_THREAD_WORK) == n
    monkeypatch.setattr(config, "PARALLEL", "0")
    assert nb.threads_for(10**12, 1) == 1
    monkeypatch.setattr(config, "PARALLEL", "1")
    assert nb.threads_for(config.PARALLEL_MIN_WORK, 10**12) == n
