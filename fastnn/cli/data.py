"""``--data``: MNIST, ``.npz`` and ``.csv`` files, and the targets each cost wants."""

import os

import numpy as np

from fastnn.cli._common import UsageError


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
