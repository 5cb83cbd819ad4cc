"""Knobs of the CUDA kernels, in one place.

Launchers read these module attributes at every call and fetch kernels compiled
for the current values (see :func:`fastnn.kernels.cuda._kernels.build`), so a test
can shrink the blocks for the simulator by assigning them, and a user can tune
them with environment variables before the first launch.

Environment variables (read once, at import):

``FASTNN_CUDA_TILE``  side of the square thread block of the matmul kernels (16)
``FASTNN_CUDA_WPT``   outputs per thread along each side of a matmul tile (2),
                      so a block computes a (TILE*WPT) x (TILE*WPT) tile of C
``FASTNN_CUDA_TPB``   threads per block of the 1-D kernels (256)
``FASTNN_CUDA_FASTMATH``  1 to compile with fastmath (approximate exp/div, FTZ) (0)
``FASTNN_CUDA_CACHE``     1 to cache compiled kernels on disk (``cuda.jit(cache=True)``) (0).
                      numba-cuda supports it, closures included (it hashes their cells),
                      but it has not run on a GPU here yet: opt-in until it has.
"""

import os


def _env_int(name, default, lo, hi):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{name} must lie in {lo}..{hi}, got {v}")
    return v


#: Side of the (TILE, TILE) thread block of the tiled matmuls; TILE*TILE <= 1024.
TILE = _env_int("FASTNN_CUDA_TILE", 16, 1, 32)
#: Register blocking: each matmul thread computes WPT x WPT outputs.
WPT = _env_int("FASTNN_CUDA_WPT", 2, 1, 8)
#: Threads per block of the elementwise, row-wise and reduction kernels (a power of 2).
TPB = _env_int("FASTNN_CUDA_TPB", 256, 1, 1024)
#: fastmath for every kernel. Off by default so results track the NumPy reference.
FASTMATH = bool(_env_int("FASTNN_CUDA_FASTMATH", 0, 0, 1))
#: cuda.jit(cache=True) for every kernel (see the module docstring).
CACHE = bool(_env_int("FASTNN_CUDA_CACHE", 0, 0, 1))
#: Architectures the PTX compile check builds for (compute capability tuples).
PTX_ARCHS = ((8, 0), (9, 0))


def check():
    """Raise ValueError when the current knob values cannot be launched."""
    if TILE * TILE > 1024 or TILE < 1:
        raise ValueError(f"TILE={TILE}: a block of TILE*TILE threads must have at most 1024 threads")
    if WPT < 1:
        raise ValueError(f"WPT must be >= 1, got {WPT}")
    if TPB < 1 or TPB > 1024 or TPB & (TPB - 1):
        raise ValueError(f"TPB must be a power of two in 1..1024, got {TPB}")
