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
    ZOFF        offset of its pre-activation Z (B, NOUT) in ``ws``, kept only when the
                activation's backward needs its input (``reference.NEEDS_INPUT``); else -1
    DROP        the Dropout after it: keep threshold ``floor(p 2^53)`` (see
                :func:`dropout_threshold`), or NO_DROP
    DSTREAM     that Dropout's stream number (its position in ``net.layers``)
    QOFF        offset of the dropped output Q (B, NOUT) in ``ws`` (what the next layer
                reads when there is a Dropout; Y keeps the activation's output); else -1

``slopes``: float64 (L,), the parameter of each layer's activation (LeakyReLU's slope,
ELU's alpha, Softplus's beta; 0 otherwise). ``scales``: float64 (L,), each Dropout's
``1 / (1 - p)`` (1 without). ``key``: uint64 (1,), this epoch's Dropout key, written in
place each epoch (so a device-resident copy of the Model reads the new key).

Hyper-parameter vector ``hp``: (N_HP,) in the parameters' dtype (the reference casts
its scalars to that dtype too), filled by :func:`hp_values`; ``hp64`` holds the same
values in float64 (the per-step scalars are computed from it)::

    LR, WD, MOM      learning rate, weight decay, momentum
    C1, C2           1 - beta1, 1 - beta2 (Adam, AdamW); 1 - alpha (RMSprop); 1 - rho (Adadelta)
    EPS              the denominator guard
    B1, B2           beta1, beta2; B2 is also RMSprop's alpha and Adadelta's rho
    H1, H2           per-step scalars (:func:`step_scalars`): Adam's bias corrections
                     1 - beta1**t, 1 - beta2**t; Adagrad's lr divisor 1 + (t - 1) lr_decay
    DECAY            Adagrad's lr_decay

Optimizer codes: OPT_SGD ... OPT_ADAMW (names in :data:`OPT_KINDS`). State buffers
s1, s2, s3 by code: momentum/Nesterov velocity; Adam/AdamW m, v; RMSprop square_avg
(and its momentum buffer in s2); centered RMSprop square_avg, grad_avg (and the
momentum buffer in s3); Adagrad state_sum; Adadelta square_avg, acc_delta.
"""

import math
from collections import namedtuple

from fastnn.kernels.reference import (  # noqa: F401  (the codes, for the kernels' convenience)
    ACTIVATION_NAMES, BCE, CROSS_ENTROPY, ELU, GELU, GELU_TANH, HINGE, HUBER, IDENTITY, KL_DIVERGENCE, L1, LEAKY_RELU,
    MSE, NEEDS_INPUT, POISSON, RELU, RELU6, SIGMOID, SIGN, SILU, SOFTMAX, SOFTPLUS, SOFTPLUS_THRESHOLD, TANH)

# ---------------------------------------------------------------- the layer table
NIN, NOUT, WOFF, BOFF, ACT, YOFF, DOFF, WTOFF, ZOFF, DROP, DSTREAM, QOFF = range(12)
N_COLS = 12
NO_ACT = -1
NO_BIAS = -1
NO_DROP = -1


def dropout_threshold(p):
    """The keep threshold of Dropout ``p``: a unit is kept when ``hash >> 11 >= floor(p 2^53)``."""
    return int(p * 2.0 ** 53)


def dropout_scale(p):
    """Inverted dropout's ``1 / (1 - p)``, in float64 (the kernels cast it to their dtype)."""
    return 1.0 / (1.0 - p)


# ------------------------------------------------------------- optimizer and hp
(OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM, OPT_RMSPROP, OPT_CENTERED_RMSPROP, OPT_ADAGRAD, OPT_ADADELTA,
 OPT_ADAMW) = range(9)
#: Optimizer kind names (``SGD.kind``, ``Adam.kind``, ...) in code order.
OPT_KINDS = ("sgd", "momentum", "nesterov", "adam", "rmsprop", "centered_rmsprop", "adagrad", "adadelta", "adamw")

LR, WD, MOM, C1, C2, EPS, B1, B2, H1, H2, DECAY = range(11)
N_HP = 11


def bias_correction(beta, t):
    """Adam's ``1 - beta**t`` in float64 (1.0 before the first step, ``t == 0``)."""
    return 1.0 - math.pow(beta, float(t)) if t else 1.0


