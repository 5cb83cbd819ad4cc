"""Cost functions: MSE (the seeds' 1/(2N) convention), softmax cross-entropy, BCE, L1, Huber,
multi-class hinge, KL divergence and Poisson deviance; each summed over outputs and averaged over samples.

Each cost has ``value(pred, target) -> float`` and ``grad(pred, target) -> dJ/dpred``
for the low-level API, plus what the trainers need: checking and converting targets
(:meth:`Cost.prepare`), the gradient at the last layer (:meth:`Cost.output_delta`,
which fuses BCE with a final Sigmoid) and counting correct predictions.
"""

import numpy as np

from fastnn import _checks
from fastnn.kernels import reference as _ref
from fastnn.layers import Sigmoid


def _as_float(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


class Targets:
    """Targets checked and converted for one cost and network.

    Attributes
    ----------
    T : ndarray
        What the cost kernels take: float (N, K), or int64 labels (N,) for
        cross-entropy with integer labels.
    labels : ndarray or None
        int64 (N,) class labels used for accuracy, or None for regression.
    """

    def __init__(self, T, labels):
        self.T, self.labels = T, labels

    def __len__(self):
        return len(self.T)

    def take(self, idx):
        return Targets(self.T[idx], None if self.labels is None else self.labels[idx])


def _check_labels(y, n_classes, what="labels"):
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{what} contain NaN or inf")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{what} must be whole numbers, got non-integer values")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"{what} must be integers, got dtype {y.dtype}")
    if len(y):
        # the range in the labels' own dtype (a uint64 above 2**63 must not wrap to a negative int64)
        lo, hi = y.min(), y.max()
        lo, hi = (int(lo), int(hi)) if y.dtype.kind != "f" else (lo, hi)
        if lo < 0 or hi >= n_classes:
            show = (lambda v: f"{v:g}") if y.dtype.kind == "f" else str
            raise ValueError(f"{what} must lie in 0..{n_classes - 1} for a network with {n_classes} outputs; "
                             f"got values from {show(lo)} to {show(hi)}")
    return y.astype(np.int64)


def _label_vector(Y, n_out):
    """``Y`` as a 1-D vector of class labels when it has that shape -- (N,), or (N, 1) for a
    network with more than one output, which is unambiguous -- else None."""
    if Y.ndim == 1 and n_out > 1:
        return Y
    if Y.ndim == 2 and Y.shape[1] == 1 and n_out > 1:
        return Y[:, 0]
    return None


def _check_float_targets(Y, n_out, dtype, name):
    Y = np.asarray(Y)
    if Y.dtype.kind not in "fiub":
        raise ValueError(f"targets must be numeric, got dtype {Y.dtype}")
    if Y.ndim == 1 and n_out == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2:
        raise ValueError(f"{name} targets must be 2-D (N, {n_out})" + (" or 1-D (N,)" if n_out == 1 else "")
                         + f", got an array with {Y.ndim} dimension(s) of shape {Y.shape}")
    if Y.shape[1] != n_out:
        raise ValueError(f"targets have {Y.shape[1]} columns but the network has {n_out} outputs")
    _checks.check_range(Y, dtype, "Y (the targets)")
    with np.errstate(over="ignore"):
        Y = _as_float(Y, dtype)
    if not np.all(np.isfinite(Y)):
        raise ValueError("targets contain NaN or inf")
    return Y


class Cost:
    """Base class. Subclasses set ``code`` (a ``reference`` cost code)."""

    code = None
    classification = False
    #: The parameter the kernels take (Huber's delta; unused by the others).
    param = 1.0

    def value(self, pred, target):
        """Mean cost over the batch: (N, K), targets -> float."""
        return _ref.cost_value(self.code, pred, target, self.param)

    def grad(self, pred, target):
        """Gradient of :meth:`value` with respect to ``pred``: (N, K)."""
        return _ref.cost_grad(self.code, pred, target, self.param)

    def __call__(self, pred, target):
        """``(value, grad)``, as PuzzleLib's costs return."""
        return self.value(pred, target), self.grad(pred, target)

    # -- used by the trainers -------------------------------------------------------
    def prepare(self, Y, n_out, dtype):  # pragma: no cover - abstract
        """Check targets ``Y`` for a network with ``n_out`` outputs; return :class:`Targets`."""
        raise NotImplementedError

    def fuses_with(self, last_layer):
        """Whether :meth:`output_delta` already includes ``last_layer``'s backward."""
        return False

    def output_delta(self, ops, pred, T, last_layer):
        """Gradient handed to the network's backward: dJ/dpred, or dJ/d(pre-activation)
        of the last layer when :meth:`fuses_with` says so."""
        return ops.cost_grad(self.code, pred, T, self.param)

    def count_correct(self, pred, labels):
        """Number of correct predictions in a batch (``labels`` from :class:`Targets`)."""
        return int(np.count_nonzero(pred.argmax(axis=1) == labels))

    def accuracy_denominator(self, n, n_out):
        return n

    def config(self):
        return {"type": type(self).__name__}

    def __repr__(self):
        return f"{type(self).__name__}()"


