"""The ``fastnn`` command (also ``python -m fastnn``).

Commands: ``demo``, ``train``, ``evaluate``, ``predict``, ``bench``, ``info``; each
has ``--help``. A user mistake (a missing file, a bad layer list, an unknown option
value, layer sizes that do not fit the data) prints one line saying what is wrong
and exits with status 2; set ``FASTNN_DEBUG=1`` to get the traceback instead.

:func:`main` takes the argument list and returns the exit status, so it can be
called in-process (the tests do).
"""

import argparse
import importlib
import os
import sys
import time

import numpy as np

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "identity")
COSTS = ("mse", "ce", "bce")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
BACKENDS = ("auto", "numpy", "numba", "cuda")
DEMOS = ("circles", "linear", "sine", "xor", "mnist")


class UsageError(Exception):
    """A mistake in the command line or its input files; shown as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (instead of usage + error) that main() reports."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")


def _say(*args, file=None):
    print(*args, file=file or sys.stdout, flush=True)


# -- data -----------------------------------------------------------------------------------

def _load_mnist(data_dir):
    from fastnn.datasets import load_mnist

    try:
        return load_mnist(data_dir, download=True)
    except FileNotFoundError as exc:
        raise UsageError(" ".join(line.strip() for line in str(exc).splitlines())) from None


def _read_csv(path):
    with open(path) as f:
        first = f.readline()
    try:
        [float(v) for v in first.strip().split(",")]
        skip = 0
    except ValueError:
        skip = 1  # a header line
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise UsageError(f"{path}: not a numeric CSV file ({exc})") from None
    if data.size == 0:
        raise UsageError(f"{path}: no data rows")
    return data


def _pick(arrays, names, path, what):
    for name in names:
        if name in arrays:
            return arrays[name]
    raise UsageError(f"{path}: no array for {what} (looked for {', '.join(names)}; "
                     f"the file has {', '.join(arrays) or 'none'})")


def load_data(spec, split="train", data_dir=None, need_target=True, n_features=None):
    """``--data`` -> ``(X, y, description)``.

    ``spec`` is ``"mnist"`` (the ``split`` set), a ``.npz`` file with arrays ``X``
    and ``y``, or a ``.csv`` file whose last column is the target. Without
    ``need_target`` (predict) a CSV of exactly ``n_features`` columns is all inputs
    and ``y`` may be None.
    """
    if spec.lower() == "mnist":
        Xtr, ytr, Xte, yte = _load_mnist(data_dir)
        return (Xtr, ytr, "mnist (train)") if split == "train" else (Xte, yte, "mnist (test)")
    ext = os.path.splitext(spec)[1].lower()
    if ext not in (".npz", ".csv"):
        raise UsageError(f"--data must be 'mnist', a .npz file or a .csv file, got {spec!r}")
    if not os.path.isfile(spec):
        raise UsageError(f"--data: file not found: {spec}")
    if ext == ".npz":
        try:
            with np.load(spec, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError) as exc:
            raise UsageError(f"{spec}: not a readable .npz file ({exc})") from None
        X = _pick(arrays, ("X", "x", "X_train", "data"), spec, "the inputs")
        y = None
        if need_target or any(k in arrays for k in ("y", "Y", "y_train", "target", "labels")):
            y = _pick(arrays, ("y", "Y", "y_train", "target", "labels"), spec, "the targets")
    else:
        data = _read_csv(spec)
        if not need_target and n_features is not None and data.shape[1] == n_features:
            X, y = data, None
        else:
            if data.shape[1] < 2:
                raise UsageError(f"{spec}: needs at least 2 columns (inputs, then the target in the last)")
            X, y = data[:, :-1], data[:, -1]
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "fiub":
        raise UsageError(f"{spec}: inputs must be a numeric 2-D array (samples, features), got "
                         f"{X.dtype} of shape {X.shape}")
    if y is not None and len(y) != len(X):
        raise UsageError(f"{spec}: {len(X)} input rows but {len(y)} targets")
    return X, y, spec


def _whole_labels(y):
    """``y`` as int64 class labels if it is 1-D whole numbers >= 0, else None."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "fiub" or len(y) == 0:
        return None
    if y.dtype.kind == "f" and not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        return None
    if y.min() < 0:
        return None
    return y.astype(np.int64)


