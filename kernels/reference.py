"""Pure-NumPy reference kernels: the test oracle and the "numpy" backend.

Every op here is written for clarity, not speed. The Numba CPU kernels in
``kernels/cpu`` and the CUDA kernels in ``kernels/cuda`` have the same names and
signatures, and every test compares them with these functions.

Conventions
-----------
* Arrays are row-major with the batch on axis 0: ``x`` is ``(B, in)``, a Linear
  weight ``W`` is ``(in, out)`` as in the seeds and PuzzleLib, a bias ``b`` is
  ``(out,)``.
* Forward and backward functions return new arrays and never modify inputs.
* Activation backwards take the activation's *output* ``y`` (not its input):
  that is all the fused training loops keep, and it is enough for most
  activations (LeakyReLU and ELU require a parameter ``>= 0`` for that reason).
  GELU and SiLU cannot be differentiated from their output: their backwards
  take the *input* ``x`` (:data:`NEEDS_INPUT`), and the fused loops keep the
  pre-activation only for the layers that end in one of them.
* Costs follow the seeds: MSE is ``J = 1/(2N) * sum_n ||y_n - t_n||^2`` (summed
  over outputs, averaged over samples); every other cost is likewise summed over
  outputs and averaged over samples.
* Dropout masks come from a counter-based hash (splitmix64) of a key, the Dropout's
  stream number, the row's position in the epoch and the unit, so every backend
  draws the same mask without sharing a random generator.
* Optimizer updates (in :mod:`.reference_optim`, re-exported here) work in place
  on the flat parameter buffer.
* Results keep the dtype of the inputs (float32 or float64).
"""

import numpy as np

from fastnn.kernels.reference_costs import (  # noqa: F401
    BCE, COST_NAMES, CROSS_ENTROPY, HINGE, HUBER, KL_DIVERGENCE, L1, MSE, POISSON, bce_grad, bce_sigmoid_delta,
    bce_value, cost_grad, cost_rows, cost_value, cross_entropy_grad, cross_entropy_value, hinge_grad, hinge_value,
    huber_grad, huber_value, kl_divergence_grad, kl_divergence_value, l1_grad, l1_value, log_softmax, mse_grad,
    mse_value, poisson_grad, poisson_value, softmax_forward)
from fastnn.kernels.reference_optim import (  # noqa: F401
    adadelta_update, adagrad_update, adam_update, adamw_update, momentum_update, nesterov_update, rmsprop_update,
    sgd_update)

# Activation codes shared by every backend (the fused kernels take these ints).
IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX, SIGN, ELU, SOFTPLUS, GELU, GELU_TANH, SILU, RELU6 = range(13)
ACTIVATION_NAMES = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax", "sign", "elu", "softplus",
                    "gelu", "gelu_tanh", "silu", "relu6")
#: Activations whose backward needs the input x (the others work from the output y).
NEEDS_INPUT = (GELU, GELU_TANH, SILU)
#: Softplus is the identity where ``beta * x`` exceeds this (torch's default threshold).
SOFTPLUS_THRESHOLD = 20.0



# --------------------------------------------------------------------------- linear


def linear_forward(x, W, b=None):
    """Affine map ``y = x @ W + b``.

    Parameters
    ----------
    x : ndarray, (B, in)
    W : ndarray, (in, out)
    b : ndarray, (out,) or None

    Returns
    -------
    y : ndarray, (B, out)
    """
    y = x @ W
    if b is not None:
        y = y + b
    return y


def linear_backward_input(dy, W):
    """Input gradient of a Linear layer: ``dx = dy @ W.T``.

    dy: (B, out), W: (in, out) -> dx: (B, in)
    """
    return dy @ W.T


def linear_backward_weight(x, dy):
    """Weight gradient of a Linear layer: ``dW = x.T @ dy``.

    x: (B, in), dy: (B, out) -> dW: (in, out).  The cost's 1/N is already in ``dy``.
    """
    return x.T @ dy


