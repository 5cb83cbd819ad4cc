"""Shared test configuration: tolerances per dtype (the one table), data paths, torch."""

import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Tolerances for comparing a kernel's result with the NumPy reference, per dtype.
# float32 kernels may sum in a different order (or with fastmath), so they get looser bounds.
TOL = {
    np.float32: dict(rtol=2e-5, atol=2e-6),
    np.float64: dict(rtol=1e-10, atol=1e-12),
}
# Training equality across backends after ~200 steps (float64). The observed differences
# are ~1e-15 (the same arithmetic, BLAS products aside), so 1e-10 leaves room for BLAS's
# summation order and nothing else.
TRAIN_RTOL64 = 1e-10
# Finite-difference gradient checks (always float64).
GRADCHECK_TOL = 1e-5

DTYPES = [np.float32, np.float64]


def numgrad(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function ``f`` at ``x`` (float64)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f(x)
        x[i] = old - eps
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def tol(dtype):
    """``assert_allclose`` keyword arguments for ``dtype``."""
    return TOL[np.dtype(dtype).type]


#: In CI (.ci/run sets FASTNN_REQUIRE_DATA=1) missing coverage is a failure, not a skip:
#: MNIST, the torch oracle and ptxas must be there.
REQUIRE = os.environ.get("FASTNN_REQUIRE_DATA") == "1"


def skip_or_fail(reason, allow_module_level=False):
    """Skip with ``reason`` -- or, under FASTNN_REQUIRE_DATA=1, fail with it."""
    if REQUIRE:
        pytest.fail(f"{reason} (FASTNN_REQUIRE_DATA=1: missing coverage is a failure)", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


MNIST_PLACES = "$FASTNN_DATA, ~/.cache/fastnn/mnist or ../shared/data/mnist"


def mnist_dir():
    """Directory holding the four MNIST files, or None: FASTNN_DATA, then ~/.cache/fastnn/mnist
    (where fastnn itself downloads it), then ../shared/data/mnist."""
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    for cand in (os.environ.get("FASTNN_DATA"), pathlib.Path.home() / ".cache" / "fastnn" / "mnist",
                 ROOT.parent / "shared" / "data" / "mnist"):
        if cand and all((pathlib.Path(cand) / n).is_file() for n in names):
            return pathlib.Path(cand)
    return None


@pytest.fixture(scope="session")
def mnist():
    """(X_train, y_train, X_test, y_test), or skip with a reason when MNIST is absent."""
    d = mnist_dir()
    if d is None:
        skip_or_fail(f"MNIST not found in {MNIST_PLACES}")
    from fastnn.datasets import load_mnist

    return load_mnist(d, download=False)


def import_torch():
    """torch, or skip (fail in CI) with the reason: it is the independent oracle."""
    try:
        import torch
    except ImportError:
        skip_or_fail("torch is not installed (the optional oracle: pip install torch==2.13.0)")
    return torch


@pytest.fixture(scope="session")
def torch():
    """The torch module, or skip with a reason (torch is an optional oracle)."""
    return import_torch()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)

# fastnn float64 training vs torch.optim after a few dozen steps (summation order differs).
TORCH_RTOL64 = 1e-9

# tests/cuda runs in its own pytest process: NUMBA_ENABLE_CUDASIM=1 (the simulator) must be
# set before numba is imported, or FASTNN_CUDA_TESTS=1 on a machine with an NVIDIA GPU. The
# main `python -m pytest` run (no simulator) never collects it; tests/test_cuda_ptx.py does run.
collect_ignore = []
if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1" and os.environ.get("FASTNN_CUDA_TESTS") != "1":
    collect_ignore.append("cuda")
