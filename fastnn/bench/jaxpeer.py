"""JAX as a peer: the configuration's network with the whole epoch compiled.

:class:`JaxEpoch` is what a JAX user who wants speed writes: ``jax.jit`` of a function that
runs ``jax.lax.scan(step, (params, state), batches)`` over the epoch's full batches, the
batches gathered from the data inside the step by the sample order, and one more step for
the short last batch (its size is static, so it is compiled into the same function). The
math is fastnn's: the seeds' MSE ``1/(2N) sum ||y - t||^2`` or softmax cross-entropy on raw
scores, gradients by ``jax.grad``; SGD ``p -= lr g``; momentum ``v = mu v - lr g; p += v``;
Adam with PyTorch's placement of ``eps``.

Threads: XLA's CPU client sizes its thread pool from the CPU affinity of the thread that
starts the backend; ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1"`` does not limit it in jax 0.10 (measured: a 2048^2 matmul
still used two cores). :func:`start_jax` therefore starts the backend while the calling
thread's affinity is narrowed to ``--threads`` cores, and restores it at once; that works only
if nothing in the process started JAX before, which the record says.

float64: ``jax_enable_x64`` is a process-wide flag. :func:`x64` sets it for a block and puts
the old value back; the result check runs inside ``x64(jax, True)`` and the timings inside
``x64(jax, False)``, so neither leaks into the other.

jax is imported lazily (:func:`import_jax`): fastnn does not need it.
"""

import contextlib
import os

import numpy as np


def import_jax():
    """The jax module, or None when it is not installed (or cannot load)."""
    try:
        import jax
        import jax.numpy  # noqa: F401
    except Exception:   # ImportError, or a jaxlib that does not load here
        return None
    return jax


def jax_version(jax):
    try:
        import jaxlib

        return f"jax {jax.__version__}, jaxlib {jaxlib.__version__}"
    except ImportError:
        return f"jax {jax.__version__}"


@contextlib.contextmanager
def x64(jax, on):
    """``jax_enable_x64`` set to ``on`` inside the block, restored after."""
    old = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", bool(on))
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", old)


def _backends_started(jax):
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return None


def start_jax(jax, threads):
    """Start JAX's CPU backend with ``threads`` worker threads if it is not started yet.

    Returns a description of the thread count JAX got (for the record).
    """
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    started = _backends_started(jax)
    if started:
        return ("not set: JAX's backend was started before the benchmark set threads; it uses the "
                "threads it started with (all usable cores unless the process was pinned)")
    if usable is None or threads >= len(usable):
        jax.devices("cpu")
        return f"all usable cores ({len(usable) if usable else os.cpu_count()}; XLA CPU default)"
    os.sched_setaffinity(0, usable[:threads])
    try:
        jax.devices("cpu")
    finally:
        os.sched_setaffinity(0, usable)
    return (f"{threads} (XLA's CPU thread pool started while this thread was pinned to cores "
            f"{usable[:threads]}, then unpinned; XLA_FLAGS thread options do not limit it)")


def _act(jnp, jax, name, z):
    if name == "sigmoid":
        return jax.nn.sigmoid(z)
    if name == "relu":
        return jnp.maximum(z, 0)
    return z


