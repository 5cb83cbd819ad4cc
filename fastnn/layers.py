"""Layers: Linear, the elementwise/row-wise activations and Dropout.

Layers hold no compute of their own: ``forward``/``backward`` call the kernels of an
:class:`~fastnn.backends.base.Ops` (the default backend when ``ops`` is None), so
adding a backend never touches this file.

A Linear's ``W``, ``b``, ``dW`` and ``db`` are views into the flat parameter and
gradient buffers of the :class:`~fastnn.Sequential` that holds it; a Linear that is
not in a network owns small arrays of its own.
"""

import contextlib
import contextvars
import math

import numpy as np

from fastnn import _checks
from fastnn.kernels import reference as _ref

#: True while layers are built to receive stored weights (see :func:`no_init`).
_NO_INIT = contextvars.ContextVar("fastnn_no_init", default=False)


@contextlib.contextmanager
def no_init():
    """Build layers without drawing initial weights (they stay zero): for loading stored weights."""
    token = _NO_INIT.set(True)
    try:
        yield
    finally:
        _NO_INIT.reset(token)


INIT_SCHEMES = (
    "gaussian", "uniform", "xavier", "xavier_uniform", "xavier_normal",
    "he", "he_normal", "he_uniform", "lecun", "lecun_normal", "lecun_uniform",
)


def _ops(ops):
    if ops is None or isinstance(ops, str):
        from fastnn.backends import get_ops

        return get_ops(ops)
    return ops


class Layer:
    """Base class of all layers."""

    n_params = 0
    name = None
    #: Whether predict/evaluate (inference) skip this layer (Dropout).
    inference_identity = False

    def forward(self, x, ops=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad, ops=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x, ops=None):
        return self.forward(x, ops)

    def config(self):
        """JSON-serialisable description that :func:`layer_from_config` rebuilds."""
        return {"type": type(self).__name__}

    def __repr__(self):
        return f"{type(self).__name__}()"


class Linear(Layer):
    """Fully connected layer ``y = x @ W + b`` with ``W`` of shape ``(insize, outsize)``.

    Parameters
    ----------
    insize, outsize : int
        Number of inputs and outputs.
    bias : bool
        Whether the layer has a bias vector ``b`` of shape ``(outsize,)``.
    init : str
        Weight initialisation: ``"gaussian"`` (normal with std ``wscale``),
        ``"uniform"`` (U(-wscale, wscale)), ``"xavier"``/``"xavier_uniform"``
        (Glorot uniform), ``"xavier_normal"``, ``"he"``/``"he_normal"``,
        ``"he_uniform"``, ``"lecun"``/``"lecun_normal"``, ``"lecun_uniform"``.
        The fan-based schemes are multiplied by ``wscale`` too. Biases start at zero.
    wscale : float
        Scale of the initial weights (see ``init``).
    name : str, optional
        Shown in error messages and ``repr``.

    Notes
    -----
    Weights are drawn when the layer is put in a :class:`~fastnn.Sequential`, from
    the network's seed. A Linear used on its own draws them from fresh entropy.
    """

    def __init__(self, insize, outsize, bias=True, init="xavier", wscale=1.0, name=None):
        for what, v in (("insize", insize), ("outsize", outsize)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"Linear {what} must be a positive integer, got {v!r}")
        if init not in INIT_SCHEMES:
            raise ValueError(f"unknown init scheme {init!r}; choose one of {', '.join(INIT_SCHEMES)}")
        if not (np.isfinite(wscale) and wscale > 0):
            raise ValueError(f"wscale must be a positive number, got {wscale!r}")
        self.insize, self.outsize = int(insize), int(outsize)
        self.bias = bool(bias)
        self.init, self.wscale, self.name = init, float(wscale), name
        # Standalone storage; Sequential rebinds these to views of its buffers.
        self.bind(np.zeros(self.n_params, np.float32), np.zeros(self.n_params, np.float32))
        self.init_params(np.random.default_rng())
        self.inData = None  # last forward's input, kept for backward (as in the seeds)
        self.data = None  # last forward's output

    @property
    def n_weights(self):
        return self.insize * self.outsize

    @property
    def n_params(self):
        return self.n_weights + (self.outsize if self.bias else 0)

    def bind(self, params, grads, w_off=0, b_off=None):
        """Point ``W``/``b``/``dW``/``db`` at slices of flat buffers (no copy)."""
        n, o = self.n_weights, self.outsize
        b_off = n if b_off is None else b_off
        self.W = params[w_off:w_off + n].reshape(self.insize, o)
        self.dW = grads[w_off:w_off + n].reshape(self.insize, o)
        if self.bias:
            self.b, self.db = params[b_off:b_off + o], grads[b_off:b_off + o]
        else:
            self.b = self.db = None

    def init_params(self, rng):
        """Draw the initial weights from ``rng`` (in float64, then cast) and zero the bias.

        Drawing in float64 makes the initial weights independent of the network's
        dtype and backend. Inside :func:`no_init` (loading a model file) nothing is drawn:
        the weights stay zero until they are copied in.
        """
        if _NO_INIT.get():
            return
        fan_in, fan_out = self.insize, self.outsize
        shape, s, scheme = (fan_in, fan_out), self.wscale, self.init
        if scheme == "gaussian":
            w = rng.normal(0.0, s, shape)
        elif scheme == "uniform":
            w = rng.uniform(-s, s, shape)
        elif scheme in ("xavier", "xavier_uniform"):
            a = s * math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-a, a, shape)
        elif scheme == "xavier_normal":
            w = rng.normal(0.0, s * math.sqrt(2.0 / (fan_in + fan_out)), shape)
        elif scheme in ("he", "he_normal"):
            w = rng.normal(0.0, s * math.sqrt(2.0 / fan_in), shape)
        elif scheme == "he_uniform":
            a = s * math.sqrt(6.0 / fan_in)
            w = rng.uniform(-a, a, shape)
        elif scheme in ("lecun", "lecun_normal"):
            w = rng.normal(0.0, s * math.sqrt(1.0 / fan_in), shape)
        else:  # lecun_uniform
            a = s * math.sqrt(3.0 / fan_in)
            w = rng.uniform(-a, a, shape)
        self.W[...] = w
        if self.bias:
            self.b[...] = 0

    def forward(self, x, ops=None):
        """x: (B, insize) -> (B, outsize); keeps ``x`` for :meth:`backward`."""
        self.inData = x
        self.data = _ops(ops).linear_forward(x, self.W, self.b)
        return self.data

    def backward(self, grad, ops=None, need_input_grad=True):
        """grad: (B, outsize) -> (B, insize). Overwrites ``dW`` and ``db``.

        With ``need_input_grad=False`` (the first layer during training) the input
        gradient is not computed and None is returned.
        """
        ops = _ops(ops)
        self.dW[...] = ops.linear_backward_weight(self.inData, grad)
        if self.bias:
            self.db[...] = ops.linear_backward_bias(grad)
        return ops.linear_backward_input(grad, self.W) if need_input_grad else None

    def config(self):
        return {"type": "Linear", "insize": self.insize, "outsize": self.outsize,
                "bias": self.bias, "init": self.init, "wscale": self.wscale, "name": self.name}

    def __repr__(self):
        extra = "" if self.bias else ", bias=False"
        return f"Linear({self.insize}, {self.outsize}{extra})"


