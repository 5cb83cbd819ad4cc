"""``solver="lbfgs"``: scipy's L-BFGS-B over fastnn's full-batch loss and gradient, as
scikit-learn's MLPs do it (the same loss, L2 term, options and attributes)."""

import warnings

import numpy as np

from fastnn.sklearn._compat import ConvergenceWarning


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
    which this keeps, so that the iterations are the same as scikit-learn's).
    """

    def __init__(self, est, net, cost, X, targets, ops):
        self.net, self.cost, self.X, self.T, self.ops = net, cost, X, targets.T, ops
        self.alpha, self.n = float(est.alpha), X.shape[0]
        self.scale = est._loss_scale()
        self.fused_last = cost.fuses_with(net.layers[-1])
        self.calls = 0

    def __call__(self, theta):
        net, ops, cost = self.net, self.ops, self.cost
        net.params[...] = theta
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.X
            for layer in net.layers:
                out = layer.forward(out, ops)
            loss = cost.value(out, self.T) * self.scale
            delta = cost.output_delta(ops, out, self.T, net.layers[-1])
            net.backward(delta, ops, skip_last=self.fused_last, need_input_grad=False)
        w = net.params[:net.n_decay].astype(np.float64)
        loss += 0.5 * self.alpha * float(np.dot(w, w)) / self.n
        grad = net.grads.astype(np.float64)
        grad[:net.n_decay] += self.alpha * w / self.n
        self.calls += 1
        return loss, grad


def fit_lbfgs(est, net, cost, X, targets, ops):
    """Minimise the network's loss with L-BFGS-B from its current weights; sets ``n_iter_``
    and ``loss_`` as scikit-learn does (no ``loss_curve_``: its lbfgs records none)."""
    from scipy.optimize import minimize

    fun = LossGrad(est, net, cost, X, targets, ops)
    res = minimize(fun, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
                   options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol,
                            **_iprint_options(est.verbose)})
    est.n_iter_ = _check_result(res, est.max_iter)
    est.loss_ = float(res.fun)
    net.params[...] = res.x
    return res