class JaxEpoch:
    """A configuration's training epoch as one compiled JAX function.

    ``init(Ws, bs)`` gives ``(params, state)`` on the CPU device; ``epoch(params, state, order)``
    trains one pass over ``order`` (blocking until done) and returns the new pair;
    ``arrays(params)`` gives numpy ``(Ws, bs)``; ``predict(params, X)`` the outputs.
    The jitted function is built once per instance, so repeated epochs with the same number
    of samples reuse one compilation (a new sample order is just a new argument).
    """

    def __init__(self, jax, cfg, X, targets, dtype):
        self.jax, self.cfg = jax, cfg
        jnp = jax.numpy
        self.jnp = jnp
        self.dtype = np.dtype(dtype)
        if self.dtype == np.float64 and not jax.config.jax_enable_x64:
            raise RuntimeError("float64 JAX needs jax_enable_x64 (use fastnn.bench.jaxpeer.x64)")
        self.device = jax.devices("cpu")[0]
        self.X = jax.device_put(np.asarray(X, dtype=self.dtype), self.device)
        t = np.asarray(targets)
        t = t.astype(self.dtype) if cfg.cost == "mse" else t.astype(np.int64 if self.dtype == np.float64
                                                                     else np.int32)
        self.T = jax.device_put(t, self.device)
        self.acts = [cfg.hidden] * (len(cfg.sizes) - 2) + [cfg.output]
        self._epoch = jax.jit(self._make_epoch())
        self._forward = jax.jit(self._forward_fn)

    # -- the math --------------------------------------------------------------------------

    def _forward_fn(self, params, x):
        jax, jnp = self.jax, self.jnp
        h = x
        for (W, b), a in zip(params, self.acts):
            h = _act(jnp, jax, a, h @ W + b)
        return h

    def _loss(self, params, x, t):
        jax, jnp = self.jax, self.jnp
        y = self._forward_fn(params, x)
        m = x.shape[0]
        if self.cfg.cost == "mse":                     # J = 1/(2m) sum ||y - t||^2
            return 0.5 * jnp.sum((y - t) ** 2) / m
        logp = jax.nn.log_softmax(y, axis=1)           # softmax cross-entropy on raw scores
        return -jnp.take_along_axis(logp, t[:, None], axis=1).sum() / m

    def _make_epoch(self):
        jax, jnp, cfg = self.jax, self.jnp, self.cfg
        tree_map = jax.tree_util.tree_map
        grad = jax.grad(self._loss)
        dt = self.dtype.type
        lr, mu = dt(cfg.lr), dt(cfg.momentum)
        b1, b2, eps = dt(0.9), dt(0.999), dt(1e-8)     # fastnn.Adam's defaults

        def update(params, state, g):
            if cfg.optimizer == "sgd":
                return tree_map(lambda p, gp: p - lr * gp, params, g), state
            if cfg.optimizer == "momentum":            # v = mu v - lr g; p += v
                v = tree_map(lambda vp, gp: mu * vp - lr * gp, state, g)
                return tree_map(lambda p, vp: p + vp, params, v), v
            m, v, t = state                            # Adam, PyTorch's eps placement
            t = t + 1
            m = tree_map(lambda mp, gp: b1 * mp + (1 - b1) * gp, m, g)
            v = tree_map(lambda vp, gp: b2 * vp + (1 - b2) * gp * gp, v, g)
            c1, c2 = 1 - b1 ** t, 1 - b2 ** t
            params = tree_map(lambda p, mp, vp: p - lr * (mp / c1) / (jnp.sqrt(vp / c2) + eps),
                              params, m, v)
            return params, (m, v, t)

        def epoch(params, state, X, T, full, rest):
            # X and T are arguments (a closed-over array would be compiled in as a constant);
            # the step closes over them as loop invariants and gathers its batch by index.
            def step(carry, idx):
                p, s = carry
                return update(p, s, grad(p, X[idx], T[idx])), None

            carry, _ = jax.lax.scan(step, (params, state), full)
            if rest.shape[0]:                          # the short last batch (static size)
                carry, _ = step(carry, rest)
            return carry

        return epoch

    # -- the interface ---------------------------------------------------------------------

    def init(self, Ws, bs):
        jax, jnp = self.jax, self.jnp
        put = lambda a: jax.device_put(np.asarray(a, dtype=self.dtype), self.device)   # noqa: E731
        params = [(put(W), put(b)) for W, b in zip(Ws, bs)]
        zeros = lambda: [(jnp.zeros_like(W), jnp.zeros_like(b)) for W, b in params]   # noqa: E731
        if self.cfg.optimizer == "sgd":
            state = ()
        elif self.cfg.optimizer == "momentum":
            state = zeros()
        else:
            state = (zeros(), zeros(), jnp.zeros((), self.dtype))
        return params, state

    def split(self, order):
        """The order as (full batches (k, bs), the short rest (r,)) on the device."""
        bsz = self.cfg.batch_size
        order = np.asarray(order)
        k = len(order) // bsz
        idt = np.int64 if self.dtype == np.float64 else np.int32
        full = order[:k * bsz].reshape(k, bsz).astype(idt)
        rest = order[k * bsz:].astype(idt)
        put = self.jax.device_put
        return put(full, self.device), put(rest, self.device)

    def epoch(self, params, state, order):
        full, rest = self.split(order)
        params, state = self._epoch(params, state, self.X, self.T, full, rest)
        self.jax.block_until_ready(params)
        return params, state

    def arrays(self, params):
        Ws = [np.asarray(W).copy() for W, _ in params]
        bs = [np.asarray(b).copy() for _, b in params]
        return Ws, bs

    def predict(self, params, X):
        x = self.jax.device_put(np.asarray(X, dtype=self.dtype), self.device)
        return np.asarray(self._forward(params, x))
