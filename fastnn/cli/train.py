"""``fastnn train``, ``fastnn evaluate`` and ``fastnn predict``, and the network they build."""

import os
import sys
import time

import numpy as np

from fastnn.cli._common import (
    EXIT_INTERRUPTED, UsageError, _check_backend, _progress, _say, _savefig, fmt_value, plural, signals_held)
from fastnn.cli.data import MAX_AUTO_CLASSES, _load_mnist, _targets_for, _whole_labels, load_data, looks_like_classes

#: Most classes --cost ce may build an output layer for (labels beyond it are a mistake).
MAX_CLASSES = 100_000


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
           "identity": fn.Identity, "elu": fn.ELU, "softplus": fn.Softplus, "gelu": fn.GELU,
           "silu": fn.SiLU, "relu6": fn.ReLU6}[activation]
    init = "he" if activation in ("relu", "leaky_relu", "elu", "gelu", "silu", "relu6") else "xavier"
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

    opt = fn.optimizers.get_optimizer(name)   # each one's own default lr (torch.optim's; sgd 0.01)
    if lr is not None:
        opt.lr = lr
    return opt


def _fmt_metrics(d, prefix=""):
    return "  ".join(f"{prefix}{k}: {fmt_value(v)}" for k, v in d.items())


def _choose_cost(args, labels, sizes):
    """--cost, or the cost the targets call for, with the reason printed."""
    if args.cost is not None:
        return args.cost
    if looks_like_classes(labels) and (sizes is None or sizes[-1] > 1):
        k = int(labels.max()) + 1
        why = f"the targets are class labels 0..{k - 1}"
        cost = "ce"
    else:
        why = (f"the targets are numbers, not class labels 0..K-1 with K <= {MAX_AUTO_CLASSES} and at least "
               "half the classes present" if labels is not None else "the targets are not whole numbers")
        cost = "mse"
    if not args.quiet:
        _say(f"cost: {cost} ({why}; --cost chooses)")
    return cost


# -- train ------------------------------------------------------------------------------------

def cmd_train(args):
    if args.quiet:
        from fastnn import config

        config.COMPILE_NOTICES = False
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
    mnist = args.data.lower() == "mnist"
    if mnist:  # loaded once: the test split is evaluated after training
        Xtr_all, ytr_all, Xte, yte = _load_mnist(args.data_dir)
        X, y, desc = Xtr_all, ytr_all, "mnist (train)"
    else:
        X, y, desc = load_data(args.data, "train", args.data_dir, targets=args.targets)
    n_feat = X.shape[1]
    labels = _whole_labels(y)
    cost = _choose_cost(args, labels, sizes)
    if cost == "ce" and labels is not None and labels.max() >= MAX_CLASSES:
        raise UsageError(f"--cost ce: the labels go up to {labels.max()}, which would need {labels.max() + 1} "
                         f"outputs (at most {MAX_CLASSES}); are these regression targets? use --cost mse")
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
        n_val = int(round(X.shape[0] * args.val_split))
        if n_val < 1 or n_val >= X.shape[0]:
            raise UsageError(f"--val-split {args.val_split} leaves no samples for "
                             f"{'validation' if n_val < 1 else 'training'} out of {X.shape[0]}")
        perm = np.random.default_rng(args.seed).permutation(X.shape[0])
        Xtr, Ttr = X[perm[n_val:]], T[perm[n_val:]]
        val = (X[perm[:n_val]], T[perm[:n_val]])
    arch = "-".join(map(str, sizes))
    opt = _optimizer(args.optimizer, args.lr)
    if not args.quiet:
        _say(net.summary())
        _say(f"training {arch} ({args.activation}) with {cost}, {args.optimizer} lr {opt.lr:g}, "
             f"batch {args.batch_size}, {plural(args.epochs, 'epoch')} on {Xtr.shape[0]} samples of {desc} "
             f"[backend {backend}]")
    t0 = time.perf_counter()
    hist = net.fit(Xtr, Ttr, cost=_cost_obj(cost), optimizer=opt, epochs=args.epochs,
                   batch_size=args.batch_size, seed=args.seed, validation_data=val, backend=backend,
                   callbacks=_progress(args.quiet), on_nonfinite="stop")
    secs = time.perf_counter() - t0
    done = len(hist.epoch)
    if hist.interrupted:
        e, b = hist.stopped_at
        _say(f"interrupted ({hist.stop_signal or 'Ctrl-C'}) in epoch {e + 1} after {plural(b, 'batch')} "
             f"({plural(done, 'complete epoch')}); keeping the model trained so far")
    if hist.diverged:
        e, _ = hist.stopped_at
        _say(f"training diverged in epoch {e + 1} (the loss became NaN or inf); keeping the weights of the last "
             f"finite chunk of batches: try a smaller --lr (it is {opt.lr:g})")
    last = {k: v[-1] for k, v in hist.history.items()}
    _say(f"trained {plural(done, 'epoch')} in {secs:.2f} s" + (f"  {_fmt_metrics(last)}" if last else ""))
    if args.save:  # first: a Ctrl-C during the test evaluation must not lose the model
        with signals_held():
            net.save(args.save, cost=_cost_obj(cost),
                     extra={"activation": args.activation, "data": desc, "epochs": done})
        _say(f"saved the model to {args.save}")
    if mnist:
        res = net.evaluate(Xte, _targets_for(cost, yte, n_out, "mnist"), _cost_obj(cost), backend=backend)
        _say("test " + _fmt_metrics(res))
    if args.plot:
        from fastnn import plots  # matplotlib: only when plotting

        os.makedirs(args.plot, exist_ok=True)
        saved = []
        if done:
            saved.append(_savefig(plots.plot_history(hist, title=f"{arch} on {desc}"), args.plot, "history.png"))
        if n_feat == 2 and cost in ("ce", "bce") and labels is not None:
            saved.append(_savefig(plots.plot_decision_boundary(net, X, labels), args.plot, "boundary.png"))
        if mnist:
            saved.append(_savefig(plots.plot_weights(net, max_units=64), args.plot, "weights.png"))
            saved.append(_savefig(plots.plot_confusion(net, Xte, yte), args.plot, "confusion.png"))
        _say("figures: " + ", ".join(saved))
    if hist.interrupted:
        return 128 + 15 if hist.stop_signal == "SIGTERM" else EXIT_INTERRUPTED
    return 1 if hist.diverged else 0


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
    X, y, desc = load_data(args.data, "test", args.data_dir, targets=args.targets)
    _check_features(net, X, desc)
    cost = args.cost or _cost_name(meta.get("cost")) or ("ce" if net.outsize > 1 and _whole_labels(y) is not None
                                                        else "mse")
    T = _targets_for(cost, y, net.outsize, desc)
    res = net.evaluate(X, T, _cost_obj(cost), backend=backend)
    _say(f"{X.shape[0]} samples of {desc}, cost {cost}")
    _say(f"loss: {fmt_value(res['loss'])}")
    if "accuracy" in res:
        _say(f"accuracy: {fmt_value(res['accuracy'])}")
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
        _say(f"wrote {X.shape[0]} predictions for {desc} to {args.out}")
    else:
        np.savetxt(sys.stdout, table, delimiter=",", header=header, comments="", fmt=fmt)
    return 0
