"""fastnn: fast training of small and medium feed-forward neural networks.

>>> import fastnn as fn
>>> net = fn.Sequential(fn.Linear(2, 3), fn.Sigmoid(), fn.Linear(3, 2), seed=0)
>>> X, y = fn.datasets.circles(200, seed=0)
>>> hist = net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(0.5, momentum=0.9),
...                epochs=50, batch_size=16, seed=0)

The public names are loaded on first use (PEP 562), so ``import fastnn`` is quick and
``import fastnn.kernels.cpu`` loads the kernels without the layer/network API.
"""

import importlib as _importlib
import os as _os

from fastnn._version import __version__

# In a source checkout ``kernels/`` sits beside ``fastnn/`` (it is installed as
# ``fastnn/kernels``): let the package's search path reach it there too.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if (not _os.path.isdir(_os.path.join(__path__[0], "kernels"))
        and _os.path.isfile(_os.path.join(_root, "kernels", "__init__.py"))):
    __path__.append(_root)

#: Public submodules, and the public names of each module (loaded on first use).
_MODULES = ("datasets", "config", "io", "plots")
_NAMES = {
    "fastnn.backends": ("BackendUnavailable", "available_backends", "get_backend", "get_ops", "set_backend",
                        "use_backend"),
    "fastnn.config": ("get_num_threads", "set_num_threads"),
    "fastnn.io": ("ModelFileError", "load", "save"),
    "fastnn.costs": ("BCE", "MSE", "Cost", "CrossEntropy", "Hinge", "Huber", "KLDivergence", "L1", "Poisson"),
    "fastnn._gradcheck": ("GradientCheckError", "gradcheck"),
    "fastnn.layers": ("Dropout", "ELU", "GELU", "Identity", "Layer", "LeakyReLU", "Linear", "ReLU", "ReLU6", "SiLU",
                      "Sigmoid", "Sign", "Softmax", "Softplus", "Tanh"),
    "fastnn.network": ("Sequential",),
    "fastnn.optimizers": ("SGD", "Adam", "AdamW", "Adadelta", "Adagrad", "Optimizer", "RMSprop"),
    "fastnn.torch": ("from_torch",),
    "fastnn.training": ("DivergenceError", "History", "Trainer"),
    "fastnn.callbacks": ("Callback", "CosineDecay", "EarlyStopping", "EpochLogger", "ExponentialDecay",
                         "LearningRateScheduler", "ModelCheckpoint", "ProgressBar", "StepDecay"),
}
#: Public name -> (module, attribute of it); attribute None means the module itself.
_EXPORTS = {name: (f"fastnn.{name}", None) for name in _MODULES}
_EXPORTS.update({name: (mod, name) for mod, names in _NAMES.items() for name in names})
_EXPORTS["softmax"] = ("fastnn.kernels.reference", "softmax_forward")
_EXPORTS["warmup"] = ("fastnn._warmup", "warmup")

__all__ = ["__version__", *_EXPORTS]
#: Submodules reachable as attributes before anything imported them.
_SUBMODULES = ("backends", "bench", "callbacks", "cli", "costs", "kernels", "layers",
               "network", "onnx", "optimizers", "sklearn", "summary", "torch", "training")


def __getattr__(name):
    if name in _EXPORTS:
        modname, attr = _EXPORTS[name]
        mod = _importlib.import_module(modname)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return _importlib.import_module(f"fastnn.{name}")
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