class MSE(Cost):
    """Mean squared error, ``J = 1/(2N) * sum_n ||pred_n - target_n||^2`` (seeds 000-002).

    Targets are (N, K) floats, or (N,) when K = 1. For a network with K > 1 outputs,
    targets of shape (N,) or (N, 1) are class labels (integers, whole-number floats or
    booleans, as for :class:`CrossEntropy`): they are one-hot encoded (as seed 002 does
    for MNIST) and training reports accuracy.
    """

    code = _ref.MSE

    def prepare(self, Y, n_out, dtype):
        Y = np.asarray(Y)
        y = _label_vector(Y, n_out)
        if y is not None and y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
            y = None  # not labels: regression targets of the wrong shape (the check below says so)
        if y is not None:  # class labels, as CrossEntropy takes them: one-hot targets
            labels = _check_labels(y, n_out)
            T = np.zeros((len(labels), n_out), dtype)
            T[np.arange(len(labels)), labels] = 1
            return Targets(T, labels)
        return Targets(_check_float_targets(Y, n_out, dtype, "MSE"), None)


class CrossEntropy(Cost):
    """Softmax cross-entropy on raw scores (the network ends in a Linear, not a Softmax).

    Targets are class labels in 0..C-1 of shape (N,) or (N, 1) (integers, whole-number
    floats or booleans), or one-hot / probability rows (N, C).
    """

    code = _ref.CROSS_ENTROPY
    classification = True

    def prepare(self, Y, n_out, dtype):
        Y = np.asarray(Y)
        if n_out < 2:
            raise ValueError("CrossEntropy needs a network with at least 2 outputs; use BCE for one output")
        return _class_targets(Y, n_out, dtype, "CrossEntropy", "one-hot or probability rows that sum to 1")


class BCE(Cost):
    """Binary cross-entropy on a sigmoid output (probabilities in (0, 1)).

    ``J = -1/N * sum_n sum_k [t log p + (1 - t) log(1 - p)]``. Targets are (N, K) in
    [0, 1], or (N,) when K = 1. When the network ends in a Sigmoid the trainers use
    the fused gradient ``(p - t) / N``, which never divides by ``p (1 - p)``.
    Accuracy counts ``p > 0.5`` against ``t > 0.5`` over all N*K outputs.
    """

    code = _ref.BCE
    classification = True

    def prepare(self, Y, n_out, dtype):
        T = _check_float_targets(Y, n_out, dtype, "BCE")
        if np.any(T < 0) or np.any(T > 1):
            raise ValueError("BCE targets must lie in [0, 1]")
        return Targets(T, (T > 0.5))

    def fuses_with(self, last_layer):
        return isinstance(last_layer, Sigmoid)

    def output_delta(self, ops, pred, T, last_layer):
        if self.fuses_with(last_layer):
            return ops.bce_sigmoid_delta(pred, T)
        return ops.cost_grad(self.code, pred, T)

    def count_correct(self, pred, labels):
        return int(np.count_nonzero((pred > 0.5) == labels))

    def accuracy_denominator(self, n, n_out):
        return n * n_out


def _class_targets(Y, n_out, dtype, name, rows):
    """Integer labels (N,) or (N, 1), or 2-D rows that are distributions (sum 1, >= 0)."""
    y = _label_vector(Y, n_out)
    if y is not None:
        labels = _check_labels(y, n_out)
        return Targets(labels, labels)
    T = _check_float_targets(Y, n_out, dtype, name)
    if np.any(T < 0) or not np.allclose(T.sum(axis=1), 1, atol=1e-3):
        raise ValueError(f"{name} 2-D targets must be {rows}")
    return Targets(T, T.argmax(axis=1).astype(np.int64))


class L1(MSE):
    """Mean absolute error ``J = 1/N * sum_n ||pred_n - target_n||_1`` (summed over outputs).

    Targets as for :class:`MSE` (a target of the output's shape; class labels are one-hot
    encoded). The gradient is ``sign(pred - target) / N``.
    """

    code = _ref.L1