def _targets_for(cost, y, n_out, path):
    """Targets converted for ``cost`` (labels as int64 where the cost wants labels)."""
    labels = _whole_labels(y)
    if cost == "ce":
        if labels is None:
            if np.asarray(y).ndim == 2:
                return np.asarray(y)
            raise UsageError(f"--cost ce needs class labels 0, 1, 2, ... as targets; {path} has other values")
        return labels
    if cost == "mse" and labels is not None and n_out > 1:
        return labels  # one-hot encoded by MSE, with accuracy
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(-1, 1) if y.ndim == 1 else y


# -- the network ----------------------------------------------------------------------------

def parse_layers(text):
    """``"784,256,10"`` -> ``[784, 256, 10]``; UsageError for anything else."""
    try:
        sizes = [int(s) for s in text.replace(" ", "").split(",")]
    except ValueError:
        sizes = []
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise UsageError(f"--layers must be at least two positive integers separated by commas, "
                         f"like 784,256,10; got {text!r}")
    return sizes


def build_net(sizes, activation, cost, seed, dtype=np.float32):
    """An MLP: Linear layers with ``activation`` between them; a final Sigmoid for BCE."""
    import fastnn as fn

    act = {"relu": fn.ReLU, "leaky_relu": fn.LeakyReLU, "tanh": fn.Tanh, "sigmoid": fn.Sigmoid,
           "identity": fn.Identity}[activation]
    init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(fn.Linear(a, b, init="xavier" if last else init))
        if not last:
            layers.append(act())
    if cost == "bce":
        layers.append(fn.Sigmoid())
    return fn.Sequential(*layers, seed=seed, dtype=dtype)


def _cost_obj(name):
    import fastnn as fn

    return {"mse": fn.MSE, "ce": fn.CrossEntropy, "bce": fn.BCE}[name]()


def _cost_name(cost_cls_name):
    return {"MSE": "mse", "CrossEntropy": "ce", "BCE": "bce"}.get(cost_cls_name)


def _optimizer(name, lr):
    import fastnn as fn

    if lr is None:
        lr = 1e-3 if name == "adam" else 0.01
    if name == "adam":
        return fn.Adam(lr)
    return fn.SGD(lr, momentum=0.0 if name == "sgd" else 0.9, nesterov=name == "nesterov")


def _progress(quiet):
    """Bars on a terminal; otherwise one line per epoch; nothing with --quiet."""
    from fastnn.callbacks import EpochLogger, ProgressBar

    if quiet:
        return []
    bar = ProgressBar()
    return [bar] if bar.enabled else [EpochLogger(sys.stdout)]


def _check_backend(name):
    from fastnn.backends import BackendUnavailable, resolve_backend

    try:
        return resolve_backend(name)
    except BackendUnavailable as exc:
        raise UsageError(f"--backend {name}: {exc}") from None


def _fmt_metrics(d, prefix=""):
    return "  ".join(f"{prefix}{k}: {v:.4f}" for k, v in d.items())


# -- train ------------------------------------------------------------------------------------

