"""Threads of the ``"numba"`` backend in fits: capped in joblib and Dask worker processes
(:func:`worker_thread_cap`), and fits taking turns on Numba's workqueue threading layer."""

import contextlib
import os
import sys
import threading

# -- threads in worker processes ---------------------------------------------------------

def _env_int(name):
    v = os.environ.get(name, "").strip()
    return int(v) if v.isdigit() and int(v) > 0 else None


def worker_thread_cap():
    """How many threads one fit may use here, or None for no cap (the main process).

    * In a Dask worker: ``OMP_NUM_THREADS`` (Dask's nanny sets it to 1 for every
      worker process), else the cores divided by the worker's task threads.
    * In a joblib/loky worker process (``GridSearchCV(n_jobs=k)``): the
      ``NUMBA_NUM_THREADS`` that joblib exports to its workers, ``cores // k``.

    Either way the workers of a search together use each core once.
    """
    if "distributed" in sys.modules:  # only a process that imported it can be a Dask worker
        try:
            from distributed import get_worker

            worker = get_worker()
        except (ImportError, ValueError):
            worker = None
        if worker is not None:
            cap = _env_int("OMP_NUM_THREADS")
            if cap is None:
                nthreads = getattr(getattr(worker, "state", worker), "nthreads", 1) or 1
                cap = max(1, (os.cpu_count() or 1) // nthreads)
            return cap
    import multiprocessing

    if type(multiprocessing.current_process()).__name__ == "LokyProcess":
        return _env_int("NUMBA_NUM_THREADS") or 1
    return None


def _thread_functions():
    try:
        from fastnn import config

        return config.get_num_threads, config.set_num_threads
    except (ImportError, AttributeError):
        import numba

        return numba.get_num_threads, numba.set_num_threads


# Numba's "workqueue" threading layer aborts the process when two threads enter it at
# once (e.g. a Dask worker running several fits in threads); fits then take turns.
_WORKQUEUE_LOCK = threading.RLock()  # re-entrant: early stopping predicts inside a fit


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # not started yet
        return None


@contextlib.contextmanager
def _limit_threads(ops):
    """While fitting or predicting on the numba backend: cap its thread pool in a
    worker (thread-locally, restored afterwards), and serialise fits when Numba's
    threading layer is not thread-safe."""
    if getattr(ops, "name", None) != "numba":
        yield None
        return
    cap = worker_thread_cap()
    get, set_ = _thread_functions()
    old = get()  # also starts Numba's threading layer, so that it can be asked for
    guard = _WORKQUEUE_LOCK if _threading_layer() == "workqueue" else contextlib.nullcontext()
    with guard:
        if cap is None or cap >= old:
            yield old
            return
        set_(cap)
        try:
            yield cap
        finally:
            set_(old)
