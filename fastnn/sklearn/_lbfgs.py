"""``solver="lbfgs"``: scipy's L-BFGS-B over fastnn's full-batch loss and gradient, as
scikit-learn's MLPs do it (the same loss, L2 term, options and attributes)."""

import warnings

import numpy as np

from fastnn.backends.plan import batch_weights
from fastnn.optimizers import SGD
from fastnn.sklearn._compat import ConvergenceWarning
from fastnn.training import BatchLoop


def _check_result(res, max_iter):
    """scikit-learn's ``_check_optimize_result("lbfgs", ...)``: the iteration count, with a
    ConvergenceWarning when L-BFGS stopped before converging."""
    try:
        from sklearn.utils.optimize import _check_optimize_result
    except ImportError:  # pragma: no cover - older scikit-learn
        if res.status != 0:
            warnings.warn(f"lbfgs failed to converge (status={res.status}): {res.message}", ConvergenceWarning)
        return min(int(res.nit), max_iter)
    return _check_optimize_result("lbfgs", res, max_iter)


def _iprint_options(verbose):
    iprint = 1 if (verbose is True or verbose >= 1) else -1
    try:
        from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    except ImportError:  # pragma: no cover - older scikit-learn passes iprint itself
        return {"iprint": iprint}
    return _get_additional_lbfgs_options_dict("iprint", iprint)


class LossGrad:
    """``theta -> (loss, grad)`` of a network over the whole training set, in float64.

    The loss is scikit-learn's (the cost times ``loss_scale``, plus ``0.5 * alpha *
    ||W||^2 / n``) and the gradient is the cost's gradient plus ``alpha * W / n`` (for
    multi-output regression scikit-learn's gradient is that of the summed squared error,
    which this keeps, so that the iterations are the same as scikit-learn's). With sample
    weights ``sw`` (n,) the cost is their weighted mean and ``n`` is ``sum(sw)``.

    One call is one whole-batch run (batch = n) of the backend's runner, with a plain SGD
    step of rate 0 that leaves the weights as they are and the gradient in ``net.grads``: on
    a compiled backend its epoch kernel (BLAS products, the sparse first layer on sparse X),
    else :class:`fastnn.training.BatchLoop` (the layers' ops in Python).
    """

    def __init__(self, est, net, cost, X, targets, ops, sw=None):
        n = X.shape[0]
        self.net, self.X = net, X
        self.alpha, self.n = float(est.alpha), n
        self.scale = est._loss_scale()
        self.calls = 0
        still = SGD(1.0)
        still.lr = 0.0  # p - 0 * g == p: a run computes the loss and gradient only
        still.ensure_setup(net)
        # (batch 1 with SGD is the online path, which writes no gradient: the Python loop then)
        self.runner = (ops.make_runner(net, cost, still, X, targets, n) if n > 1 else None) or BatchLoop(
            ops, net, cost, still, X, targets, n)
        if sw is not None:  # each sample's factor on its loss and delta (whose mean the cost takes)
            self.runner.weigh(batch_weights(sw, np.arange(n), n, False)[0], None)
            self.n = float(sw.sum())
        self.order = np.arange(n, dtype=np.int64)

    def __call__(self, theta):
        net = self.net
        net.params[...] = theta
        with np.errstate(over="ignore", invalid="ignore"):
            loss = self.runner.run(self.order, 0, 1)[0] / self.X.shape[0]
            self.runner.finish()
        loss *= self.scale
        w = net.params[:net.n_decay].astype(np.float64)
        loss += 0.5 * self.alpha * float(np.dot(w, w)) / self.n
        grad = net.grads.astype(np.float64)
        grad[:net.n_decay] += self.alpha * w / self.n
        self.calls += 1
        return loss, grad


def fit_lbfgs(est, net, cost, X, targets, ops, sw=None):
    """Minimise the network's loss with L-BFGS-B from its current weights; sets ``n_iter_``
    and ``loss_`` as scikit-learn does (no ``loss_curve_``: its lbfgs records none)."""
    from scipy.optimize import minimize

    fun = LossGrad(est, net, cost, X, targets, ops, sw)
    res = minimize(fun, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
                   options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol,
                            **_iprint_options(est.verbose)})
    est.n_iter_ = _check_result(res, est.max_iter)
    est.loss_ = float(res.fun)
    net.params[...] = res.x
    return res
