"""Pure-NumPy reference optimizer updates, re-exported by :mod:`fastnn.kernels.reference`.

The second half of the oracle (see that module's conventions): every update works *in
place* on flat parameter vectors, because the parameters of a network live in one
contiguous buffer (see ``fastnn.Sequential``). ``n_decay`` says how many leading
entries of the buffer are weights (which get weight decay); the biases follow them.
Scalars are cast to the parameters' dtype, so float32 updates stay float32. The
formulas and their meanings are ``torch.optim``'s, except SGD's momentum, which is
seed 003's velocity form, and that momentum's velocity and Adam's moments are flushed to 0
when they fall below the smallest normal number (:func:`_flush_subnormal`).
"""

import numpy as np


def _flush_subnormal(state):
    """Store the state entries below the dtype's smallest normal number as 0, in place.

    Momentum's velocity and Adam's moments decay geometrically where the gradient is zero
    (an input pixel that is rarely lit), into the subnormal range, where x86 arithmetic is
    20-100x slower. Every backend flushes them the same way after each step (XLA runs with
    flush-to-zero for the same reason). NaN is kept (the compare is False for it).
    """
    state[np.abs(state) < np.finfo(state.dtype).tiny] = 0


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
    _flush_subnormal(velocity)
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
    _flush_subnormal(velocity)
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
    _flush_subnormal(m)
    _flush_subnormal(v)
    mhat = m / dt(1 - beta1**t)
    vhat = v / dt(1 - beta2**t)
    params -= dt(lr) * mhat / (np.sqrt(vhat) + dt(eps))


def rmsprop_update(params, grads, square_avg, momentum_buffer, grad_avg, lr, alpha, eps, momentum=0.0,
                   weight_decay=0.0, n_decay=0):
    """RMSprop as ``torch.optim.RMSprop``, in place: ``v = alpha v + (1 - alpha) g^2``;
    centered (``grad_avg`` given): ``a = alpha a + (1 - alpha) g``, ``d = sqrt(v - a^2) + eps``,
    else ``d = sqrt(v) + eps``; with momentum ``b = momentum b + g / d``, ``p -= lr b``, else
    ``p -= lr g / d``. ``momentum_buffer`` is None without momentum."""
    g = _decayed(params, grads, weight_decay, n_decay)
    dt = params.dtype.type
    square_avg *= dt(alpha)
    square_avg += dt(1 - alpha) * g * g
    if grad_avg is not None:
        grad_avg *= dt(alpha)
        grad_avg += dt(1 - alpha) * g
        d = np.sqrt(square_avg - grad_avg * grad_avg) + dt(eps)
    else:
        d = np.sqrt(square_avg) + dt(eps)
    if momentum > 0:
        momentum_buffer *= dt(momentum)
        momentum_buffer += g / d
        params -= dt(lr) * momentum_buffer
    else:
        params -= dt(lr) * (g / d)


def adagrad_update(params, grads, state_sum, t, lr, lr_decay, eps, weight_decay=0.0, n_decay=0):
    """Adagrad as ``torch.optim.Adagrad``, in place, for step ``t >= 1``: ``s += g^2``;
    ``p -= clr * g / (sqrt(s) + eps)`` with ``clr = lr / (1 + (t - 1) lr_decay)``."""
    g = _decayed(params, grads, weight_decay, n_decay)
    dt = params.dtype.type
    state_sum += g * g
    params -= dt(lr) / dt(1 + (t - 1) * lr_decay) * g / (np.sqrt(state_sum) + dt(eps))


def adadelta_update(params, grads, square_avg, acc_delta, lr, rho, eps, weight_decay=0.0, n_decay=0):
    """Adadelta as ``torch.optim.Adadelta``, in place: ``v = rho v + (1 - rho) g^2``;
    ``u = sqrt(a + eps) / sqrt(v + eps) * g``; ``a = rho a + (1 - rho) u^2``; ``p -= lr u``."""
    g = _decayed(params, grads, weight_decay, n_decay)
    dt = params.dtype.type
    square_avg *= dt(rho)
    square_avg += dt(1 - rho) * g * g
    u = np.sqrt(acc_delta + dt(eps)) / np.sqrt(square_avg + dt(eps)) * g
    acc_delta *= dt(rho)
    acc_delta += dt(1 - rho) * u * u
    params -= dt(lr) * u


def adamw_update(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay=0.0, n_decay=0):
    """AdamW (Loshchilov & Hutter), in place, for step ``t >= 1``: decoupled decay
    ``p *= 1 - lr * wd`` on the first ``n_decay`` entries (the weights), then the
    :func:`adam_update` step without L2 in the gradient (``torch.optim.AdamW``)."""
    dt = params.dtype.type
    params[:n_decay] *= dt(1) - dt(lr) * dt(weight_decay)
    adam_update(params, grads, m, v, t, lr, beta1, beta2, eps)