def cmd_train(args):
    from fastnn import plots

    backend = _check_backend(args.backend)
    if args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0 <= args.val_split < 1:
        raise UsageError(f"--val-split must be a fraction in [0, 1), got {args.val_split}")
    if args.lr is not None and not args.lr > 0:
        raise UsageError(f"--lr must be > 0, got {args.lr}")
    sizes = parse_layers(args.layers) if args.layers else None
    if args.save and not os.path.isdir(os.path.dirname(os.path.abspath(args.save))):
        raise UsageError(f"--save {args.save}: the folder {os.path.dirname(os.path.abspath(args.save))} "
                         "does not exist")
    X, y, desc = load_data(args.data, "train", args.data_dir)
    n_feat = X.shape[1]
    labels = _whole_labels(y)
    cost = args.cost
    if cost is None:
        cost = "ce" if labels is not None and len(np.unique(labels)) > 1 and (sizes is None or sizes[-1] > 1) \
            else "mse"
    y2 = np.asarray(y)
    n_targets = 1 if y2.ndim == 1 else y2.shape[1]
    if sizes is None:
        n_out = max(2, int(labels.max()) + 1) if cost == "ce" and labels is not None else n_targets
        sizes = [n_feat, 64, n_out]
    if sizes[0] != n_feat:
        raise UsageError(f"--layers starts with {sizes[0]} inputs but {desc} has {n_feat} features per sample")
    n_out = sizes[-1]
    if cost == "ce" and labels is not None and n_out <= labels.max():
        raise UsageError(f"--layers ends with {n_out} outputs but the labels go up to {labels.max()} "
                         f"({labels.max() + 1} classes)")
    T = _targets_for(cost, y, n_out, desc)
    if cost != "ce" and not (cost == "mse" and T.ndim == 1) and T.shape[1] != n_out:
        raise UsageError(f"--layers ends with {n_out} outputs but the targets have {T.shape[1]} "
                         f"column(s); use --layers ...,{T.shape[1]}")

    net = build_net(sizes, args.activation, cost, args.seed)
    val = None
    Xtr, Ttr = X, T
    if args.val_split > 0:
        n_val = int(round(len(X) * args.val_split))
        if n_val < 1 or n_val >= len(X):
            raise UsageError(f"--val-split {args.val_split} leaves no samples for "
                             f"{'validation' if n_val < 1 else 'training'} out of {len(X)}")
        perm = np.random.default_rng(args.seed).permutation(len(X))
        Xtr, Ttr = X[perm[n_val:]], T[perm[n_val:]]
        val = (X[perm[:n_val]], T[perm[:n_val]])
    arch = "-".join(map(str, sizes))
    opt = _optimizer(args.optimizer, args.lr)
    if not args.quiet:
        _say(f"training {arch} ({args.activation}) with {cost}, {args.optimizer} lr {opt.lr:g}, "
             f"batch {args.batch_size}, {args.epochs} epochs on {len(Xtr)} samples of {desc} "
             f"[backend {backend}]")
    t0 = time.perf_counter()
    hist = net.fit(Xtr, Ttr, cost=_cost_obj(cost), optimizer=opt, epochs=args.epochs,
                   batch_size=args.batch_size, seed=args.seed, validation_data=val, backend=backend,
                   callbacks=_progress(args.quiet))
    secs = time.perf_counter() - t0
    done = len(hist.epoch)
    if hist.interrupted:
        e, b = hist.stopped_at
        _say(f"interrupted (Ctrl-C) in epoch {e + 1} after {b} batch(es) ({done} complete epoch(s)); "
             "keeping the model trained so far")
    last = {k: v[-1] for k, v in hist.history.items()}
    _say(f"trained {done} epoch(s) in {secs:.2f} s" + (f"  {_fmt_metrics(last)}" if last else ""))
    if args.data.lower() == "mnist":
        _, _, Xte, yte = _load_mnist(args.data_dir)
        res = net.evaluate(Xte, _targets_for(cost, yte, n_out, "mnist"), _cost_obj(cost), backend=backend)
        _say("test " + _fmt_metrics(res))
    if args.save:
        net.save(args.save, cost=_cost_obj(cost),
                 extra={"activation": args.activation, "data": desc, "epochs": done})
        _say(f"saved the model to {args.save}")
    if args.plot:
        os.makedirs(args.plot, exist_ok=True)
        saved = []
        if done:
            saved.append(_savefig(plots.plot_history(hist, title=f"{arch} on {desc}"), args.plot, "history.png"))
        if n_feat == 2 and cost in ("ce", "bce") and labels is not None:
            saved.append(_savefig(plots.plot_decision_boundary(net, X, labels), args.plot, "boundary.png"))
        if args.data.lower() == "mnist":
            saved.append(_savefig(plots.plot_weights(net, max_units=64), args.plot, "weights.png"))
            saved.append(_savefig(plots.plot_confusion(net, Xte, yte), args.plot, "confusion.png"))
        _say("figures: " + ", ".join(saved))
    return EXIT_INTERRUPTED if hist.interrupted else 0


