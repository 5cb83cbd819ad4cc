"""The named ops (``sigmoid_forward`` ... ``adamw_update``), generated once for every backend.

:mod:`fastnn.kernels.reference` spells each formula out. The compiled backends
implement only the generic kernels -- an activation forward and backward by code,
a cost value and gradient by code, one flat optimizer update by optimizer code, one
dropout -- and get every named op from :func:`named_ops`, with the reference's names,
signatures and docstrings::

    globals().update(named_ops(activation_forward, activation_backward,
                               cost_value, cost_delta, update, dropout))

Adding an activation, cost or optimizer to a backend is adding its code to these
generic kernels and one row to a table here.
"""

import inspect

import numpy as np

from fastnn.kernels import layout as _lay, reference as _ref

#: (name, code, name and default of its parameter or None) of every activation;
#: ``sign`` is forward-only; the backward of a code in ``reference.NEEDS_INPUT`` takes x.
ACTIVATIONS = (
    ("identity", _ref.IDENTITY, None), ("sigmoid", _ref.SIGMOID, None), ("tanh", _ref.TANH, None),
    ("relu", _ref.RELU, None), ("leaky_relu", _ref.LEAKY_RELU, ("slope", 0.01)), ("softmax", _ref.SOFTMAX, None),
    ("sign", _ref.SIGN, None), ("elu", _ref.ELU, ("alpha", 1.0)), ("softplus", _ref.SOFTPLUS, ("beta", 1.0)),
    ("gelu", _ref.GELU, None), ("gelu_tanh", _ref.GELU_TANH, None), ("silu", _ref.SILU, None),
    ("relu6", _ref.RELU6, None),
)
#: (name, code, the name the reference gives its prediction, takes Huber's delta) of every cost.
COSTS = (
    ("mse", _ref.MSE, "pred", False), ("cross_entropy", _ref.CROSS_ENTROPY, "scores", False),
    ("bce", _ref.BCE, "prob", False), ("l1", _ref.L1, "pred", False), ("huber", _ref.HUBER, "pred", True),
    ("hinge", _ref.HINGE, "scores", False), ("kl_divergence", _ref.KL_DIVERGENCE, "scores", False),
    ("poisson", _ref.POISSON, "scores", False),
)
UPDATES = ("sgd_update", "momentum_update", "nesterov_update", "adam_update", "rmsprop_update", "adagrad_update",
           "adadelta_update", "adamw_update")
#: The names :func:`named_ops` defines, for a backend's ``__all__``.
NAMES = tuple(
    [f"{a}_{d}" for a, _, _ in ACTIVATIONS for d in ("forward", "backward") if (a, d) != ("sign", "backward")]
    + [f"{c}_{w}" for c, _, _, _ in COSTS for w in ("value", "grad")]
    + ["bce_sigmoid_delta", "cost_value", "cost_grad", *UPDATES, "dropout_forward", "dropout_backward",
       "dropout_mask"])


def _named(fn, name):
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = getattr(_ref, name).__doc__
    return fn


def _generate(name, call, **env):
    """A function with the reference's ``name``, signature and docstring whose body is
    ``return <call>``: ``call`` is an expression over the signature's parameters and ``env``."""
    sig = inspect.signature(getattr(_ref, name))
    exec(f"def {name}{sig}:\n    return {call}\n", env)  # noqa: S102 (generated from our own signatures)
    return _named(env[name], name)


def _activations(fwd, bwd):
    ops = {}
    for name, code, param in ACTIVATIONS:
        p = param[0] if param else "0.0"
        ops[f"{name}_forward"] = _generate(f"{name}_forward", f"_f({code}, x, {p})", _f=fwd)
        if code in _ref.NEEDS_INPUT:
            ops[f"{name}_backward"] = _generate(f"{name}_backward", f"_b({code}, None, dy, 0.0, x)", _b=bwd)
        elif code != _ref.SIGN:
            ops[f"{name}_backward"] = _generate(f"{name}_backward", f"_b({code}, y, dy, {p})", _b=bwd)
    return ops


def _costs(value, delta):
    ops = {}
    for name, code, pred, has_param in COSTS:
        p = "delta" if has_param else "1.0"
        ops[f"{name}_value"] = _generate(f"{name}_value", f"_v({code}, {pred}, target, {p})", _v=value)
        ops[f"{name}_grad"] = _generate(f"{name}_grad", f"_d({code}, {pred}, target, False, {p})", _d=delta)
    ops["bce_sigmoid_delta"] = _generate("bce_sigmoid_delta", f"_d({_ref.BCE}, prob, target, True)", _d=delta)
    ops["cost_value"] = _generate("cost_value", "_v(int(code), pred, target, param)", _v=value)
    ops["cost_grad"] = _generate("cost_grad", "_d(int(code), pred, target, False, param)", _d=delta)
    return ops


def _step(t, what):
    if int(t) < 1:
        raise ValueError(f"{what} step t must be >= 1, got {t}")
    return int(t)


def _need(what, **states):
    for name, s in states.items():
        if s is None:
            raise ValueError(f"{what} needs the state buffer {name}")


