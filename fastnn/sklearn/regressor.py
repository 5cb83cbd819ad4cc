"""``MLPRegressor``: scikit-learn's multi-layer perceptron regressor, trained by fastnn."""

import numpy as np

from fastnn.costs import MSE, Poisson
from fastnn.sklearn._base import _BaseMLP, _stochastic_solver
from fastnn.sklearn._compat import (
    RegressorMixin, StrOptions, _validate_data, available_if, column_or_1d, r2_score)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastnn (scikit-learn's API).

    Parameters are those of :class:`sklearn.neural_network.MLPRegressor` with the
    same meanings and defaults (``loss`` ``"squared_error"`` or ``"poisson"``, the latter with
    the exponential output, as scikit-learn; ``solver`` ``"adam"``, ``"sgd"`` or ``"lbfgs"``),
    plus ``backend`` and ``dtype`` as in :class:`MLPClassifier`.
    """

    # pickle records a class as module + name: keep the public fastnn.sklearn.MLPRegressor (the
    # path in pickles made when fastnn.sklearn was one module), not fastnn.sklearn.regressor.
    __module__ = "fastnn.sklearn"

    _parameter_constraints = {**_BaseMLP._parameter_constraints,
                              **({"loss": [StrOptions({"squared_error", "poisson"})]} if StrOptions else {})}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, backend="auto", dtype=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
            beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            backend=backend, dtype=dtype)
        self.loss = loss

    def _check_params(self):
        hidden = super()._check_params()
        if self.loss not in ("squared_error", "poisson"):
            raise ValueError(f"loss must be 'squared_error' or 'poisson', got {self.loss!r}")
        return hidden

    def _output_activation(self):
        # poisson: the network's output is the log-rate; fastnn.Poisson takes it raw, predict exponentiates
        return "exp" if self.loss == "poisson" else "identity"

    def _cost(self):
        return Poisson() if self.out_activation_ == "exp" else MSE()

    def _loss_scale(self):
        # fastnn's MSE sums over outputs; scikit-learn reports the mean over them (its
        # Poisson loss sums over outputs, as fastnn's)
        return 1.0 if self.out_activation_ == "exp" else 1.0 / self.n_outputs_

    def _outputs(self, out):
        """Predictions from the network's outputs: the rate ``exp`` for loss="poisson"."""
        if self.out_activation_ == "exp":
            with np.errstate(over="ignore"):
                return np.exp(out)
        return out

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                              dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _train_targets(self, Y, dtype):
        Y = np.ascontiguousarray(Y, dtype=dtype)
        return Y if Y.flags.writeable else Y.copy()

    def _stratify_labels(self, Y):
        return None

    def _val_targets(self, Y):
        return Y.ravel() if Y.shape[1] == 1 else Y

    def _score_outputs(self, out, y, sample_weight=None):
        out = self._outputs(out)
        if not np.all(np.isfinite(out)):
            return np.nan
        return r2_score(y, out.ravel() if out.shape[1] == 1 else out, sample_weight=sample_weight)

    def predict(self, X):
        """Predicted values in X's floating dtype, (n_samples,) or (n_samples, n_outputs)."""
        out = self._outputs(self._forward(X))
        return out.ravel() if out.shape[1] == 1 else out

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y`` (weighted by ``sample_weight``, as in :meth:`fit`),
        continuing from the current state."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
