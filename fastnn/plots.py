"""Figures of networks and training runs, drawn with matplotlib's Agg backend.

Every function returns a :class:`matplotlib.figure.Figure` built directly (not
through ``pyplot``), so nothing here needs a display, changes the global backend
or keeps figures alive in pyplot's registry. Save one with
``fig.savefig("fit.png")``; in Jupyter a returned figure displays itself.

- :func:`plot_fit`: a 1-D regression before and after training (seeds 000, 001);
- :func:`plot_decision_boundary`: the classes of a 2-D classifier (seed 003);
- :func:`plot_history`: loss and accuracy curves, train and validation;
- :func:`plot_weights`: the first layer's weights as images (seed 002);
- :func:`plot_confusion`: the confusion matrix of a classifier.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_fit", "plot_decision_boundary", "plot_history", "plot_weights", "plot_confusion",
           "confusion_matrix"]

# Seed 003 draws the outer ring red and the inner ring blue.
_CLASS_COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _figure(w, h):
    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _predict(net, X):
    return np.asarray(net.predict(np.asarray(X, dtype=net.dtype)))


def _as_curves(obj, X, what):
    """A net, an array of predictions, or a dict of either -> {label: (N,) array}."""
    if obj is None:
        return {}
    items = obj.items() if isinstance(obj, dict) else [(None, obj)]
    out = {}
    for label, v in items:
        y = _predict(v, X) if hasattr(v, "predict") else np.asarray(v, dtype=float)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.shape != (len(X),):
            raise ValueError(f"{what}: expected {len(X)} one-dimensional predictions, got shape {y.shape}")
        out[label] = y
    return out


def plot_fit(net, X, Y, before=None, title=None):
    """A 1-D regression: target and network output, before and after training.

    Parameters
    ----------
    net : Sequential, array of predictions, or dict label -> either
        The trained network(s); a dict draws several on the same axes (seed 000
        compares a linear network with a non-linear one this way).
    X : array (N,) or (N, 1)
        Inputs (one feature).
    Y : array (N,) or (N, 1)
        Targets.
    before : same kinds as ``net``, optional
        The untrained network(s) (e.g. ``net.copy()`` taken before ``fit``) or their
        predictions; adds a "before training" panel on the left.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 2 and X.shape[1] == 1:
        x = X[:, 0]
    elif X.ndim == 1:
        x, X = X, X.reshape(-1, 1)
    else:
        raise ValueError(f"plot_fit draws one input feature; X has shape {X.shape}")
    y = np.asarray(Y, dtype=float).reshape(len(x), -1)[:, 0]
    panels = []
    if before is not None:
        panels.append(("before training", _as_curves(before, X, "before")))
    panels.append(("after training", _as_curves(net, X, "net")))
    fig = _figure(5.0 * len(panels), 3.6)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    order = np.argsort(x)
    for ax, (name, curves) in zip(axes, panels):
        # A wide, pale target keeps a network curve that matches it visible on top.
        ax.plot(x[order], y[order], color="#1f77b4", lw=6, alpha=0.35, label="target")
        for i, (label, pred) in enumerate(curves.items()):
            ax.plot(x[order], pred[order], color=_CLASS_COLORS[3 + i], lw=1.8,
                    ls=("-", "--", ":", "-.")[i % 4], label=label or "network")
        ax.set_title(name)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[0].set_ylabel("y")
    if title:
        fig.suptitle(title)
    return fig


def _class_of(out):
    out = np.asarray(out)
    if out.ndim == 1 or out.shape[1] == 1:
        return (out.reshape(len(out)) > 0.5).astype(np.int64)
    return out.argmax(axis=1)