class Activation(Layer):
    """An activation function applied to each row; ``code`` is a ``reference`` code."""

    code = None
    slope = 0.0
    #: Name of the activation's one parameter, if it has one (``"slope"``, ``"alpha"``, ``"beta"``).
    param_name = None

    @property
    def param(self):
        """The parameter the kernels take (LeakyReLU's slope, ELU's alpha, Softplus's beta; else 0)."""
        return getattr(self, self.param_name) if self.param_name else self.slope

    def config(self):
        cfg = {"type": type(self).__name__}
        if self.param_name:
            cfg[self.param_name] = self.param
        return cfg

    def __repr__(self):
        arg = f"{self.param_name}={self.param}" if self.param_name else ""
        return f"{type(self).__name__}({arg})"

    @property
    def needs_input(self):
        """Whether the backward needs the input (GELU, SiLU) rather than the output."""
        return self.code in _ref.NEEDS_INPUT

    def forward(self, x, ops=None):
        """x: (B, n) -> (B, n); keeps the input and output for :meth:`backward`."""
        self.inData = x
        self.data = _ops(ops).activation_forward(self.code, x, self.param)
        return self.data

    def backward(self, grad, ops=None):
        """grad: (B, n) -> (B, n), using the output (or input) saved by :meth:`forward`."""
        if self.needs_input:
            return _ops(ops).activation_backward(self.code, self.data, grad, self.param, x=self.inData)
        return _ops(ops).activation_backward(self.code, self.data, grad, self.param)


class Identity(Activation):
    """``y = x``."""

    code = _ref.IDENTITY


class Sigmoid(Activation):
    """Logistic function ``1 / (1 + exp(-x))``."""

    code = _ref.SIGMOID


class Tanh(Activation):
    """Hyperbolic tangent."""

    code = _ref.TANH


class ReLU(Activation):
    """``max(x, 0)``."""

    code = _ref.RELU


class LeakyReLU(Activation):
    """``x`` for ``x > 0``, else ``slope * x``.

    Parameters
    ----------
    slope : float
        Slope for negative inputs; must be ``>= 0`` (the backward pass works from
        the output, whose sign must match the input's).
    """

    code = _ref.LEAKY_RELU
    param_name = "slope"

    def __init__(self, slope=0.01):
        if not (np.isfinite(slope) and slope >= 0):
            raise ValueError(f"LeakyReLU slope must be a finite number >= 0, got {slope!r}")
        self.slope = float(slope)


