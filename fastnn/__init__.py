"""fastnn: fast training of small and medium feed-forward neural networks.

>>> import fastnn as fn
>>> net = fn.Sequential(fn.Linear(2, 3), fn.Sigmoid(), fn.Linear(3, 2), seed=0)
>>> X, y = fn.datasets.circles(200, seed=0)
>>> hist = net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(0.5, momentum=0.9),
...                epochs=50, batch_size=16, seed=0)
"""

import importlib.util as _ilu
import os as _os
import sys as _sys


def _register_source_kernels():
    """In a source checkout, ``kernels/`` sits beside ``fastnn/`` rather than inside it
    (it is installed as ``fastnn.kernels``). Register it under that name when the
    normal import cannot find it, e.g. when running from the repository root."""
    if "fastnn.kernels" in _sys.modules:
        return
    try:
        if _ilu.find_spec("fastnn.kernels") is not None:
            return
    except (ImportError, ValueError):
        pass
    src = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "kernels")
    init = _os.path.join(src, "__init__.py")
    if not _os.path.isfile(init):
        raise ImportError("fastnn.kernels is missing: reinstall fastnn (pip install fastnn-numba)")
    spec = _ilu.spec_from_file_location("fastnn.kernels", init, submodule_search_locations=[src])
    mod = _ilu.module_from_spec(spec)
    _sys.modules["fastnn.kernels"] = mod
    spec.loader.exec_module(mod)


_register_source_kernels()

from fastnn._version import __version__  # noqa: E402
from fastnn import datasets  # noqa: E402
from fastnn.backends import (  # noqa: E402
    BackendUnavailable, available_backends, get_backend, get_ops, set_backend, use_backend)
from fastnn import config, io  # noqa: E402
from fastnn.config import get_num_threads, set_num_threads  # noqa: E402
from fastnn.io import ModelFileError, load, save  # noqa: E402
from fastnn.callbacks import (  # noqa: E402
    Callback, CosineDecay, EarlyStopping, EpochLogger, ExponentialDecay, LearningRateScheduler,
    ModelCheckpoint, ProgressBar, StepDecay)
from fastnn.costs import BCE, MSE, Cost, CrossEntropy  # noqa: E402
from fastnn.gradcheck import GradientCheckError, gradcheck  # noqa: E402
from fastnn.layers import (  # noqa: E402
    Identity, Layer, LeakyReLU, Linear, ReLU, Sigmoid, Sign, Softmax, Tanh)
from fastnn.network import Sequential  # noqa: E402
from fastnn.optimizers import SGD, Adam, Optimizer  # noqa: E402
from fastnn.training import History, Trainer  # noqa: E402
from fastnn.kernels.reference import softmax_forward as softmax  # noqa: E402

__all__ = [
    "__version__", "datasets",
    "Linear", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softmax", "Identity", "Sign", "Layer",
    "Sequential", "MSE", "CrossEntropy", "BCE", "Cost", "SGD", "Adam", "Optimizer",
    "Trainer", "History", "Callback", "gradcheck", "GradientCheckError",
    "set_backend", "get_backend", "get_ops", "use_backend", "available_backends", "BackendUnavailable",
    "softmax", "config", "set_num_threads", "get_num_threads", "io", "plots", "load", "save", "ModelFileError",
    "ProgressBar", "EpochLogger", "EarlyStopping", "LearningRateScheduler", "StepDecay",
    "ExponentialDecay", "CosineDecay", "ModelCheckpoint",
]


def __getattr__(name):
    # fastnn.plots imports matplotlib, which is slow: load it on first use only.
    if name == "plots":
        import importlib

        return importlib.import_module("fastnn.plots")
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")
