"""``--data``: MNIST, ``.npz`` and ``.csv`` files, and the targets each cost wants."""

import os
import warnings

import numpy as np

from fastnn.cli._common import UsageError


def _load_mnist(data_dir):
    from fastnn.datasets import load_mnist

    try:
        return load_mnist(data_dir, download=True)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_csv(path):
    """A numeric CSV file as float64 (rows, columns).

    The header rule (README): the first line is a header when one of its cells is text
    that is not a number (an empty cell is not text). Every other line must be numbers,
    with no empty cells.
    """
    try:
        with open(path, encoding="utf-8") as f:
            first, blank = f.readline(), 0
            while first and not first.strip():
                first, blank = f.readline(), blank + 1
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text CSV file (it is not UTF-8 text; a binary file?)") from None
    if not first:
        raise UsageError(f"{path}: no data rows (the file is empty)")
    # loadtxt's skiprows counts the blank lines before a header too
    skip = blank + 1 if any(c.strip() and not _is_number(c) for c in first.split(",")) else 0
    try:
        with warnings.catch_warnings():  # "input contained no data": said below, in our words
            warnings.simplefilter("ignore", UserWarning)
            data = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64, encoding="utf-8")
    except (ValueError, UnicodeDecodeError):
        raise UsageError(_csv_problem(path, skip)) from None
    if data.size == 0:
        raise UsageError(f"{path}: no data rows" + (" (only a header line)" if skip else ""))
    return data


def _csv_problem(path, skip):
    """The first bad cell of a CSV file that NumPy refused, as one sentence."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        return f"{path}: not a text CSV file (it is not UTF-8 text; a binary file?)"
    width = None
    for lineno, line in enumerate(lines[skip:], start=skip + 1):
        if not line.strip():
            continue
        cells = line.split(",")
        width = width or len(cells)
        if len(cells) != width:
            return f"{path}, line {lineno}: {len(cells)} values, but the first data line has {width}"
        for j, c in enumerate(cells):
            if not c.strip():
                return f"{path}, line {lineno}: column {j + 1} is empty (missing values are not supported)"
            if not _is_number(c):
                return f"{path}, line {lineno}: column {j + 1} is {c.strip()!r}, not a number"
    return f"{path}: not a numeric CSV file"


def _pick(arrays, names, path, what):
    for name in names:
        if name in arrays:
            return arrays[name]
    raise UsageError(f"{path}: no array for {what} (looked for {', '.join(names)}; "
                     f"the file has {', '.join(arrays) or 'none'})")


#: The arrays of a ``scipy.sparse.save_npz`` file.
SPARSE_NPZ_KEYS = {"format", "shape", "data", "indices", "indptr"}


def _load_targets(path):
    """``--targets``: a .npy array, a .npz with ``y``, or a one-column (or multi-column) .csv."""
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise UsageError(f"--targets: file not found: {path}")
    try:
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return _pick({k: z[k] for k in z.files}, ("y", "Y", "target", "labels"), path, "the targets")
    except (ValueError, OSError) as exc:
        raise UsageError(f"{path}: not a readable {ext} file ({exc})") from None
    if ext == ".csv":
        data = _read_csv(path)
        return data[:, 0] if data.shape[1] == 1 else data
    raise UsageError(f"--targets must be a .npy, .npz or .csv file, got {path!r}")


def load_data(spec, split="train", data_dir=None, need_target=True, n_features=None, targets=None):
    """``--data`` -> ``(X, y, description)``.

    ``spec`` is ``"mnist"`` (the ``split`` set), a ``.npz`` file with arrays ``X``
    and ``y``, a ``scipy.sparse.save_npz`` file (X stays a CSR matrix; ``targets``,
    ``--targets``, names the file of y), or a ``.csv`` file whose last column is the
    target. Without ``need_target`` (predict) a CSV of exactly ``n_features`` columns
    is all inputs and ``y`` may be None.
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
        if SPARSE_NPZ_KEYS <= set(arrays):
            import scipy.sparse as sp

            try:
                X = sp.load_npz(spec).tocsr()
            except (ValueError, OSError) as exc:
                raise UsageError(f"{spec}: not a readable scipy.sparse .npz file ({exc})") from None
            if need_target and targets is None:
                raise UsageError(f"{spec} holds a scipy.sparse matrix (the inputs) and no targets: "
                                 "name their file with --targets")
            y = _load_targets(targets) if targets is not None else None
            return _checked(X, y, spec)
        X = _pick(arrays, ("X", "x", "X_train", "data"), spec, "the inputs")
        y = None
        if targets is not None:
            y = _load_targets(targets)
        elif need_target or any(k in arrays for k in ("y", "Y", "y_train", "target", "labels")):
            y = _pick(arrays, ("y", "Y", "y_train", "target", "labels"), spec, "the targets")
    else:
        data = _read_csv(spec)
        if not need_target and n_features is not None and data.shape[1] == n_features:
            X, y = data, None
        else:
            if data.shape[1] < 2:
                raise UsageError(f"{spec}: needs at least 2 columns (inputs, then the target in the last)")
            X, y = data[:, :-1], data[:, -1]
    return _checked(np.asarray(X), y, spec)


def _checked(X, y, spec):
    if X.ndim != 2 or X.dtype.kind not in "fiub":
        raise UsageError(f"{spec}: inputs must be a numeric 2-D array (samples, features), got "
                         f"{X.dtype} of shape {X.shape}")
    if y is not None and len(y) != X.shape[0]:
        raise UsageError(f"{spec}: {X.shape[0]} input rows but {len(y)} targets")
    return X, y, spec


#: ``ce`` is chosen by itself only for labels 0..K-1 with K at most this many classes...
MAX_AUTO_CLASSES = 1000


def _whole_labels(y):
    """``y`` as int64 class labels if it is 1-D whole numbers >= 0, else None."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "fiub" or len(y) == 0:
        return None
    if y.dtype.kind == "f" and not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        return None
    if y.min() < 0 or y.max() >= 2**62:
        return None
    return y.astype(np.int64)


def looks_like_classes(labels):
    """Whether whole-number targets are class labels 0..K-1 (so ``ce`` fits): K at most
    :data:`MAX_AUTO_CLASSES` and at least half of the K classes present. Years
    (1990..2020) or counts are not; they are regression targets."""
    if labels is None:
        return False
    k = int(labels.max()) + 1
    return 2 <= k <= MAX_AUTO_CLASSES and len(np.unique(labels)) >= k / 2


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
