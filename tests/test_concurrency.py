"""Threads (issue 12, section 7): one network is never trained by two fits at once, and a
use_backend block in one thread does not change another thread's backend."""

import threading

import numpy as np
import pytest

import fastnn as fn
from fastnn.callbacks import Callback

X = np.random.default_rng(0).normal(size=(64, 3))
Y = np.arange(64) % 2


class _Pause(Callback):
    """Holds the first fit inside training until the test has tried the second."""

    def __init__(self, started, release):
        self.started, self.release = started, release

    def on_epoch_begin(self, epoch, logs=None):
        self.started.set()
        self.release.wait(30)


def test_training_one_network_from_two_threads_raises():
    net = fn.Sequential(fn.Linear(3, 2), seed=0)
    started, release, errors = threading.Event(), threading.Event(), []

    def first():
        try:
            net.fit(X, Y, fn.CrossEntropy(), fn.SGD(0.1), callbacks=[_Pause(started, release)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    t = threading.Thread(target=first)
    t.start()
    assert started.wait(30)
    before = net.params.copy()
    with pytest.raises(RuntimeError, match="being trained by another fit"):
        net.fit(X, Y, fn.CrossEntropy(), fn.SGD(0.1))
    release.set()
    t.join(30)
    assert not errors and not np.array_equal(net.params, before)  # the first fit finished normally
    net.fit(X, Y, fn.CrossEntropy(), fn.SGD(0.1))  # and the network is free again


def test_use_backend_is_per_thread():
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def worker():
        with fn.use_backend("numpy"):
            seen["worker"] = fn.get_backend()
            inside.set()
            done.wait(30)
    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(30)
    seen["main"] = fn.get_backend()
    done.set()
    t.join(30)
    assert seen["worker"] == "numpy" and seen["main"] == "numba"


def test_fits_of_different_networks_in_threads_match_serial_fits():
    nets = [fn.Sequential(fn.Linear(3, 8), fn.Tanh(), fn.Linear(8, 2), seed=s) for s in range(2)]
    serial = [n.copy() for n in nets]
    for n in serial:
        n.fit(X, Y, fn.CrossEntropy(), fn.SGD(0.1), epochs=5, batch_size=1, seed=0)
    threads = [threading.Thread(target=n.fit, args=(X, Y, fn.CrossEntropy(), fn.SGD(0.1)),
                                kwargs=dict(epochs=5, batch_size=1, seed=0)) for n in nets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for a, b in zip(nets, serial):
        assert np.array_equal(a.params, b.params)
