"""Numba CPU kernels: the same names and signatures as :mod:`fastnn.kernels.reference`.

* :mod:`.ops` -- one compiled kernel per reference op, behind thin wrappers that check
  input and allocate outputs (re-exported here);
* ``epoch_online``, ``epoch_minibatch``, ``epoch_blas`` -- whole-epoch training loops
  of plain MLPs, one module per path, each with a ``train`` entry point;
* :mod:`.predict` -- compiled inference of plain MLPs;
* building blocks shared by all of them: :mod:`.rows` (per-row activations and costs),
  :mod:`.linear` (row-blocked matmuls), :mod:`.update` (the flat optimizer step),
  :mod:`.sparse` (the first layer on sparse input), :mod:`.simd` (LLVM-vector
  intrinsics), :mod:`.views` (views of the flat buffers);
* :mod:`.jit` -- the one jit helper; :mod:`.config` -- the knobs (fastmath, cache,
  threads policy), which ``fastnn.config`` sets and re-exports.
"""

from fastnn.kernels.cpu.ops import *  # noqa: F401,F403
from fastnn.kernels.cpu.ops import __all__  # noqa: F401