def plot_decision_boundary(net, X, y, resolution=200, margin=0.3, title=None):
    """The class a 2-input classifier predicts over the plane, with the samples.

    Parameters
    ----------
    net : Sequential
        Two inputs; several outputs (class = argmax) or one (class = output > 0.5).
    X : array (N, 2)
    y : array (N,) of int labels, or (N, C) one-hot
    resolution : int
        Grid points along each axis.
    margin : float
        Space around the samples, in data units.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D inputs (N, 2); got shape {X.shape}")
    labels = _class_of(y) if np.asarray(y).ndim == 2 else np.asarray(y).astype(np.int64)
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])           # (R*R, 2)
    zone = _class_of(_predict(net, grid)).reshape(gx.shape)    # (R, R)
    n_cls = int(max(zone.max(), labels.max() if len(labels) else 0)) + 1
    colors = _CLASS_COLORS[:max(n_cls, 2)]
    fig = _figure(5.0, 4.6)
    ax = fig.subplots()
    ax.contourf(gx, gy, zone, levels=np.arange(len(colors) + 1) - 0.5, cmap=ListedColormap(colors), alpha=0.25)
    ax.contour(gx, gy, zone, levels=np.arange(len(colors)) + 0.5, colors="k", linewidths=0.8)
    acc = float(np.mean(_class_of(_predict(net, X)) == labels)) if len(labels) else float("nan")
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(X[m, 0], X[m, 1], s=14, color=colors[c % len(colors)], edgecolors="k", linewidths=0.3,
                   label=f"class {c}")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(title or f"decision boundary (accuracy {acc:.3f})")
    return fig


def plot_history(history, title=None):
    """Loss and (when recorded) accuracy per epoch, train and validation.

    Parameters
    ----------
    history : History or dict
        What ``fit`` returns, or a dict like ``History.history``.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    h = getattr(history, "history", history)
    if not isinstance(h, dict) or "loss" not in h:
        raise ValueError("plot_history takes the History returned by fit (it needs a 'loss' entry)")
    metrics = ["loss"] + (["accuracy"] if "accuracy" in h or "val_accuracy" in h else [])
    fig = _figure(4.6 * len(metrics), 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, m in zip(axes, metrics):
        for key, label, style in ((m, "train", "-"), ("val_" + m, "validation", "--")):
            if key in h and len(h[key]):
                v = np.asarray(h[key], dtype=float)
                ax.plot(np.arange(1, len(v) + 1), v, style, marker="o" if len(v) <= 30 else None,
                        ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(m)
        if m == "loss" and np.all(np.asarray(h["loss"]) > 0):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_weights(net, shape=None, max_units=100, layer=0, title=None):
    """The weights of a Linear layer's units drawn as images (seed 002's MNIST filters).

    Parameters
    ----------
    net : Sequential
    shape : (h, w), optional
        Image shape of one unit's input weights; default: square (28x28 for 784).
    max_units : int
        Draw at most this many units (the first ones).
    layer : int
        Which Linear layer (0 = the first).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    lin = net.linears
    if not 0 <= layer < len(lin):
        raise ValueError(f"layer must be in 0..{len(lin) - 1}, got {layer}")
    W = np.asarray(lin[layer].W, dtype=float)                # (in, out)
    n_in, n_out = W.shape
    if shape is None:
        side = int(round(np.sqrt(n_in)))
        if side * side != n_in:
            raise ValueError(f"{n_in} inputs are not a square image; pass shape=(h, w)")
        shape = (side, side)
    if shape[0] * shape[1] != n_in:
        raise ValueError(f"shape {tuple(shape)} holds {shape[0] * shape[1]} values, the layer has {n_in} inputs")
    k = min(n_out, int(max_units))
    cols = int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / cols))
    fig = _figure(min(1.0 * cols, 10), min(1.0 * rows, 10) + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < k:
            w = W[:, i].reshape(shape)
            s = np.abs(w).max() or 1.0
            ax.imshow(w, cmap="seismic", vmin=-s, vmax=s, interpolation="nearest")
    fig.suptitle(title or f"layer {layer} weights, {k} of {n_out} units (red > 0 > blue)", fontsize="small")
    return fig


def confusion_matrix(y_true, y_pred, n_classes=None):
    """Counts ``C[i, j]`` of samples of class ``i`` predicted as ``j``; int64 (K, K)."""
    t = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    k = int(n_classes) if n_classes is not None else int(max(t.max(initial=0), p.max(initial=0))) + 1
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def plot_confusion(net, X, y, class_names=None, normalize=False, title=None):
    """Confusion matrix of a classifier on ``X``, ``y``.

    Parameters
    ----------
    net : Sequential
        Class = argmax of the outputs (or output > 0.5 for a single output).
    X : array (N, insize)
    y : array (N,) int labels, or (N, C) one-hot
    class_names : list of str, optional
    normalize : bool
        Show each row as fractions of the true class instead of counts.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    y = np.asarray(y)
    labels = _class_of(y) if y.ndim == 2 else y.astype(np.int64)
    pred = _class_of(_predict(net, X))
    k = max(int(net.outsize) if net.outsize and net.outsize > 1 else 2, int(labels.max(initial=0)) + 1)
    C = confusion_matrix(labels, pred, k)
    M = C / np.maximum(C.sum(axis=1, keepdims=True), 1) if normalize else C
    size = min(2.0 + 0.55 * k, 9.0)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    im = ax.imshow(M, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names[:k])
    ax.set_yticks(range(k), names[:k])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        thresh = M.max() / 2 if M.size else 0
        for i in range(k):
            for j in range(k):
                txt = f"{M[i, j]:.2f}" if normalize else str(C[i, j])
                ax.text(j, i, txt, ha="center", va="center", fontsize=7 if k > 10 else 9,
                        color="white" if M[i, j] > thresh else "black")
    acc = np.trace(C) / max(C.sum(), 1)
    ax.set_title(title or f"confusion matrix (accuracy {acc:.4f})")
    return fig
