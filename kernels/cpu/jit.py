"""The one jit helper of the CPU kernels: every compiled function in ``kernels/cpu`` is
made with :func:`jit` or :func:`pjit`, so fastmath and caching are set in one place
(:mod:`.config`); ``tests/test_layering.py`` keeps it that way.

Scalars enter compiled code as float64 and integer codes as int64, whatever the
caller passed, so each kernel compiles once per array dtype (float32, float64).
"""

from numba import njit

from fastnn.kernels import cache
from fastnn.kernels.cpu import config

cache.install()  # kernels cache in a folder named by their sources' hash (kernels/cache.py)


def _njit(fn, opts):
    try:
        return njit(**opts)(fn)
    except RuntimeError:
        # Numba raises "cannot cache function ...: no locator available" when no
        # cache directory is writable (a read-only install with an unwritable
        # home and NUMBA_CACHE_DIR). Compiling on every run still works.
        if not opts.get("cache"):
            raise
        return njit(**dict(opts, cache=False))(fn)


def jit(fn=None, **kw):
    """``@njit`` with fastnn's fastmath and cache settings, releasing the GIL (``nogil``), so
    that fits in several Python threads run their kernels in parallel.

    Cached (``cache=True``) in :func:`fastnn.kernels.cache.cache_dir`, a folder named by
    a hash of every kernel source; uncached when it cannot be written.
    """
    opts = dict(cache=config.CACHE and cache.cache_dir() is not None, fastmath=config.FASTMATH,
                error_model="numpy", nogil=True)
    opts.update(kw)
    if fn is None:
        return lambda f: _njit(f, opts)
    return _njit(fn, opts)


def pjit(fn):
    """``@njit(parallel=True)`` with fastnn's settings (``prange`` loops run on threads)."""
    return jit(fn, parallel=True)
