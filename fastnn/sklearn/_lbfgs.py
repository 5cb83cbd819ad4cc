"""``solver="lbfgs"``: scipy's L-BFGS-B over fastnn's full-batch loss and gradient, as
scikit-learn's MLPs do it (the same loss, L2 term, options and attributes)."""

import warnings

import numpy as np

from fastnn.backends.plan import batch_weights
from fastnn.kernels import reference as _ref
from fastnn.optimizers import SGD
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
    which this keeps, so that the iterations are the same as scikit-learn's). With sample
    weights ``sw`` (n,) the cost is their weighted mean and ``n`` is ``sum(sw)``.

    On a compiled backend one call is one whole-batch run of its epoch kernel (BLAS products,
    the sparse first layer on sparse X) with a plain SGD step of rate 0, which leaves the
    weights as they are and the gradient in ``net.grads``; otherwise the layers' ops run in
    Python.
    """

    def __init__(self, est, net, cost, X, targets, ops, sw=None):
        self.net, self.cost, self.X, self.T, self.ops = net, cost, X, targets.T, ops
        self.alpha, self.n = float(est.alpha), X.shape[0]
        self.scale = est._loss_scale()
        self.fused_last = cost.fuses_with(net.layers[-1])
        self.calls = 0
        n = X.shape[0]
        self.s = None
        if sw is not None:  # each sample's factor on its loss and delta (whose mean the cost takes)
            self.s = batch_weights(sw, np.arange(n), n, False)[0]
            self.n = float(sw.sum())
        self.runner = None
        if n > 1:
            still = SGD(1.0)
            still.lr = 0.0  # p - 0 * g == p: the run computes the loss and gradient only
            still.ensure_setup(net)
            self.runner = ops.make_runner(net, cost, still, X, targets, n)
            if self.runner is not None and self.s is not None:
                self.runner.weigh(self.s, None)
        self.order = np.arange(n, dtype=np.int64)

    def _python(self):
        net, ops, cost = self.net, self.ops, self.cost
        out = self.X
        for layer in net.layers:
            out = layer.forward(out, ops)
        delta = cost.output_delta(ops, out, self.T, net.layers[-1])
        if self.s is None:
            loss = cost.value(out, self.T)
        else:
            s = self.s.astype(net.dtype)
            loss = float(np.dot(_ref.cost_rows(cost.code, out, self.T, cost.param), s.astype(np.float64)))
            loss /= out.shape[0]
            delta = delta * s[:, None]
        net.backward(delta, ops, skip_last=self.fused_last, need_input_grad=False)
        return loss

    def __call__(self, theta):
        net = self.net
        net.params[...] = theta
        with np.errstate(over="ignore", invalid="ignore"):
            if self.runner is None:
                loss = self._python()
            else:
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