def _savefig(fig, directory, name):
    path = os.path.join(directory, name)
    fig.savefig(path, dpi=fig.dpi)
    return path


# -- evaluate / predict -----------------------------------------------------------------------

def _load_model(path):
    from fastnn import io

    if not os.path.isfile(path):
        raise UsageError(f"model file not found: {path}")
    return io.load(path), io.info(path)


def _check_features(net, X, desc):
    if X.shape[1] != net.insize:
        raise UsageError(f"the model takes {net.insize} inputs but {desc} has {X.shape[1]} features per sample")


def cmd_evaluate(args):
    backend = _check_backend(args.backend)
    net, meta = _load_model(args.model)
    X, y, desc = load_data(args.data, "test", args.data_dir)
    _check_features(net, X, desc)
    cost = args.cost or _cost_name(meta.get("cost")) or ("ce" if net.outsize > 1 and _whole_labels(y) is not None
                                                        else "mse")
    T = _targets_for(cost, y, net.outsize, desc)
    res = net.evaluate(X, T, _cost_obj(cost), backend=backend)
    _say(f"{len(X)} samples of {desc}, cost {cost}")
    _say(f"loss: {res['loss']:.4f}")
    if "accuracy" in res:
        _say(f"accuracy: {res['accuracy']:.4f}")
    return 0


def cmd_predict(args):
    backend = _check_backend(args.backend)
    net, meta = _load_model(args.model)
    X, _, desc = load_data(args.data, "test", args.data_dir, need_target=False, n_features=net.insize)
    _check_features(net, X, desc)
    out = np.asarray(net.predict(X, backend=backend), dtype=np.float64)   # (N, K)
    cost = _cost_name(meta.get("cost"))
    cols = [f"output_{k}" for k in range(out.shape[1])]
    table = out
    fmt = ["%.8g"] * out.shape[1]
    if cost == "ce" or (cost == "mse" and out.shape[1] > 1):
        if cost == "ce":
            from fastnn import softmax

            table = softmax(out)
            cols = [f"p_{k}" for k in range(out.shape[1])]
        table = np.column_stack([out.argmax(axis=1), table])
        cols, fmt = ["class"] + cols, ["%d"] + fmt
    elif cost == "bce":
        table = np.column_stack([(out > 0.5).astype(np.int64), out]) if out.shape[1] == 1 else out
        if out.shape[1] == 1:
            cols, fmt = ["class", "p_1"], ["%d", "%.8g"]
    header = ",".join(cols)
    if args.out:
        np.savetxt(args.out, table, delimiter=",", header=header, comments="", fmt=fmt)
        _say(f"wrote {len(X)} predictions for {desc} to {args.out}")
    else:
        np.savetxt(sys.stdout, table, delimiter=",", header=header, comments="", fmt=fmt)
    return 0


# -- demo -------------------------------------------------------------------------------------

def _composed_line(net):
    """Slope and intercept of a purely linear 1-input 1-output network."""
    w, b = np.eye(1), np.zeros(1)
    for lin in net.linears:
        w = w @ lin.W
        b = b @ lin.W + (lin.b if lin.bias else 0)
    return float(w[0, 0]), float(b[0])


