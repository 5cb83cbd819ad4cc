"""Device functions shared by the CUDA kernels: activations and the Dropout hash, per dtype.

:func:`device_functions` builds them for one dtype (constants in that dtype, so float32
kernels stay float32) and is called by :func:`fastnn.kernels.cuda._kernels.build`.
The formulas and their order of operations are the reference's (``kernels/reference.py``).
"""

import math

import numpy as np
from numba import uint64

from fastnn.kernels import formulas
from fastnn.kernels.cuda.jit import device_function
from fastnn.kernels.layout import (
    ELU, GELU, GELU_TANH, LEAKY_RELU, RELU, RELU6, SIGMOID, SIGN, SILU, SOFTPLUS, SOFTPLUS_THRESHOLD, TANH)

def device_functions(dtype, fastmath):
    """``(act_fwd, act_bwd, keep)`` device functions for ``dtype``.

    ``act_fwd(code, x, p)``: the activation of one value (``p`` its parameter);
    ``act_bwd(code, v, dy, p)``: dx from the output ``v`` (or, for GELU and SiLU, the input);
    ``keep(skey, c, thr)``: whether Dropout keeps the unit with counter ``c`` of stream key ``skey``.
    """
    DT = np.dtype(dtype).type
    ZERO, ONE, HALF, SIX = DT(0), DT(1), DT(0.5), DT(6)
    SP_T = DT(SOFTPLUS_THRESHOLD)
    SQRT1_2, INV_SQRT_2PI, SQRT_2_PI, KAPPA, KAPPA3 = (DT(0.7071067811865476), DT(0.3989422804014327),
                                                      DT(0.7978845608028654), DT(0.044715), DT(3 * 0.044715))
    device = device_function(fastmath)

    @device
    def sigmoid(x):
        # exp(-|x|) never overflows (same rewrite as reference.sigmoid_forward)
        e = math.exp(-abs(x))
        if x >= ZERO:
            return ONE / (ONE + e)
        return e / (ONE + e)

    @device
    def act_more(code, x, p):
        # ELU ... ReLU6 forward
        if code == ELU:
            return x if x > ZERO else p * math.expm1(x)
        if code == SOFTPLUS:
            bx = p * x
            return x if bx > SP_T else math.log1p(math.exp(bx)) / p
        if code == GELU:
            return HALF * x * (ONE + math.erf(x * SQRT1_2))
        if code == GELU_TANH:
            return HALF * x * (ONE + math.tanh(SQRT_2_PI * (x + KAPPA * x * x * x)))
        if code == SILU:
            return x * sigmoid(x)
        if code == RELU6:
            return ZERO if not x > ZERO else (SIX if x > SIX else x)
        return x

    @device
    def act_fwd(code, x, p):
        if code == SIGMOID:
            return sigmoid(x)
        if code == TANH:
            return math.tanh(x)
        if code == RELU:
            return x if x > ZERO else ZERO
        if code == LEAKY_RELU:
            return x if x > ZERO else p * x
        if code == SIGN:
            return ONE if x > ZERO else -ONE
        if code >= ELU:
            return act_more(code, x, p)
        return x

    @device
    def act_bwd_more(code, v, dy, p):
        # ELU ... ReLU6 backward; v is the output, or the input for GELU and SiLU
        if code == ELU:
            return dy if v > ZERO else dy * (v + p)
        if code == SOFTPLUS:
            by = p * v
            return dy if by > SP_T else dy * -math.expm1(-by)
        if code == GELU:
            cdf = HALF * (ONE + math.erf(v * SQRT1_2))
            return dy * (cdf + v * (math.exp(-HALF * v * v) * INV_SQRT_2PI))
        if code == GELU_TANH:
            th = math.tanh(SQRT_2_PI * (v + KAPPA * v * v * v))
            inner = SQRT_2_PI * (ONE + KAPPA3 * v * v)
            return dy * (HALF * (ONE + th) + HALF * v * (ONE - th * th) * inner)
        if code == SILU:
            s = sigmoid(v)
            return dy * s * (ONE + v * (ONE - s))
        if code == RELU6:
            return dy if (v > ZERO and v < SIX) else ZERO
        return dy

    @device
    def act_bwd(code, v, dy, p):
        # dx from the activation's OUTPUT v (its input for GELU/SiLU), the reference's order
        if code == SIGMOID:
            return dy * v * (ONE - v)
        if code == TANH:
            return dy * (ONE - v * v)
        if code == RELU:
            return dy if v > ZERO else ZERO
        if code == LEAKY_RELU:
            return dy if v > ZERO else p * dy
        if code >= ELU:
            return act_bwd_more(code, v, dy, p)
        return dy

    dropout_keep = device(formulas.dropout_keep)

    @device
    def keep(skey, c, thr):
        return dropout_keep(skey, uint64(c), thr)

    return act_fwd, act_bwd, keep
