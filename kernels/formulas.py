"""Scalar formulas written once and compiled for both targets: ``kernels/cpu`` makes them
``@jit`` functions, ``kernels/cuda`` device functions (as ``layout.refresh_step``).

Plain Python on numbers, so both compilers can take them: no arrays, no constants that
are not already typed (the Dropout hash's constants are uint64, the optimizers' scalars
come in the parameters' dtype). The formulas and their order of operations are the
reference's (``kernels/reference_optim.py``, ``reference.dropout_mask``).
"""

import math

import numpy as np

# splitmix64 (reference.dropout_mask): every operand uint64, so the arithmetic wraps mod 2^64
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)
_ONE = np.uint64(1)


def mix64(z):
    """splitmix64's output function of a uint64 (wrapping)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def dropout_keep(skey, c, thr):
    """Whether Dropout keeps the unit with counter ``c`` (uint64) of stream key ``skey``:
    splitmix64's output number c of seed skey, shifted to 53 bits, against ``thr``.

    (:func:`mix64` written out: a compiled function can only call compiled functions.)"""
    z = skey + (c + _ONE) * GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return ((z ^ (z >> _S31)) >> _S11) >= thr


def rmsprop_step(g, v, a, b, centered, use_mom, alpha, c2, mom, eps, lr):
    """One RMSprop element: ``(dp, v, a, b)`` with ``p -= dp``; ``a`` the centered average,
    ``b`` the momentum buffer (passed and returned unchanged when unused)."""
    v = v * alpha
    v = v + c2 * g * g
    if centered:
        a = a * alpha
        a = a + c2 * g
        d = math.sqrt(v - a * a) + eps
    else:
        d = math.sqrt(v) + eps
    if use_mom:
        b = b * mom
        b = b + g / d
        return lr * b, v, a, b
    return lr * (g / d), v, a, b


def adagrad_step(g, s, clr, eps):
    """One Adagrad element: ``(dp, s)``; ``clr = lr / (1 + (t - 1) lr_decay)``."""
    s = s + g * g
    return clr * g / (math.sqrt(s) + eps), s


def adadelta_step(g, v, a, rho, c2, eps, lr):
    """One Adadelta element: ``(dp, v, a)``; ``c2 = 1 - rho``."""
    v = v * rho
    v = v + c2 * g * g
    u = math.sqrt(a + eps) / math.sqrt(v + eps) * g
    a = a * rho
    a = a + c2 * u * u
    return lr * u, v, a
