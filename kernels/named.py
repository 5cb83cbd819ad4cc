"""The named ops (``sigmoid_forward`` ... ``adam_update``), generated once for every backend.

:mod:`fastnn.kernels.reference` spells each formula out. The compiled backends
implement only the generic kernels -- an activation forward and backward by code,
a cost value and gradient by code, one flat optimizer update by optimizer code --
and get every named op from :func:`named_ops`, with the reference's names,
signatures and docstrings::

    globals().update(named_ops(activation_forward, activation_backward,
                               cost_value, cost_delta, update))
"""

from fastnn.kernels import reference as _ref
from fastnn.kernels.layout import OPT_ADAM, OPT_MOMENTUM, OPT_NESTEROV, OPT_SGD, hp_values

#: (name, code, takes a slope) of every activation; ``sign`` is forward-only.
ACTIVATIONS = (
    ("identity", _ref.IDENTITY, False), ("sigmoid", _ref.SIGMOID, False), ("tanh", _ref.TANH, False),
    ("relu", _ref.RELU, False), ("leaky_relu", _ref.LEAKY_RELU, True), ("softmax", _ref.SOFTMAX, False),
    ("sign", _ref.SIGN, False),
)
#: The names :func:`named_ops` defines, for a backend's ``__all__``.
NAMES = tuple(
    [f"{a}_{d}" for a, _, _ in ACTIVATIONS for d in ("forward", "backward") if (a, d) != ("sign", "backward")]
    + [f"{c}_{w}" for c in ("mse", "cross_entropy", "bce") for w in ("value", "grad")]
    + ["bce_sigmoid_delta", "cost_value", "cost_grad",
       "sgd_update", "momentum_update", "nesterov_update", "adam_update"])


def _named(fn, name):
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = getattr(_ref, name).__doc__
    return fn


def _activation_pair(fwd, bwd, code, has_slope):
    # closures over ``code``, so the signatures are exactly the reference's
    if has_slope:
        def f(x, slope=0.01):
            return fwd(code, x, slope)

        def b(y, dy, slope=0.01):
            return bwd(code, y, dy, slope)
    else:
        def f(x):
            return fwd(code, x)

        def b(y, dy):
            return bwd(code, y, dy)
    return f, b


def _activations(fwd, bwd):
    ops = {}
    for name, code, has_slope in ACTIVATIONS:
        f, b = _activation_pair(fwd, bwd, code, has_slope)
        ops[f"{name}_forward"] = _named(f, f"{name}_forward")
        if code != _ref.SIGN:
            ops[f"{name}_backward"] = _named(b, f"{name}_backward")
    return ops


def _costs(value, delta):
    # written out: the reference names the prediction pred, scores or prob
    def mse_value(pred, target):
        return value(_ref.MSE, pred, target)

    def mse_grad(pred, target):
        return delta(_ref.MSE, pred, target, False)

    def cross_entropy_value(scores, target):
        return value(_ref.CROSS_ENTROPY, scores, target)

    def cross_entropy_grad(scores, target):
        return delta(_ref.CROSS_ENTROPY, scores, target, False)

    def bce_value(prob, target):
        return value(_ref.BCE, prob, target)

    def bce_grad(prob, target):
        return delta(_ref.BCE, prob, target, False)

    def bce_sigmoid_delta(prob, target):
        return delta(_ref.BCE, prob, target, True)

    def cost_value(code, pred, target):
        return value(int(code), pred, target)

    def cost_grad(code, pred, target):
        return delta(int(code), pred, target, False)
    return {f.__name__: _named(f, f.__name__)
            for f in (mse_value, mse_grad, cross_entropy_value, cross_entropy_grad, bce_value, bce_grad,
                      bce_sigmoid_delta, cost_value, cost_grad)}


def _updates(update):
    # update(code, params, grads, s1, s2, hp (list, layout order), n_decay) works in place
    def sgd_update(params, grads, lr, weight_decay=0.0, n_decay=0):
        update(OPT_SGD, params, grads, None, None, hp_values(lr, weight_decay), n_decay)

    def momentum_update(params, grads, velocity, lr, momentum, weight_decay=0.0, n_decay=0):
        update(OPT_MOMENTUM, params, grads, velocity, None, hp_values(lr, weight_decay, momentum), n_decay)

    def nesterov_update(params, grads, velocity, lr, momentum, weight_decay=0.0, n_decay=0):
        update(OPT_NESTEROV, params, grads, velocity, None, hp_values(lr, weight_decay, momentum), n_decay)

    def adam_update(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay=0.0, n_decay=0):
        if int(t) < 1:
            raise ValueError(f"Adam step t must be >= 1, got {t}")
        if m is None or v is None:
            raise ValueError("adam_update needs the moment buffers m and v")
        update(OPT_ADAM, params, grads, m, v, hp_values(lr, weight_decay, 0.0, beta1, beta2, eps, int(t)),
               n_decay)
    return {f.__name__: _named(f, f.__name__)
            for f in (sgd_update, momentum_update, nesterov_update, adam_update)}


def named_ops(activation_forward, activation_backward, cost_value, cost_delta, update):
    """Every named op of the reference, over a backend's generic kernels.

    Parameters
    ----------
    activation_forward, activation_backward : callables
        ``(code, x, slope=...)`` and ``(code, y, dy, slope=...)``, as in the reference.
    cost_value : callable
        ``(code, pred, target) -> float``.
    cost_delta : callable
        ``(code, pred, target, sigmoid_fused) -> dJ/dpred`` (with ``sigmoid_fused``, BCE's
        gradient through the sigmoid that made ``pred``: ``(p - t) / N``).
    update : callable
        ``(code, params, grads, s1, s2, hp, n_decay)``, in place; ``hp`` a list in the
        layout of :mod:`fastnn.kernels.layout`, ``s1``/``s2`` None when unused.

    Returns
    -------
    dict
        name -> function, for the backend module's globals.
    """
    ops = _activations(activation_forward, activation_backward)
    ops.update(_costs(cost_value, cost_delta))
    ops.update(_updates(update))
    return ops
