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


def is_sparse(X):
    """Whether ``X`` is a scipy.sparse matrix or array."""
    return type(X).__module__.startswith("scipy.sparse")


def check_X(X, n_in, dtype, allow_empty=False, name="X"):
    """2-D, numeric, finite, ``n_in`` columns; converted to contiguous ``dtype``.

    A scipy.sparse matrix or array stays sparse: it comes back as CSR in ``dtype`` with
    sorted indices and no duplicates (a copy whenever anything had to change; the caller's
    matrix is never modified).
    """
    if is_sparse(X):
        return _check_sparse(X, n_in, dtype, allow_empty, name)
    X = np.asarray(X)
    _check_shape(X, n_in, allow_empty, name, name)
    check_range(X, dtype, name)
    with np.errstate(over="ignore"):
        X = np.ascontiguousarray(X, dtype=dtype)
    if not all_finite(X):
        raise ValueError(f"{name} contains NaN or inf")
    return X


def _check_shape(X, n_in, allow_empty, name, kind):
    """What dense and sparse X share: numeric, 2-D, not empty, ``n_in`` columns (``kind``
    names X in the dtype and dimension messages)."""
    if X.dtype == object or X.dtype.kind not in "fiub":
        raise ValueError(f"{kind} must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{kind} must be 2-D (samples, features), got {X.ndim} dimension(s) with shape {X.shape}")
    if not allow_empty and X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if n_in is not None and X.shape[1] != n_in:
        raise ValueError(f"{name} has {X.shape[1]} features but the network expects {n_in}")


def _check_sparse(X, n_in, dtype, allow_empty, name):
    kind = f"{name} (scipy.sparse {type(X).__name__})"
    _check_shape(X, n_in, allow_empty, name, kind)
    if X.shape[0] > 0 and X.shape[1] >= 2 ** 31:
        raise ValueError(f"{kind} has {X.shape[1]} columns; fastnn's sparse kernels index columns with "
                         "int32 (at most 2**31 - 1)")
    csr = X.tocsr()  # the same object when X is already CSR
    check_range(csr.data, dtype, name)
    if csr.dtype != dtype:
        with np.errstate(over="ignore"):
            csr = csr.astype(dtype)  # a copy
    if not csr.has_canonical_format:
        csr = csr.copy() if csr is X else csr
        csr.sum_duplicates()  # sorts the indices, adds duplicates (in place: hence the copy)
    if not all_finite(np.ascontiguousarray(csr.data)):
        raise ValueError(f"{name} contains NaN or inf")
    return csr


def n_rows(X):
    """Number of samples of a dense or scipy.sparse ``X`` (``len`` fails on sparse matrices)."""
    return X.shape[0]


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


def check_sample_weight(w, n):
    """Sample weights: 1-D, ``n`` of them, finite and >= 0, not all 0 -> float64 (n,)."""
    if hasattr(w, "toarray") or isinstance(w, (str, bytes)):
        raise ValueError(f"sample_weight must be a 1-D array of numbers, got {type(w).__name__}")
    w = np.asarray(w)
    if w.dtype.kind not in "fiub":
        raise ValueError(f"sample_weight must be numeric, got dtype {w.dtype}")
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},) (one weight per sample), got {w.shape}")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or inf")
    if n and w.min() < 0:
        raise ValueError(f"sample_weight must be >= 0, got {w.min():g}")
    if n and not w.any():
        raise ValueError("sample_weight is zero for every sample: nothing to train on")
    return w


def check_rows(X, Y, xname="X", yname="Y"):
    if n_rows(X) != len(Y):
        raise ValueError(f"{xname} has {n_rows(X)} samples but {yname} has {len(Y)}")