def cmd_demo(args):
    import fastnn as fn
    from fastnn import datasets, plots

    backend = _check_backend(args.backend or ("auto" if args.name == "mnist" else "numpy"))
    os.makedirs(args.out, exist_ok=True)
    seed, name = args.seed, args.name
    cbs = _progress(args.quiet) if args.progress else []
    saved = []

    def save(fig, fname):
        saved.append(_savefig(fig, args.out, fname))

    t0 = time.perf_counter()
    if name == "linear":
        # Seed 000/001: restore y = 2x + 3 with a 1-2-1 linear network.
        X, Y = datasets.linear(1000)
        net = fn.Sequential(fn.Linear(1, 2), fn.Linear(2, 1), seed=seed)
        before = net.copy()
        hist = net.fit(X, Y, cost=fn.MSE(), optimizer=fn.SGD(0.01), epochs=args.epochs or 20,
                       batch_size=10, seed=seed, backend=backend, callbacks=cbs)
        w, b = _composed_line(net)
        _say(f"linear: the 1-2-1 linear network learned y = {w:.3f} x + {b:.3f}  (target: y = 2x + 3)")
        _say(f"loss: {hist['loss'][-1]:.6f}")
        save(plots.plot_fit(net, X, Y, before=before, title="restoring y = 2x + 3 with a 1-2-1 linear net"),
             "fit.png")
    elif name == "sine":
        # Seed 000: a linear network cannot fit 2 sin(x) + 5; one non-linearity can.
        X, Y = datasets.sine(1000)
        lin = fn.Sequential(fn.Linear(1, 2), fn.Linear(2, 1), seed=seed)
        tanh = fn.Sequential(fn.Linear(1, 16), fn.Tanh(), fn.Linear(16, 1), seed=seed)
        before = {"linear 1-2-1": lin.copy(), "tanh 1-16-1": tanh.copy()}
        epochs = args.epochs or 200
        kw = dict(cost=fn.MSE(), epochs=epochs, batch_size=50, seed=seed, backend=backend, callbacks=cbs)
        lin.fit(X, Y, optimizer=fn.Adam(0.01), **kw)
        hist = tanh.fit(X, Y, optimizer=fn.Adam(0.01), **kw)
        l_lin, l_tanh = lin.evaluate(X, Y, fn.MSE())["loss"], tanh.evaluate(X, Y, fn.MSE())["loss"]
        w, b = _composed_line(lin)
        _say(f"sine: the linear 1-2-1 network can only learn a line, y = {w:.3f} x + {b:.3f}: loss {l_lin:.4f}")
        _say(f"sine: the 1-16-1 network with tanh follows y = 2 sin(x) + 5: loss {l_tanh:.6f}")
        save(plots.plot_fit({"linear 1-2-1 (fails)": lin, "tanh 1-16-1": tanh}, X, Y, before=before,
                            title="y = 2 sin(x) + 5: a linear net fails, a tanh net fits"), "fit.png")
    elif name in ("circles", "xor"):
        if name == "circles":
            # Seed 003: a 2-3-2 network (logistic hidden layer, softmax output,
            # cross-entropy) trained by full-batch gradient descent with momentum.
            X, y = datasets.circles(400, noise=0.08, seed=seed)
            hidden, epochs, lr = 3, args.epochs or 300, 0.5
        else:
            X, y = datasets.xor()
            hidden, epochs, lr = 3, args.epochs or 500, 0.5
        net = fn.Sequential(fn.Linear(2, hidden), fn.Sigmoid(), fn.Linear(hidden, 2), seed=seed)
        hist = net.fit(X, y, cost=fn.CrossEntropy(), optimizer=fn.SGD(lr, momentum=0.9), epochs=epochs,
                       batch_size=len(X), seed=seed, backend=backend, callbacks=cbs)
        res = net.evaluate(X, y, fn.CrossEntropy())
        if name == "xor":
            pred = net.predict(X).argmax(axis=1)
            for xi, yi, pi in zip(X, y, pred):
                _say(f"xor {int(xi[0])} {int(xi[1])} -> {pi}  (target {yi})")
        _say(f"{name}: a 2-{hidden}-2 sigmoid network, {epochs} epochs of gradient descent with momentum")
        _say(f"loss: {res['loss']:.4f}")
        _say(f"accuracy: {res['accuracy']:.4f}")
        save(plots.plot_decision_boundary(net, X, y), "boundary.png")
    else:  # mnist
        # Seed 002: a 784-50-10 sigmoid network, quadratic cost, minibatch SGD.
        Xtr, ytr, Xte, yte = _load_mnist(args.data_dir)
        net = fn.Sequential(fn.Linear(784, 50), fn.Sigmoid(), fn.Linear(50, 10), fn.Sigmoid(), seed=seed)
        epochs = args.epochs or 5
        hist = net.fit(Xtr, ytr, cost=fn.MSE(), optimizer=fn.SGD(3.0), epochs=epochs, batch_size=10,
                       seed=seed, validation_data=(Xte, yte), backend=backend, callbacks=cbs)
        for e, acc in zip(hist.epoch, hist["val_accuracy"]):
            _say(f"epoch {e}: test accuracy {acc:.4f}")
        _say(f"accuracy: {hist['val_accuracy'][-1]:.4f}")
        save(plots.plot_weights(net, title="first-layer weights of the 50 hidden units"), "weights.png")
        save(plots.plot_confusion(net, Xte, yte), "confusion.png")
    save(plots.plot_history(hist, title=f"demo {name}"), "history.png")
    _say(f"done in {time.perf_counter() - t0:.1f} s; figures: {', '.join(saved)}")
    return 0


