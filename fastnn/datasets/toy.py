"""The toy problems of the seed tutorials, and :func:`one_hot`.

Plain NumPy; randomness comes only from ``np.random.default_rng(seed)``.
"""

import inspect
import itertools

import numpy as np

__all__ = ["linear", "sine", "circles", "xor", "equal_bits", "one_hot"]


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------

def _check_int(name, value, minimum):
    # bool is an int subclass, but n=True is a bug, not a size.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _float_dtype(dtype):
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating-point type, got {dt}")
    return dt


# ---------------------------------------------------------------------------
# toy problems
# ---------------------------------------------------------------------------

def _grid(n, dtype):
    n = _check_int("n", n, 1)
    # (n, 1): one feature per sample, the layout Linear layers expect.
    return np.linspace(-3.0, 3.0, n, dtype=_float_dtype(dtype)).reshape(-1, 1)


_GRID_SECTIONS = """
    Parameters
    ----------
    n : int
        Number of evenly spaced points (>= 1).
    dtype : numpy dtype
        Floating-point dtype of both arrays.

    Returns
    -------
    X : ndarray, shape (n, 1)
        Inputs, increasing from -3 to 3.
    Y : ndarray, shape (n, 1)
        Targets ``{target}``.
    """


def _grid_docstring(target):
    """Append the Parameters and Returns sections that :func:`linear` and :func:`sine`
    share to the decorated function's docstring (``target``: the formula of Y)."""
    def add(func):
        if func.__doc__ is not None:  # None under python -OO
            func.__doc__ = (inspect.cleandoc(func.__doc__) + "\n\n"
                            + inspect.cleandoc(_GRID_SECTIONS.format(target=target)))
        return func
    return add


@_grid_docstring("2 * X + 3")
def linear(n=1000, dtype=np.float32):
    """Samples of the line ``y = 2x + 3`` on ``linspace(-3, 3, n)``.

    The regression target of seed tutorials 001 (one linear neuron) and 000
    (a 1-2-1 linear network).
    """
    X = _grid(n, dtype)          # (n, 1)
    Y = 2 * X + 3                # (n, 1), same dtype as X
    return X, Y


@_grid_docstring("2 * sin(X) + 5")
def sine(n=1000, dtype=np.float32):
    """Samples of ``y = 2 sin(x) + 5`` on ``linspace(-3, 3, n)``.

    Seed tutorial 000's non-linear target, which a purely linear network
    cannot fit.
    """
    X = _grid(n, dtype)          # (n, 1)
    Y = 2 * np.sin(X) + 5        # (n, 1)
    return X, Y


