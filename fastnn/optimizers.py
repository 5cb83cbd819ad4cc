"""Optimizers: SGD (plain, momentum, Nesterov), Adam, RMSprop, Adagrad, Adadelta and AdamW.

An optimizer updates a network's flat parameter buffer ``net.params`` from its flat
gradient buffer ``net.grads`` in one call of a backend kernel. Its state (velocity,
Adam moments) is flat too, of the same size, allocated by :meth:`Optimizer.setup`
the first time it meets a network. L2 weight decay applies to the weights only
(the first ``net.n_decay`` entries of the buffer), not to biases, as in scikit-learn.
"""

import numpy as np


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive number, got {v!r}")
    return float(v)


def _nonneg(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a number >= 0, got {v!r}")
    return float(v)


class Optimizer:
    """Base class. ``lr`` may be changed between steps (learning-rate schedules do)."""

    def __init__(self, lr, weight_decay=0.0):
        self.lr = _positive("lr", lr)
        self.weight_decay = _nonneg("weight_decay", weight_decay)
        self._net_key = None

    def state_names(self):
        """Names of the flat state arrays (attributes) this optimizer keeps."""
        return ()

    def setup(self, net):
        """Allocate zeroed state for ``net`` (called automatically on first use)."""
        for name in self.state_names():
            setattr(self, name, np.zeros_like(net.params))
        self.t = 0
        # Keep the buffer itself, not its id(): a freed buffer's address can be reused.
        self._net_key = net.params

    def ensure_setup(self, net):
        """Set up for ``net`` unless already set up for its current parameter buffer."""
        if self._net_key is not net.params:
            self.setup(net)

    def check(self):
        """Raise ValueError if hyper-parameters were changed to invalid values since construction
        (callbacks and users may set ``lr``, ``momentum``, betas ... on the object): the
        constructor's own checks run again on :meth:`config`."""
        cfg = dict(self.config())
        cfg.pop("type", None)
        type(self)(**cfg)

    def step(self, net, ops=None):
        """Apply one update to ``net`` from the gradients in ``net.grads``."""
        from fastnn.backends import get_ops

        self.ensure_setup(net)
        self.t += 1
        self._update(get_ops(ops), net.params, net.grads, net.n_decay)

    def state_dict(self):
        """Hyper-parameters and state arrays (for checkpoints)."""
        d = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return d

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and Nesterov momentum.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    momentum : float
        0 for plain SGD, else seed 003's velocity form
        ``v = momentum * v - lr * g``; ``p += v``.
    nesterov : bool
        Nesterov's look-ahead variant (needs ``momentum > 0``).
    weight_decay : float
        L2 penalty on the weights, added to their gradient as ``weight_decay * W``.
    """

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = _nonneg("momentum", momentum)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {momentum!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)

    @property
    def kind(self):
        """``"sgd"``, ``"momentum"`` or ``"nesterov"``."""
        if self.momentum == 0:
            return "sgd"
        return "nesterov" if self.nesterov else "momentum"

    def state_names(self):
        return ("velocity",) if self.momentum > 0 else ()

    def _update(self, ops, params, grads, n_decay):
        wd = self.weight_decay
        if self.kind == "sgd":
            ops.sgd_update(params, grads, self.lr, wd, n_decay)
        elif self.kind == "momentum":
            ops.momentum_update(params, grads, self.velocity, self.lr, self.momentum, wd, n_decay)
        else:
            ops.nesterov_update(params, grads, self.velocity, self.lr, self.momentum, wd, n_decay)

    def config(self):
        return {"type": "SGD", "lr": self.lr, "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with PyTorch's placement of ``eps``.

    Parameters
    ----------
    lr, beta1, beta2, eps : float
        Step size, moment decay rates (in [0, 1)) and denominator guard.
    weight_decay : float
        L2 penalty on the weights, added to their gradient (coupled, as PyTorch's Adam).
    """

    kind = "adam"

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not (0 <= _nonneg(name, b) < 1):
                raise ValueError(f"{name} must lie in [0, 1), got {b!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = _positive("eps", eps)

    def state_names(self):
        return ("m", "v")

    def _update(self, ops, params, grads, n_decay):
        ops.adam_update(params, grads, self.m, self.v, self.t, self.lr, self.beta1, self.beta2,
                        self.eps, self.weight_decay, n_decay)

    def config(self):
        return {"type": "Adam", "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2,
                "eps": self.eps, "weight_decay": self.weight_decay}


def _rate(name, v):
    """A number in [0, 1) (momentum, decay rates)."""
    v = _nonneg(name, v)
    if not v < 1:
        raise ValueError(f"{name} must lie in [0, 1), got {v!r}")
    return v


class RMSprop(Optimizer):
    """RMSprop with ``torch.optim.RMSprop``'s hyper-parameters and formulas.

    ``v = alpha v + (1 - alpha) g^2``; centered: ``a = alpha a + (1 - alpha) g`` and
    ``d = sqrt(v - a^2) + eps``, else ``d = sqrt(v) + eps``; with momentum
    ``b = momentum b + g / d``, ``p -= lr b``, else ``p -= lr g / d``.

    Parameters
    ----------
    lr : float
    alpha : float
        Decay rate of the squared-gradient average, in [0, 1).
    eps : float
        Added to the denominator (> 0).
    momentum : float
        In [0, 1); 0 keeps no momentum buffer.
    centered : bool
        Divide by the gradient's estimated variance rather than its second moment.
    weight_decay : float
        L2 penalty on the weights, added to their gradient.
    """

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.alpha, self.eps, self.momentum = _rate("alpha", alpha), _positive("eps", eps), _rate("momentum", momentum)
        self.centered = bool(centered)

    @property
    def kind(self):
        """``"rmsprop"`` or ``"centered_rmsprop"``."""
        return "centered_rmsprop" if self.centered else "rmsprop"

    def state_names(self):
        return (("square_avg",) + (("grad_avg",) if self.centered else ())
                + (("momentum_buffer",) if self.momentum > 0 else ()))

    def _update(self, ops, params, grads, n_decay):
        ops.rmsprop_update(params, grads, self.square_avg, getattr(self, "momentum_buffer", None) if self.momentum
                           else None, self.grad_avg if self.centered else None, self.lr, self.alpha, self.eps,
                           self.momentum, self.weight_decay, n_decay)

    def config(self):
        return {"type": "RMSprop", "lr": self.lr, "alpha": self.alpha, "eps": self.eps, "momentum": self.momentum,
                "centered": self.centered, "weight_decay": self.weight_decay}


class Adagrad(Optimizer):
    """Adagrad with ``torch.optim.Adagrad``'s hyper-parameters and formulas:
    ``s += g^2``; ``p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)``.

    Parameters
    ----------
    lr, lr_decay, eps : float
    weight_decay : float
        L2 penalty on the weights, added to their gradient.
    initial_accumulator_value : float
        Starting value of ``s``.
    """

    kind = "adagrad"

    def __init__(self, lr=0.01, eps=1e-10, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0):
        super().__init__(lr, weight_decay)
        self.eps, self.lr_decay = _positive("eps", eps), _nonneg("lr_decay", lr_decay)
        self.initial_accumulator_value = _nonneg("initial_accumulator_value", initial_accumulator_value)

    def state_names(self):
        return ("state_sum",)

    def setup(self, net):
        super().setup(net)
        self.state_sum[...] = self.initial_accumulator_value

    def _update(self, ops, params, grads, n_decay):
        ops.adagrad_update(params, grads, self.state_sum, self.t, self.lr, self.lr_decay, self.eps,
                           self.weight_decay, n_decay)

    def config(self):
        return {"type": "Adagrad", "lr": self.lr, "eps": self.eps, "lr_decay": self.lr_decay,
                "weight_decay": self.weight_decay, "initial_accumulator_value": self.initial_accumulator_value}


class Adadelta(Optimizer):
    """Adadelta with ``torch.optim.Adadelta``'s hyper-parameters and formulas:
    ``v = rho v + (1 - rho) g^2``; ``u = sqrt(a + eps) / sqrt(v + eps) g``;
    ``a = rho a + (1 - rho) u^2``; ``p -= lr u``.

    Parameters
    ----------
    lr : float
        Scales the update (1.0 as in the paper and torch).
    rho : float
        Decay rate of both averages, in [0, 1).
    eps : float
    weight_decay : float
        L2 penalty on the weights, added to their gradient.
    """

    kind = "adadelta"

    def __init__(self, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.rho, self.eps = _rate("rho", rho), _positive("eps", eps)

    def state_names(self):
        return ("square_avg", "acc_delta")

    def _update(self, ops, params, grads, n_decay):
        ops.adadelta_update(params, grads, self.square_avg, self.acc_delta, self.lr, self.rho, self.eps,
                            self.weight_decay, n_decay)

    def config(self):
        return {"type": "Adadelta", "lr": self.lr, "rho": self.rho, "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter) as ``torch.optim.AdamW``: Adam whose weight decay is
    decoupled, ``p *= 1 - lr * weight_decay`` before each step, on the weights only.

    Parameters
    ----------
    lr : float
    betas : (float, float)
        beta1, beta2 in [0, 1).
    eps : float
    weight_decay : float
        Decoupled decay rate (torch's default 0.01).
    """

    kind = "adamw"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        super().__init__(lr, betas[0], betas[1], eps, weight_decay)

    @property
    def betas(self):
        return (self.beta1, self.beta2)

    def _update(self, ops, params, grads, n_decay):
        ops.adamw_update(params, grads, self.m, self.v, self.t, self.lr, self.beta1, self.beta2,
                         self.eps, self.weight_decay, n_decay)

    def config(self):
        return {"type": "AdamW", "lr": self.lr, "betas": [self.beta1, self.beta2], "eps": self.eps,
                "weight_decay": self.weight_decay}


#: The optimizers the fused kernels implement (exactly these classes: a subclass may change the math).
BUILTIN = (SGD, Adam, RMSprop, Adagrad, Adadelta, AdamW)

#: Optimizer names (the CLI's, and the new optimizers in lower case) -> a default instance.
NAMES = {
    "sgd": lambda: SGD(0.01), "momentum": lambda: SGD(0.01, momentum=0.9),
    "nesterov": lambda: SGD(0.01, momentum=0.9, nesterov=True), "adam": Adam, "rmsprop": RMSprop,
    "adagrad": Adagrad, "adadelta": Adadelta, "adamw": AdamW,
}


def get_optimizer(opt):
    """An :class:`Optimizer` from an instance or a name (:data:`NAMES`) with default settings."""
    if isinstance(opt, Optimizer):
        return opt
    if isinstance(opt, str) and opt.lower() in NAMES:
        return NAMES[opt.lower()]()
    raise ValueError(f"unknown optimizer {opt!r}; use one of {', '.join(NAMES)} or an instance such as "
                     "fastnn.SGD(...)")
