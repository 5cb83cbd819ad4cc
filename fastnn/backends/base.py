"""The backend interface, implemented generically on top of a kernel module.

``Ops`` (as in thinc) is what layers, costs, optimizers and the Trainer call. Its
kernel functions are looked up by name in ``self.kernel_modules`` in order, so a
backend that lacks a kernel falls back to the next module (ultimately the NumPy
reference) instead of failing. A backend subclass usually only:

* puts its kernel module in front of the reference, and
* overrides :meth:`Ops.make_runner` (whole-epoch training) and :meth:`Ops.predict`.

This base class *is* the ``"numpy"`` backend.
"""

import numpy as np

from fastnn.kernels import reference


class Runner:
    """Runs the minibatch steps of one ``fit`` on one backend.

    The generic runner drives the layers' own forward/backward in Python, one batch
    at a time; compiled backends override it with fused kernels.

    Parameters
    ----------
    ops : Ops
    net : Sequential
    cost : Cost
    optimizer : Optimizer
    X : ndarray (N, insize), already checked and in the network's dtype
    targets : fastnn.costs.Targets
    batch_size : int
    """

    def __init__(self, ops, net, cost, optimizer, X, targets, batch_size):
        self.ops, self.net, self.cost, self.optimizer = ops, net, cost, optimizer
        self.X, self.targets, self.batch_size = X, targets, batch_size
        self.n_batches = -(-len(X) // batch_size)
        self.fused_last = cost.fuses_with(net.layers[-1]) if net.layers else False

    def run(self, order, b0, b1):
        """Train on batches ``b0 <= b < b1`` of the sample order ``order`` (int64 (N,)).

        Batch ``b`` is ``order[b*batch_size:(b+1)*batch_size]`` (the last may be short).

        Returns
        -------
        loss_sum : float
            Sum over the batches of (batch mean loss * batch size), measured on each
            batch's forward pass before its update.
        correct : int
            Correct predictions on those forward passes (0 without labels).
        """
        ops, net, cost, opt = self.ops, self.net, self.cost, self.optimizer
        bs, labels = self.batch_size, self.targets.labels
        loss_sum, correct = 0.0, 0
        for b in range(b0, b1):
            idx = order[b * bs:(b + 1) * bs]
            x, t = self.X[idx], self.targets.T[idx]
            out = net.forward(x, ops)
            loss_sum += ops.cost_value(cost.code, out, t) * len(idx)
            if labels is not None:
                correct += cost.count_correct(out, labels[idx])
            delta = cost.output_delta(ops, out, t, net.layers[-1])
            net.backward(delta, ops, skip_last=self.fused_last, need_input_grad=False)
            opt.step(net, ops)
        return loss_sum, correct

    def finish(self):
        """Make sure ``net`` and the optimizer state hold the trained values."""


class Ops:
    """Backend interface; this base class is the pure-NumPy ``"numpy"`` backend."""

    name = "numpy"
    #: Kernel modules searched in order for an op by name.
    kernel_modules = (reference,)
    #: Batch size ``predict`` uses when none is given.
    predict_batch_size = 4096

    @classmethod
    def unavailable_reason(cls):
        """None when the backend can run here, else a sentence saying why not."""
        return None

    def __getattr__(self, name):
        # Only called for names not found normally: look the kernel up by name.
        if name.startswith("__"):
            raise AttributeError(name)
        for mod in type(self).kernel_modules:
            fn = getattr(mod, name, None)
            if fn is not None:
                return fn
        raise AttributeError(f"backend {self.name!r} has no op {name!r}")

    def make_runner(self, net, cost, optimizer, X, targets, batch_size):
        """A :class:`Runner` for one ``fit``."""
        return Runner(self, net, cost, optimizer, X, targets, batch_size)

    def predict(self, net, X, batch_size=None):
        """Forward ``X`` (N, insize) through ``net`` in batches -> (N, outsize)."""
        bs = batch_size or self.predict_batch_size
        n = len(X)
        out = np.empty((n, net.outsize if net.outsize else X.shape[1]), net.dtype)
        for s in range(0, n, bs):
            x = X[s:s + bs]
            for layer in net.layers:
                x = layer.forward(x, self)
            out[s:s + bs] = x
        return out

    def __repr__(self):
        return f"<fastnn backend {self.name!r}>"