class Softmax(Activation):
    """Row-wise softmax. Do not end a network with it when training with
    :class:`~fastnn.CrossEntropy`, which applies softmax itself to raw scores."""

    code = _ref.SOFTMAX


class Sign(Activation):
    """Seed 004's perceptron squashing: 1 for ``x > 0``, else -1. Forward only."""

    code = _ref.SIGN


def _finite_nonneg(what, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not (
            np.isfinite(v) and v >= 0):
        raise ValueError(f"{what} must be a finite number >= 0, got {v!r}")
    return float(v)


class ELU(Activation):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``.

    Parameters
    ----------
    alpha : float
        Must be ``>= 0`` (the backward pass works from the output, whose sign must match
        the input's).
    """

    code = _ref.ELU
    param_name = "alpha"

    def __init__(self, alpha=1.0):
        self.alpha = _finite_nonneg("ELU alpha", alpha)


class Softplus(Activation):
    """``log(1 + exp(beta x)) / beta``, and ``x`` where ``beta x > 20`` (torch's threshold).

    Parameters
    ----------
    beta : float
        Sharpness, > 0.
    """

    code = _ref.SOFTPLUS
    param_name = "beta"

    def __init__(self, beta=1.0):
        self.beta = _finite_nonneg("Softplus beta", beta)
        if self.beta == 0:
            raise ValueError("Softplus beta must be > 0, got 0")


class GELU(Activation):
    """``x * Phi(x)`` (``approximate="none"``) or its tanh approximation (``"tanh"``), as torch.

    Its backward needs the input: the fused training kernels keep the pre-activation of
    the layers that end in a GELU (and only those).
    """

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.code = _ref.GELU if approximate == "none" else _ref.GELU_TANH

    def config(self):
        return {"type": "GELU", "approximate": self.approximate}

    def __repr__(self):
        return "GELU()" if self.approximate == "none" else "GELU(approximate='tanh')"


class SiLU(Activation):
    """SiLU (swish) ``x * sigmoid(x)``; its backward needs the input (see :class:`GELU`)."""

    code = _ref.SILU


class ReLU6(Activation):
    """``min(max(x, 0), 6)`` (PuzzleLib's clip)."""

    code = _ref.RELU6


class Dropout(Layer):
    """Inverted dropout: in training each unit is zeroed with probability ``p`` and the
    others are scaled by ``1 / (1 - p)``; in inference (``predict``, ``evaluate``,
    ``net.eval()``) it passes its input on unchanged.

    The mask is a hash of a key that ``fit`` draws from its own generator every epoch, the
    Dropout's position in the network, the sample's position in the epoch and the unit
    (``reference.dropout_mask``), so the same seeds give the same weights on every backend.

    Parameters
    ----------
    p : float
        Probability of zeroing a unit, in [0, 1).
    """

    inference_identity = True

    def __init__(self, p=0.5):
        p = _finite_nonneg("Dropout p", p)
        if not p < 1:
            raise ValueError(f"Dropout p must lie in [0, 1), got {p!r}")
        self.p = p
        self.training = True
        self.reset(0, 0)

    def reset(self, key, stream):
        """Start a new mask stream: ``key`` (this epoch's), ``stream`` (the position in the network)."""
        self._key, self._stream, self._pos = int(key), int(stream), 0
        self._pos0 = None

    def forward(self, x, ops=None):
        """x: (B, n) -> (B, n); masks rows at the next positions of the stream (training)."""
        if not self.training or self.p == 0:
            self._pos0 = None
            return x
        if _checks.is_sparse(x):
            raise ValueError("Dropout cannot take scipy.sparse input directly (masking would make it dense); "
                             "put it after the first Linear layer")
        self._pos0, self._pos = self._pos, self._pos + x.shape[0]
        return _ops(ops).dropout_forward(x, self._key, self._stream, self._pos0, self.p)

    def backward(self, grad, ops=None):
        """grad: (B, n) -> (B, n) through the last forward's mask."""
        if self._pos0 is None:
            return grad
        return _ops(ops).dropout_backward(grad, self._key, self._stream, self._pos0, self.p)

    def config(self):
        return {"type": "Dropout", "p": self.p}

    def __repr__(self):
        return f"Dropout(p={self.p})"


_LAYER_TYPES = {c.__name__: c for c in (Linear, Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax, Sign, ELU,
                                        Softplus, GELU, SiLU, ReLU6, Dropout)}


def layer_from_config(cfg):
    """Rebuild a layer from :meth:`Layer.config` output."""
    cfg = dict(cfg)
    typ = cfg.pop("type", None)
    if typ not in _LAYER_TYPES:
        raise ValueError(f"unknown layer type {typ!r}")
    return _LAYER_TYPES[typ](**cfg)
