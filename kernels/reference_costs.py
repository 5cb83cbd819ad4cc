"""Pure-NumPy reference costs (and the softmax they share with the activation), re-exported
by :mod:`fastnn.kernels.reference`.

The cost half of the oracle (see that module's conventions): every cost is summed over
outputs and averaged over samples, ``*_value(pred, target) -> float`` and
``*_grad(pred, target) -> (N, K)`` dJ/dpred; :func:`cost_rows` gives each sample's loss
(what per-sample weights multiply).
"""

import numpy as np

# Cost codes shared by every backend.
MSE, CROSS_ENTROPY, BCE, L1, HUBER, HINGE, KL_DIVERGENCE, POISSON = range(8)
COST_NAMES = ("mse", "cross_entropy", "bce", "l1", "huber", "hinge", "kl_divergence", "poisson")


def softmax_forward(x):
    """Row-wise softmax, shifted by the row maximum so exp never overflows.

    x: (B, C) -> y: (B, C), rows summing to 1.
    """
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)



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


def l1_value(pred, target):
    """``J = 1/N * sum_n ||pred_n - target_n||_1``; pred, target: (N, K) -> float."""
    return float(np.abs(pred - target).sum() / pred.shape[0])


def l1_grad(pred, target):
    """``dJ/dpred = sign(pred - target) / N`` (0 where they are equal)."""
    return np.sign(pred - target) / pred.shape[0]


def huber_value(pred, target, delta=1.0):
    """Huber (smooth L1): ``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - delta / 2)``,
    with ``d = pred - target``, summed over outputs and averaged over samples."""
    a = np.abs(pred - target)
    return float(np.where(a < delta, 0.5 * a * a, delta * (a - 0.5 * delta)).sum() / pred.shape[0])


def huber_grad(pred, target, delta=1.0):
    """``dJ/dpred = clip(pred - target, -delta, delta) / N``."""
    return np.clip(pred - target, -delta, delta).astype(pred.dtype, copy=False) / pred.shape[0]


def hinge_value(scores, target):
    """Multi-class hinge as PuzzleLib's (one class against the rest) on raw scores:
    ``J = 1/N * sum_n sum_k max(0, 1 - c_nk s_nk)``, ``c = 1`` for the label's class and -1
    for the others. target: integer labels (N,) or one-hot rows (N, C)."""
    return float(np.maximum(0, 1 - (2 * _one_hot_like(scores, target) - 1) * scores).sum() / scores.shape[0])


def hinge_grad(scores, target):
    """``dJ/ds = -c / N`` where ``c s < 1``, else 0."""
    c = 2 * _one_hot_like(scores, target) - 1
    return np.where(c * scores < 1, -c, 0).astype(scores.dtype) / scores.shape[0]


def kl_divergence_value(scores, target):
    """``J = 1/N * sum_n sum_k t_k log(t_k / softmax(s_n)_k)`` on raw scores (softmax inside,
    ``0 log 0 = 0``); target: distributions (N, C) or integer labels (N,)."""
    t = _one_hot_like(scores, target)
    tlogt = np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0)
    return float((tlogt - t * log_softmax(scores)).sum() / scores.shape[0])


def kl_divergence_grad(scores, target):
    """``dJ/ds = (softmax(s) * sum_k t_k - t) / N`` (``softmax(s) - t`` for distributions)."""
    t = _one_hot_like(scores, target)
    return (softmax_forward(scores) * t.sum(axis=1, keepdims=True) - t) / scores.shape[0]


def _xlogx(t):
    """``t log t``, 0 where ``t == 0`` (targets are >= 0)."""
    return np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0)


def poisson_value(scores, target):
    """Poisson deviance on raw scores (log-rates ``s``, rate ``exp(s)``), scikit-learn's
    ``MLPRegressor(loss="poisson")``: ``J = 1/N * sum_n sum_k exp(s) - t s + t log t - t``
    (0 for a perfect fit; ``torch.nn.PoissonNLLLoss(log_input=True)`` plus ``t log t - t``).
    scores, target (>= 0): (N, K) -> float
    """
    return float((np.exp(scores) - target * scores + _xlogx(target) - target).sum() / scores.shape[0])


def poisson_grad(scores, target):
    """``dJ/ds = (exp(s) - t) / N``; (N, K) -> (N, K)."""
    return (np.exp(scores) - target) / scores.shape[0]


def cost_value(code, pred, target, param=1.0):
    """Dispatch a cost's value by its integer code (``param``: Huber's delta)."""
    f = globals()[f"{COST_NAMES[code]}_value"]
    return f(pred, target, param) if code == HUBER else f(pred, target)


def cost_grad(code, pred, target, param=1.0):
    """Dispatch a cost's gradient by its integer code (``param``: Huber's delta)."""
    f = globals()[f"{COST_NAMES[code]}_grad"]
    return f(pred, target, param) if code == HUBER else f(pred, target)



def cost_rows(code, pred, target, param=1.0):
    """Each sample's loss (summed over outputs), (N,) float64: ``cost_value * N`` split by
    row (what per-sample weights multiply in the Python training loop)."""
    if code in (CROSS_ENTROPY, HINGE, KL_DIVERGENCE):
        target = _one_hot_like(pred, target)
    t = target
    if code == MSE:
        e = 0.5 * (pred - t) ** 2
    elif code in (CROSS_ENTROPY, KL_DIVERGENCE):
        e = -t * log_softmax(pred)
        if code == KL_DIVERGENCE:
            e = e + _xlogx(t)
    elif code == BCE:
        p = _bce_clip(pred)
        e = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    elif code == L1:
        e = np.abs(pred - t)
    elif code == HUBER:
        a = np.abs(pred - t)
        e = np.where(a < param, 0.5 * a * a, param * (a - 0.5 * param))
    elif code == HINGE:
        e = np.maximum(0, 1 - (2 * t - 1) * pred)
    else:  # POISSON
        e = np.exp(pred) - t * pred + _xlogx(t) - t
    return e.sum(axis=1).astype(np.float64)
