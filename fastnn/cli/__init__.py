"""The ``fastnn`` command (also ``python -m fastnn``).

Commands: ``demo``, ``train``, ``evaluate``, ``predict``, ``export``, ``bench``, ``info``; each
has ``--help``. A user mistake (a missing file, a bad layer list, an unknown option
value, layer sizes that do not fit the data) prints a message saying what is wrong
(one line, or a few for a long explanation such as where MNIST was looked for) and
exits with status 2; set ``FASTNN_DEBUG=1`` to get the traceback instead.

:func:`main` takes the argument list and returns the exit status, so it can be
called in-process (the tests do).
"""

import argparse
import os
import sys

from fastnn.cli._common import EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from fastnn.cli.data import load_data
from fastnn.cli.demo import cmd_demo
from fastnn.cli.export import cmd_export
from fastnn.cli.info import cmd_bench, cmd_info, cmd_warmup
from fastnn.cli.parser import ACTIVATIONS, BACKENDS, COSTS, DEMOS, OPTIMIZERS, build_parser
from fastnn.cli.train import build_net, cmd_evaluate, cmd_predict, cmd_train, parse_layers

__all__ = [
    "main", "build_parser", "UsageError", "EXIT_USAGE", "EXIT_INTERRUPTED",
    "ACTIVATIONS", "COSTS", "OPTIMIZERS", "BACKENDS", "DEMOS",
    "load_data", "parse_layers", "build_net",
    "cmd_demo", "cmd_train", "cmd_evaluate", "cmd_predict", "cmd_bench", "cmd_info", "cmd_warmup",
    "cmd_export",
]


def _message(exc):
    """The error's text with its own line breaks (a long explanation stays readable), each
    line's surrounding space trimmed."""
    msg = "\n".join(line.strip() for line in str(exc).strip().splitlines())
    return msg or type(exc).__name__


def main(argv=None):
    """Run the ``fastnn`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["bench"]:
        # argparse's REMAINDER drops a leading option such as --help: pass everything on as is.
        return cmd_bench(argparse.Namespace(bench_args=argv[1:]))
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else 0
        if args.command is None:
            raise UsageError("choose a command: " + ", ".join(
                ("demo", "train", "evaluate", "predict", "export", "bench", "info", "warmup")) + " (fastnn --help)")
        return args.func(args)
    except BrokenPipeError:
        # `fastnn predict ... | head`: the reader left; stop quietly, as Unix tools do.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except UsageError as exc:
        if os.environ.get("FASTNN_DEBUG"):
            raise
        msg = _message(exc)
        print(msg if msg.startswith("fastnn") else f"fastnn: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # a second Ctrl-C (fit's first one stops training cleanly), e.g. while the test set is
        # evaluated: the model was saved before that
        print("fastnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:
        # Bad input the library refused (it checks before changing anything): wrong sizes,
        # bad targets, unreadable or corrupted model files, unwritable paths.
        if os.environ.get("FASTNN_DEBUG"):
            raise
        print(f"fastnn: error: {_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