def step_scalars(code, t, beta1, beta2, lr_decay):
    """``(hp[H1], hp[H2])`` of optimizer ``code`` at step ``t`` (1.0 where unused)."""
    if code == OPT_ADAM or code == OPT_ADAMW:
        return bias_correction(beta1, t), bias_correction(beta2, t)
    if code == OPT_ADAGRAD:
        return (1.0 + (t - 1) * lr_decay if t else 1.0), 1.0
    return 1.0, 1.0


def hp_values(lr, weight_decay=0.0, momentum=0.0, beta1=0.0, beta2=0.0, eps=1.0, t=0, lr_decay=0.0,
              code=OPT_ADAM):
    """The entries of ``hp`` for these hyper-parameters at step ``t``, in layout order."""
    h1, h2 = step_scalars(code, t, beta1, beta2, lr_decay)
    return [lr, weight_decay, momentum, 1 - beta1, 1 - beta2, eps, beta1, beta2, h1, h2, lr_decay]


def refresh_step(hp, hp64, code, t):
    """Write the per-step scalars of step ``t >= 1`` into ``hp[H1]``, ``hp[H2]``.

    Plain Python that ``kernels/cpu`` compiles for its epoch loops (float64 arithmetic
    on ``hp64``, then the cast to hp's dtype, as the reference's ``1 - beta1**t``) and
    the CUDA epoch calls on the host, where ``t`` lives.
    """
    if code == OPT_ADAM or code == OPT_ADAMW:
        hp[H1] = 1.0 - math.pow(hp64[B1], float(t))
        hp[H2] = 1.0 - math.pow(hp64[B2], float(t))
    elif code == OPT_ADAGRAD:
        hp[H1] = 1.0 + (t - 1) * hp64[DECAY]


# --------------------------------------------------------------- what kernels get
#: The network: flat ``params``/``grads`` (P,), the layer table ``spec`` (L, N_COLS),
#: ``slopes`` (L,), the workspace ``ws`` of batch outputs and deltas, Dropout ``scales``
#: (L,) and ``key`` (1,) uint64 (the last two may be left out where no training runs).
Model = namedtuple("Model", ["params", "grads", "spec", "slopes", "ws", "scales", "key"], defaults=(None, None))

#: The optimizer: ``code`` (OPT_*), ``hp`` (N_HP,), state buffers ``s1``, ``s2`` (P,) or
#: empty, ``n_decay`` (leading entries of params that are weights and get weight
#: decay), the third state buffer ``s3`` and ``hp64`` (N_HP,) float64 (the per-step
#: scalars are computed from it).
Optim = namedtuple("Optim", ["code", "hp", "s1", "s2", "n_decay", "s3", "hp64"])

#: The data and the cost: ``X`` (N, F); ``T`` float targets (N, K), or (1, K) unused when
#: ``use_int`` (integer class labels in ``labels`` (N,)); ``labels`` also gives the
#: accuracy when ``has_acc`` (argmax, or for BCE ``T > 0.5``); ``cost`` code;
#: ``fused_last`` (the cost's delta already includes the last activation's backward:
#: BCE after a Sigmoid); ``eps`` the dtype's machine epsilon (the BCE clip); ``cparam``
#: the cost's parameter (Huber's delta; 1.0 otherwise). Sample weights, written in place
#: each epoch (empty without): ``sw`` (N,) in X's dtype, each sample's factor on its loss and
#: delta this epoch (:func:`fastnn.backends.plan.batch_weights`); ``wdf`` (number of batches,)
#: float64, each batch's factor on the weight decay (``hp[WD] = hp64[WD] * wdf[b]``).
Data = namedtuple("Data", ["X", "T", "labels", "use_int", "has_acc", "cost", "fused_last", "eps", "cparam", "sw",
                           "wdf"], defaults=(1.0, None, None))


_M64, _GOLDEN = (1 << 64) - 1, 0x9E3779B97F4A7C15


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def dropout_stream_key(key, stream):
    """The stream key ``mix64(key + (stream + 1) G)`` of Dropout number ``stream`` (Python ints,
    for hosts that launch device kernels; ``reference.dropout_mask`` has the vectorised form)."""
    return _mix64((int(key) + (int(stream) + 1) * _GOLDEN) & _M64)