class Huber(MSE):
    """Huber loss (smooth L1), summed over outputs and averaged over samples: per entry
    ``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - delta / 2)`` (``torch.nn.HuberLoss``
    with ``reduction="sum"`` divided by N). Targets as for :class:`MSE`.

    Parameters
    ----------
    delta : float
        Where the loss turns from quadratic to linear (> 0).
    """

    code = _ref.HUBER

    def __init__(self, delta=1.0):
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.integer, np.floating)) or not (
                np.isfinite(delta) and delta > 0):
            raise ValueError(f"Huber delta must be a positive number, got {delta!r}")
        self.delta = float(delta)

    @property
    def param(self):
        return self.delta

    def config(self):
        return {"type": "Huber", "delta": self.delta}

    def __repr__(self):
        return f"Huber(delta={self.delta})"


class Hinge(Cost):
    """Multi-class hinge as PuzzleLib's (each class against the rest), on raw scores:
    ``J = 1/N * sum_n sum_k max(0, 1 - c_nk s_nk)`` with ``c = 1`` for the label's class and
    -1 for the others. Targets are class labels (N,) or (N, 1), or one-hot rows (N, C).
    """

    code = _ref.HINGE
    classification = True

    def prepare(self, Y, n_out, dtype):
        if n_out < 2:
            raise ValueError("Hinge needs a network with at least 2 outputs (one score per class)")
        tg = _class_targets(Y, n_out, dtype, "Hinge", "one-hot rows")
        if tg.T.ndim == 2 and not np.all((tg.T == 0) | (tg.T == 1)):
            raise ValueError("Hinge 2-D targets must be one-hot rows")
        return tg


class KLDivergence(Cost):
    """Kullback-Leibler divergence of the softmax of raw scores from target distributions:
    ``J = 1/N * sum_n sum_k t_k log(t_k / softmax(s_n)_k)`` (``torch.nn.KLDivLoss`` of
    ``log_softmax(s)`` with ``reduction="batchmean"``). Targets are probability rows (N, C)
    (each >= 0, summing to 1), or class labels (then it equals :class:`CrossEntropy`).
    """

    code = _ref.KL_DIVERGENCE
    classification = True

    def prepare(self, Y, n_out, dtype):
        if n_out < 2:
            raise ValueError("KLDivergence needs a network with at least 2 outputs")
        return _class_targets(Y, n_out, dtype, "KLDivergence", "probability rows that sum to 1")


class Poisson(Cost):
    """Poisson deviance on raw scores ``s`` (log-rates: the rate is ``exp(s)``, so the network
    ends in a Linear): ``J = 1/N * sum_n sum_k exp(s) - t s + t log t - t``, scikit-learn's
    ``MLPRegressor(loss="poisson")`` (``torch.nn.PoissonNLLLoss(log_input=True)`` plus the
    constant ``t log t - t``, so that a perfect fit costs 0). Targets are counts or rates
    >= 0, (N, K) or (N,) when K = 1; ``np.exp(net.predict(X))`` is the predicted rate.
    """

    code = _ref.POISSON

    def prepare(self, Y, n_out, dtype):
        T = _check_float_targets(Y, n_out, dtype, "Poisson")
        if np.any(T < 0):
            raise ValueError("Poisson targets must be >= 0 (counts or rates), got negative values")
        return Targets(T, None)


#: The costs the fused kernels implement (exactly these classes: a subclass may change the math).
BUILTIN = (MSE, CrossEntropy, BCE, L1, Huber, Hinge, KLDivergence, Poisson)

_COSTS = {"mse": MSE, "ce": CrossEntropy, "cross_entropy": CrossEntropy, "crossentropy": CrossEntropy,
          "bce": BCE, "binary_cross_entropy": BCE, "l1": L1, "mae": L1, "huber": Huber, "smooth_l1": Huber,
          "hinge": Hinge, "kl": KLDivergence, "kl_divergence": KLDivergence, "kldivergence": KLDivergence,
          "poisson": Poisson}


def get_cost(cost):
    """A :class:`Cost` from an instance, a class or a name (``"mse"``, ``"ce"``, ``"bce"``, ``"l1"``,
    ``"huber"``, ``"hinge"``, ``"kl"``, ``"poisson"``)."""
    if isinstance(cost, Cost):
        return cost
    if isinstance(cost, type) and issubclass(cost, Cost):
        return cost()
    if isinstance(cost, str) and cost.lower() in _COSTS:
        return _COSTS[cost.lower()]()
    raise ValueError(f"unknown cost {cost!r}; use fastnn.MSE(), fastnn.CrossEntropy(), fastnn.BCE(), fastnn.L1(), "
                     "fastnn.Huber(), fastnn.Hinge(), fastnn.KLDivergence() or fastnn.Poisson()")
