"""Numba CPU kernels: the same names and signatures as :mod:`fastnn.kernels.reference`.

* :mod:`.ops` -- one compiled kernel per reference op, behind thin wrappers that
  check input and allocate outputs (re-exported here).
* :mod:`.fused` -- whole-epoch training and inference loops for plain MLPs, used
  by the ``"numba"`` backend (:class:`fastnn.backends.numba_cpu.NumbaOps`).

Compile settings (fastmath, caching, threads) live in :mod:`fastnn.config`.
"""

from fastnn.kernels.cpu.ops import *  # noqa: F401,F403
from fastnn.kernels.cpu.ops import __all__  # noqa: F401
