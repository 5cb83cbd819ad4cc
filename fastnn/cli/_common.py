"""What every ``fastnn`` command shares: exit statuses, :class:`UsageError`, output,
the backend check, progress callbacks and saving figures."""

import os
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
