"""Input validation shared by the public API: one clear ValueError per problem,
raised before anything is modified."""

import numbers

import numpy as np

DTYPES = (np.float32, np.float64)


def check_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt.name}")
    return dt.type


def check_positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _is_sparse(X):
    return type(X).__module__.startswith("scipy.sparse")


def check_X(X, n_in, dtype, allow_empty=False, name="X"):
    """2-D, numeric, finite, ``n_in`` columns; converted to contiguous ``dtype``."""
    if _is_sparse(X):
        raise ValueError(f"{name} is a scipy.sparse matrix ({type(X).__name__}), which fastnn does not take "
                         f"yet; pass a dense array ({name}.toarray()) if it fits in memory")
    X = np.asarray(X)
    if X.dtype == object or X.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got {X.ndim} dimension(s) with shape {X.shape}")
    if not allow_empty and X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if n_in is not None and X.shape[1] != n_in:
        raise ValueError(f"{name} has {X.shape[1]} features but the network expects {n_in}")
    check_range(X, dtype, name)
    with np.errstate(over="ignore"):
        X = np.ascontiguousarray(X, dtype=dtype)
    if not all_finite(X):
        raise ValueError(f"{name} contains NaN or inf")
    return X


def check_range(a, dtype, name):
    """Raise ValueError when finite values of ``a`` overflow ``dtype`` (they would become inf)."""
    dt = np.dtype(dtype)
    if a.dtype.kind != "f" or a.dtype.itemsize <= dt.itemsize or a.size == 0:
        return
    with np.errstate(invalid="ignore"):
        big = np.nanmax(np.abs(a), initial=0.0)
    if np.isfinite(big) and big > np.finfo(dt).max:
        raise ValueError(f"{name} has values up to {big:.3g}, beyond the range of {dt.name} "
                         f"(largest {np.finfo(dt).max:.3g}): scale the data, or build the network with "
                         f"dtype=np.float64")


def all_finite(a):
    """True when ``a`` has no NaN or inf.

    This check runs on every ``fit``'s whole training set, so it makes one pass and
    allocates nothing: ``dot(a, a)`` is finite exactly when every entry is finite,
    unless squares of huge finite values overflow; only then (or for non-float or
    non-contiguous arrays) min and max, which propagate NaN and expose +-inf, decide.
    """
    if a.size == 0:
        return True
    if a.dtype in (np.float32, np.float64) and a.flags.c_contiguous:
        flat = a.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.dot(flat, flat)):
                return True
    return bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def check_rows(X, Y, xname="X", yname="Y"):
    if len(X) != len(Y):
        raise ValueError(f"{xname} has {len(X)} samples but {yname} has {len(Y)}")
