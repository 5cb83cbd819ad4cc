"""numba.cuda kernels with host launchers named as in ``fastnn.kernels.reference``.

``cuda.linear_forward(x, W, b)`` computes what ``reference.linear_forward(x, W, b)``
does, on the GPU (or in numba's CUDA simulator when ``NUMBA_ENABLE_CUDASIM=1`` is
set before numba is imported). These public functions take NumPy arrays (or
numba device arrays), validate, allocate the outputs, launch and return NumPy
arrays (device arrays when given device arrays). Optimizer updates work in place.

The generic kernels here are by code (``activation_forward``, a cost's value and
gradient, one flat ``update``); the named ops (``sigmoid_forward`` ... ``adam_update``)
are generated over them by :func:`fastnn.kernels.named.named_ops`.

The training loop (:mod:`.epoch`) does not use them: it calls the device-level
launchers in :mod:`.launch`, which take preallocated device buffers and never copy
to the host.
Kernels live in :mod:`._kernels`; the knobs (block sizes, fastmath) in :mod:`.config`.

Importing this module needs the ``numba-cuda`` package (``pip install
"fastnn-numba[cuda]"``) but not a GPU: without one, only the PTX compile check
(:mod:`.ptxcheck`) and the simulator can use the kernels.
"""

import importlib.util as _ilu

if _ilu.find_spec("numba_cuda") is None:  # numba's own numba.cuda target is deprecated
    raise ImportError("fastnn's CUDA kernels need numba-cuda: pip install 'fastnn-numba[cuda]'")

import numpy as np  # noqa: E402
from numba import cuda  # noqa: E402

from fastnn.kernels import shapes  # noqa: E402
from fastnn.kernels.layout import dropout_scale, dropout_stream_key, dropout_threshold  # noqa: E402
from fastnn.kernels.named import NAMES, named_ops  # noqa: E402
from fastnn.kernels.reference import (  # noqa: E402,F401
    ACTIVATION_NAMES, BCE, COST_NAMES, CROSS_ENTROPY, ELU, GELU, GELU_TANH, HINGE, HUBER, IDENTITY, KL_DIVERGENCE,
    L1, LEAKY_RELU, MSE, NEEDS_INPUT, POISSON, RELU, RELU6, SIGMOID, SIGN, SILU, SOFTMAX, SOFTPLUS, TANH, log_softmax)

from . import config, launch  # noqa: E402

__all__ = [
    "linear_forward", "linear_backward_input", "linear_backward_weight", "linear_backward_bias",
    "activation_forward", "activation_backward", "log_softmax", "cost_rows", *NAMES, "is_simulated", "config",
    "launch",
]


def is_simulated():
    """True when numba's CUDA simulator stands in for a GPU (NUMBA_ENABLE_CUDASIM=1)."""
    from numba import config as nbconfig

    return bool(getattr(nbconfig, "ENABLE_CUDASIM", 0))


# ------------------------------------------------------------------------- helpers


def _is_dev(a):
    return hasattr(a, "copy_to_host")


def _float(name, a, dtype=None):
    """Device arrays pass through; host arrays are checked and made contiguous."""
    if _is_dev(a):
        if a.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name} must be float32 or float64, got {a.dtype}")
        return a
    a = np.asarray(a)
    if dtype is None:
        if a.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name} must be float32 or float64, got {a.dtype}")
        dtype = a.dtype
    return np.ascontiguousarray(a, dtype=dtype)


def _same_dtype(*arrs):
    dts = {np.dtype(a.dtype) for a in arrs}
    if len(dts) != 1:
        raise ValueError(f"arrays must share one dtype, got {sorted(d.name for d in dts)}")
    return dts.pop()


def _ndim(name, a, nd):
    if len(a.shape) != nd:
        raise ValueError(f"{name} must be {nd}-D, got shape {tuple(a.shape)}")


def _to_dev(a):
    return a if _is_dev(a) else cuda.to_device(a)


def _back(d, like_dev):
    return d if like_dev else d.copy_to_host()


# -------------------------------------------------------------------------- linear


def _launch_pair(check, names, a, b, out_shape, launcher):
    """Check (kernels.shapes) and launch a two-input Linear op; host arrays come back as host arrays."""
    a, b = _float(names[0], a), _float(names[1], b)
    check(a, b)
    out = cuda.device_array(out_shape(a, b), _same_dtype(a, b))
    launcher(out, _to_dev(a), _to_dev(b))
    return _back(out, _is_dev(a))


