"""Whole-epoch benchmark: fastnn against a plain NumPy loop, PyTorch CPU and JAX.

Run ``python -m fastnn.bench`` (``--help`` lists the options). For each configuration
of issue 3 (a, b, c) and their dense variants of issue 11 (``a-dense`` ...: standardised
MNIST) it trains one epoch of MNIST (60,000 images) with

* ``fastnn-<backend>``: ``Sequential.fit`` on the chosen backend (numba by default,
  numpy when numba cannot run here);
* ``numpy``: the straightforward vectorised NumPy loop a user would write
  (:func:`numpy_train`), per batch forward, backward and update with NumPy matmuls;
* ``torch``: the same network as ``torch.nn.Linear`` layers and ``torch.optim``,
  when torch is installed;
* ``jax``: the same network in JAX with the whole epoch compiled (``jax.jit`` of
  ``lax.scan``), when jax is installed; its compile time is reported apart;
* ``fastnn-numpy``: fastnn's own pure-NumPy backend (an extra column).

``--config bow`` adds issue 11's bag-of-words problem (a scipy.sparse CSR matrix): fastnn,
scikit-learn's ``MLPClassifier`` and PyTorch with ``torch.sparse.mm``, each in a fresh
interpreter for its peak memory (:mod:`~fastnn.bench.bow`).

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
machine's details. ``--backend cuda`` hands over to ``fastnn.bench.cuda``.

The package, by concern: :mod:`~fastnn.bench.configs` (the configurations, the
time-to-accuracy recipe, network building and data), :mod:`~fastnn.bench.peers` (the
NumPy/CuPy loop and PyTorch), :mod:`~fastnn.bench.jaxpeer` (JAX), :mod:`~fastnn.bench.timing`
(result check, compile probes, timings), :mod:`~fastnn.bench.tta` (time to accuracy),
:mod:`~fastnn.bench.bowdata`, :mod:`~fastnn.bench.bow` and :mod:`~fastnn.bench.bowrun` (the
bag-of-words problem, its run and its per-library process), :mod:`~fastnn.bench.report`
(machine details, Markdown, JSON),
:mod:`~fastnn.bench.cli` (options and the run) and :mod:`~fastnn.bench.cuda` (the GPU
benchmark). The names below are importable from ``fastnn.bench`` itself.
"""

from fastnn.bench.configs import (CHECK_ATOL64, CHECK_RTOL64, CONFIGS, EPOCH_WARN_REL32,
                                  EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, TARGETS, BenchCheckError,
                                  Config, Recipe, dense_data, flat, load_data, make_cost, make_net,
                                  make_optimizer, net_arrays, shuffle_order, standardize,
                                  synthetic_data)
from fastnn.bench.jaxpeer import JaxEpoch, import_jax
from fastnn.bench.peers import TorchRun, import_torch, numpy_targets, numpy_train
from fastnn.bench.timing import (check_config, cold_and_cached, compile_probe, first_fit_compile,
                                 jax_compile, matmul_gflops, time_config)
from fastnn.bench.tta import time_to_accuracy
from fastnn.bench.bow import bow_config, check_bow, run_bow
from fastnn.bench.bowdata import BowModel, BowSpec, make_bow
from fastnn.bench.report import COLUMN_TITLES, bow_report, machine_info, markdown_report
from fastnn.bench.cli import (build_parser, default_threads, main, make_recipe, resolve_backend,
                              run_bench, thread_settings)

__all__ = [
    "EXIT_OK", "EXIT_USAGE", "EXIT_CHECK_FAILED", "CHECK_RTOL64", "CHECK_ATOL64", "EPOCH_WARN_REL32",
    "BenchCheckError", "Config", "CONFIGS", "TARGETS", "Recipe", "make_net", "make_cost",
    "make_optimizer", "net_arrays", "flat", "shuffle_order", "synthetic_data", "load_data",
    "standardize", "dense_data",
    "numpy_train", "numpy_targets", "import_torch", "TorchRun", "import_jax", "JaxEpoch",
    "matmul_gflops", "check_config", "first_fit_compile", "compile_probe", "cold_and_cached",
    "time_config", "jax_compile", "time_to_accuracy",
    "BowSpec", "BowModel", "make_bow", "bow_config", "check_bow", "run_bow",
    "COLUMN_TITLES", "machine_info", "markdown_report", "bow_report",
    "build_parser", "main", "run_bench", "make_recipe", "resolve_backend", "thread_settings",
    "default_threads",
]
