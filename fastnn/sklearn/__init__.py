"""scikit-learn estimators backed by fastnn: ``MLPClassifier`` and ``MLPRegressor``.

Drop-in replacements for :class:`sklearn.neural_network.MLPClassifier` and
:class:`~sklearn.neural_network.MLPRegressor` (every solver)::

    # from sklearn.neural_network import MLPClassifier
    from fastnn.sklearn import MLPClassifier

Same parameters, defaults, fitted attributes and stopping rules as scikit-learn
(``tol`` / ``n_iter_no_change`` on the training loss or on the validation score
with ``early_stopping``, ``learning_rate="adaptive"`` dividing the step by 5,
``"invscaling"`` stepping ``learning_rate_init / (t_ + 1) ** power_t`` after each
epoch, ``t_`` counting samples seen); the training itself runs through
:class:`fastnn.Trainer`, so it gets the fastest backend available (``backend=``,
default ``"auto"``), in X's floating dtype unless ``dtype`` is given.

How scikit-learn's objective maps onto fastnn's costs (the gradients are equal):

* multiclass: softmax output, log-loss = :class:`fastnn.CrossEntropy` on raw
  scores (softmax is applied in :meth:`MLPClassifier.predict_proba`);
* binary and multilabel: logistic output = a final :class:`fastnn.Sigmoid` with
  :class:`fastnn.BCE` (fused gradient ``(p - t) / N``);
* ``loss="poisson"``: exponential output = :class:`fastnn.Poisson` on the raw
  log-rate (``predict`` exponentiates);
* regression: identity output with :class:`fastnn.MSE`. fastnn's MSE sums over
  outputs, scikit-learn's *reported* loss averages over them, so ``loss_curve_``
  is divided by ``n_outputs_``; the gradient ``(pred - y) / N`` is the same.
* ``alpha``: scikit-learn adds ``alpha * W / n_batch`` to each batch's weight
  gradient (and ``0.5 * alpha * ||W||^2 / n_batch`` to its loss), i.e. fastnn's
  ``weight_decay = alpha / batch_size`` scaled per batch by ``batch_size / sum(w)``
  (``Trainer(decay_per_weight=True)``: ``alpha / len(batch)`` without weights). The
  reported loss includes the penalty.
* ``sample_weight``: each sample's loss and delta times ``w_i B / sum(w)`` of its batch,
  inside the compiled epochs (``fastnn.backends.plan.batch_weights``).

Known differences: Adam puts ``eps`` outside the bias correction (PyTorch's form), and
with ``shuffle=True`` the batch order is fastnn's own. ``solver="lbfgs"`` runs scipy's L-BFGS-B on
fastnn's full-batch loss and gradient, as scikit-learn does; scipy.sparse input stays
sparse (the first layer multiplies only its non-zeros).

Inside joblib worker processes (``GridSearchCV(n_jobs=...)``) and Dask workers the
``"numba"`` backend's thread pool is capped so that the workers together use the
cores once (see :func:`worker_thread_cap`).
"""

# _compat first: without scikit-learn it raises the ImportError that says how to install it.
from fastnn.sklearn import _compat  # noqa: F401
from fastnn.sklearn._threads import _limit_threads, worker_thread_cap  # noqa: F401 (tests use _limit_threads)
from fastnn.sklearn.classifier import MLPClassifier
from fastnn.sklearn.regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "worker_thread_cap"]
