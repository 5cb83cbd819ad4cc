"""Plain-loop versions of :mod:`.simd`'s intrinsics: the same names, the same results bit for
bit (the same multiplies and adds, in the same order), slower.

The per-sample epoch uses them with ``FASTNN_SIMD=0``, and falls back to them by itself
when the LLVM intrinsics fail to compile (an LLVM that rejects their IR).
"""

from fastnn.kernels.cpu import config
from fastnn.kernels.cpu.jit import jit


def bind(namespace, names):
    """Put this module's versions of ``names`` into ``namespace`` (a kernel module's globals:
    Numba resolves them when it next compiles, so a failed intrinsic compile can be retried)."""
    for name in names:
        namespace[name] = globals()[name]


def switch(namespace, names):
    """The ``(use_plain_loops, uses_simd)`` pair of a kernel module whose jitted code calls
    the row kernels ``names`` (the module's ``globals()``, which hold :mod:`.simd`'s
    intrinsics): the first binds this module's loops from now on (at once with
    ``FASTNN_SIMD=0``), the second says whether the intrinsics are still bound."""
    def use_plain_loops():
        """Compile the module's kernels with :mod:`.plain`'s loops from now on."""
        bind(namespace, names)

    def uses_simd():
        """Whether the module's kernels are compiled with the LLVM-vector intrinsics."""
        return namespace[names[0]] is not globals()[names[0]]

    if not config.SIMD:
        use_plain_loops()
    return use_plain_loops, uses_simd


@jit
def axpy_rows(h, W, rows, v, m):
    """``h[:n] = sum_{k < m} v[k] * W[rows[k], :n]`` (n = len(h)), summed in ``k`` order."""
    n = h.shape[0]
    for j in range(n):
        h[j] = 0
    for k in range(m):
        a = v[k]
        w = W[rows[k]]
        for j in range(n):
            h[j] += a * w[j]


@jit
def sgd_rows(W, rows, v, m, d, lr):
    """``W[rows[k], :n] -= lr * (v[k] * d[:n])`` for ``k < m`` (n = len(d)), in place."""
    n = d.shape[0]
    for k in range(m):
        a = v[k]
        w = W[rows[k]]
        for j in range(n):
            w[j] -= lr * (a * d[j])


@jit
def nonzeros(idx, val, x):
    """Indices and values of the non-zeros of ``x`` into ``idx``, ``val``; returns their count."""
    m = 0
    for i in range(x.shape[0]):
        if x[i] != 0:
            idx[m] = i
            val[m] = x[i]
            m += 1
    return m


@jit
def prefetch(x):
    """A cache hint in :mod:`.simd`; nothing here."""
    return
