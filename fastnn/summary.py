"""``Sequential.summary()``: the layer table Keras prints, with the parameters' memory."""

import re

import numpy as np

_RULE, _WIDTHS = 65, (29, 26, 10)


def _snake(name):
    """``LeakyReLU`` -> ``leaky_relu``, ``Linear`` -> ``linear`` (Keras names layers so)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()


def _memory(n_bytes):
    """Keras's size format: ``198.79 KB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024


def summary(net):
    """The summary table of ``net`` (a Sequential) as a string.

    One row per layer: its name and type, its output shape ``(None, width)`` (the batch
    dimension is free) and its parameter count; then the total parameters with their
    memory in the network's dtype (trainable: all of them) and the memory that training
    adds (gradients of the same size; optimizer state comes on top).
    """
    seen = {}
    width = net.insize
    lines = ["Model: \"sequential\"", "_" * _RULE,
             f"{' Layer (type)':<{_WIDTHS[0]}}{'Output Shape':<{_WIDTHS[1]}}{'Param #':<{_WIDTHS[2]}}",
             "=" * _RULE]
    for i, layer in enumerate(net.layers):
        base = layer.name or _snake(type(layer).__name__)
        k = seen.get(base, 0)
        seen[base] = k + 1
        name = base if k == 0 or layer.name else f"{base}_{k}"
        width = getattr(layer, "outsize", width)
        col = f" {name} ({type(layer).__name__})"
        lines.append(f"{col:<{_WIDTHS[0]}}{f'(None, {width})':<{_WIDTHS[1]}}{layer.n_params:<{_WIDTHS[2]}}")
        lines.append("" if i + 1 < len(net.layers) else "=" * _RULE)
    if not net.layers:
        lines.append("=" * _RULE)
    itemsize = np.dtype(net.dtype).itemsize
    total = net.n_params
    lines += [f"Total params: {total:,} ({_memory(total * itemsize)})",
              f"Trainable params: {total:,} ({_memory(total * itemsize)})",
              f"Non-trainable params: 0 ({_memory(0)})",
              f"dtype: {np.dtype(net.dtype).name}; training adds gradients of {_memory(total * itemsize)} "
              "plus the optimizer's state",
              "_" * _RULE]
    return "\n".join(lines)
