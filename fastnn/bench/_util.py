"""Small helpers shared by the benchmark modules: clock, median, logging, comparisons."""

import statistics
import sys
import time

import numpy as np


def _now():
    return time.perf_counter()


def _median(xs):
    return float(statistics.median(xs)) if xs else None


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _max_rel_err(got, ref, rtol, atol):
    """(max |got-ref|, worst ratio |got-ref| / (atol + rtol |ref|)); ratio <= 1 passes."""
    err = np.abs(got - ref)
    return float(err.max()), float((err / (atol + rtol * np.abs(ref))).max())


def _rel_norm_diff(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))

