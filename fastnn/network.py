"""Sequential: a feed-forward network whose parameters live in one flat buffer.

Buffer layout (``net.params``; ``net.grads`` has the same layout)::

    [ W_1 | W_2 | ... | W_k | b_1 | b_2 | ... | b_k ]
      (in_1, out_1) row-major ...            (out_i,) for Linears with a bias

All weights come first so that weight decay is one contiguous slice
(``params[:n_decay]``) and a fused kernel needs only the layer sizes to find
every tensor. Each Linear's ``W``/``b``/``dW``/``db`` are views into these buffers.
"""

import copy

import numpy as np

from fastnn import _checks
from fastnn.layers import Dropout, Layer, Linear, layer_from_config


class Sequential:
    """A stack of layers applied in order.

    Parameters
    ----------
    *layers : Layer
        Linear layers and activations. Sizes are checked here: a Linear whose
        ``insize`` differs from the previous Linear's ``outsize`` raises ValueError.
    seed : int or None
        Seed for the initial weights, drawn here; None means fresh entropy.
    dtype : numpy dtype
        float32 (default) or float64.
    """

    def __init__(self, *layers, seed=None, dtype=np.float32):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.dtype = _checks.check_dtype(dtype)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.layers = []
        for layer in layers:
            self._check_layer(layer)
            self.layers.append(layer)
        self._check_sizes()
        self._allocate(init=True)

    # -- structure -----------------------------------------------------------------
    @staticmethod
    def _check_layer(layer):
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes fastnn layers, got {layer!r}")

    @staticmethod
    def _describe(i, layer):
        return f"layer {i} ({layer.name or repr(layer)})"

    def _check_sizes(self, layers=None):
        layers = self.layers if layers is None else layers
        prev = None
        for i, layer in enumerate(layers):
            if isinstance(layer, Linear):
                if prev is not None and layers[prev].outsize != layer.insize:
                    p = layers[prev]
                    raise ValueError(
                        f"size mismatch: {self._describe(prev, p)} outputs {p.outsize} values but "
                        f"{self._describe(i, layer)} expects {layer.insize} inputs")
                prev = i

    @property
    def linears(self):
        """The Linear layers, in order."""
        return [layer for layer in self.layers if isinstance(layer, Linear)]

    @property
    def insize(self):
        """Number of inputs (that of the first Linear), or None without one."""
        lin = self.linears
        return lin[0].insize if lin else None

    @property
    def outsize(self):
        """Number of outputs (that of the last Linear), or None without one."""
        lin = self.linears
        return lin[-1].outsize if lin else None

    @property
    def n_params(self):
        return int(self.params.size)

    def _allocate(self, init, keep=()):
        """(Re)build the flat buffers and rebind every Linear to views of them.

        ``init`` draws fresh weights for every Linear not in ``keep``; the others
        keep their current values.
        """
        lin = self.linears
        n_w = sum(layer.n_weights for layer in lin)
        n_b = sum(layer.outsize for layer in lin if layer.bias)
        params = np.zeros(n_w + n_b, self.dtype)
        grads = np.zeros(n_w + n_b, self.dtype)
        w_off, b_off = 0, n_w
        for layer in lin:
            old_W, old_b = layer.W.copy(), (layer.b.copy() if layer.bias else None)
            layer.bind(params, grads, w_off, b_off)
            if init and layer not in keep:
                layer.init_params(self._rng)
            else:
                layer.W[...] = old_W
                if layer.bias:
                    layer.b[...] = old_b
            w_off += layer.n_weights
            b_off += layer.outsize if layer.bias else 0
        self.params, self.grads, self.n_decay = params, grads, n_w

    def append(self, layer):
        """Add a layer at the end (sizes are checked; a new Linear is initialised
        from the network's random generator)."""
        self._check_layer(layer)
        self._check_sizes(self.layers + [layer])
        keep = tuple(self.linears)
        self.layers.append(layer)
        self._allocate(init=True, keep=keep)
        if isinstance(layer, Dropout):
            layer.training = self.training
        return self

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        dt = "" if self.dtype == np.float32 else f", dtype={np.dtype(self.dtype).name}"
        return f"Sequential(\n  {inner}{dt}\n)"

    def summary(self):
        """The layers, their output shapes and parameter counts, and the total parameters and
        their memory, as Keras prints them (a string; :meth:`print_summary` prints it)."""
        from fastnn.summary import summary

        return summary(self)

    def print_summary(self):
        """Print :meth:`summary`."""
        print(self.summary())

    # -- train / eval modes and Dropout ----------------------------------------------
    @property
    def training(self):
        """True in training mode (the default; Dropout active), False after :meth:`eval`.
        ``fit`` always trains in training mode; ``predict`` and ``evaluate`` never apply Dropout."""
        return getattr(self, "_training", True)

    def train(self, mode=True):
        """Set training mode (``mode=False``: inference mode, as :meth:`eval`); returns the network."""
        self._training = bool(mode)
        for layer in self.layers:
            if isinstance(layer, Dropout):
                layer.training = self._training
        return self

    def eval(self):
        """Set inference mode: Dropout passes its input on unchanged, also in :meth:`forward`."""
        return self.train(False)

    @property
    def dropout_key(self):
        """uint64 (1,): the key of the current Dropout masks (the kernels read it in place)."""
        if getattr(self, "_dropout_key", None) is None:
            self._dropout_key = np.zeros(1, np.uint64)
        return self._dropout_key

    def draw_dropout_key(self, rng):
        """Draw a new Dropout key from the generator ``rng`` and restart every Dropout's mask
        stream (fit does this every epoch, from its own generator). Draws nothing when the
        network has no Dropout, so other networks' random streams never change."""
        drops = [(i, layer) for i, layer in enumerate(self.layers) if isinstance(layer, Dropout)]
        if drops:
            self.dropout_key[0] = rng.integers(0, 2**64, dtype=np.uint64, endpoint=False)
            for i, layer in drops:
                layer.reset(int(self.dropout_key[0]), i)

    # -- other frameworks ---------------------------------------------------------------
    def to_torch(self):
        """This network as a ``torch.nn.Sequential`` with the same weights (see :mod:`fastnn.torch`)."""
        from fastnn.torch import to_torch

        return to_torch(self)

    def to_onnx(self, path, softmax=False, opset=None):
        """Write this network as an ONNX graph (inference: no Dropout) to ``path``; see
        :func:`fastnn.onnx.export`."""
        from fastnn.onnx import export

        return export(self, path, softmax=softmax, opset=opset)

    # -- copies and dtype ----------------------------------------------------------
    def copy(self):
        """A deep copy (weights, structure; the copy's buffers are its own)."""
        return copy.deepcopy(self)

    def __deepcopy__(self, memo):
        new = Sequential.__new__(Sequential)
        memo[id(self)] = new
        new.dtype, new.seed, new._training = self.dtype, self.seed, self.training
        new._rng = copy.deepcopy(self._rng, memo)
        new.layers = [copy.copy(layer) for layer in self.layers]
        for layer in new.layers:
            layer.inData = layer.data = None
        new._allocate(init=False)  # copies each layer's current values into new buffers
        return new

    def __setstate__(self, state):
        # Pickle stores each Linear's W/b as separate arrays, not as views of the flat
        # buffer: rebuild the buffer so the layers share it again.
        self.__dict__.update(state)
        self._allocate(init=False)

    def astype(self, dtype):
        """This network converted to ``dtype`` (float32 or float64), as a new network."""
        new = self.copy()
        new.dtype = _checks.check_dtype(dtype)
        new._allocate(init=False)
        return new

    def config(self):
        """JSON-serialisable architecture (layers and dtype)."""
        return {"layers": [layer.config() for layer in self.layers], "dtype": np.dtype(self.dtype).name}

    @classmethod
    def from_config(cls, cfg):
        """Rebuild a network (with freshly initialised weights) from :meth:`config`."""
        layers = [layer_from_config(c) for c in cfg["layers"]]
        return cls(*layers, dtype=np.dtype(cfg.get("dtype", "float32")))

    def save(self, path, cost=None, extra=None, allow_nonfinite=False):
        """Write this network to a safetensors model file (see :func:`fastnn.io.save`);
        read it back with :func:`fastnn.load`. NaN or inf weights raise ValueError unless
        ``allow_nonfinite``."""
        from fastnn import io

        return io.save(self, path, cost=cost, extra=extra, allow_nonfinite=allow_nonfinite)

    # -- low-level forward/backward, as in the seeds --------------------------------
    def forward(self, x, backend=None):
        """Run ``x`` (B, insize) through every layer; layers keep what backward needs.

        In training mode each call draws new Dropout masks (from the network's own generator).
        """
        from fastnn.backends import get_ops

        ops = get_ops(backend)
        x = _checks.check_X(x, self.insize, self.dtype, allow_empty=True)
        if self.training:
            self.draw_dropout_key(self._rng)
        for layer in self.layers:
            x = layer.forward(x, ops)
        return x

    __call__ = forward

    def backward(self, grad, backend=None, skip_last=False, need_input_grad=True):
        """Back-propagate ``grad`` = dJ/d(output), (B, outsize), through every layer.

        Overwrites each Linear's ``dW``/``db`` (and so ``net.grads``) and returns the
        input gradient (B, insize). With ``skip_last`` the last layer is an
        activation whose backward is already folded into ``grad``. Training passes
        ``need_input_grad=False``: a first Linear then skips its input gradient
        (the largest matmul of a typical backward) and None is returned.
        """
        from fastnn.backends import get_ops

        ops = get_ops(backend)
        layers = self.layers[:-1] if skip_last else self.layers
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            if i == 0 and not need_input_grad and isinstance(layer, Linear):
                return layer.backward(grad, ops, need_input_grad=False)
            grad = layer.backward(grad, ops)
        return grad

    # -- inference -------------------------------------------------------------------
    def predict(self, X, batch_size=None, backend=None):
        """Network outputs for ``X`` (N, insize), computed in batches; any N >= 0.

        For a network trained with CrossEntropy these are raw scores; use
        :func:`fastnn.softmax` or ``argmax(axis=1)`` for probabilities or classes.
        """
        from fastnn.backends import get_ops

        X = _checks.check_X(X, self.insize, self.dtype, allow_empty=True)
        if batch_size is not None:
            _checks.check_positive_int("batch_size", batch_size)
        self.check_finite("predict with")
        return get_ops(backend).predict(self, X, batch_size)

    def check_finite(self, what="use"):
        """Raise ValueError when a weight or bias is NaN or inf (a diverged training)."""
        if not _checks.all_finite(self.params):
            bad = int(np.count_nonzero(~np.isfinite(self.params)))
            raise ValueError(f"cannot {what} this network: {bad} of its {self.n_params} parameters are NaN or inf "
                             "(did training diverge? fit raises DivergenceError unless on_nonfinite='ignore')")

    def evaluate(self, X, Y, cost, batch_size=None, backend=None):
        """Loss (and accuracy for classification) of the network on ``X``, ``Y``.

        Returns
        -------
        dict
            ``{"loss": float}``, plus ``"accuracy"`` when the cost and targets are a
            classification.
        """
        from fastnn.costs import get_cost

        cost = get_cost(cost)
        X = _checks.check_X(X, self.insize, self.dtype)
        tg = cost.prepare(Y, self.outsize, self.dtype)
        _checks.check_rows(X, tg.T, "X", "Y")
        pred = self.predict(X, batch_size, backend)
        out = {"loss": cost.value(pred, tg.T)}
        if tg.labels is not None:
            out["accuracy"] = cost.count_correct(pred, tg.labels) / cost.accuracy_denominator(X.shape[0], self.outsize)
        return out

    # -- training --------------------------------------------------------------------
    def fit(self, X, Y, cost, optimizer, epochs=1, batch_size=32, shuffle=True, seed=None,
            validation_data=None, backend="auto", callbacks=None, progress=False, on_nonfinite="raise",
            sparse="auto", sample_weight=None):
        """Train the network in place; returns a :class:`~fastnn.History`.

        Parameters
        ----------
        X : array (N, insize)
        Y : targets for ``cost`` (see :class:`~fastnn.MSE`, :class:`~fastnn.CrossEntropy`,
            :class:`~fastnn.BCE`).
        cost, optimizer : Cost and Optimizer instances.
        epochs, batch_size : int
            The last minibatch of an epoch may be short.
        shuffle : bool
            Visit samples in a new random order every epoch (from ``seed``).
        seed : int or None
            Seed for the shuffle order; None means fresh entropy. Weights are never
            re-initialised: calling ``fit`` again continues training.
        validation_data : (X_val, Y_val), optional
            Adds ``val_loss`` (and ``val_accuracy``) to the History every epoch.
        backend : "auto", "numpy", "numba" or "cuda"
        callbacks : list of :class:`~fastnn.callbacks.Callback`
        progress : bool
            Show progress (a callback like any other).
        on_nonfinite : "raise", "stop" or "ignore"
            What a NaN or inf loss does (divergence): raise :class:`~fastnn.DivergenceError`
            after restoring the weights and optimizer state of the last finite chunk of
            batches; the same restore, then return with ``history.diverged``; or train on.
        sparse : "auto", True or False
            Whether the first layer works on the non-zero inputs only (X may be a
            scipy.sparse matrix); "auto" decides from the input's density.
        sample_weight : array (N,) of numbers >= 0, optional
            Each batch trains on the weighted mean ``sum w_i l_i / sum w_i`` of its samples'
            losses (scikit-learn's rule), on every backend.
        """
        from fastnn.training import Trainer

        trainer = Trainer(self, cost, optimizer, batch_size=batch_size, backend=backend,
                          shuffle=shuffle, seed=seed)
        mode = self.training
        self.train()  # Dropout is active in fit whatever the mode; the mode is restored after
        try:
            return trainer.fit(X, Y, epochs=epochs, validation_data=validation_data,
                               callbacks=callbacks, progress=progress, on_nonfinite=on_nonfinite, sparse=sparse,
                               sample_weight=sample_weight)
        finally:
            self.train(mode)

