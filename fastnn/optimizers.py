"""Optimizers: SGD (plain, momentum, Nesterov) and Adam.

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


def get_optimizer(opt):
    """An :class:`Optimizer` from an instance or a name with default settings."""
    if isinstance(opt, Optimizer):
        return opt
    if isinstance(opt, str):
        key = opt.lower()
        if key == "sgd":
            return SGD(0.01)
        if key == "momentum":
            return SGD(0.01, momentum=0.9)
        if key == "nesterov":
            return SGD(0.01, momentum=0.9, nesterov=True)
        if key == "adam":
            return Adam()
    raise ValueError(f"unknown optimizer {opt!r}; use fastnn.SGD(...) or fastnn.Adam(...)")
