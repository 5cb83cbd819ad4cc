"""fastnn's performance knobs, in one place for the user.

* Threads: :func:`set_num_threads` / :func:`get_num_threads` (Numba's thread pool, used
  by the ``"numba"`` backend's parallel kernels; the upper bound and default is
  ``NUMBA_NUM_THREADS``, by default the number of cores).
* The compiled CPU kernels' knobs -- ``FASTMATH`` (env ``FASTNN_FASTMATH``), ``CACHE``,
  ``PARALLEL`` (env ``FASTNN_PARALLEL``), ``PARALLEL_MIN_WORK``, ``PAR_MIN_WORK``,
  ``PAR_AUTO_WORK`` -- live in :mod:`fastnn.kernels.cpu.config` (see there for their
  meaning), because the kernels read them and kernels never import the API. They are
  re-exported here: reading ``fastnn.config.PARALLEL`` reads the kernels' value, and
  assigning it sets the kernels' value.
* The CUDA kernels' knobs are in :mod:`fastnn.kernels.cuda.config`.
"""

import os
import sys
import types

from fastnn.kernels.cpu import config as _kernel_config

#: Whether ``fit`` says on stderr that it is compiling kernels (first run only) and how long
#: it took, when no progress callback shows it (env ``FASTNN_COMPILE_NOTICES=0``: never).
COMPILE_NOTICES = os.environ.get("FASTNN_COMPILE_NOTICES", "1").strip() not in ("0", "false", "no", "off")

#: The knobs that live in :mod:`fastnn.kernels.cpu.config`.
KERNEL_KNOBS = ("FASTMATH", "CACHE", "PARALLEL", "PARALLEL_MIN_WORK", "PAR_MIN_WORK", "PAR_AUTO_WORK")
_read_fastmath = _kernel_config._read_fastmath
_read_parallel = _kernel_config._read_parallel


def set_num_threads(n):
    """Use ``n`` threads in the ``"numba"`` backend's parallel kernels.

    Parameters
    ----------
    n : int
        1 <= n <= ``NUMBA_NUM_THREADS`` (the number of cores unless that variable
        says otherwise).

    Raises
    ------
    ValueError
        For a value outside that range.
    """
    import numba

    hi = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= hi:
        raise ValueError(f"number of threads must be an integer in 1..{hi} (NUMBA_NUM_THREADS), got {n!r}")
    numba.set_num_threads(n)


def get_num_threads():
    """Number of threads the ``"numba"`` backend's parallel kernels use now."""
    import numba

    return numba.get_num_threads()


class _Config(types.ModuleType):
    """This module, with the kernel knobs forwarded to :mod:`fastnn.kernels.cpu.config`."""

    def __getattr__(self, name):
        if name in KERNEL_KNOBS:
            return getattr(_kernel_config, name)
        raise AttributeError(f"module 'fastnn.config' has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in KERNEL_KNOBS:
            setattr(_kernel_config, name, value)
        else:
            super().__setattr__(name, value)

    def __delattr__(self, name):
        if name not in KERNEL_KNOBS:  # the knobs cannot be removed, only set
            super().__delattr__(name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(KERNEL_KNOBS))


sys.modules[__name__].__class__ = _Config
