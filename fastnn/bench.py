"""Whole-epoch benchmark: fastnn against a plain NumPy loop and PyTorch CPU.

Run ``python -m fastnn.bench`` (``--help`` lists the options). For each configuration
of issue 3 it trains one epoch of MNIST (60,000 images) with

* ``fastnn-<backend>``: ``Sequential.fit`` on the chosen backend (numba by default,
  numpy when numba cannot run here);
* ``numpy``: the straightforward vectorised NumPy loop a user would write
  (:func:`numpy_train`), per batch forward, backward and update with NumPy matmuls;
* ``torch``: the same network as ``torch.nn.Linear`` layers and ``torch.optim``,
  when torch is installed;
* ``fastnn-numpy``: fastnn's own pure-NumPy backend (an extra column).

All of them start from the same initial weights (copied from the fastnn network)
and visit the samples in the same order, so they do the same arithmetic.

What happens, in order, per configuration:

1. JIT compile time: the first ``fit`` in this process on a tiny data set minus a
   second identical ``fit``; and for the numba backend, cold and cached compile in
   fresh subprocesses with their own ``NUMBA_CACHE_DIR``.
2. Result check at the benchmark shape, in float64: a few hundred steps with every
   implementation from the same weights and order; each must give the weights of the
   reference (fastnn's numpy backend, i.e. ``kernels/reference.py``) to ``rtol`` 1e-6.
   If one does not, nothing is timed and the command exits with status 3.
3. Warm-up, then ``--repeats`` timed epochs of each implementation, interleaved so
   that machine noise hits every column alike; the table shows medians and the
   speedups are ratios of medians from this run. The slow batch-1 Python loops
   time a fraction of the epoch and scale it up (marked in the table).

Results are printed as a Markdown table and written as JSON (``--out``) with the
machine's details. ``--backend cuda`` hands over to ``fastnn.bench_cuda``.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np

import fastnn as fn

# Exit statuses.
EXIT_OK, EXIT_USAGE, EXIT_CHECK_FAILED = 0, 2, 3

#: Result check: every implementation must give the reference's float64 weights to
#: this tolerance (elementwise ``|got - ref| <= atol + rtol * |ref|``) after the check steps.
CHECK_RTOL64 = 1e-6
CHECK_ATOL64 = 1e-9
#: After a timed float32 epoch the implementations are compared only loosely (summation
#: order differs); above this relative difference a warning is printed, nothing fails.
EPOCH_WARN_REL32 = 1e-2


class BenchCheckError(AssertionError):
    """An implementation's weights disagree with the reference: timings would be meaningless."""


@dataclass
class Config:
    """One benchmark configuration: an MLP, a cost, an optimizer and a batch size."""

    key: str
    title: str
    sizes: tuple
    hidden: str            # hidden activation: "sigmoid" or "relu"
    output: str            # output activation: "sigmoid" or "identity" (raw scores for CE)
    cost: str              # "mse" (seed convention 1/(2N) sum ||y - t||^2) or "ce"
    optimizer: str         # "sgd", "momentum" or "adam"
    lr: float
    batch_size: int
    momentum: float = 0.0
    target_numpy: float = None   # issue 3's speedup targets for fastnn-numba
    target_torch: float = None

    @property
    def n_weights(self):
        return sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def dense_flops(self, n):
        """Dense-equivalent FLOPs of one epoch over ``n`` samples.

        The usual 6 FLOPs per weight and sample: 2 forward (x @ W), 2 for the weight
        gradient (x.T @ dy) and 2 for the input gradient (dy @ W.T), counted for every
        layer (the first layer's input gradient is not actually needed, see
        :meth:`min_flops`). Biases, activations and updates are not counted.
        """
        return 6 * n * self.n_weights

    def min_flops(self, n):
        """Like :meth:`dense_flops` without the first layer's unneeded input gradient."""
        return self.dense_flops(n) - 2 * n * self.sizes[0] * self.sizes[1]


CONFIGS = {
    "a": Config("a", "784-50-10 sigmoid, MSE, SGD, batch 1", (784, 50, 10), "sigmoid", "sigmoid",
                "mse", "sgd", lr=0.5, batch_size=1, target_numpy=40, target_torch=120),
    "b": Config("b", "784-50-10 sigmoid, MSE, SGD, batch 10", (784, 50, 10), "sigmoid", "sigmoid",
                "mse", "sgd", lr=2.0, batch_size=10, target_numpy=4, target_torch=15),
    "c": Config("c", "784-256-10 relu, softmax CE, momentum SGD, batch 128", (784, 256, 10), "relu",
                "identity", "ce", "momentum", lr=0.05, momentum=0.9, batch_size=128,
                target_numpy=2, target_torch=1.5),
}


@dataclass
class Recipe:
    """The time-to-accuracy training recipe (same for fastnn and PyTorch)."""

    sizes: tuple = (784, 256, 10)
    hidden: str = "relu"
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    max_epochs: int = 20
    targets: tuple = (0.97, 0.98)
    momentum: float = 0.0
    extra: dict = field(default_factory=dict)

    def describe(self):
        arch = "-".join(map(str, self.sizes))
        opt = (f"Adam(lr={self.lr:g})" if self.optimizer == "adam" else
               f"SGD(lr={self.lr:g}, momentum={self.momentum:g})")
        return f"{arch} {self.hidden}, softmax cross-entropy, {opt}, batch {self.batch_size}, float32"

    def as_config(self):
        return Config("tta", self.describe(), tuple(self.sizes), self.hidden, "identity", "ce",
                      self.optimizer, self.lr, self.batch_size, momentum=self.momentum)


# --------------------------------------------------------------------------- building


def make_net(cfg, seed, dtype=np.float32):
    """The fastnn Sequential of ``cfg`` (weights drawn from ``seed``)."""
    act = {"sigmoid": fn.Sigmoid, "relu": fn.ReLU}
    layers = []
    n = len(cfg.sizes) - 1
    for i, (a, b) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:])):
        layers.append(fn.Linear(a, b))
        name = cfg.hidden if i < n - 1 else cfg.output
        if name != "identity":
            layers.append(act[name]())
    return fn.Sequential(*layers, seed=seed, dtype=dtype)


