"""Finite-difference gradient checking (seed 003's check, made to assert)."""

import numpy as np

from fastnn.costs import get_cost


class GradientCheckError(AssertionError):
    """Raised by :func:`gradcheck` when backprop and finite differences disagree."""


def gradcheck(net, X, Y, cost, eps=1e-6, tol=1e-5, max_params=None, seed=0, backend="numpy"):
    """Compare backprop gradients with central differences, in float64.

    Works on a float64 copy of ``net``; ``net`` itself is not modified.

    Parameters
    ----------
    net : Sequential
    X, Y : inputs and targets (as for ``fit``)
    cost : Cost
    eps : float
        Step of the central difference ``(J(p + eps) - J(p - eps)) / (2 eps)``.
    tol : float
        Largest acceptable relative error.
    max_params : int, optional
        Check only this many parameters, chosen at random (from ``seed``).
    backend : str
        Backend whose forward/backward kernels are checked.

    Returns
    -------
    float
        The maximum relative error ``|a - n| / max(|a| + |n|, 1e-8)`` over the
        checked parameters.

    Raises
    ------
    GradientCheckError
        If that error exceeds ``tol``.
    """
    from fastnn.backends import get_ops

    cost = get_cost(cost)
    ops = get_ops(backend)
    n64 = net.astype(np.float64).eval()  # Dropout off: a new mask each evaluation would spoil the differences
    tg = cost.prepare(Y, n64.outsize, np.float64)
    X = np.asarray(X, np.float64)

    out = n64.forward(X, ops)
    n64.backward(cost.grad(out, tg.T), ops)
    analytic = n64.grads.copy()

    def J():
        return cost.value(n64.forward(X, ops), tg.T)

    idx = np.arange(n64.n_params)
    if max_params is not None and max_params < idx.size:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_params, replace=False))
    p = n64.params
    numeric = np.empty(idx.size)
    for j, i in enumerate(idx):
        old = p[i]
        p[i] = old + eps
        jp = J()
        p[i] = old - eps
        jm = J()
        p[i] = old
        numeric[j] = (jp - jm) / (2 * eps)
    a = analytic[idx]
    rel = np.abs(a - numeric) / np.maximum(np.abs(a) + np.abs(numeric), 1e-8)
    err = float(rel.max()) if rel.size else 0.0
    if not err <= tol:
        worst = int(idx[rel.argmax()])
        raise GradientCheckError(
            f"gradient check failed: max relative error {err:.3g} > tol {tol:g} at parameter {worst} "
            f"(backprop {analytic[worst]:.6g}, finite difference {numeric[rel.argmax()]:.6g})")
    return err
