"""fastnn's compute kernels, installed as ``fastnn.kernels``.

* ``reference`` -- pure NumPy, one forward/backward pair per op: the oracle and the
  "numpy" backend.
* ``cpu`` -- Numba ``@njit`` kernels with the same names and signatures.
* ``cuda`` -- numba.cuda kernels with host launchers of the same names again.

Only ``reference`` is imported eagerly; the compiled backends are imported on
first use so that ``import fastnn`` stays fast.
"""

from . import reference

__all__ = ["reference"]