def make_cost(cfg):
    return fn.MSE() if cfg.cost == "mse" else fn.CrossEntropy()


def make_optimizer(cfg):
    if cfg.optimizer == "adam":
        return fn.Adam(cfg.lr)
    return fn.SGD(cfg.lr, momentum=cfg.momentum)


def net_arrays(net):
    """Copies of the Linear weights and biases of ``net`` (lists of W (in, out), b (out,))."""
    return [lin.W.copy() for lin in net.linears], [lin.b.copy() for lin in net.linears]


def flat(Ws, bs):
    """Weights and biases in fastnn's flat layout [W_1 | ... | W_k | b_1 | ... | b_k]."""
    return np.concatenate([W.ravel() for W in Ws] + [b.ravel() for b in bs])


def shuffle_order(seed, n):
    """The sample order ``Sequential.fit(..., seed=seed)`` uses in its first epoch."""
    return np.random.default_rng(seed).permutation(n).astype(np.int64)


# ------------------------------------------------------------------ NumPy baseline


def _np_act(name, z):
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "relu":
        return np.maximum(z, 0)
    return z


def numpy_train(cfg, Ws, bs, X, targets, order, state=None):
    """One pass of plain vectorised NumPy training over ``order`` (updates Ws, bs in place).

    This is the loop a user writes by hand (the baseline of the benchmark): per batch,
    a forward pass with matmuls, the output delta of the cost, a backward pass and the
    update of each layer. It computes no loss or accuracy (fastnn's ``fit`` does, so the
    comparison favours NumPy slightly).

    Parameters
    ----------
    cfg : Config
    Ws, bs : lists of ndarray
        Weights (in, out) and biases (out,), modified in place.
    X : ndarray (N, in)
    targets : ndarray
        One-hot (N, K) floats for MSE, int labels (N,) for cross-entropy.
    order : int64 ndarray
        Sample order; batch ``j`` is ``order[j*bs:(j+1)*bs]`` (the last may be short).
    state : dict, optional
        Optimizer state (velocities) carried between calls.
    """
    L = len(Ws)
    bsz, lr, mu = cfg.batch_size, cfg.lr, cfg.momentum
    acts = [cfg.hidden] * (L - 1) + [cfg.output]
    if state is None:
        state = {}
    if cfg.optimizer == "momentum" and "vW" not in state:
        state["vW"] = [np.zeros_like(W) for W in Ws]
        state["vb"] = [np.zeros_like(b) for b in bs]
    vW, vb = state.get("vW"), state.get("vb")
    with np.errstate(over="ignore"):   # exp(-z) -> inf for very negative z gives sigmoid 0, fine
        for s in range(0, len(order), bsz):
            idx = order[s:s + bsz]
            m = len(idx)
            hs = [X[idx]]                                    # hs[i]: input of layer i, (m, in_i)
            for W, b, a in zip(Ws, bs, acts):
                hs.append(_np_act(a, hs[-1] @ W + b))
            y = hs[-1]                                       # (m, K)
            if cfg.cost == "mse":                            # J = 1/(2m) sum ||y - t||^2
                d = (y - targets[idx]) / m
                if cfg.output == "sigmoid":
                    d *= y * (1 - y)
            else:                                            # softmax cross-entropy on scores y
                e = np.exp(y - y.max(axis=1, keepdims=True))
                d = e / e.sum(axis=1, keepdims=True)
                d[np.arange(m), targets[idx]] -= 1
                d /= m
            for i in range(L - 1, -1, -1):
                gW = hs[i].T @ d                             # (in_i, out_i)
                gb = d.sum(axis=0)
                if i > 0:                                    # uses W_i before its update
                    d = d @ Ws[i].T
                    if acts[i - 1] == "sigmoid":
                        d *= hs[i] * (1 - hs[i])
                    elif acts[i - 1] == "relu":
                        d *= hs[i] > 0
                if vW is None:
                    Ws[i] -= lr * gW
                    bs[i] -= lr * gb
                else:                                        # seed 003: v = mu v - lr g; p += v
                    vW[i] *= mu
                    vW[i] -= lr * gW
                    Ws[i] += vW[i]
                    vb[i] *= mu
                    vb[i] -= lr * gb
                    bs[i] += vb[i]
    return state


def numpy_targets(cfg, y, dtype):
    if cfg.cost == "mse":
        return fn.datasets.one_hot(y, cfg.sizes[-1], dtype=dtype)
    return y.astype(np.int64)


# -------------------------------------------------------------------------- torch


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


class TorchRun:
    """The configuration as a ``torch.nn.Sequential`` of Linear layers with fastnn's weights."""

    def __init__(self, torch, cfg, Ws, bs, dtype):
        self.torch, self.cfg = torch, cfg
        tdt = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
        mods = []
        acts = [cfg.hidden] * (len(Ws) - 1) + [cfg.output]
        for W, b, a in zip(Ws, bs, acts):
            lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=tdt)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))   # torch: (out, in)
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            if a == "sigmoid":
                mods.append(torch.nn.Sigmoid())
            elif a == "relu":
                mods.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*mods)
        self.linears = [m for m in mods if isinstance(m, torch.nn.Linear)]
        params = self.model.parameters()
        if cfg.optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=cfg.lr)
        else:
            # torch's v = mu v + g; p -= lr v equals seed 003's v = mu v - lr g; p += v for fixed lr.
            self.opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)

    def train(self, X_t, T_t, order_t):
        torch, cfg = self.torch, self.cfg
        bsz, model, opt = cfg.batch_size, self.model, self.opt
        mse = cfg.cost == "mse"
        ce = torch.nn.functional.cross_entropy
        for s in range(0, len(order_t), bsz):
            idx = order_t[s:s + bsz]
            out = model(X_t[idx])
            if mse:
                loss = ((out - T_t[idx]) ** 2).sum() / (2 * len(idx))
            else:
                loss = ce(out, T_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def predict(self, X_t):
        with self.torch.no_grad():
            return self.model(X_t).numpy()

    def arrays(self):
        Ws = [lin.weight.detach().numpy().T.copy() for lin in self.linears]
        bs = [lin.bias.detach().numpy().copy() for lin in self.linears]
        return Ws, bs


# ------------------------------------------------------------------------ helpers


def _now():
    return time.perf_counter()


def _median(xs):
    return float(statistics.median(xs)) if xs else None


def _fmt_s(x):
    if x is None:
        return "n/a"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _fmt_x(x):
    return "n/a" if x is None else (f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 100 else f"{x:.0f}x")


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _max_rel_err(got, ref, rtol, atol):
    """(max |got-ref|, worst ratio |got-ref| / (atol + rtol |ref|)); ratio <= 1 passes."""
    err = np.abs(got - ref)
    return float(err.max()), float((err / (atol + rtol * np.abs(ref))).max())


def _rel_norm_diff(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def machine_info(threads):
    """CPU, cores, library versions and thread counts, for the JSON record."""
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": None,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "fastnn": fn.__version__,
        "numpy": np.__version__,
        "threads": threads,
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        info["cpu_model"] = platform.processor() or None
    try:
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.get_num_threads()
        info["numba_threading_layer_config"] = numba.config.THREADING_LAYER
    except Exception as exc:  # numba broken: say so rather than fail the record
        info["numba"] = f"unavailable: {exc}"
    torch = import_torch()
    info["torch"] = torch.__version__ if torch else None
    info["torch_threads"] = torch.get_num_threads() if torch else None
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                        for d in threadpool_info() if d.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = "unknown (threadpoolctl not installed)"
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(fn.__file__)))
        out = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        info["git_commit"] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


