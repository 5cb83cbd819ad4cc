"""``fastnn export MODEL.safetensors --onnx out.onnx``: a saved model as an ONNX graph."""

import os

from fastnn.cli._common import UsageError, _say, plural


def cmd_export(args):
    """Write the model file ``args.model`` as ONNX to ``args.onnx`` (see :mod:`fastnn.onnx`)."""
    from fastnn import io
    from fastnn.onnx import export

    if not os.path.isfile(args.model):
        raise UsageError(f"model file not found: {args.model}")
    folder = os.path.dirname(os.path.abspath(args.onnx))
    if not os.path.isdir(folder):
        raise UsageError(f"--onnx {args.onnx}: the folder {folder} does not exist")
    if args.opset is not None and args.opset < 13:
        raise UsageError(f"--opset must be 13 or later, got {args.opset}")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UsageError("ONNX export needs the onnx package: pip install 'fastnn-numba[onnx]'") from None
    net = io.load(args.model)
    export(net, args.onnx, softmax=args.softmax, opset=args.opset)
    _say(f"wrote {args.onnx}: {plural(len(net.linears), 'Linear layer')}, {net.insize} inputs, {net.outsize} outputs"
         + (", softmax at the end" if args.softmax else "") + " (batch dimension dynamic)")
    return 0