# -- bench / info -----------------------------------------------------------------------------

def cmd_bench(args):
    try:
        # import_module looks in sys.modules first; `from fastnn import bench` would take the
        # package attribute once anything imported the module.
        bench = importlib.import_module("fastnn.bench")
    except ImportError as exc:
        _say(f"fastnn bench: the benchmark module is not available in this installation ({exc})",
             file=sys.stderr)
        return 1
    try:
        return bench.main(list(args.bench_args)) or 0
    except SystemExit as exc:  # its own argparse (--help, usage errors)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def _gpu_line():
    try:
        from numba import cuda
    except Exception as exc:  # numba-cuda missing or broken: say why, never fail
        return f"none (numba.cuda cannot be imported: {exc})"
    try:
        if not cuda.is_available():
            return "none (numba.cuda finds no usable CUDA GPU or driver)"
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
        return f"{name} (compute capability {dev.compute_capability[0]}.{dev.compute_capability[1]})"
    except Exception as exc:
        return f"none ({exc})"


def cmd_info(args):
    import numba

    import fastnn as fn

    _say(f"fastnn {fn.__version__}  (python {sys.version.split()[0]}, numpy {np.__version__}, "
         f"numba {numba.__version__})")
    avail = fn.available_backends()
    try:
        default = fn.get_backend()
    except Exception as exc:  # e.g. a bad FASTNN_BACKEND
        default = f"? ({exc})"
    _say(f"default backend: {default}")
    _say("backends:")
    for name, why in avail.items():
        _say(f"  {name:<6} " + ("available" if why is None else f"unavailable: {why}"))
    try:
        from fastnn.config import get_num_threads
        threads = get_num_threads()
    except ImportError:
        threads = numba.get_num_threads()
    _say(f"threads: {threads} (NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}, "
         f"CPU cores: {os.cpu_count()})")
    _say(f"GPU: {_gpu_line()}")
    cache = numba.config.CACHE_DIR
    if cache:
        _say(f"numba cache dir: {cache} (NUMBA_CACHE_DIR)")
    else:
        from fastnn import kernels

        kdir = os.path.join(os.path.dirname(kernels.__file__), "cpu", "__pycache__")
        _say(f"numba cache dir: {kdir} (numba's default beside the kernels, or a user cache folder when "
             "that is not writable; set NUMBA_CACHE_DIR to choose)")
    return 0


# -- parser -----------------------------------------------------------------------------------