@contextlib.contextmanager
def thread_settings(n, torch):
    """Use ``n`` threads in fastnn/numba, torch and NumPy's BLAS; restores the old counts after.

    Yields what each library reports it got.
    """
    got = {"requested": n}
    restore = []
    try:
        import numba
    except ImportError as exc:
        got["numba"] = f"not set: {exc}"
    else:
        if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"--threads must lie in 1..{numba.config.NUMBA_NUM_THREADS} "
                             f"(NUMBA_NUM_THREADS), got {n}")
        try:   # fastnn's one knob for its threads, when this version has it
            from fastnn.config import set_num_threads as setter
        except ImportError:
            setter = numba.set_num_threads
        old = numba.get_num_threads()
        setter(n)
        restore.append(lambda: setter(old))
        got["numba"] = numba.get_num_threads()
    if torch is not None:
        old_t = torch.get_num_threads()
        torch.set_num_threads(n)
        restore.append(lambda: torch.set_num_threads(old_t))
        got["torch"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=n, user_api="blas")
        restore.append(limiter.restore_original_limits)
        got["numpy_blas"] = n
    except ImportError:
        got["numpy_blas"] = "not set (threadpoolctl not installed)"
    try:
        yield got
    finally:
        for undo in reversed(restore):
            undo()


def default_threads():
    try:
        import numba

        return numba.get_num_threads()
    except ImportError:
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- data