def linear_backward_bias(dy):
    """Bias gradient of a Linear layer: ``db = sum_n dy[n]``.

    dy: (B, out) -> db: (out,)
    """
    return dy.sum(axis=0)


# ---------------------------------------------------------------------- activations


def identity_forward(x):
    """``y = x``."""
    return x.copy()


def identity_backward(y, dy):
    """``dx = dy``."""
    return dy.copy()


def sigmoid_forward(x):
    """Logistic function ``1 / (1 + exp(-x))``, stable for any |x|.

    Written as ``exp(-|x|)`` so no exp ever overflows: for x >= 0 it is
    ``1 / (1 + e)``, for x < 0 it is ``e / (1 + e)`` with ``e = exp(-|x|)``.
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(y, dy):
    """``dx = dy * y * (1 - y)`` with ``y = sigmoid(x)``."""
    return dy * y * (1 - y)


def tanh_forward(x):
    """Hyperbolic tangent."""
    return np.tanh(x)


def tanh_backward(y, dy):
    """``dx = dy * (1 - y**2)`` with ``y = tanh(x)``."""
    return dy * (1 - y * y)


def relu_forward(x):
    """``max(x, 0)``."""
    return np.maximum(x, 0)


def relu_backward(y, dy):
    """``dx = dy`` where ``y > 0``, else 0."""
    return np.where(y > 0, dy, 0).astype(dy.dtype, copy=False)


def leaky_relu_forward(x, slope=0.01):
    """``x`` where ``x > 0``, else ``slope * x``."""
    return np.where(x > 0, x, slope * x).astype(x.dtype, copy=False)


def leaky_relu_backward(y, dy, slope=0.01):
    """``dx = dy`` where ``y > 0``, else ``slope * dy`` (valid for slope >= 0)."""
    return np.where(y > 0, dy, slope * dy).astype(dy.dtype, copy=False)


def softmax_backward(y, dy):
    """Vector-Jacobian product of softmax: ``dx = y * (dy - sum(dy * y))`` per row."""
    return y * (dy - (dy * y).sum(axis=1, keepdims=True))


def sign_forward(x):
    """Seed 004's perceptron squashing: 1 where ``x > 0``, else -1 (forward only)."""
    return np.where(x > 0, 1, -1).astype(x.dtype)


