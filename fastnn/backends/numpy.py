"""The ``"numpy"`` backend, and the backend interface every other backend extends.

``Ops`` (as in thinc) is what layers, costs, optimizers and the Trainer call. Its
kernel functions are looked up by name in ``self.kernel_modules`` in order, so a
backend that lacks a kernel falls back to the next module (ultimately the NumPy
reference, :mod:`fastnn.kernels.reference`) instead of failing. A backend subclass
usually only:

* puts its kernel module in front of the reference, and
* overrides :meth:`Ops.make_runner` (whole-epoch training) and :meth:`Ops.predict`.

This base class *is* the ``"numpy"`` backend: it trains through the Python batch loop
of :mod:`fastnn.training` (``make_runner`` returns None).
"""

import numpy as np

from fastnn import _checks
from fastnn.kernels import reference


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

    # The two ops that touch a first layer's input also take a scipy.sparse batch (CSR): on
    # every backend it goes through SciPy's sparse products (the reference), O(nnz * out).
    def linear_forward(self, x, W, b=None):
        """``y = x @ W + b``; x: (B, in) dense or scipy.sparse, W: (in, out) -> y: (B, out)."""
        if _checks.is_sparse(x):
            return reference.linear_forward(x, W, b)
        return self.__getattr__("linear_forward")(x, W, b)

    def linear_backward_weight(self, x, dy):
        """``dW = x.T @ dy``; x: (B, in) dense or scipy.sparse, dy: (B, out) -> dW: (in, out)."""
        if _checks.is_sparse(x):
            return reference.linear_backward_weight(x, dy)
        return self.__getattr__("linear_backward_weight")(x, dy)

    def make_runner(self, net, cost, optimizer, X, targets, batch_size, sparse="auto"):
        """A runner that trains whole ranges of batches of one ``fit`` in compiled code, or
        None for the Python batch loop of :mod:`fastnn.training` (always None here).

        A runner has ``n_batches``, ``run(order, b0, b1) -> (loss_sum, correct, bad)`` (train
        batches ``b0 <= b < b1`` of the int64 sample ``order``; the loss summed over the
        samples and the correct count, both measured on each batch's forward pass before
        its update; the first batch whose loss is not finite, or -1) and ``finish()`` (make
        the network and optimizer hold the trained values). ``X`` may be a scipy.sparse
        matrix; ``sparse`` is ``fit``'s choice of the sparse kernels ("auto", True, False).
        """
        return None

    def predict(self, net, X, batch_size=None):
        """Forward ``X`` (N, insize; dense or scipy.sparse CSR) through ``net`` in batches -> (N, outsize)."""
        bs = batch_size or self.predict_batch_size
        n = X.shape[0]
        out = np.empty((n, net.outsize if net.outsize else X.shape[1]), net.dtype)
        for s in range(0, n, bs):
            x = X[s:s + bs]
            for layer in net.layers:
                if not layer.inference_identity:  # Dropout: inactive in inference
                    x = layer.forward(x, self)
            out[s:s + bs] = x
        return out

    def __repr__(self):
        return f"<fastnn backend {self.name!r}>"
