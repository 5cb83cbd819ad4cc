"""PyTorch interoperability (the optional extra ``torch``): convert, and train torch modules.

>>> import torch, fastnn as fn
>>> module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 3))
>>> net = fn.from_torch(module)                 # the same weights, W transposed to (in, out)
>>> back = net.to_torch()                       # and back: bit-identical weights
>>> hist = fn.torch.fit(module, X, y, loss="ce", optimizer="adam", epochs=5, batch_size=32)

Supported layers: ``Linear``, ``Identity``, ``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``
(slope >= 0), ``Softmax`` (over the last dimension), ``ELU`` (alpha >= 0), ``Softplus``
(threshold 20), ``GELU``, ``SiLU``, ``ReLU6`` and ``Dropout``. Anything else raises
ValueError naming the layer. torch is imported only when one of these functions runs.
"""

import numpy as np


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("fastnn.torch needs PyTorch: pip install 'fastnn-numba[torch]'") from None
    return torch


_SIMPLE = ("Identity", "Sigmoid", "Tanh", "ReLU", "SiLU", "ReLU6")


def _unsupported(i, mod, why=""):
    return ValueError(f"fastnn.from_torch: layer {i} ({mod!r}) is not supported{why}; supported layers: Linear, "
                      "Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax, ELU, Softplus, GELU, SiLU, ReLU6, Dropout")


def _layer_from_torch(i, mod):
    """The fastnn layer for the torch module ``mod`` (weights are copied by :func:`from_torch`)."""
    import fastnn as fn

    name = type(mod).__name__
    if name == "Linear":
        return fn.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
    if name in _SIMPLE:
        return getattr(fn, name)()
    if name == "LeakyReLU":
        if mod.negative_slope < 0:
            raise _unsupported(i, mod, " (a negative slope)")
        return fn.LeakyReLU(mod.negative_slope)
    if name == "Softmax":
        if mod.dim not in (-1, 1):
            raise _unsupported(i, mod, " (softmax over another dimension than the last)")
        return fn.Softmax()
    if name == "ELU":
        if mod.alpha < 0:
            raise _unsupported(i, mod, " (a negative alpha)")
        return fn.ELU(mod.alpha)
    if name == "Softplus":
        if mod.threshold != 20:
            raise _unsupported(i, mod, " (a threshold other than 20)")
        return fn.Softplus(mod.beta)
    if name == "GELU":
        return fn.GELU(mod.approximate)
    if name == "Dropout":
        return fn.Dropout(mod.p)
    raise _unsupported(i, mod)


def from_torch(module, dtype=None):
    """A :class:`fastnn.Sequential` with the layers and weights of a ``torch.nn.Sequential``.

    Parameters
    ----------
    module : torch.nn.Sequential
        Of the supported layers (module docstring).
    dtype : numpy dtype, optional
        float32 or float64; default: the module's parameters' dtype.

    Returns
    -------
    Sequential
        ``W`` is the torch weight transposed, ``(in, out)``; the mode (train/eval) is the module's.
    """
    import fastnn as fn

    torch = _torch()
    if not isinstance(module, torch.nn.Sequential):
        raise ValueError(f"fastnn.from_torch takes a torch.nn.Sequential, got {type(module).__name__}")
    layers = [_layer_from_torch(i, m) for i, m in enumerate(module)]
    params = list(module.parameters())
    if dtype is None:
        dtype = np.float64 if params and params[0].dtype == torch.float64 else np.float32
    net = fn.Sequential(*layers, dtype=dtype)
    copy_weights_from(net, module)
    return net.train(module.training)


def _linear_pairs(net, module):
    from fastnn.layers import Linear

    return [(layer, mod) for layer, mod in zip(net.layers, module) if isinstance(layer, Linear)]