def elu_forward(x, alpha=1.0):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (``alpha >= 0``)."""
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def elu_backward(y, dy, alpha=1.0):
    """``dx = dy`` where ``y > 0``, else ``dy * (y + alpha)`` (= ``alpha * exp(x)``)."""
    return np.where(y > 0, dy, dy * (y + y.dtype.type(alpha))).astype(dy.dtype, copy=False)


def softplus_forward(x, beta=1.0):
    """``log(1 + exp(beta * x)) / beta``, and ``x`` where ``beta * x > 20`` (as torch)."""
    b = x.dtype.type(beta)
    bx = b * x
    return np.where(bx > SOFTPLUS_THRESHOLD, x, np.log1p(np.exp(np.minimum(bx, SOFTPLUS_THRESHOLD))) / b)


def softplus_backward(y, dy, beta=1.0):
    """``dx = dy * sigmoid(beta x) = dy * (1 - exp(-beta y))``; ``dy`` where ``beta * y > 20``."""
    by = y.dtype.type(beta) * y
    return np.where(by > SOFTPLUS_THRESHOLD, dy, dy * -np.expm1(-by)).astype(dy.dtype, copy=False)


# W. J. Cody's rational approximations of erf (|x| <= 0.46875) and erfc (up to 4, beyond 4).
_ERF_A = (3.1611237438705655, 113.86415415105016, 377.485237685302, 3209.3775891384694, 0.18577770618460315)
_ERF_B = (23.601290952344122, 244.02463793444417, 1282.6165260773723, 2844.236833439171)
_ERF_C = (0.5641884969886701, 8.883149794388377, 66.11919063714163, 298.6351381974001, 881.952221241769,
          1712.0476126340707, 2051.0783778260716, 1230.3393547979972, 2.1531153547440383e-08)
_ERF_D = (15.744926110709835, 117.6939508913125, 537.1811018620099, 1621.3895745666903, 3290.7992357334597,
          4362.619090143247, 3439.3676741437216, 1230.3393548037495)
_ERF_P = (0.30532663496123236, 0.36034489994980445, 0.12578172611122926, 0.016083785148742275, 0.0006587491615298378,
          0.016315387137302097)
_ERF_Q = (2.568520192289822, 1.8729528499234673, 0.5279051029514285, 0.06051834131244132, 0.0023352049762686918)


def _erf(x):
    """The error function in float64 (NumPy has none): Cody's approximations, ~5e-16 relative."""
    x = np.asarray(x, np.float64)
    y = np.minimum(np.abs(x), 10.0)  # erfc(10) ~ 2e-45: erf is 1 to the last bit beyond
    z = y * y
    num, den = _ERF_A[4] * z, z
    for a, b in zip(_ERF_A[:3], _ERF_B[:3]):
        num, den = (num + a) * z, (den + b) * z
    small = x * (num + _ERF_A[3]) / (den + _ERF_B[3])
    num, den = _ERF_C[8] * y, y
    for c, d in zip(_ERF_C[:7], _ERF_D[:7]):
        num, den = (num + c) * y, (den + d) * y
    mid = (num + _ERF_C[7]) / (den + _ERF_D[7])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = 1 / (y * y)
        num, den = _ERF_P[5] * z, z
        for p, q in zip(_ERF_P[:4], _ERF_Q[:4]):
            num, den = (num + p) * z, (den + q) * z
        big = (0.5641895835477563 - z * (num + _ERF_P[4]) / (den + _ERF_Q[4])) / y
    s = np.trunc(y * 16) / 16  # exp(-y^2) as exp(-s^2) exp(-(y - s)(y + s)): no cancellation
    erfc = np.exp(-s * s) * np.exp(-(y - s) * (y + s)) * np.where(y <= 4, mid, big)
    return np.where(y <= 0.46875, small, np.sign(x) * (1 - erfc))


_SQRT1_2, _INV_SQRT_2PI, _SQRT_2_PI, _KAPPA = 0.7071067811865476, 0.3989422804014327, 0.7978845608028654, 0.044715


def gelu_forward(x):
    """GELU ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))``."""
    return (0.5 * x * (1 + _erf(x * _SQRT1_2))).astype(x.dtype, copy=False)


def gelu_backward(x, dy):
    """``dx = dy * (Phi(x) + x phi(x))`` from the *input* ``x``."""
    cdf = 0.5 * (1 + _erf(x * _SQRT1_2))
    return (dy * (cdf + x * (np.exp(-0.5 * x * x) * _INV_SQRT_2PI))).astype(dy.dtype, copy=False)