def _updates(update):
    # update(code, params, grads, s1, s2, s3, hp (list, layout order), n_decay) works in place
    hpv = _lay.hp_values

    def sgd_update(params, grads, lr, weight_decay=0.0, n_decay=0):
        update(_lay.OPT_SGD, params, grads, None, None, None, hpv(lr, weight_decay), n_decay)

    def momentum_update(params, grads, velocity, lr, momentum, weight_decay=0.0, n_decay=0):
        update(_lay.OPT_MOMENTUM, params, grads, velocity, None, None, hpv(lr, weight_decay, momentum), n_decay)

    def nesterov_update(params, grads, velocity, lr, momentum, weight_decay=0.0, n_decay=0):
        update(_lay.OPT_NESTEROV, params, grads, velocity, None, None, hpv(lr, weight_decay, momentum), n_decay)

    def adam_update(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay=0.0, n_decay=0):
        t = _step(t, "Adam")
        _need("adam_update", m=m, v=v)
        update(_lay.OPT_ADAM, params, grads, m, v, None, hpv(lr, weight_decay, 0.0, beta1, beta2, eps, t),
               n_decay)

    def adamw_update(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay=0.0, n_decay=0):
        t = _step(t, "AdamW")
        _need("adamw_update", m=m, v=v)
        update(_lay.OPT_ADAMW, params, grads, m, v, None,
               hpv(lr, weight_decay, 0.0, beta1, beta2, eps, t, code=_lay.OPT_ADAMW), n_decay)

    def rmsprop_update(params, grads, square_avg, momentum_buffer, grad_avg, lr, alpha, eps, momentum=0.0,
                       weight_decay=0.0, n_decay=0):
        _need("rmsprop_update", square_avg=square_avg)
        if momentum > 0:
            _need("rmsprop_update with momentum", momentum_buffer=momentum_buffer)
        hp = hpv(lr, weight_decay, momentum, 0.0, alpha, eps)
        if grad_avg is None:
            update(_lay.OPT_RMSPROP, params, grads, square_avg, momentum_buffer, None, hp, n_decay)
        else:
            update(_lay.OPT_CENTERED_RMSPROP, params, grads, square_avg, grad_avg, momentum_buffer, hp, n_decay)

    def adagrad_update(params, grads, state_sum, t, lr, lr_decay, eps, weight_decay=0.0, n_decay=0):
        t = _step(t, "Adagrad")
        _need("adagrad_update", state_sum=state_sum)
        update(_lay.OPT_ADAGRAD, params, grads, state_sum, None, None,
               hpv(lr, weight_decay, 0.0, 0.0, 0.0, eps, t, lr_decay, _lay.OPT_ADAGRAD), n_decay)

    def adadelta_update(params, grads, square_avg, acc_delta, lr, rho, eps, weight_decay=0.0, n_decay=0):
        _need("adadelta_update", square_avg=square_avg, acc_delta=acc_delta)
        update(_lay.OPT_ADADELTA, params, grads, square_avg, acc_delta, None,
               hpv(lr, weight_decay, 0.0, 0.0, rho, eps), n_decay)
    fns = (sgd_update, momentum_update, nesterov_update, adam_update, rmsprop_update, adagrad_update,
           adadelta_update, adamw_update)
    return {f.__name__: _named(f, f.__name__) for f in fns}


def _dropouts(dropout):
    # dropout(x, key, stream, pos0, p) -> x scaled by 1/(1-p) where kept, 0 elsewhere (a new array)
    return {
        "dropout_forward": _generate("dropout_forward", "_k(x, key, stream, pos0, p)", _k=dropout),
        "dropout_backward": _generate("dropout_backward", "_k(dy, key, stream, pos0, p)", _k=dropout),
        "dropout_mask": _generate("dropout_mask", "_np.asarray(_k(_np.ones(shape), key, stream, pos0, p)) != 0",
                                  _k=dropout, _np=np),
    }


def named_ops(activation_forward, activation_backward, cost_value, cost_delta, update, dropout):
    """Every named op of the reference, over a backend's generic kernels.

    Parameters
    ----------
    activation_forward, activation_backward : callables
        ``(code, x, slope)`` and ``(code, y, dy, slope, x)``, as in the reference (the
        backward reads ``x`` for the codes in ``reference.NEEDS_INPUT``, else ``y``).
    cost_value : callable
        ``(code, pred, target, param) -> float`` (``param``: Huber's delta).
    cost_delta : callable
        ``(code, pred, target, sigmoid_fused, param=1.0) -> dJ/dpred`` (with ``sigmoid_fused``,
        BCE's gradient through the sigmoid that made ``pred``: ``(p - t) / N``).
    update : callable
        ``(code, params, grads, s1, s2, s3, hp, n_decay)``, in place; ``hp`` a list in the
        layout of :mod:`fastnn.kernels.layout`, unused state buffers None.
    dropout : callable
        ``(x, key, stream, pos0, p)`` -> inverted dropout of x (B, n) with the reference's mask.

    Returns
    -------
    dict
        name -> function, for the backend module's globals.
    """
    ops = _activations(activation_forward, activation_backward)
    ops.update(_costs(cost_value, cost_delta))
    ops.update(_updates(update))
    ops.update(_dropouts(dropout))
    return ops