def synthetic_data(n_train=512, n_test=256, seed=0):
    """Tiny MNIST-shaped data for ``--quick``: sparse images in [0, 1], learnable labels."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    X = rng.random((n, 784), dtype=np.float32)
    X[rng.random((n, 784)) < 0.8] = 0.0          # about as sparse as MNIST
    R = rng.normal(size=(784, 10))
    y = (X @ R).argmax(axis=1).astype(np.int64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def load_data(args):
    if args.quick:
        return synthetic_data(), "synthetic (--quick): 512 train / 256 test MNIST-shaped samples"
    from fastnn.datasets import load_mnist, mnist_path

    try:
        data = load_mnist(args.mnist, download=args.download)
    except FileNotFoundError as exc:
        raise SystemExit(f"fastnn.bench: MNIST not found.\n{exc}\nPass --mnist DIR (the directory "
                         "with the four IDX .gz files), set FASTNN_DATA, add --download, or use --quick.")
    where = mnist_path(args.mnist)
    return data, f"MNIST from {where}"


# ----------------------------------------------------------------------- the parts


def matmul_gflops(n=2048, repeats=5):
    """GFLOP/s of ``np.dot`` on two n x n float32 matrices: median and best of ``repeats``.

    The best is used as the machine's practical peak (on a shared machine the median
    mostly measures the neighbours).
    """
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    np.dot(a, b)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = _now()
        np.dot(a, b)
        times.append(_now() - t0)
    flop = 2 * n ** 3
    return {"n": n, "dtype": "float32", "repeats": repeats, "times_s": times,
            "median_gflops": flop / _median(times) / 1e9, "gflops": flop / min(times) / 1e9}


def _merge_matmul(first, second):
    """Matmul records from the start and the end of the run: the best of both is the peak."""
    out = dict(first)
    out["times_s"] = first["times_s"] + second["times_s"]
    out["repeats"] = len(out["times_s"])
    flop = 2 * first["n"] ** 3
    out["median_gflops"] = flop / _median(out["times_s"]) / 1e9
    out["gflops"] = max(first["gflops"], second["gflops"])
    out["note"] = "measured at the start and at the end of the epoch timings; gflops is the best run"
    return out


def check_config(cfg, X, y, backend, steps, seed, torch):
    """Train ``steps`` steps (float64, benchmark shapes) with every implementation from one
    set of weights and one order, and compare each with the reference backend.

    Returns the record; raises :class:`BenchCheckError` on disagreement.
    """
    # The last batch has the same size as the epoch's last (short) batch, so that path is checked too.
    bsz = cfg.batch_size
    m = min(len(X), (steps - 1) * bsz + (len(X) % bsz or bsz))
    X64 = np.ascontiguousarray(X[:m], dtype=np.float64)
    y_c = y[:m]
    base = make_net(cfg, seed, np.float64)
    data_seed = seed + 1
    results = {}

    ref_net = base.copy()
    ref_net.fit(X64, y_c, make_cost(cfg), make_optimizer(cfg), epochs=1, batch_size=cfg.batch_size,
                seed=data_seed, backend="numpy")
    ref = ref_net.params.copy()

    if backend != "numpy":
        net = base.copy()
        net.fit(X64, y_c, make_cost(cfg), make_optimizer(cfg), epochs=1, batch_size=cfg.batch_size,
                seed=data_seed, backend=backend)
        results[f"fastnn-{backend}"] = net.params.copy()

    order = shuffle_order(data_seed, m)
    Ws, bs = net_arrays(base)
    numpy_train(cfg, Ws, bs, X64, numpy_targets(cfg, y_c, np.float64), order)
    results["numpy"] = flat(Ws, bs)

    if torch is not None:
        tr = TorchRun(torch, cfg, *net_arrays(base), np.float64)
        T = numpy_targets(cfg, y_c, np.float64)
        tr.train(torch.from_numpy(X64), torch.from_numpy(T), torch.from_numpy(order))
        results["torch"] = flat(*tr.arrays())

    record = {"steps": -(-m // cfg.batch_size), "samples": m, "dtype": "float64",
              "reference": "fastnn backend 'numpy' (kernels/reference.py)",
              "rtol": CHECK_RTOL64, "atol": CHECK_ATOL64, "max_abs_diff": {}, "passed": True}
    failures = []
    moved = float(np.abs(ref - base.params).max())
    record["max_weight_change"] = moved
    for name, got in results.items():
        diff, ratio = _max_rel_err(got, ref, CHECK_RTOL64, CHECK_ATOL64)
        record["max_abs_diff"][name] = diff
        if not np.all(np.isfinite(got)) or ratio > 1.0:
            failures.append(f"{name}: max |w - w_ref| = {diff:.3g} (allowed {CHECK_ATOL64:g} + "
                            f"{CHECK_RTOL64:g} |w_ref|, worst element at {ratio:.3g}x the tolerance)")
    if moved == 0.0:
        failures.append("the reference did not change the weights: the check would prove nothing")
    if failures:
        record["passed"] = False
        raise BenchCheckError(
            f"result check FAILED for config {cfg.key} ({cfg.title}) after {record['steps']} steps "
            f"in float64 against the reference:\n  " + "\n  ".join(failures)
            + "\nNo timings were taken: a wrong result must not be benchmarked.")
    return record


def first_fit_compile(cfg, X, y, backend, seed):
    """In-process JIT time: a first tiny ``fit`` minus an identical second one."""
    n = min(len(X), max(4 * cfg.batch_size, 64))
    times = []
    for _ in range(2):
        net = make_net(cfg, seed)
        t0 = _now()
        net.fit(X[:n], y[:n], make_cost(cfg), make_optimizer(cfg), epochs=1,
                batch_size=cfg.batch_size, seed=seed, backend=backend)
        times.append(_now() - t0)
    return {"samples": n, "first_fit_s": times[0], "second_fit_s": times[1],
            "compile_s": max(0.0, times[0] - times[1])}


_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import fastnn
from fastnn import bench
t_import = time.perf_counter() - t0
backend = sys.argv[1]
fastnn.get_ops(backend)
t_backend = time.perf_counter() - t0
out = {"import_s": t_import, "backend_load_s": t_backend, "configs": {}}
for key in sys.argv[2].split(","):
    cfg = bench.CONFIGS[key]
    X, y, _, _ = bench.synthetic_data(n_train=max(4 * cfg.batch_size, 64), n_test=1)
    times = []
    for _ in range(2):
        net = bench.make_net(cfg, 0)
        t1 = time.perf_counter()
        net.fit(X, y, bench.make_cost(cfg), bench.make_optimizer(cfg), epochs=1,
                batch_size=cfg.batch_size, seed=0, backend=backend)
        times.append(time.perf_counter() - t1)
    out["configs"][key] = {"first_fit_s": times[0], "second_fit_s": times[1],
                           "compile_s": max(0.0, times[0] - times[1])}
first = out["configs"][sys.argv[2].split(",")[0]]
out["ready_s"] = t_backend + first["compile_s"]
print("PROBE" + json.dumps(out))
"""