def gelu_tanh_forward(x):
    """GELU's tanh approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    dt = x.dtype.type
    return dt(0.5) * x * (1 + np.tanh(dt(_SQRT_2_PI) * (x + dt(_KAPPA) * x * x * x)))


def gelu_tanh_backward(x, dy):
    """Derivative of :func:`gelu_tanh_forward` from the *input* ``x``."""
    dt = x.dtype.type
    th = np.tanh(dt(_SQRT_2_PI) * (x + dt(_KAPPA) * x * x * x))
    inner = dt(_SQRT_2_PI) * (1 + dt(3 * _KAPPA) * x * x)
    return dy * (dt(0.5) * (1 + th) + dt(0.5) * x * (1 - th * th) * inner)


def silu_forward(x):
    """SiLU (swish) ``x * sigmoid(x)``."""
    return x * sigmoid_forward(x)


def silu_backward(x, dy):
    """``dx = dy * s (1 + x (1 - s))`` with ``s = sigmoid(x)``, from the *input* ``x``."""
    s = sigmoid_forward(x)
    return dy * s * (1 + x * (1 - s))


def relu6_forward(x):
    """``min(max(x, 0), 6)`` (PuzzleLib's clip)."""
    return np.minimum(np.maximum(x, 0), 6).astype(x.dtype, copy=False)


def relu6_backward(y, dy):
    """``dx = dy`` where ``0 < y < 6``, else 0."""
    return np.where((y > 0) & (y < 6), dy, 0).astype(dy.dtype, copy=False)


#: Activations that take a parameter (``slope`` of the dispatchers).
_WITH_PARAM = (LEAKY_RELU, ELU, SOFTPLUS)


def _act(code, what):
    # looked up by name at each call, so a test can replace one op (monkeypatch)
    if not (isinstance(code, (int, np.integer)) and 0 <= code < len(ACTIVATION_NAMES)):
        raise ValueError(f"unknown activation code {code}")
    return globals().get(f"{ACTIVATION_NAMES[code]}_{what}"), code in _WITH_PARAM


def activation_forward(code, x, slope=0.01):
    """Dispatch an activation forward by its integer code (``slope``: the activation's
    parameter, LeakyReLU's slope, ELU's alpha or Softplus's beta)."""
    fwd, param = _act(code, "forward")
    return fwd(x, slope) if param else fwd(x)


def activation_backward(code, y, dy, slope=0.01, x=None):
    """Dispatch an activation backward by its integer code, from the output ``y`` (or, for
    the codes in :data:`NEEDS_INPUT`, from the input ``x``)."""
    bwd, param = _act(code, "backward")
    if bwd is None:
        raise ValueError("sign has no useful gradient; it is forward-only (seed 004's perceptrons)")
    if code in NEEDS_INPUT:
        if x is None:
            raise ValueError(f"{ACTIVATION_NAMES[code]} backward needs the activation's input x")
        return bwd(x, dy)
    return bwd(y, dy, slope) if param else bwd(y, dy)


# -------------------------------------------------------------------------- dropout

_M64, _GOLDEN = (1 << 64) - 1, 0x9E3779B97F4A7C15


def _mix64(z):
    """splitmix64's output function on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(key, stream, pos0, shape, p):
    """Keep mask (rows, cols) bool of Dropout number ``stream`` for the rows at epoch positions
    ``pos0, pos0 + 1, ...``: entry (r, j) is kept when ``u >> 11 >= floor(p 2^53)``, with
    ``u = mix64(s + (c + 1) G)``, ``c = (pos0 + r) cols + j``, ``s = mix64(key + (stream + 1) G)``
    (splitmix64's stream of seed s at counter c; ``G`` its golden-ratio increment)."""
    rows, cols = shape
    s = _mix64(np.array([(int(key) + (int(stream) + 1) * _GOLDEN) & _M64], np.uint64))
    c = (np.uint64(pos0) + np.arange(rows, dtype=np.uint64))[:, None] * np.uint64(cols)
    u = _mix64(s + (c + np.arange(1, cols + 1, dtype=np.uint64)) * np.uint64(_GOLDEN))
    return (u >> np.uint64(11)) >= np.uint64(int(p * 2.0 ** 53))


def dropout_forward(x, key, stream, pos0, p):
    """Inverted dropout: ``x / (1 - p)`` where :func:`dropout_mask` keeps, else 0. x: (B, n)."""
    keep = dropout_mask(key, stream, pos0, x.shape, p)
    return np.where(keep, x * x.dtype.type(1.0 / (1.0 - p)), 0).astype(x.dtype, copy=False)


def dropout_backward(dy, key, stream, pos0, p):
    """``dx = dy / (1 - p)`` where the forward's mask keeps, else 0 (the same mask)."""
    return dropout_forward(dy, key, stream, pos0, p)
