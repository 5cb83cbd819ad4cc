"""What every ``fastnn`` command shares: exit statuses, :class:`UsageError`, output,
the backend check, progress callbacks and saving figures."""

import contextlib
import os
import signal
import sys

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class UsageError(Exception):
    """A mistake in the command line or its input files; shown as one line, exit 2."""


def _say(*args, file=None):
    print(*args, file=file or sys.stdout, flush=True)


def _progress(quiet):
    """Bars on a terminal; otherwise one line per epoch; nothing with --quiet."""
    from fastnn.callbacks import EpochLogger, ProgressBar

    if quiet:
        return []
    bar = ProgressBar()
    return [bar] if bar.enabled else [EpochLogger(sys.stdout)]


def _check_backend(name):
    from fastnn.backends import BackendUnavailable, resolve_backend

    try:
        return resolve_backend(name)
    except BackendUnavailable as exc:
        raise UsageError(f"--backend {name}: {exc}") from None


def _savefig(fig, directory, name):
    path = os.path.join(directory, name)
    fig.savefig(path, dpi=fig.dpi)
    return path


def plural(n, word):
    """``1 epoch``, ``3 epochs``; ``1 batch``, ``2 batches``."""
    if n == 1:
        return f"1 {word}"
    # "batch" -> "batches", but "epoch" -> "epochs" (a hard "ch")
    sibilant = word.endswith(("sh", "s", "x")) or (word.endswith("ch") and not word.endswith("och"))
    return f"{n} {word}es" if sibilant else f"{n} {word}s"


def fmt_value(v):
    """A metric for the terminal: 4 decimals, or scientific notation when that would show 0."""
    v = float(v)
    return f"{v:.4f}" if v == 0 or 1e-3 <= abs(v) < 1e6 else f"{v:.3e}"


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM while a file is written: one that comes meanwhile is
    delivered right after (POSIX; elsewhere nothing is held)."""
    held = {signal.SIGINT, signal.SIGTERM}
    can = hasattr(signal, "pthread_sigmask")
    if can:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        if can:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