def circles(n=200, noise=0.1, factor=0.5, seed=None, dtype=np.float32):
    """Two concentric rings in the plane: a red ring around a blue one.

    The data set of seed tutorial 003, written from scratch with the same
    construction as scikit-learn's ``make_circles``: ``n // 2`` points evenly
    spaced in angle on the outer circle (radius 1, label 0, "red") and the
    remaining ``n - n // 2`` on the inner circle (radius ``factor``, label 1,
    "blue"), each coordinate perturbed by Gaussian noise of standard
    deviation ``noise``, then shuffled.

    Parameters
    ----------
    n : int
        Total number of samples (>= 2, so that both classes exist).
    noise : float
        Standard deviation of the Gaussian noise (>= 0).
    factor : float
        Radius of the inner circle relative to the outer one, ``0 < factor < 1``.
    seed : int, numpy.random.Generator or None
        Passed to ``np.random.default_rng``; the same int gives the same data.
        None draws fresh entropy.
    dtype : numpy dtype
        Floating-point dtype of ``X``.

    Returns
    -------
    X : ndarray, shape (n, 2)
        Point coordinates.
    y : ndarray of int64, shape (n,)
        Class labels: 0 for the outer (red) ring, 1 for the inner (blue) ring.

    Raises
    ------
    ValueError
        If ``n < 2``, ``noise < 0`` or ``factor`` is not in (0, 1).
    """
    n = _check_int("n", n, 2)
    noise = float(noise)
    factor = float(factor)
    if not (noise >= 0.0 and np.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must satisfy 0 < factor < 1, got {factor}")
    dt = _float_dtype(dtype)
    rng = np.random.default_rng(seed)

    n_out = n // 2
    n_in = n - n_out
    # endpoint=False: angle 0 and 2*pi are the same point.
    t_out = np.linspace(0.0, 2.0 * np.pi, n_out, endpoint=False)   # (n_out,)
    t_in = np.linspace(0.0, 2.0 * np.pi, n_in, endpoint=False)     # (n_in,)
    X = np.empty((n, 2), dtype=np.float64)                         # (n, 2)
    X[:n_out, 0] = np.cos(t_out)
    X[:n_out, 1] = np.sin(t_out)
    X[n_out:, 0] = factor * np.cos(t_in)
    X[n_out:, 1] = factor * np.sin(t_in)
    y = np.zeros(n, dtype=np.int64)                                # (n,)
    y[n_out:] = 1

    order = rng.permutation(n)
    X = X[order]
    y = y[order]
    if noise > 0.0:
        X += rng.normal(0.0, noise, size=X.shape)
    return X.astype(dt, copy=False), y


def xor(dtype=np.float32):
    """The XOR truth table.

    Parameters
    ----------
    dtype : numpy dtype
        Floating-point dtype of ``X``.

    Returns
    -------
    X : ndarray, shape (4, 2)
        Rows ``[0, 0], [0, 1], [1, 0], [1, 1]``.
    y : ndarray of int64, shape (4,)
        ``[0, 1, 1, 0]``, i.e. ``X[:, 0] xor X[:, 1]``.
    """
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=_float_dtype(dtype))  # (4, 2)
    y = np.array([0, 1, 1, 0], dtype=np.int64)                                 # (4,)
    return X, y


def equal_bits(dtype=np.float32):
    """Seed 004's task: are the first two of three bits equal?

    Seed tutorial 004 trains a bias-free sigmoid network "that outputs 1 when
    the first and second unit of a sample is the same value, otherwise
    outputs 0". The samples here are all eight 3-bit vectors; the third bit
    does not affect the target.

    Parameters
    ----------
    dtype : numpy dtype
        Floating-point dtype of both arrays.

    Returns
    -------
    X : ndarray, shape (8, 3)
        All of ``{0, 1}^3`` in binary counting order (``000, 001, ..., 111``).
    y : ndarray, shape (8, 1)
        1.0 where ``X[:, 0] == X[:, 1]``, else 0.0.
    """
    dt = _float_dtype(dtype)
    X = np.array(list(itertools.product((0, 1), repeat=3)), dtype=dt)  # (8, 3)
    y = (X[:, 0] == X[:, 1]).astype(dt).reshape(-1, 1)                 # (8, 1)
    return X, y


def one_hot(labels, n_classes=None, dtype=np.float32):
    """Encode integer class labels as one-hot rows.

    Parameters
    ----------
    labels : array_like, shape (N,)
        Class indices in ``0 .. n_classes - 1``. Integer arrays, or float
        arrays whose values are all whole numbers.
    n_classes : int, optional
        Number of classes C. Default: ``labels.max() + 1``.
    dtype : numpy dtype
        dtype of the result.

    Returns
    -------
    ndarray, shape (N, C)
        ``out[i, labels[i]] = 1``, every other entry 0.

    Raises
    ------
    ValueError
        If labels are not 1-D, not integers, or outside ``0 .. C - 1``, or if
        C cannot be inferred (empty labels and no ``n_classes``).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.dtype.kind in "iu":
        idx = labels.astype(np.int64, copy=False)
    elif labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        idx = labels.astype(np.int64)
    else:
        raise ValueError(f"labels must be integers, got dtype {labels.dtype} "
                         "(non-integer values or non-numeric)")
    if n_classes is None:
        if idx.size == 0:
            raise ValueError("cannot infer n_classes from empty labels; pass n_classes")
        n_classes = int(idx.max()) + 1
    n_classes = _check_int("n_classes", n_classes, 1)
    if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
        bad = idx[(idx < 0) | (idx >= n_classes)]
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, found {bad[:5].tolist()}")
    out = np.zeros((idx.size, n_classes), dtype=dtype)   # (N, C)
    out[np.arange(idx.size), idx] = 1
    return out

