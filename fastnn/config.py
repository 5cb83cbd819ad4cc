"""The one place for fastnn's performance knobs.

* Threads: :func:`set_num_threads` / :func:`get_num_threads` (Numba's thread pool,
  used by the ``"numba"`` backend's parallel kernels). The upper bound, and the
  default, is ``NUMBA_NUM_THREADS`` (Numba reads it at start-up; by default the
  number of CPU cores).
* fastmath: :data:`FASTMATH`, the LLVM fast-math flags every ``@njit`` kernel is
  compiled with. It is read once, at import, from the environment variable
  ``FASTNN_FASTMATH``:

  - unset or ``0`` (default): strict IEEE arithmetic. The compiled kernels then
    round exactly like the NumPy reference wherever they add in the same order,
    and training in float64 matches the ``"numpy"`` backend to ~1e-12. The hot
    loops of fastnn are axpy-shaped (no reductions), so LLVM vectorises them
    without fast-math anyway.
  - ``1``: ``{"contract", "reassoc", "nsz", "arcp"}``: allows FMA contraction and
    re-associated (vectorised) sums, but keeps NaN/inf semantics. Results then
    differ from the reference in the last bits; float32 tolerances still hold.

  Numba's on-disk cache does not key compiled code on the fast-math flags, so
  with ``FASTNN_FASTMATH=1`` the kernels are not cached (:data:`CACHE` is False)
  and compile in every process: switching the setting can never load machine code
  built for the other one.
* :data:`PARALLEL_MIN_WORK`: the multiply-adds per minibatch below which the fused
  training kernels stay on one thread, because waking the thread pool (a few
  microseconds per parallel region) costs more than it saves.
* :data:`PARALLEL` (env ``FASTNN_PARALLEL``): ``"auto"`` (default) times a few
  batches on one thread and on all threads at the start of every epoch and keeps
  the faster; ``"1"`` always uses the threads (above ``PARALLEL_MIN_WORK``); ``"0"``
  never. Measuring matters: on a busy machine (more runnable processes than cores)
  every parallel region waits for a descheduled thread, and two threads can be
  several times *slower* than one. Results never depend on this setting: every
  threaded kernel sums in the same order as the serial one.
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


#: LLVM fast-math flags for the compiled CPU kernels (False = strict IEEE).
FASTMATH = _read_fastmath(os.environ.get("FASTNN_FASTMATH"))

#: Multiply-adds per minibatch below which fused training runs on one thread.
PARALLEL_MIN_WORK = 200_000


def _read_parallel(value):
    v = (value or "auto").strip().lower()
    if v not in ("auto", "0", "1"):
        raise ValueError(f"FASTNN_PARALLEL must be auto, 0 or 1, got {value!r}")
    return v


#: "auto" (measure per epoch), "1" (always thread big batches) or "0" (one thread).
PARALLEL = _read_parallel(os.environ.get("FASTNN_PARALLEL"))


#: Whether the compiled kernels use Numba's on-disk cache (``cache=True``).
CACHE = not FASTMATH


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
