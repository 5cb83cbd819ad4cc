"""ONNX export (the optional extra ``onnx``): a network as a standard inference graph.

``net.to_onnx("model.onnx")`` (or ``fastnn export model.safetensors --onnx model.onnx``)
writes one ``Gemm`` per Linear (``MatMul`` without a bias), with ``W`` stored as fastnn
keeps it, (in, out), and the activations as ONNX operators. Dropout is left out (the
graph is inference). The batch dimension is dynamic (``batch``); the input is called
``input`` and the output ``output``. The graph is checked with ``onnx.checker``.

Operators beyond the basic ones are written with basic ones where the opset lacks them:
GELU as ``0.5 x (1 + Erf(x / sqrt 2))`` (or its tanh form) before opset 20, SiLU as
``x * Sigmoid(x)``, ReLU6 as ``Clip(x, 0, 6)``, Softplus with a ``beta`` as
``Softplus(beta x) / beta``, and Sign as ``Where(x > 0, 1, -1)`` (fastnn's sign(0) = -1).
"""

import numpy as np

#: The opset written by default (supported by every onnxruntime since 1.12).
DEFAULT_OPSET = 17


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("ONNX export needs the onnx package: pip install 'fastnn-numba[onnx]'") from None
    return onnx


class _Graph:
    """Nodes and initializers, with fresh names."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, np.dtype(dtype)
        self.nodes, self.inits, self.k = [], [], 0

    def name(self, base):
        self.k += 1
        return f"{base}_{self.k}"

    def const(self, value, base="c"):
        n = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value, self.dtype), n))
        return n

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def _gelu(g, x, approximate, opset):
    if opset >= 20:
        return g.op("Gelu", [x], approximate=approximate)
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = g.op("Mul", [x, g.op("Mul", [x, x])])
        inner = g.op("Mul", [g.op("Add", [x, g.op("Mul", [x3, g.const(0.044715)])]), g.const(np.sqrt(2 / np.pi))])
        s = g.op("Add", [g.op("Tanh", [inner]), g.const(1.0)])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        s = g.op("Add", [g.op("Erf", [g.op("Div", [x, g.const(np.sqrt(2.0))])]), g.const(1.0)])
    return g.op("Mul", [g.op("Mul", [x, s]), g.const(0.5)])


def _activation(g, layer, x, opset):
    name = type(layer).__name__
    if name in ("Sigmoid", "Tanh", "Identity"):
        return g.op(name, [x])
    if name == "ReLU":
        return g.op("Relu", [x])
    if name == "LeakyReLU":
        return g.op("LeakyRelu", [x], alpha=float(layer.slope))
    if name == "Softmax":
        return g.op("Softmax", [x], axis=-1)
    if name == "ELU":
        return g.op("Elu", [x], alpha=float(layer.alpha))
    if name == "Softplus":
        if layer.beta == 1:
            return g.op("Softplus", [x])
        b = g.const(layer.beta)
        return g.op("Div", [g.op("Softplus", [g.op("Mul", [x, b])]), b])
    if name == "GELU":
        return _gelu(g, x, layer.approximate, opset)
    if name == "SiLU":
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    if name == "ReLU6":
        return g.op("Clip", [x, g.const(0.0), g.const(6.0)])
    if name == "Sign":
        return g.op("Where", [g.op("Greater", [x, g.const(0.0)]), g.const(1.0), g.const(-1.0)])
    raise ValueError(f"ONNX export: layer {layer!r} has no ONNX form")


def to_model(net, softmax=False, opset=None):
    """``net`` (a Sequential) as an ``onnx.ModelProto``.

    Parameters
    ----------
    net : Sequential
    softmax : bool
        Append a Softmax (training uses raw scores, so the graph ends without one by default).
    opset : int, optional
        ONNX opset (default :data:`DEFAULT_OPSET`, at least 13).
    """
    from fastnn.layers import Dropout, Linear

    onnx = _onnx()
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if opset < 13:
        raise ValueError(f"ONNX export needs opset 13 or later, got {opset}")
    if not net.linears:
        raise ValueError("ONNX export: the network has no Linear layer")
    g = _Graph(onnx, net.dtype)
    x = "input"
    for layer in net.layers:
        if isinstance(layer, Dropout):
            continue  # inference: Dropout is the identity
        if isinstance(layer, Linear):
            W = g.const(layer.W, "W")
            x = g.op("Gemm", [x, W, g.const(layer.b, "b")]) if layer.bias else g.op("MatMul", [x, W])
        else:
            x = _activation(g, layer, x, opset)
    if softmax:
        x = g.op("Softmax", [x], axis=-1)
    g.nodes.append(onnx.helper.make_node("Identity", [x], ["output"]))
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(net.dtype))
    graph = onnx.helper.make_graph(
        g.nodes, "fastnn", [onnx.helper.make_tensor_value_info("input", elem, ["batch", net.insize])],
        [onnx.helper.make_tensor_value_info("output", elem, ["batch", net.outsize])], g.inits)
    # IR version 8 (ONNX 1.10+) is what onnxruntime reads back to 1.12; newer opsets need newer IRs
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="fastnn", ir_version=8 if opset <= 17 else 10)
    onnx.checker.check_model(model)
    return model


def export(net, path, softmax=False, opset=None):
    """Write ``net`` as an ONNX file at ``path`` (see :func:`to_model`); returns the path."""
    _onnx().save(to_model(net, softmax=softmax, opset=opset), str(path))
    return path
