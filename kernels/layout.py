"""The arrays a training plan hands to the kernels, and their layouts, defined once.

Every epoch kernel (``kernels/cpu/epoch_*.py``, ``kernels/cuda/epoch.py``) and the
named optimizer ops read a network, an optimizer and the training data through the
tables below; ``fastnn/backends/plan.py`` is the one place that fills them from a
``Sequential``, a cost and an optimizer. Nothing here imports the API.

Layer table ``spec``: int64 (L, N_COLS), one row per Linear::

    NIN, NOUT   its input and output sizes
    WOFF        offset of W (NIN, NOUT), row-major, in the flat parameter buffer
    BOFF        offset of b (NOUT,) in the same buffer, or NO_BIAS
    ACT         code of the activation after it (``reference.SIGMOID`` ...), or NO_ACT
    YOFF, DOFF  offsets of its batch output Y (B, NOUT) and delta D (B, NOUT) in the
                workspace ``ws``
    WTOFF       offset of a (NOUT, NIN) scratch for W transposed in ``ws`` (layers
                after the first, on the paths that need it; else -1)

``slopes``: float64 (L,), the LeakyReLU slope of each layer's activation (0 otherwise).

Hyper-parameter vector ``hp``: (N_HP,) in the parameters' dtype (the reference casts
its scalars to that dtype too), filled by :func:`hp_values`::

    LR, WD, MOM      learning rate, L2 weight decay, momentum
    C1, C2           1 - beta1, 1 - beta2 (Adam)
    EPS              Adam's denominator guard
    B1, B2           beta1, beta2
    H1, H2           Adam's bias corrections 1 - beta1**t, 1 - beta2**t at step t

Optimizer codes: OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM.
"""

import math
from collections import namedtuple

from fastnn.kernels.reference import (  # noqa: F401  (the codes, for the kernels' convenience)
    BCE, CROSS_ENTROPY, IDENTITY, LEAKY_RELU, MSE, RELU, SIGMOID, SIGN, SOFTMAX, TANH)

# ---------------------------------------------------------------- the layer table
NIN, NOUT, WOFF, BOFF, ACT, YOFF, DOFF, WTOFF = range(8)
N_COLS = 8
NO_ACT = -1
NO_BIAS = -1

# ------------------------------------------------------------- optimizer and hp
OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM = range(4)
#: Optimizer kind names (``SGD.kind``, ``Adam.kind``) in code order.
OPT_KINDS = ("sgd", "momentum", "nesterov", "adam")
#: State buffers each optimizer code keeps (s1, s2 of the update kernels).
OPT_STATE = {OPT_SGD: 0, OPT_MOMENTUM: 1, OPT_NESTEROV: 1, OPT_ADAM: 2}

LR, WD, MOM, C1, C2, EPS, B1, B2, H1, H2 = range(10)
N_HP = 10


def bias_correction(beta, t):
    """Adam's ``1 - beta**t`` in float64 (1.0 before the first step, ``t == 0``)."""
    return 1.0 - math.pow(beta, float(t)) if t else 1.0


def hp_values(lr, weight_decay=0.0, momentum=0.0, beta1=0.0, beta2=0.0, eps=1.0, t=0):
    """The entries of ``hp`` for these hyper-parameters at step ``t``, in layout order."""
    return [lr, weight_decay, momentum, 1 - beta1, 1 - beta2, eps, beta1, beta2,
            bias_correction(beta1, t), bias_correction(beta2, t)]


def refresh_bias_corrections(hp, beta1, beta2, t):
    """Write Adam's bias corrections for step ``t >= 1`` into ``hp[H1]``, ``hp[H2]``.

    Plain Python that ``kernels/cpu`` compiles for its epoch loops (float64 pow, then
    the cast to hp's dtype, as the reference's ``1 - beta1**t``) and the CUDA epoch
    calls on the host, where ``t`` lives.
    """
    hp[H1] = 1.0 - math.pow(beta1, float(t))
    hp[H2] = 1.0 - math.pow(beta2, float(t))


# --------------------------------------------------------------- what kernels get
#: The network: flat ``params``/``grads`` (P,), the layer table ``spec`` (L, N_COLS),
#: ``slopes`` (L,) and the workspace ``ws`` of batch outputs and deltas.
Model = namedtuple("Model", ["params", "grads", "spec", "slopes", "ws"])

#: The optimizer: ``code`` (OPT_*), ``hp`` (N_HP,), state buffers ``s1``, ``s2`` (P,) or
#: empty, ``n_decay`` (leading entries of params that are weights and get weight
#: decay), and ``beta1``, ``beta2`` as float64 (for the bias corrections).
Optim = namedtuple("Optim", ["code", "hp", "s1", "s2", "n_decay", "beta1", "beta2"])

#: The data and the cost: ``X`` (N, F); ``T`` float targets (N, K), or (1, K) unused when
#: ``use_int`` (integer class labels in ``labels`` (N,)); ``labels`` also gives the
#: accuracy when ``has_acc`` (argmax, or for BCE ``T > 0.5``); ``cost`` code;
#: ``fused_last`` (the cost's delta already includes the last activation's backward:
#: BCE after a Sigmoid); ``eps`` the dtype's machine epsilon (the BCE clip).
Data = namedtuple("Data", ["X", "T", "labels", "use_int", "has_acc", "cost", "fused_last", "eps"])
