"""``fastnn info`` (versions, backends, threads, GPU, numba cache) and ``fastnn bench``."""

import importlib
import os
import sys

import numpy as np

from fastnn.cli._common import _say


def cmd_bench(args):
    try:
        # import_module looks in sys.modules first; `from fastnn import bench` would take the
        # package attribute once anything imported the module.
        bench = importlib.import_module("fastnn.bench")
    except ImportError as exc:
        _say(f"fastnn bench: the benchmark module is not available in this installation ({exc})",
             file=sys.stderr)
        return 1
    try:
        return bench.main(list(args.bench_args), prog="fastnn bench") or 0
    except SystemExit as exc:  # its own argparse (--help, usage errors)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def cmd_warmup(args):
    import fastnn as fn

    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    _say(f"compiling the numba kernels for {' and '.join(dtypes)} (a minute or so the first time)...")
    out = fn.warmup(dtypes, report=lambda line: _say("  " + line))
    _say(f"done in {sum(out.values()):.1f} s; later fits load the kernels from the cache")
    return 0


def _gpu_line():
    try:
        from numba import cuda
    except Exception as exc:  # numba-cuda missing or broken: say why, never fail
        return f"none (numba.cuda cannot be imported: {exc})"
    try:
        if not cuda.is_available():
            return "none (numba.cuda finds no usable CUDA GPU or driver)"
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
        return f"{name} (compute capability {dev.compute_capability[0]}.{dev.compute_capability[1]})"
    except Exception as exc:
        return f"none ({exc})"


def cmd_info(args):
    import numba

    import fastnn as fn

    _say(f"fastnn {fn.__version__}  (python {sys.version.split()[0]}, numpy {np.__version__}, "
         f"numba {numba.__version__})")
    avail = fn.available_backends()
    try:
        default = fn.get_backend()
    except Exception as exc:  # e.g. a bad FASTNN_BACKEND
        default = f"? ({exc})"
    _say(f"default backend: {default}")
    _say("backends:")
    for name, why in avail.items():
        _say(f"  {name:<6} " + ("available" if why is None else f"unavailable: {why}"))
    try:
        from fastnn.config import get_num_threads
        threads = get_num_threads()
    except ImportError:
        threads = numba.get_num_threads()
    _say(f"threads: {threads} (NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}, "
         f"CPU cores: {os.cpu_count()})")
    _say(f"GPU: {_gpu_line()}")
    from fastnn.kernels import cache

    where = cache.cache_dir()
    if where is None:
        _say(f"numba cache dir: none ({cache.base_dir()} is not writable: kernels compile in every process; "
             "set FASTNN_CACHE_DIR to a writable folder)")
    else:
        _say(f"numba cache dir: {where} (named by a hash of the kernel sources; delete "
             f"{where.parent} to clear it; FASTNN_CACHE_DIR chooses the base folder)")
    return 0
