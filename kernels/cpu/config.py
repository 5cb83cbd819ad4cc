"""Knobs of the compiled CPU kernels, in one place (``fastnn.config`` sets and re-exports them).

* :data:`FASTMATH`: the LLVM fast-math flags every ``@njit`` kernel is compiled with,
  read once, at import, from ``FASTNN_FASTMATH``:

  - unset or ``0`` (default): strict IEEE arithmetic. The compiled kernels then round
    exactly like the NumPy reference wherever they add in the same order, and training
    in float64 matches the ``"numpy"`` backend to ~1e-12. fastnn's hot loops are
    axpy-shaped (no reductions), so LLVM vectorises them without fast-math anyway.
  - ``1``: ``{"contract", "reassoc", "nsz", "arcp"}``: FMA contraction and
    re-associated (vectorised) sums, NaN/inf semantics kept. Results then differ from
    the reference in the last bits; float32 tolerances still hold.

  Numba's on-disk cache does not key compiled code on the fast-math flags, so with
  ``FASTNN_FASTMATH=1`` nothing is cached (:data:`CACHE` is False) and the kernels
  compile in every process: switching the setting never loads code built for the other.
* :data:`PARALLEL_MIN_WORK`: multiply-adds per minibatch below which the fused
  training kernels stay on one thread (waking the pool costs microseconds).
* :data:`PARALLEL` (``FASTNN_PARALLEL``): ``"auto"`` (default) decides once per fit, from
  its multiply-adds per batch, against each path's measured crossover (never from
  timings, so a fit gives the same bits every run); ``"1"`` always uses the threads
  (above ``PARALLEL_MIN_WORK``); ``"0"`` never.
  Results never depend on it for fastnn's own kernels: every threaded kernel sums in
  the same order as the serial one.
* :data:`SIMD` (``FASTNN_SIMD``, default 1): the per-sample epoch's first layer through
  LLVM-vector intrinsics (``simd.py``); ``0`` runs plain loops with the same bits.
* :data:`PAR_MIN_WORK`, :data:`PAR_AUTO_WORK`: multiply-adds above which the per-op
  kernels use threads (``PARALLEL == "1"``, resp. ``"auto"``): a parallel region can
  cost a scheduler tick on a busy machine, so per-op calls only thread for big work.
"""

import os

_FASTMATH_FLAGS = {"contract", "reassoc", "nsz", "arcp"}


def _read_fastmath(value):
    v = (value or "0").strip().lower()
    if v in ("0", "", "false", "no", "off"):
        return False
    if v in ("1", "true", "yes", "on"):
        return set(_FASTMATH_FLAGS)
    raise ValueError(f"FASTNN_FASTMATH must be 0 or 1, got {value!r}")


def _read_parallel(value):
    v = (value or "auto").strip().lower()
    if v not in ("auto", "0", "1"):
        raise ValueError(f"FASTNN_PARALLEL must be auto, 0 or 1, got {value!r}")
    return v


#: LLVM fast-math flags for the compiled CPU kernels (False = strict IEEE).
FASTMATH = _read_fastmath(os.environ.get("FASTNN_FASTMATH"))
#: Whether the compiled kernels use Numba's on-disk cache (``cache=True``).
CACHE = not FASTMATH
#: "auto" (thread from each path's measured crossover), "1" (always thread big batches) or "0" (one thread).
PARALLEL = _read_parallel(os.environ.get("FASTNN_PARALLEL"))
#: Whether the per-sample epoch uses the LLVM-vector intrinsics (FASTNN_SIMD=0: plain loops).
SIMD = (os.environ.get("FASTNN_SIMD") or "1").strip() not in ("0", "false", "no", "off")
#: Multiply-adds per minibatch below which fused training runs on one thread.
PARALLEL_MIN_WORK = 200_000
#: Multiply-adds from which the per-op kernels thread (PARALLEL "1", resp. "auto").
PAR_MIN_WORK = 100_000
PAR_AUTO_WORK = 20_000_000


def use_threads(work):
    """Whether a per-op kernel of ``work`` multiply-adds should use threads now."""
    if PARALLEL == "0":
        return False
    return work >= (PAR_MIN_WORK if PARALLEL == "1" else PAR_AUTO_WORK)
