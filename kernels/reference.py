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
  that is all the fused training loops keep, and it is enough for every
  activation here (LeakyReLU requires ``slope >= 0`` for that reason).
* Costs follow the seeds: MSE is ``J = 1/(2N) * sum_n ||y_n - t_n||^2`` (summed
  over outputs, averaged over samples); cross-entropy and BCE are likewise
  summed over outputs and averaged over samples.
* Optimizer updates work *in place* on flat parameter vectors, because the
  parameters of a network live in one contiguous buffer (see
  ``fastnn.Sequential``).  ``n_decay`` says how many leading entries of the
  buffer are weights (which get L2 weight decay); the biases follow them.
* Results keep the dtype of the inputs (float32 or float64).
"""

import numpy as np

# Activation codes shared by every backend (the fused kernels take these ints).
IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, SOFTMAX, SIGN = range(7)
ACTIVATION_NAMES = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax", "sign")

# Cost codes shared by every backend.
MSE, CROSS_ENTROPY, BCE = range(3)
COST_NAMES = ("mse", "cross_entropy", "bce")


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


def softmax_forward(x):
    """Row-wise softmax, shifted by the row maximum so exp never overflows.

    x: (B, C) -> y: (B, C), rows summing to 1.
    """
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(y, dy):
    """Vector-Jacobian product of softmax: ``dx = y * (dy - sum(dy * y))`` per row."""
    return y * (dy - (dy * y).sum(axis=1, keepdims=True))


def sign_forward(x):
    """Seed 004's perceptron squashing: 1 where ``x > 0``, else -1 (forward only)."""
    return np.where(x > 0, 1, -1).astype(x.dtype)


def activation_forward(code, x, slope=0.01):
    """Dispatch an activation forward by its integer code."""
    if code == IDENTITY:
        return identity_forward(x)
    if code == SIGMOID:
        return sigmoid_forward(x)
    if code == TANH:
        return tanh_forward(x)
    if code == RELU:
        return relu_forward(x)
    if code == LEAKY_RELU:
        return leaky_relu_forward(x, slope)
    if code == SOFTMAX:
        return softmax_forward(x)
    if code == SIGN:
        return sign_forward(x)
    raise ValueError(f"unknown activation code {code}")


def activation_backward(code, y, dy, slope=0.01):
    """Dispatch an activation backward by its integer code (``y`` is the output)."""
    if code == IDENTITY:
        return identity_backward(y, dy)
    if code == SIGMOID:
        return sigmoid_backward(y, dy)
    if code == TANH:
        return tanh_backward(y, dy)
    if code == RELU:
        return relu_backward(y, dy)
    if code == LEAKY_RELU:
        return leaky_relu_backward(y, dy, slope)
    if code == SOFTMAX:
        return softmax_backward(y, dy)
    if code == SIGN:
        raise ValueError("sign has no useful gradient; it is forward-only (seed 004's perceptrons)")
    raise ValueError(f"unknown activation code {code}")


# ---------------------------------------------------------------------------- costs


def _one_hot_like(scores, target):
    """Integer labels (B,) -> one-hot (B, C) in the dtype of ``scores``; 2-D targets pass through."""
    if target.ndim == 1:
        t = np.zeros_like(scores)
        t[np.arange(len(target)), target.astype(np.intp)] = 1
        return t
    return target.astype(scores.dtype, copy=False)


def mse_value(pred, target):
    """Seed convention ``J = 1/(2N) * sum_n ||pred_n - target_n||^2``.

    pred, target: (N, K) -> float
    """
    n = pred.shape[0]
    d = pred - target
    return float((d * d).sum() / (2 * n))


def mse_grad(pred, target):
    """``dJ/dpred = (pred - target) / N``; (N, K) -> (N, K)."""
    return (pred - target) / pred.shape[0]


def log_softmax(scores):
    """Row-wise ``log(softmax(scores))`` via log-sum-exp with the row max subtracted."""
    z = scores - scores.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def cross_entropy_value(scores, target):
    """Softmax cross-entropy on raw scores, ``J = -1/N * sum_n log softmax(s_n)[t_n]``.

    scores: (N, C); target: integer labels (N,) or one-hot / probabilities (N, C).
    """
    t = _one_hot_like(scores, target)
    return float(-(t * log_softmax(scores)).sum() / scores.shape[0])