def copy_weights_from(net, module):
    """Copy the torch module's Linear weights into ``net`` (same architecture), in place."""
    for layer, mod in _linear_pairs(net, module):
        layer.W[...] = mod.weight.detach().cpu().numpy().T
        if layer.bias:
            layer.b[...] = mod.bias.detach().cpu().numpy()
    return net


def copy_weights_to(net, module):
    """Copy ``net``'s Linear weights into the torch module (same architecture), in place."""
    torch = _torch()
    with torch.no_grad():
        for layer, mod in _linear_pairs(net, module):
            mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))
            if layer.bias:
                mod.bias.copy_(torch.from_numpy(np.ascontiguousarray(layer.b)))
    return module


def _module_for(layer):
    torch = _torch()
    nn = torch.nn
    name = type(layer).__name__
    if name == "Linear":
        return nn.Linear(layer.insize, layer.outsize, bias=layer.bias)
    if name in _SIMPLE:
        return getattr(nn, name)()
    simple = {"LeakyReLU": lambda: nn.LeakyReLU(layer.slope), "Softmax": lambda: nn.Softmax(dim=-1),
              "ELU": lambda: nn.ELU(layer.alpha), "Softplus": lambda: nn.Softplus(layer.beta),
              "GELU": lambda: nn.GELU(approximate=getattr(layer, "approximate", "none")),
              "Dropout": lambda: nn.Dropout(layer.p)}
    if name in simple:
        return simple[name]()
    raise ValueError(f"net.to_torch: layer {layer!r} has no torch equivalent (Sign is forward-only)")


def to_torch(net):
    """A ``torch.nn.Sequential`` with the layers and weights of ``net`` (``weight = W.T``), in
    ``net``'s dtype and mode (train/eval)."""
    torch = _torch()
    module = torch.nn.Sequential(*[_module_for(layer) for layer in net.layers])
    module = module.to(torch.float64 if net.dtype == np.float64 else torch.float32)
    copy_weights_to(net, module)
    return module.train(net.training)


def _numpy(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def fit(module, X, y, loss="mse", optimizer="adam", epochs=1, batch_size=32, lr=None, **kwargs):
    """Train a ``torch.nn.Sequential`` with fastnn's kernels; the trained weights are written
    back into ``module`` (in place).

    Parameters
    ----------
    module : torch.nn.Sequential
        Of the supported layers (module docstring).
    X, y : arrays or torch tensors
        Inputs (N, in) and targets, as :meth:`fastnn.Sequential.fit` takes them.
    loss : str or fastnn Cost
        ``"mse"``, ``"ce"`` (softmax cross-entropy on raw scores), ``"bce"`` (on a sigmoid
        output), ``"l1"``, ``"huber"``, ``"hinge"``, ``"kl"``, ``"poisson"`` (on log-rates), or a fastnn cost object.
    optimizer : str or fastnn Optimizer
        ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``, ``"rmsprop"``, ``"adagrad"``,
        ``"adadelta"``, ``"adamw"`` (fastnn's defaults, torch's for the torch optimizers), or
        a fastnn optimizer object.
    epochs, batch_size : int
    lr : float, optional
        The learning rate, with an optimizer given by name.
    **kwargs
        Passed on to :meth:`fastnn.Sequential.fit` (``seed``, ``backend``, ``validation_data``,
        ``callbacks`` ...).

    Returns
    -------
    History
    """
    from fastnn.costs import get_cost
    from fastnn.optimizers import get_optimizer

    net = from_torch(module)
    opt = get_optimizer(optimizer)
    if lr is not None:
        if not isinstance(optimizer, str):
            raise ValueError("lr= goes with an optimizer given by name; set it on the optimizer object instead")
        opt.lr = lr
        opt.check()
    val = kwargs.pop("validation_data", None)
    if val is not None:
        val = tuple(_numpy(a) for a in val)
    hist = net.fit(_numpy(X), _numpy(y), get_cost(loss), opt, epochs=epochs, batch_size=batch_size,
                   validation_data=val, **kwargs)
    copy_weights_to(net, module)
    return hist
