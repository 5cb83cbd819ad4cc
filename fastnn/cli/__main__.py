"""``python -m fastnn.cli``, the same as ``python -m fastnn`` and the ``fastnn`` command."""

import sys

from fastnn.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