def linear_forward(x, W, b=None):
    """``y = x @ W + b`` on the GPU.

    Parameters
    ----------
    x : ndarray (B, in)
    W : ndarray (in, out)
    b : ndarray (out,) or None

    Returns
    -------
    y : ndarray (B, out)
    """
    x, W = _float("x", x), _float("W", W)
    b = None if b is None else _float("b", b)
    shapes.linear_forward(x, W, b)
    dt = _same_dtype(*[a for a in (x, W, b) if a is not None])
    y = cuda.device_array((x.shape[0], W.shape[1]), dt)
    launch.linear_forward(y, _to_dev(x), _to_dev(W), None if b is None else _to_dev(b))
    return _back(y, _is_dev(x))


def linear_backward_input(dy, W):
    """``dx = dy @ W.T``; dy: (B, out), W: (in, out) -> dx: (B, in)."""
    return _launch_pair(shapes.linear_backward_input, ("dy", "W"), dy, W, lambda d, w: (d.shape[0], w.shape[0]),
                        launch.linear_backward_input)


def linear_backward_weight(x, dy):
    """``dW = x.T @ dy``; x: (B, in), dy: (B, out) -> dW: (in, out)."""
    return _launch_pair(shapes.linear_backward_weight, ("x", "dy"), x, dy, lambda a, d: (a.shape[1], d.shape[1]),
                        launch.linear_backward_weight)


def linear_backward_bias(dy):
    """``db = dy.sum(axis=0)``; dy: (B, out) -> db: (out,)."""
    dy = _float("dy", dy)
    shapes.linear_backward_bias(dy)
    db = cuda.device_array(dy.shape[1], dy.dtype)
    launch.linear_backward_bias(db, _to_dev(dy))
    return _back(db, _is_dev(dy))


# --------------------------------------------------------------------- activations


def activation_forward(code, x, slope=0.01):
    """Activation forward by integer code; x: any shape ((B, C) for softmax)."""
    if code not in range(len(ACTIVATION_NAMES)):
        raise ValueError(f"unknown activation code {code}")
    x = _float("x", x)
    dev = _is_dev(x)
    shape = tuple(x.shape)
    if code == SOFTMAX:
        _ndim("x", x, 2)
        y = cuda.device_array(shape, x.dtype)
        launch.softmax_forward(y, _to_dev(x))
        return _back(y, dev)
    xd = _to_dev(x).reshape(-1) if len(shape) else _to_dev(x.reshape(1))
    y = cuda.device_array(xd.shape[0], x.dtype)
    launch.activation_forward(y, xd, code, slope)
    return _back(y.reshape(shape), dev)


def activation_backward(code, y, dy, slope=0.01, x=None):
    """Activation backward by integer code from the OUTPUT ``y`` (the input ``x`` for the codes
    in ``NEEDS_INPUT``): returns dx."""
    if code == SIGN:
        raise ValueError("sign has no useful gradient; it is forward-only (seed 004's perceptrons)")
    if code not in range(len(ACTIVATION_NAMES)):
        raise ValueError(f"unknown activation code {code}")
    if code in NEEDS_INPUT:
        if x is None:
            raise ValueError(f"{ACTIVATION_NAMES[code]} backward needs the activation's input x")
        y = x  # the kernels read the input where the output would be
    y, dy = _float("y", y), _float("dy", dy)
    if tuple(y.shape) != tuple(dy.shape):
        raise ValueError(f"y and dy must have the same shape, got {tuple(y.shape)} and {tuple(dy.shape)}")
    _same_dtype(y, dy)
    dev = _is_dev(y)
    shape = tuple(y.shape)
    if code == SOFTMAX:
        _ndim("y", y, 2)
        dx = cuda.device_array(shape, y.dtype)
        launch.softmax_backward(dx, _to_dev(y), _to_dev(dy))
        return _back(dx, dev)
    dx = cuda.device_array(int(np.prod(shape)), y.dtype)
    launch.activation_backward(dx, _to_dev(y).reshape(-1), _to_dev(dy).reshape(-1), code, slope)
    return _back(dx.reshape(shape), dev)


# --------------------------------------------------------------------------- costs


