"""The one jit helper of the CUDA kernels: every kernel and device function in
``kernels/cuda`` is compiled through these two functions, so the compile options
(fastmath, from :mod:`.config`) are set in one place; ``tests/test_layering.py``
keeps it that way.
"""

from numba import cuda

from fastnn.kernels.cuda import config


def kernel(fn, fastmath):
    """A ``cuda.jit`` kernel of ``fn`` (compiled lazily at its first launch; cached on disk
    when ``config.CACHE``)."""
    if config.CACHE:
        return cuda.jit(fastmath=fastmath, cache=True)(fn)
    return cuda.jit(fastmath=fastmath)(fn)


def ptx(fn, signature, cc, fastmath):
    """PTX of ``fn`` compiled for ``signature`` and compute capability ``cc`` (the compile check)."""
    text, _ = cuda.compile_ptx(fn, signature, cc=tuple(cc), fastmath=fastmath)
    return text


def device_function(fastmath):
    """A decorator making ``cuda.jit(device=True)`` functions with these options."""
    return cuda.jit(device=True, fastmath=fastmath)