def cross_entropy_grad(scores, target):
    """``dJ/dscores = (softmax(scores) - t) / N``; (N, C) -> (N, C)."""
    t = _one_hot_like(scores, target)
    return (softmax_forward(scores) - t) / scores.shape[0]


def _bce_clip(p):
    eps = np.finfo(p.dtype).eps
    return np.clip(p, eps, 1 - eps)


def bce_value(prob, target):
    """Binary cross-entropy on a sigmoid output (probabilities).

    ``J = -1/N * sum_n sum_k [t log p + (1 - t) log(1 - p)]``, with ``p`` clipped to
    ``[eps, 1 - eps]`` of its dtype so that saturated outputs stay finite.
    prob, target: (N, K) -> float
    """
    p = _bce_clip(prob)
    return float(-(target * np.log(p) + (1 - target) * np.log(1 - p)).sum() / prob.shape[0])


def bce_grad(prob, target):
    """``dJ/dp = (p - t) / (p (1 - p)) / N`` with ``p`` clipped as in :func:`bce_value`.

    When the layer before is a Sigmoid the trainers use :func:`bce_sigmoid_delta`
    instead, which is the same product without the division.
    """
    p = _bce_clip(prob)
    return (p - target) / (p * (1 - p)) / prob.shape[0]


def bce_sigmoid_delta(prob, target):
    """Gradient of BCE through the sigmoid that produced ``prob``: ``(p - t) / N``."""
    return (prob - target) / prob.shape[0]


def cost_value(code, pred, target):
    """Dispatch a cost's value by its integer code."""
    return (mse_value, cross_entropy_value, bce_value)[code](pred, target)


def cost_grad(code, pred, target):
    """Dispatch a cost's gradient by its integer code."""
    return (mse_grad, cross_entropy_grad, bce_grad)[code](pred, target)


# ----------------------------------------------------------------------- optimizers


def _decayed(params, grads, weight_decay, n_decay):
    """Gradient with coupled L2 decay ``g + wd * p`` on the first ``n_decay`` entries."""
    if weight_decay == 0.0 or n_decay == 0:
        return grads
    g = grads.copy()
    g[:n_decay] += weight_decay * params[:n_decay]
    return g


def sgd_update(params, grads, lr, weight_decay=0.0, n_decay=0):
    """Plain SGD, in place: ``p -= lr * g``.

    params, grads: flat (P,) vectors of the same dtype.
    """
    g = _decayed(params, grads, weight_decay, n_decay)
    params -= params.dtype.type(lr) * g


def momentum_update(params, grads, velocity, lr, momentum, weight_decay=0.0, n_decay=0):
    """Seed 003's momentum, in place: ``v = momentum * v - lr * g``; ``p += v``."""
    g = _decayed(params, grads, weight_decay, n_decay)
    dt = params.dtype.type
    velocity *= dt(momentum)
    velocity -= dt(lr) * g
    params += velocity


def nesterov_update(params, grads, velocity, lr, momentum, weight_decay=0.0, n_decay=0):
    """Nesterov momentum, in place: ``v = momentum * v - lr * g``; ``p += momentum * v - lr * g``.

    This is Sutskever's look-ahead form rewritten for the current parameters; it
    equals PyTorch's ``nesterov=True`` and scikit-learn's ``nesterovs_momentum``.
    """
    g = _decayed(params, grads, weight_decay, n_decay)
    dt = params.dtype.type
    velocity *= dt(momentum)
    velocity -= dt(lr) * g
    params += dt(momentum) * velocity - dt(lr) * g


def adam_update(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay=0.0, n_decay=0):
    """Adam (Kingma & Ba), in place, for step number ``t >= 1``.

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`` (PyTorch's form).
    """
    g = _decayed(params, grads, weight_decay, n_decay)
    dt = params.dtype.type
    m *= dt(beta1)
    m += dt(1 - beta1) * g
    v *= dt(beta2)
    v += dt(1 - beta2) * g * g
    mhat = m / dt(1 - beta1**t)
    vhat = v / dt(1 - beta2**t)
    params -= dt(lr) * mhat / (np.sqrt(vhat) + dt(eps))