def _cost(code, pred, target, fused=False, param=1.0):
    """Run the per-row cost kernel over a whole (N, K) batch -> (value, grad) on the host."""
    pred = _float("pred", pred)
    if _is_dev(pred):
        pred = pred.copy_to_host()
    _ndim("pred", pred, 2)
    target = np.asarray(target.copy_to_host() if _is_dev(target) else target)
    n, k = pred.shape
    if n == 0:
        raise ValueError("pred is empty (0 rows): a cost needs at least one sample")
    if target.ndim == 1 and code in (CROSS_ENTROPY, HINGE, KL_DIVERGENCE):
        if target.shape[0] != n:
            raise ValueError(f"pred has {n} rows but target has {target.shape[0]}")
        t = np.zeros_like(pred)
        t[np.arange(n), target.astype(np.intp)] = 1
    else:
        t = np.ascontiguousarray(target, dtype=pred.dtype)
        if t.shape != pred.shape:
            raise ValueError(f"target must have shape {pred.shape}, got {t.shape}")
    dt = pred.dtype
    delta = cuda.device_array((n, k), dt)
    rowloss = cuda.device_array(max(n, 1), np.float64)
    rowcorrect = cuda.device_array(max(n, 1), np.int64)
    order = cuda.to_device(np.arange(max(n, 1), dtype=np.int64))
    labels = cuda.to_device(np.zeros(1, np.int64))
    launch.cost_rows(delta, rowloss, rowcorrect, cuda.to_device(pred), cuda.to_device(t), labels, order,
                     0, n, n, code, fused=fused, cparam=param)
    out_l, out_c = cuda.device_array(1, np.float64), cuda.device_array(1, np.int64)
    launch.reduce_rows(out_l, out_c, rowloss, rowcorrect, 0, n)
    return float(out_l.copy_to_host()[0]) / n, delta.copy_to_host(), rowloss.copy_to_host()[:n]


def _value(code, pred, target, param=1.0):
    _check_cost(code)
    return _cost(code, pred, target, param=param)[0]


def _delta(code, pred, target, fused, param=1.0):
    _check_cost(code)
    return _cost(code, pred, target, fused, param)[1]


def cost_rows(code, pred, target, param=1.0):
    """Each sample's loss (summed over outputs), (N,) float64, from the per-row cost kernel."""
    _check_cost(code)
    return _cost(code, pred, target, param=param)[2]


def _check_cost(code):
    if code not in range(len(COST_NAMES)):
        raise ValueError(f"unknown cost code {code}")


# ----------------------------------------------------------------------- optimizers


def _inplace(params, *others):
    """Device copies of flat host vectors (or the device vectors themselves)."""
    for name, a in (("params", params),) + tuple(("state", o) for o in others):
        if len(a.shape) != 1:
            raise ValueError(f"{name} must be a flat 1-D vector, got shape {tuple(a.shape)}")
        if a.shape != params.shape or a.dtype != params.dtype:
            raise ValueError("optimizer buffers must all have the shape and dtype of params")
    return [_to_dev(a) for a in (params,) + others]


def _write_back(hosts, devs):
    for h, d in zip(hosts, devs):
        if not _is_dev(h):
            d.copy_to_host(h)


def _update(code, params, grads, s1, s2, s3, hp, n_decay):
    """One flat optimizer step in place (the generic kernel of the named updates)."""
    given = [a for a in (s1, s2, s3) if a is not None]
    d = _inplace(params, grads, *given)
    it = iter(d[2:])
    s1d, s2d, s3d = (None if a is None else next(it) for a in (s1, s2, s3))
    launch.update(code, d[0], d[1], s1d, s2d, hp, n_decay, s3=s3d)
    _write_back([params, *given], [d[0], *d[2:]])


# ------------------------------------------------------------------------- dropout


def _dropout(x, key, stream, pos0, p):
    """Inverted dropout of x (B, n) with the reference's mask (the generic kernel of the named ops)."""
    x = _float("x", x)
    _ndim("x", x, 2)
    B, n = x.shape
    q = cuda.device_array(B * n, x.dtype)
    launch.dropout(q, _to_dev(x).reshape(B * n), dropout_stream_key(key, stream), dropout_threshold(float(p)),
                   dropout_scale(float(p)), int(pos0) * n)
    return _back(q.reshape(B, n), _is_dev(x))


globals().update(named_ops(activation_forward, activation_backward, _value, _delta, _update, _dropout))
