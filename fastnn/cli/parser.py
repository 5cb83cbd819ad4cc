"""The ``fastnn`` command line: :func:`build_parser` and its option values."""

import argparse

import numpy as np

from fastnn.cli._common import UsageError
from fastnn.optimizers import NAMES as _OPTIMIZER_NAMES

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "identity", "elu", "softplus", "gelu", "silu", "relu6")
COSTS = ("mse", "ce", "bce")
OPTIMIZERS = tuple(_OPTIMIZER_NAMES)   # sgd, momentum, nesterov, adam, rmsprop, adagrad, adadelta, adamw
BACKENDS = ("auto", "numpy", "numba", "cuda")
DEMOS = ("circles", "linear", "sine", "xor", "mnist")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (instead of usage + error) that main() reports."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def build_parser():
    # The commands are taken from the fastnn.cli package, where they are exported (and
    # where a test's monkeypatch.setattr(cli, "cmd_...", ...) puts its stand-in).
    from fastnn import cli
    from fastnn._version import __version__

    p = _Parser(prog="fastnn", description="Train, inspect and use small feed-forward networks fast "
                "(Numba kernels on CPU and GPU).")
    p.add_argument("--version", action="version", version=f"fastnn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    d = sub.add_parser("demo", help="train one of the seed tutorials' experiments and save its figures",
                       description="Train a seed tutorial's experiment, print what it learned and save "
                       "its figures as PNG files. Without a name: circles, on built-in data, in seconds.")
    d.add_argument("name", nargs="?", default="circles", choices=DEMOS,
                   help="which experiment (default: circles)")
    d.add_argument("--out", default="fastnn-demo", metavar="DIR",
                   help="folder for the figures; each demo writes into its own subfolder DIR/<demo> "
                        "(default: ./fastnn-demo)")
    d.add_argument("--epochs", type=int, default=None, help="override the demo's number of epochs")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--backend", default=None, choices=BACKENDS,
                   help="compute backend (default: numpy for the toy demos, whose few tiny batches would "
                   "spend longer compiling than training; auto for mnist)")
    d.add_argument("--data-dir", default=None, metavar="DIR", help="MNIST folder (default: $FASTNN_DATA or "
                   "~/.cache/fastnn/mnist, downloading there if missing)")
    d.add_argument("--progress", action="store_true", help="show a progress bar while training")
    d.add_argument("--quiet", action="store_true", help="no progress output")
    d.set_defaults(func=cli.cmd_demo)

    t = sub.add_parser("train", help="train a network on MNIST, a .npz or a .csv file",
                       description="Train an MLP. The progress bar shows on a terminal; elsewhere one line "
                       "per epoch is printed (none with --quiet). Ctrl-C stops cleanly, keeps the model "
                       "trained so far (saved with --save) and exits with status 130.")
    t.add_argument("--data", required=True, metavar="mnist|PATH.npz|PATH.csv",
                   help="'mnist'; a .npz with arrays X and y; a scipy.sparse matrix saved with "
                   "scipy.sparse.save_npz (trained sparse; targets from --targets); or a .csv whose last "
                   "column is the target")
    t.add_argument("--targets", default=None, metavar="PATH.npy|PATH.npz|PATH.csv",
                   help="the targets, when --data holds only the inputs (a scipy.sparse .npz)")
    t.add_argument("--layers", default=None, metavar="N,N,...",
                   help="layer sizes, inputs first, like 784,256,10 (default: inputs,64,outputs)")
    t.add_argument("--activation", default="relu", choices=ACTIVATIONS, help="hidden activation (default relu)")
    t.add_argument("--cost", default=None, choices=COSTS,
                   help="mse, ce (softmax cross-entropy) or bce (sigmoid output); default: ce for class "
                   "labels 0..K-1, else mse")
    t.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="default adam")
    t.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: the optimizer's own, as torch.optim: 0.001 for adam and "
                        "adamw, 1.0 for adadelta, 0.01 otherwise)")
    t.add_argument("--epochs", type=int, default=10, help="default 10")
    t.add_argument("--batch-size", type=int, default=32, help="default 32")
    t.add_argument("--backend", default="auto", choices=BACKENDS, help="compute backend (default auto)")
    t.add_argument("--seed", type=int, default=0, help="seed of the weights, shuffling and split (default 0)")
    t.add_argument("--val-split", type=float, default=0.0, metavar="FRACTION",
                   help="hold out this fraction of the data for validation (default 0)")
    t.add_argument("--save", default=None, metavar="PATH.safetensors", help="save the trained model here")
    t.add_argument("--plot", default=None, metavar="DIR", help="save training-curve figures (PNG) here")
    t.add_argument("--data-dir", default=None, metavar="DIR", help="MNIST folder (see demo --help)")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    t.set_defaults(func=cli.cmd_train)

    e = sub.add_parser("evaluate", help="loss and accuracy of a saved model on data",
                       description="Print the loss and (for classifiers) 'accuracy: 0.9712' of a saved model. "
                       "For --data mnist the test set is used.")
    e.add_argument("model", metavar="MODEL", help="a .safetensors model file written by fastnn")
    e.add_argument("--data", required=True, metavar="mnist|PATH.npz|PATH.csv")
    e.add_argument("--targets", default=None, metavar="PATH.npy|PATH.npz|PATH.csv",
                   help="the targets, when --data holds only the inputs (a scipy.sparse .npz)")
    e.add_argument("--cost", default=None, choices=COSTS, help="default: the cost stored in the model file")
    e.add_argument("--backend", default="auto", choices=BACKENDS)
    e.add_argument("--data-dir", default=None, metavar="DIR", help="MNIST folder")
    e.set_defaults(func=cli.cmd_evaluate)

    pr = sub.add_parser("predict", help="outputs of a saved model, as CSV",
                        description="Write the model's outputs for each sample as CSV (a 'class' column "
                        "first for classifiers). A .csv input may hold just the features, or the features "
                        "and a target column (ignored).")
    pr.add_argument("model", metavar="MODEL", help="a .safetensors model file written by fastnn")
    pr.add_argument("--data", required=True, metavar="mnist|PATH.npz|PATH.csv")
    pr.add_argument("--out", default=None, metavar="preds.csv", help="output file (default: standard output)")
    pr.add_argument("--backend", default="auto", choices=BACKENDS)
    pr.add_argument("--data-dir", default=None, metavar="DIR", help="MNIST folder")
    pr.set_defaults(func=cli.cmd_predict)

    b = sub.add_parser("bench", help="the benchmark table (fastnn.bench); 'fastnn bench --help' for its options",
                       description="Run fastnn.bench with the remaining arguments.", add_help=False)
    b.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for fastnn.bench")
    b.set_defaults(func=cli.cmd_bench)

    w = sub.add_parser("warmup", help="compile the numba kernels ahead of time (first run only)",
                       description="Compile the numba backend's training and inference kernels for the "
                       "given dtypes (every activation, cost and optimizer of plain MLPs), so that the first "
                       "fit does not wait for the compiler. They are cached on disk (see fastnn info).")
    w.add_argument("--dtype", default="float32", choices=("float32", "float64", "both"),
                   help="precision to compile for (default: float32, the networks' default)")
    w.set_defaults(func=cli.cmd_warmup)

    x = sub.add_parser("export", help="write a saved model as an ONNX graph",
                       description="Write a fastnn model file as a standard ONNX graph (Gemm/MatMul and the "
                       "activations; Dropout left out; dynamic batch dimension). Needs the onnx package.")
    x.add_argument("model", metavar="MODEL", help="a .safetensors model file written by fastnn")
    x.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    x.add_argument("--softmax", action="store_true", help="end the graph with a softmax (probabilities)")
    x.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17; 20+ writes Gelu nodes)")
    x.set_defaults(func=cli.cmd_export)

    i = sub.add_parser("info", help="version, backends, threads, GPU, numba cache",
                       description="Show the fastnn version, which backends work here (and why not), "
                       "threads, the GPU and the numba cache directory.")
    i.set_defaults(func=cli.cmd_info)
    return p
