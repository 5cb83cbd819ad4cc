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
machine's details. ``--backend cuda`` hands over to ``fastnn.bench.cuda``.

The package, by concern: :mod:`~fastnn.bench.configs` (the configurations, the
time-to-accuracy recipe, network building and data), :mod:`~fastnn.bench.peers` (the
NumPy/CuPy loop and PyTorch), :mod:`~fastnn.bench.timing` (result check, compile probes,
timings), :mod:`~fastnn.bench.report` (machine details, Markdown, JSON),
:mod:`~fastnn.bench.cli` (options and the run) and :mod:`~fastnn.bench.cuda` (the GPU
benchmark). The names below are importable from ``fastnn.bench`` itself.
"""

from fastnn.bench.configs import (CHECK_ATOL64, CHECK_RTOL64, CONFIGS, EPOCH_WARN_REL32,
                                  EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, BenchCheckError, Config,
                                  Recipe, flat, load_data, make_cost, make_net, make_optimizer,
                                  net_arrays, shuffle_order, synthetic_data)
from fastnn.bench.peers import TorchRun, import_torch, numpy_targets, numpy_train
from fastnn.bench.timing import (check_config, cold_and_cached, compile_probe, first_fit_compile,
                                 matmul_gflops, time_config, time_to_accuracy)
from fastnn.bench.report import COLUMN_TITLES, machine_info, markdown_report
from fastnn.bench.cli import (build_parser, default_threads, main, make_recipe, resolve_backend,
                              run_bench, thread_settings)

__all__ = [
    "EXIT_OK", "EXIT_USAGE", "EXIT_CHECK_FAILED", "CHECK_RTOL64", "CHECK_ATOL64", "EPOCH_WARN_REL32",
    "BenchCheckError", "Config", "CONFIGS", "Recipe", "make_net", "make_cost", "make_optimizer",
    "net_arrays", "flat", "shuffle_order", "synthetic_data", "load_data",
    "numpy_train", "numpy_targets", "import_torch", "TorchRun",
    "matmul_gflops", "check_config", "first_fit_compile", "compile_probe", "cold_and_cached",
    "time_config", "time_to_accuracy",
    "COLUMN_TITLES", "machine_info", "markdown_report",
    "build_parser", "main", "run_bench", "make_recipe", "resolve_backend", "thread_settings",
    "default_threads",
]