def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def build_parser():
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
                   help="folder for the PNG figures (default: ./fastnn-demo)")
    d.add_argument("--epochs", type=int, default=None, help="override the demo's number of epochs")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--backend", default=None, choices=BACKENDS,
                   help="compute backend (default: numpy for the toy demos, whose few tiny batches would "
                   "spend longer compiling than training; auto for mnist)")
    d.add_argument("--data-dir", default=None, metavar="DIR", help="MNIST folder (default: $FASTNN_DATA or "
                   "~/.cache/fastnn/mnist, downloading there if missing)")
    d.add_argument("--progress", action="store_true", help="show a progress bar while training")
    d.add_argument("--quiet", action="store_true", help="no progress output")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train a network on MNIST, a .npz or a .csv file",
                       description="Train an MLP. The progress bar shows on a terminal; elsewhere one line "
                       "per epoch is printed (none with --quiet). Ctrl-C stops cleanly, keeps the model "
                       "trained so far (saved with --save) and exits with status 130.")
    t.add_argument("--data", required=True, metavar="mnist|PATH.npz|PATH.csv",
                   help="'mnist'; a .npz with arrays X and y; or a .csv whose last column is the target")
    t.add_argument("--layers", default=None, metavar="N,N,...",
                   help="layer sizes, inputs first, like 784,256,10 (default: inputs,64,outputs)")
    t.add_argument("--activation", default="relu", choices=ACTIVATIONS, help="hidden activation (default relu)")
    t.add_argument("--cost", default=None, choices=COSTS,
                   help="mse, ce (softmax cross-entropy) or bce (sigmoid output); default: ce for class "
                   "labels 0..K-1, else mse")
    t.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="default adam")
    t.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default 0.001 for adam, 0.01 otherwise)")
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
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="loss and accuracy of a saved model on data",
                       description="Print the loss and (for classifiers) 'accuracy: 0.9712' of a saved model. "
                       "For --data mnist the test set is used.")
    e.add_argument("model", metavar="MODEL", help="a .safetensors model file written by fastnn")
    e.add_argument("--data", required=True, metavar="mnist|PATH.npz|PATH.csv")
    e.add_argument("--cost", default=None, choices=COSTS, help="default: the cost stored in the model file")
    e.add_argument("--backend", default="auto", choices=BACKENDS)
    e.add_argument("--data-dir", default=None, metavar="DIR", help="MNIST folder")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="outputs of a saved model, as CSV",
                        description="Write the model's outputs for each sample as CSV (a 'class' column "
                        "first for classifiers). A .csv input may hold just the features, or the features "
                        "and a target column (ignored).")
    pr.add_argument("model", metavar="MODEL", help="a .safetensors model file written by fastnn")
    pr.add_argument("--data", required=True, metavar="mnist|PATH.npz|PATH.csv")
    pr.add_argument("--out", default=None, metavar="preds.csv", help="output file (default: standard output)")
    pr.add_argument("--backend", default="auto", choices=BACKENDS)
    pr.add_argument("--data-dir", default=None, metavar="DIR", help="MNIST folder")
    pr.set_defaults(func=cmd_predict)

    b = sub.add_parser("bench", help="the benchmark table (fastnn.bench); 'fastnn bench --help' for its options",
                       description="Run fastnn.bench with the remaining arguments.", add_help=False)
    b.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for fastnn.bench")
    b.set_defaults(func=cmd_bench)

    i = sub.add_parser("info", help="version, backends, threads, GPU, numba cache",
                       description="Show the fastnn version, which backends work here (and why not), "
                       "threads, the GPU and the numba cache directory.")
    i.set_defaults(func=cmd_info)
    return p


def _one_line(exc):
    msg = " ".join(str(exc).split())
    return msg or type(exc).__name__


def main(argv=None):
    """Run the ``fastnn`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["bench"]:
        # argparse's REMAINDER drops a leading option such as --help: pass everything on as is.
        return cmd_bench(argparse.Namespace(bench_args=argv[1:]))
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else 0
        if args.command is None:
            raise UsageError("choose a command: " + ", ".join(
                ("demo", "train", "evaluate", "predict", "bench", "info")) + " (fastnn --help)")
        return args.func(args)
    except BrokenPipeError:
        # `fastnn predict ... | head`: the reader left; stop quietly, as Unix tools do.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except UsageError as exc:
        if os.environ.get("FASTNN_DEBUG"):
            raise
        msg = _one_line(exc)
        print(msg if msg.startswith("fastnn") else f"fastnn: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as exc:
        # Bad input the library refused (it checks before changing anything): wrong sizes,
        # bad targets, unreadable or corrupted model files, unwritable paths.
        if os.environ.get("FASTNN_DEBUG"):
            raise
        print(f"fastnn: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
