"""``python -m fastnn.bench``: the whole-epoch benchmark (see :mod:`fastnn.bench`)."""

import sys

from fastnn.bench.cli import main

sys.exit(main())