def compile_probe(keys, backend, cache_dir, timeout=1800):
    """Run :data:`_PROBE` for configs ``keys`` (in order) in a fresh interpreter with
    ``NUMBA_CACHE_DIR=cache_dir``."""
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    root = os.path.dirname(os.path.dirname(os.path.abspath(fn.__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = _now()
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, backend, ",".join(keys)], capture_output=True,
                              text=True, env=env, timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        return {"error": f"probe timed out after {timeout} s"}
    wall = _now() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("PROBE"):
            rec = json.loads(line[5:])
            rec["process_wall_s"] = wall
            return rec
    return {"error": f"probe failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}"}


def cold_and_cached(keys, backend):
    """Compile times with an empty numba cache (cold), then again with the cache it wrote."""
    with tempfile.TemporaryDirectory(prefix="fastnn-bench-numba-cache-") as d:
        cold = compile_probe(keys, backend, d)
        cached = compile_probe(keys, backend, d)
    return {"cold": cold, "cached": cached, "order": list(keys),
            "note": "one fresh interpreter per measurement with NUMBA_CACHE_DIR set to a new empty "
                    "directory ('cold'), then reused ('cached'); the configs run in 'order' in that "
                    "process, so a later config reuses what an earlier one compiled. compile_s = first "
                    "tiny fit minus an identical second one; ready_s = import + backend load + the "
                    "first config's compile, the wait before its first fit starts training"}


def _fraction_for(args, cfg, column, main_col):
    """Fraction of the epoch timed for a column (slow per-sample Python loops get less;
    the benchmarked fastnn column always trains the whole epoch)."""
    if column == main_col or (column.startswith("fastnn-") and column != "fastnn-numpy"):
        return 1.0
    if args.fraction is not None:
        return args.fraction
    if args.quick:
        return 1.0
    return 0.1 if cfg.batch_size == 1 else 1.0


def time_config(cfg, data, args, backend, torch, columns):
    """Warm up, then time one epoch per column ``args.repeats`` times (interleaved)."""
    X, y, X_test, y_test = data
    n = len(X)
    seed = args.seed
    base = make_net(cfg, seed)
    order = shuffle_order(seed, n)
    T = numpy_targets(cfg, y, np.float32)
    X_t = T_t = order_t = None
    if torch is not None and "torch" in columns:
        X_t, T_t, order_t = torch.from_numpy(X), torch.from_numpy(T), torch.from_numpy(order)
    fractions = {c: _fraction_for(args, cfg, c, f"fastnn-{backend}") for c in columns}
    counts = {c: n if f >= 1 else max(cfg.batch_size, int(round(f * n))) for c, f in fractions.items()}

    def run(column, m):
        """Train ``m`` samples of one epoch with ``column``; returns (seconds, final flat params)."""
        if column.startswith("fastnn-"):
            be = column[len("fastnn-"):]
            net = base.copy()
            cost, opt = make_cost(cfg), make_optimizer(cfg)
            Xs, ys = (X, y) if m == n else (X[:m], y[:m])
            t0 = _now()
            hist = net.fit(Xs, ys, cost, opt, epochs=1, batch_size=cfg.batch_size, seed=seed, backend=be)
            dt = _now() - t0
            inner[column] = hist.times[0]
            return dt, net.params.copy(), net
        if column == "numpy":
            Ws, bs = net_arrays(base)
            o = order[:m]
            t0 = _now()
            numpy_train(cfg, Ws, bs, X, T, o)
            dt = _now() - t0
            return dt, flat(Ws, bs), (Ws, bs)
        if column == "torch":
            tr = TorchRun(torch, cfg, *net_arrays(base), np.float32)
            o = order_t[:m]
            t0 = _now()
            tr.train(X_t, T_t, o)
            dt = _now() - t0
            return dt, flat(*tr.arrays()), tr
        raise ValueError(column)

    inner = {}   # fastnn columns: the epoch time History reports (without fit's input checks)

    # Warm-up: a few batches of each (JIT, caches, torch's first-call setup).
    warm = min(n, max(8 * cfg.batch_size, 256))
    for c in columns:
        run(c, warm)

    times = {c: [] for c in columns}
    inner_times = {c: [] for c in columns if c.startswith("fastnn-")}
    finals = {}
    for r in range(args.repeats):
        for c in columns:
            dt, params, obj = run(c, counts[c])
            times[c].append(dt * n / counts[c])
            if c in inner_times:
                inner_times[c].append(inner[c] * n / counts[c])
            finals[c] = (params, obj)
        _log(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(f"{c} {times[c][-1]:.3g}s" for c in columns))

    out = {}
    main_col = f"fastnn-{backend}"
    for c in columns:
        rec = {"times_s": times[c], "median_s": _median(times[c]), "fraction_timed": fractions[c],
               "samples_timed": counts[c], "extrapolated": counts[c] < n}
        if c in inner_times:
            rec["history_epoch_s"] = inner_times[c]
        params, obj = finals[c]
        if counts[c] == n:
            if main_col in finals and c != main_col and counts[main_col] == n:
                rec["final_rel_diff_vs_" + main_col] = _rel_norm_diff(params, finals[main_col][0])
            rec["test_accuracy"] = _test_accuracy(cfg, c, obj, X_test, y_test, torch)
        out[c] = rec
    return out


def _test_accuracy(cfg, column, obj, X_test, y_test, torch):
    """Test accuracy of a column's trained weights (a sanity check of the timed run)."""
    if column.startswith("fastnn-"):
        pred = obj.predict(X_test, backend=column[len("fastnn-"):])
    elif column == "numpy":
        h = X_test
        acts = [cfg.hidden] * (len(obj[0]) - 1) + [cfg.output]
        with np.errstate(over="ignore"):
            for W, b, a in zip(*obj, acts):
                h = _np_act(a, h @ W + b)
        pred = h
    else:
        pred = obj.predict(torch.from_numpy(X_test))
    return float(np.mean(pred.argmax(axis=1) == y_test))


def time_to_accuracy(recipe, data, backend, torch, seed):
    """Wall time of training (evaluation excluded, reported apart) to reach each target test
    accuracy with ``recipe``, for fastnn and, when installed, PyTorch, epoch by epoch in turn."""
    X, y, X_test, y_test = data
    cfg = recipe.as_config()
    base = make_net(cfg, seed)
    runners = {}
    # Warm-up: JIT compile (reported, not counted) and torch's first-call setup.
    comp = first_fit_compile(cfg, X, y, backend, seed)
    net = base.copy()
    trainer = fn.Trainer(net, make_cost(cfg), make_optimizer(cfg), batch_size=cfg.batch_size,
                         backend=backend, seed=seed)
    runners[f"fastnn-{backend}"] = trainer
    rng = np.random.default_rng(seed)   # the same sequence of orders as the Trainer's
    if torch is not None:
        warm = TorchRun(torch, cfg, *net_arrays(base), np.float32)
        warm.train(torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(np.arange(min(len(X), 512))))
        runners["torch"] = TorchRun(torch, cfg, *net_arrays(base), np.float32)
        X_t, y_t, Xte_t = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(X_test)
    recs = {name: {"epoch_train_s": [], "epoch_eval_s": [], "test_accuracy": [], "reached": {}}
            for name in runners}
    best = max(recipe.targets)
    for epoch in range(recipe.max_epochs):
        order = rng.permutation(len(X)).astype(np.int64)
        for name, r in runners.items():
            rec = recs[name]
            if best in rec["reached"]:
                continue
            t0 = _now()
            if name == "torch":
                r.train(X_t, y_t, torch.from_numpy(order))
            else:
                r.fit(X, y, epochs=1)
            t1 = _now()
            pred = r.predict(Xte_t) if name == "torch" else net.predict(X_test, backend=backend)
            acc = float(np.mean(pred.argmax(axis=1) == y_test))
            rec["epoch_eval_s"].append(_now() - t1)
            rec["epoch_train_s"].append(t1 - t0)
            rec["test_accuracy"].append(acc)
            for tgt in recipe.targets:
                if acc >= tgt and tgt not in rec["reached"]:
                    rec["reached"][tgt] = {"epochs": epoch + 1, "train_s": float(sum(rec["epoch_train_s"]))}
        _log(f"  epoch {epoch + 1}: " + ", ".join(
            f"{name} acc {recs[name]['test_accuracy'][-1]:.4f}" for name in runners
            if len(recs[name]["test_accuracy"]) == epoch + 1))
        if all(best in rec["reached"] for rec in recs.values()):
            break
    for rec in recs.values():
        rec["reached"] = {f"{t:.2f}": v for t, v in sorted(rec["reached"].items())}
        rec["eval_s_total"] = float(sum(rec["epoch_eval_s"]))
    return {"recipe": recipe.describe(), "recipe_fields": asdict(recipe), "seed": seed,
            "fastnn_compile": comp,
            "note": "train_s: cumulative training wall time (fit per epoch, compile excluded: "
                    "see fastnn_compile); test evaluation after each epoch is excluded and "
                    "reported in epoch_eval_s", "results": recs}


# ------------------------------------------------------------------------- report


COLUMN_TITLES = {"numpy": "NumPy loop", "torch": "PyTorch CPU"}


def _col_title(c):
    return COLUMN_TITLES.get(c, c)


def markdown_report(res):
    """The results as Markdown tables (a string)."""
    main = res["settings"]["fastnn_column"]
    lines = []
    cols = []
    for rec in res["configs"].values():
        for c in rec["timings"]:
            if c not in cols:
                cols.append(c)
    head = ["config"] + [f"{_col_title(c)} (s)" for c in cols] + ["vs NumPy", "vs PyTorch", "JIT compile (s)"]
    if cols:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + " --- |" * len(head))
    extrap = set()
    for key, rec in res["configs"].items():
        row = [f"{key}. {rec['title']}"]
        for c in cols:
            t = rec["timings"].get(c)
            if t is None:
                row.append("n/a")
                continue
            mark = ""
            if t["extrapolated"]:
                mark = "*"
                extrap.add(f"{t['fraction_timed']:.0%}")
            row.append(f"{_fmt_s(t['median_s'])}{mark}")
        sp = rec["speedup"]
        for which, tgt in (("numpy", "target_numpy"), ("torch", "target_torch")):
            v = sp.get(f"vs_{which}")
            cell = _fmt_x(v)
            if v is not None and rec.get(tgt) and main == "fastnn-numba":
                cell += f" ({'met' if v >= rec[tgt] else 'below'} target {rec[tgt]:g}x)"
            row.append(cell)
        comp = rec.get("compile") or {}
        parts = []
        if comp.get("in_process"):
            parts.append(f"first fit {comp['in_process']['compile_s']:.2f}")
        sub = comp.get("subprocess") or {}
        for k in ("cold", "cached"):
            v = sub.get(k) or {}
            if "compile_s" in v:
                parts.append(f"{k} {v['compile_s']:.2f}")
        row.append(", ".join(parts) if parts else ("none" if main == "fastnn-numpy" else "n/a"))
        lines.append("| " + " | ".join(row) + " |")
    notes = []
    if cols:
        notes.append(f"Median of {res['settings']['repeats']} epoch(s) of {res['settings']['n_train']} "
                     f"samples, {res['settings']['data']}; speedup = column time / {main} time, both "
                     "from this run.")
    if extrap:
        notes.append(f"\\* timed on {', '.join(sorted(extrap))} of the epoch (the same sample order) "
                     "and scaled up to the whole epoch.")
    m = res.get("matmul")
    if m:
        notes.append(f"Reference matmul: np.dot {m['n']}x{m['n']} float32, best {m['gflops']:.1f} GFLOP/s "
                     f"(median {m['median_gflops']:.1f}) of {m['repeats']} runs at the start and end.")
    for key, rec in res["configs"].items():
        g = rec.get("gflops")
        if g:
            parts = [f"{_col_title(c)} {v['gflops']:.1f} GFLOP/s ({v['fraction_of_matmul']:.0%} of matmul)"
                     for c, v in g["per_column"].items()]
            notes.append(f"Config {key}: {g['dense_gflop_per_epoch']:.1f} GFLOP dense-equivalent per epoch "
                         f"(6 FLOPs per weight and sample); achieved " + "; ".join(parts) + ".")
    c = res.get("compile")
    if c and "ready_s" in c.get("cold", {}) and "ready_s" in c.get("cached", {}):
        notes.append(f"JIT compile: 'first fit' = first tiny fit minus a second one in this process; "
                     f"'cold'/'cached' = the same in a fresh interpreter with an empty, then a filled "
                     f"NUMBA_CACHE_DIR, configs in the order {','.join(c['order'])} (later ones reuse "
                     f"earlier ones' kernels). Import + backend load + first compile: cold "
                     f"{c['cold']['ready_s']:.2f} s, cached {c['cached']['ready_s']:.2f} s.")
    th = res["settings"]["threads"]
    mi = res["machine"]
    notes.append(f"Machine: {mi.get('cpu_model')}, {mi.get('usable_cpus')} usable CPUs; threads: "
                 f"numba {th.get('numba')}, torch {th.get('torch', 'n/a')}, NumPy BLAS {th.get('numpy_blas')}; "
                 f"numpy {mi.get('numpy')}, numba {mi.get('numba')}, torch {mi.get('torch')}; {mi.get('date')}.")
    lines.append("")
    lines += [n + "  " for n in notes]
    tta = res.get("time_to_accuracy")
    if tta:
        lines += ["", f"Time to accuracy ({tta['recipe']}; training time, evaluation excluded):", ""]
        tg = list(tta["recipe_fields"]["targets"])
        head = ["framework"] + [f"{t:.0%}: epochs, s" for t in tg] + ["best test acc", "eval s (excluded)"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + " --- |" * len(head))
        for name, r in tta["results"].items():
            row = [_col_title(name)]
            for t in tg:
                v = r["reached"].get(f"{t:.2f}")
                row.append(f"{v['epochs']}, {v['train_s']:.2f}" if v else
                           f"not in {len(r['test_accuracy'])} epochs")
            row.append(f"{max(r['test_accuracy']):.4f}" if r["test_accuracy"] else "n/a")
            row.append(f"{r['eval_s_total']:.2f}")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m fastnn.bench",
        description="Whole-epoch MNIST benchmark: fastnn vs a plain NumPy loop vs PyTorch CPU "
                    "(results checked against the reference before timing).")
    p.add_argument("--config", default="a,b,c",
                   help="comma-separated configurations: " + "; ".join(
                       f"{k} = {c.title}" for k, c in CONFIGS.items()) + "; 'none' with --time-to-accuracy "
                        "runs only that (default a,b,c)")
    p.add_argument("--repeats", type=int, default=None, help="timed epochs per column; the median is "
                   "reported (default 3, 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="tiny synthetic data, few check steps, no compile subprocesses (smoke test)")
    p.add_argument("--backend", default="numba", choices=("numba", "numpy", "cuda"),
                   help="fastnn backend to benchmark (default numba; numpy when numba cannot run "
                        "here). cuda hands over to fastnn.bench_cuda")
    p.add_argument("--mnist", default=None, metavar="PATH",
                   help="directory with the MNIST IDX .gz files (default: $FASTNN_DATA or the cache)")
    p.add_argument("--download", action="store_true", help="download MNIST if it is missing")
    p.add_argument("--out", default=None, help="JSON results file "
                   "(default bench-results/bench-<timestamp>.json)")
    p.add_argument("--time-to-accuracy", action="store_true",
                   help="also measure the training time to 97%% and 98%% test accuracy")
    p.add_argument("--tta-max-epochs", type=int, default=None, help="epoch limit for --time-to-accuracy "
                   "(default 20, 2 with --quick)")
    p.add_argument("--tta-arch", default=None, help="layer sizes of the time-to-accuracy recipe "
                   "(default 784-256-10; ReLU hidden layers)")
    p.add_argument("--tta-optimizer", default=None, choices=("adam", "momentum"),
                   help="optimizer of the recipe (default adam; momentum means SGD with momentum 0.9)")
    p.add_argument("--tta-lr", type=float, default=None, help="learning rate of the recipe "
                   "(default 1e-3 for adam, 0.05 for momentum)")
    p.add_argument("--tta-batch", type=int, default=None, help="batch size of the recipe (default 64)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for numba, torch and NumPy's BLAS (default: numba's thread count)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and sample order")
    p.add_argument("--check-steps", type=int, default=None,
                   help="training steps of the float64 result check (default 300, 20 with --quick)")
    p.add_argument("--fraction", type=float, default=None,
                   help="fraction of the epoch timed for the NumPy loop, PyTorch and fastnn-numpy "
                        "(default 0.1 at batch size 1, else 1)")
    p.add_argument("--skip", default="", help="comma-separated parts to leave out: numpy, torch, "
                   "fastnn-numpy, compile (the cold/cached compile subprocesses), matmul")
    return p


def _parse_configs(text):
    if text.strip().lower() == "none":
        return []
    keys = [k.strip().lower() for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in CONFIGS]
    if bad or not keys:
        raise ValueError(f"unknown configuration(s) {', '.join(bad) or '(none)'}; choose from "
                         + ", ".join(CONFIGS))
    return keys


def _dispatch_cuda(argv):
    try:
        from fastnn import bench_cuda
    except ModuleNotFoundError as exc:
        if exc.name in ("fastnn.bench_cuda",):
            _log("fastnn.bench: --backend cuda needs fastnn.bench_cuda, which this version of fastnn "
                 "does not have (the CUDA backend's benchmark is not implemented yet).")
            return EXIT_USAGE
        raise
    return bench_cuda.main(argv)


def resolve_backend(name):
    """The backend to benchmark: ``name``, or numpy (with the reason) when numba cannot run."""
    try:
        fn.get_ops(name)
        return name, None
    except fn.BackendUnavailable as exc:
        if name == "numba":
            return "numpy", str(exc)
        raise SystemExit(f"fastnn.bench: {exc}")


def run_bench(args):
    """Run the benchmark described by parsed ``args``; returns the results dict."""
    keys = _parse_configs(args.config)
    if not keys and not args.time_to_accuracy:
        raise ValueError("--config none leaves nothing to do without --time-to-accuracy")
    args._recipe = make_recipe(args)   # checks the --tta-* options before anything runs
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - {"numpy", "torch", "fastnn-numpy", "compile", "matmul"}
    if unknown:
        raise ValueError(f"--skip: unknown part(s) {', '.join(sorted(unknown))}")
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        raise ValueError("--repeats must be >= 1")
    args.repeats = repeats
    check_steps = args.check_steps if args.check_steps is not None else (20 if args.quick else 300)
    if args.fraction is not None and not 0 < args.fraction <= 1:
        raise ValueError("--fraction must lie in (0, 1]")

    backend, why = resolve_backend(args.backend)
    if why:
        _log(f"fastnn.bench: numba backend unavailable ({why}); benchmarking backend 'numpy' instead.")
    torch = None if "torch" in skip else import_torch()
    if torch is None and "torch" not in skip:
        _log("fastnn.bench: torch is not installed; the PyTorch column is left out.")
    threads = args.threads if args.threads is not None else default_threads()
    if threads < 1:
        raise ValueError("--threads must be >= 1")
    with thread_settings(threads, torch) as got_threads:
        return _run_bench(args, keys, skip, repeats, check_steps, backend, why, torch, threads, got_threads)


def _run_bench(args, keys, skip, repeats, check_steps, backend, why, torch, threads, got_threads):
    data, data_desc = load_data(args)
    X, y, X_test, y_test = data
    main_col = f"fastnn-{backend}"
    columns = [main_col]
    if "numpy" not in skip:
        columns.append("numpy")
    if torch is not None:
        columns.append("torch")
    if backend != "numpy" and "fastnn-numpy" not in skip:
        columns.append("fastnn-numpy")

    res = {
        "schema": "fastnn-bench/1",
        "command": "python -m fastnn.bench " + " ".join(args._argv),
        "machine": machine_info(threads),
        "settings": {"backend_requested": args.backend, "backend": backend, "backend_fallback_reason": why,
                     "fastnn_column": main_col, "columns": columns, "repeats": repeats,
                     "check_steps": check_steps, "seed": args.seed, "threads": got_threads,
                     "data": data_desc, "n_train": len(X), "n_test": len(X_test), "quick": bool(args.quick),
                     "dtype": "float32",
                     "numpy_baseline": "fastnn.bench.numpy_train: per-batch forward/backward/update with "
                                       "NumPy matmuls; computes no loss/accuracy",
                     "fastnn_timing": "wall time of Sequential.fit(epochs=1) on the whole training set "
                                      "(history_epoch_s: the epoch time fit's History reports, "
                                      "without input checks and setup)"},
        "configs": {},
    }
    if "matmul" not in skip and keys:
        _log("matmul reference ...")
        res["matmul"] = matmul_gflops(256 if args.quick else 2048)
    if keys and backend == "numba" and "compile" not in skip and not args.quick:
        _log(f"compile time of configs {','.join(keys)}: cold, then cached, in fresh interpreters ...")
        res["compile"] = cold_and_cached(keys, backend)
        for k in ("cold", "cached"):
            if "error" in res["compile"][k]:
                _log(f"  {k} compile probe: {res['compile'][k]['error']}")
    for key in keys:
        cfg = CONFIGS[key]
        _log(f"config {key}: {cfg.title}")
        rec = {"title": cfg.title, "config": asdict(cfg), "target_numpy": cfg.target_numpy,
               "target_torch": cfg.target_torch}
        comp = {}
        if "compile" in res:
            comp["subprocess"] = {k: res["compile"][k].get("configs", {}).get(key)
                                  for k in ("cold", "cached")}
        if backend == "numpy":
            comp["note"] = "backend numpy compiles nothing"
        else:
            comp["in_process"] = first_fit_compile(cfg, X, y, backend, args.seed)
        rec["compile"] = comp
        _log(f"  result check ({check_steps} steps, float64) ...")
        rec["check"] = check_config(cfg, X, y, backend, check_steps, args.seed, torch)
        _log("  timing ...")
        rec["timings"] = time_config(cfg, data, args, backend, torch, columns)
        t_main = rec["timings"][main_col]["median_s"]
        rec["speedup"] = {f"vs_{c}": rec["timings"][c]["median_s"] / t_main for c in columns if c != main_col}
        for c in columns:
            d = rec["timings"][c].get(f"final_rel_diff_vs_{main_col}")
            if d is not None and d > EPOCH_WARN_REL32:
                _log(f"  WARNING: after the timed float32 epoch, {c}'s weights differ from {main_col}'s "
                     f"by {d:.3g} (relative norm); the float64 check passed, so this is rounding growth")
        if main_col == "fastnn-numba":
            rec["targets_met"] = {
                "vs_numpy": rec["speedup"].get("vs_numpy", 0) >= cfg.target_numpy if "numpy" in columns else None,
                "vs_torch": rec["speedup"].get("vs_torch", 0) >= cfg.target_torch if torch is not None else None}
        if key == "c":
            flops = cfg.dense_flops(len(X))
            per = {}
            for c in columns:
                g = flops / rec["timings"][c]["median_s"] / 1e9
                per[c] = {"gflops": g, "fraction_of_matmul": g / res["matmul"]["gflops"] if "matmul" in res else None}
            rec["gflops"] = {"dense_gflop_per_epoch": flops / 1e9, "min_gflop_per_epoch": cfg.min_flops(len(X)) / 1e9,
                             "counting": "6 FLOPs per weight per sample (forward, weight gradient, input "
                                         "gradient, for every layer)", "per_column": per}
            if "matmul" not in res:
                for v in per.values():
                    v.pop("fraction_of_matmul")
        res["configs"][key] = rec
    if "matmul" in res:
        res["matmul"] = _merge_matmul(res["matmul"], matmul_gflops(res["matmul"]["n"]))
        for rec in res["configs"].values():
            for v in rec.get("gflops", {}).get("per_column", {}).values():
                v["fraction_of_matmul"] = v["gflops"] / res["matmul"]["gflops"]
    if args.time_to_accuracy:
        recipe = args._recipe
        recipe.max_epochs = args.tta_max_epochs or (2 if args.quick else recipe.max_epochs)
        _log(f"time to accuracy: {recipe.describe()}")
        res["time_to_accuracy"] = time_to_accuracy(recipe, data, backend, torch, args.seed)
    return res


def make_recipe(args):
    """The time-to-accuracy :class:`Recipe` from the ``--tta-*`` options."""
    recipe = Recipe()
    if args.tta_arch:
        try:
            sizes = tuple(int(v) for v in args.tta_arch.replace(",", "-").split("-"))
        except ValueError:
            raise ValueError(f"--tta-arch must look like 784-256-10, got {args.tta_arch!r}") from None
        if len(sizes) < 2 or sizes[0] != 784 or sizes[-1] != 10 or min(sizes) < 1:
            raise ValueError(f"--tta-arch must start with 784 and end with 10, got {args.tta_arch!r}")
        recipe.sizes = sizes
    if args.tta_optimizer == "momentum":
        recipe.optimizer, recipe.momentum, recipe.lr = "momentum", 0.9, 0.05
    if args.tta_lr is not None:
        if not args.tta_lr > 0:
            raise ValueError("--tta-lr must be > 0")
        recipe.lr = args.tta_lr
    if args.tta_batch is not None:
        if args.tta_batch < 1:
            raise ValueError("--tta-batch must be >= 1")
        recipe.batch_size = args.tta_batch
    return recipe


def _default_out():
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("bench-results", f"bench-{stamp}.json")


def main(argv=None):
    """Command-line entry point (``python -m fastnn.bench``, ``fastnn bench``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args._argv = argv
    if args.backend == "cuda":
        return _dispatch_cuda(argv)
    try:
        res = run_bench(args)
    except BenchCheckError as exc:
        _log("\n" + "!" * 72 + f"\nfastnn.bench: {exc}\n" + "!" * 72)
        return EXIT_CHECK_FAILED
    except ValueError as exc:
        _log(f"fastnn.bench: {exc}")
        return EXIT_USAGE
    except SystemExit as exc:
        if isinstance(exc.code, str):
            _log(exc.code)
            return EXIT_USAGE
        raise
    report = markdown_report(res)
    res["markdown"] = report
    print(report)
    out = args.out or _default_out()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=2, default=_json_default)
    _log(f"results written to {out}")
    return EXIT_OK


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


if __name__ == "__main__":
    sys.exit(main())
