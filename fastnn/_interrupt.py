"""Stopping ``fit`` cleanly on Ctrl-C (SIGINT) and SIGTERM: a flag the epoch loop checks
between chunks of batches, so nothing is ever left half-updated."""

import signal
import threading

#: The signals ``fit`` turns into a clean stop: Ctrl-C, and what batch schedulers send.
SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s)


class StopGuard:
    """While active, the first SIGINT or SIGTERM sets :attr:`flag` (and :attr:`signum`)
    instead of interrupting; the handlers then go back to the previous ones, so a second
    signal acts at once (normally a KeyboardInterrupt, or termination for SIGTERM).

    Handlers can only be installed from the main thread; elsewhere the guard is inactive.
    A signal whose handler is SIG_IGN (``nohup``, background jobs) stays ignored.
    """

    def __init__(self):
        self.flag = self.active = False
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in SIGNALS:
            old = signal.getsignal(sig)
            if old is signal.SIG_IGN:
                continue
            try:
                signal.signal(sig, self._handle)
            except ValueError:  # e.g. a sub-interpreter
                continue
            self._old[sig] = old if old is not None else signal.SIG_DFL
        self.active = bool(self._old)
        return self

    def _handle(self, signum, frame):
        self.flag, self.signum = True, signum
        self._restore()

    def _restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def __exit__(self, *exc):
        self._restore()
        self.active = False
