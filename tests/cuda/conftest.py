"""CUDA tests: run as ``NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda`` (the simulator),
or ``FASTNN_CUDA_TESTS=1 python -m pytest tests/cuda`` on a machine with an NVIDIA GPU.

Under the simulator every CUDA thread is a Python thread, so the kernels are built
with tiny blocks (matmul tiles of 4x4 threads computing 8x8 outputs, 16 threads for
the 1-D kernels) and the shapes are small but leave partial blocks (3*TPB+1).
``tests/conftest.py`` keeps this directory out of the main (non-simulated) run.
"""

import importlib.util
import os
import pathlib

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None

#: Knobs for the simulator: small blocks. On a GPU the defaults of kernels/cuda/config.py run.
SIM_KNOBS = dict(TILE=4, WPT=2, TPB=16)

if HAVE_NUMBA_CUDA:
    from fastnn.kernels.cuda import config as _config

    if SIMULATED:
        for _k, _v in SIM_KNOBS.items():
            setattr(_config, _k, _v)


def _root_conftest():
    """tests/conftest.py (the one tolerance table); ``import conftest`` here finds this file."""
    path = pathlib.Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("_fastnn_tests_root_conftest", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_root = _root_conftest()
tol, DTYPES, TRAIN_RTOL64 = _root.tol, _root.DTYPES, _root.TRAIN_RTOL64


def knobs():
    """(TILE, WPT, TPB) in force: the sizes the partial-block shapes are made from."""
    from fastnn.kernels.cuda import config

    return config.TILE, config.WPT, config.TPB
