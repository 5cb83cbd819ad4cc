"""scikit-learn estimators backed by fastnn: ``MLPClassifier`` and ``MLPRegressor``.

Drop-in replacements for :class:`sklearn.neural_network.MLPClassifier` and
:class:`~sklearn.neural_network.MLPRegressor` with the stochastic solvers::

    # from sklearn.neural_network import MLPClassifier
    from fastnn.sklearn import MLPClassifier

Same parameters, defaults, fitted attributes and stopping rules as scikit-learn
(``tol`` / ``n_iter_no_change`` on the training loss or on the validation score
with ``early_stopping``, ``learning_rate="adaptive"`` dividing the step by 5,
``"invscaling"`` stepping ``learning_rate_init / (t_ + 1) ** power_t`` after each
epoch, ``t_`` counting samples seen); the training itself runs through
:class:`fastnn.Trainer`, so it gets the fastest backend available (``backend=``,
default ``"auto"``), in float32 unless ``dtype="float64"``.

How scikit-learn's objective maps onto fastnn's costs (the gradients are equal):

* multiclass: softmax output, log-loss = :class:`fastnn.CrossEntropy` on raw
  scores (softmax is applied in :meth:`MLPClassifier.predict_proba`);
* binary and multilabel: logistic output = a final :class:`fastnn.Sigmoid` with
  :class:`fastnn.BCE` (fused gradient ``(p - t) / N``);
* regression: identity output with :class:`fastnn.MSE`. fastnn's MSE sums over
  outputs, scikit-learn's *reported* loss averages over them, so ``loss_curve_``
  is divided by ``n_outputs_``; the gradient ``(pred - y) / N`` is the same.
* ``alpha``: scikit-learn adds ``alpha * W / n_batch`` to each batch's weight
  gradient (and ``0.5 * alpha * ||W||^2 / n_batch`` to its loss), i.e. fastnn's
  ``weight_decay = alpha / batch_size``. The reported loss includes the penalty.

Known differences: no ``solver="lbfgs"`` (a ValueError names the alternatives),
no ``sample_weight``, Adam puts ``eps`` outside the bias correction (PyTorch's
form), the last short batch of an epoch gets ``alpha / batch_size`` rather than
``alpha / len(batch)``, and sparse input is densified.

Inside joblib worker processes (``GridSearchCV(n_jobs=...)``) and Dask workers the
``"numba"`` backend's thread pool is capped so that the workers together use the
cores once (see :func:`worker_thread_cap`).
"""

import contextlib
import numbers
import os
import sys
import threading
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import check_is_fitted
except ImportError as _exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("fastnn.sklearn needs scikit-learn: pip install 'fastnn-numba[sklearn]'") from _exc

try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6

    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

try:
    from sklearn.utils._param_validation import Interval, Options, StrOptions
except ImportError:  # pragma: no cover - scikit-learn < 1.2 has no declarative validation
    Interval = Options = StrOptions = None

from fastnn.backends import BACKENDS, get_ops
from fastnn.callbacks import Callback
from fastnn.costs import BCE, MSE, CrossEntropy
from fastnn.kernels.reference import softmax_forward as _softmax
from fastnn.layers import Identity, Linear, ReLU, Sigmoid, Tanh
from fastnn.network import Sequential
from fastnn.optimizers import SGD, Adam
from fastnn.training import Trainer

__all__ = ["MLPClassifier", "MLPRegressor", "worker_thread_cap"]

_HIDDEN = {"identity": Identity, "logistic": Sigmoid, "tanh": Tanh, "relu": ReLU}
_DTYPES = {"float32": np.float32, "float64": np.float64}


# -- threads in worker processes ---------------------------------------------------------

def _env_int(name):
    v = os.environ.get(name, "").strip()
    return int(v) if v.isdigit() and int(v) > 0 else None


def worker_thread_cap():
    """How many threads one fit may use here, or None for no cap (the main process).

    * In a Dask worker: ``OMP_NUM_THREADS`` (Dask's nanny sets it to 1 for every
      worker process), else the cores divided by the worker's task threads.
    * In a joblib/loky worker process (``GridSearchCV(n_jobs=k)``): the
      ``NUMBA_NUM_THREADS`` that joblib exports to its workers, ``cores // k``.

    Either way the workers of a search together use each core once.
    """
    if "distributed" in sys.modules:  # only a process that imported it can be a Dask worker
        try:
            from distributed import get_worker

            worker = get_worker()
        except (ImportError, ValueError):
            worker = None
        if worker is not None:
            cap = _env_int("OMP_NUM_THREADS")
            if cap is None:
                nthreads = getattr(getattr(worker, "state", worker), "nthreads", 1) or 1
                cap = max(1, (os.cpu_count() or 1) // nthreads)
            return cap
    import multiprocessing

    if type(multiprocessing.current_process()).__name__ == "LokyProcess":
        return _env_int("NUMBA_NUM_THREADS") or 1
    return None


def _thread_functions():
    try:
        from fastnn import config

        return config.get_num_threads, config.set_num_threads
    except (ImportError, AttributeError):
        import numba

        return numba.get_num_threads, numba.set_num_threads


# Numba's "workqueue" threading layer aborts the process when two threads enter it at
# once (e.g. a Dask worker running several fits in threads); fits then take turns.
_WORKQUEUE_LOCK = threading.RLock()  # re-entrant: early stopping predicts inside a fit


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # not started yet
        return None


@contextlib.contextmanager
def _limit_threads(ops):
    """While fitting or predicting on the numba backend: cap its thread pool in a
    worker (thread-locally, restored afterwards), and serialise fits when Numba's
    threading layer is not thread-safe."""
    if getattr(ops, "name", None) != "numba":
        yield None
        return
    cap = worker_thread_cap()
    get, set_ = _thread_functions()
    old = get()  # also starts Numba's threading layer, so that it can be asked for
    guard = _WORKQUEUE_LOCK if _threading_layer() == "workqueue" else contextlib.nullcontext()
    with guard:
        if cap is None or cap >= old:
            yield old
            return
        set_(cap)
        try:
            yield cap
        finally:
            set_(old)


# -- the epoch-end bookkeeping, as a fastnn callback ---------------------------------------

class _EpochControl(Callback):
    """scikit-learn's per-iteration rules, run at each epoch end of a Trainer.

    Sets ``stop`` when training must end, and ``restart`` when the learning rate
    changed (training then continues in a new ``Trainer.fit`` call, so a compiled
    backend never keeps a stale rate).
    """

    def __init__(self, est, optimizer, n_train, n_batches, val, incremental):
        self.est, self.opt = est, optimizer
        self.n_train, self.n_batches = n_train, n_batches
        self.val, self.incremental = val, incremental
        self.stop = self.restart = False
        self._w2 = None

    def weight_norm2(self):
        w = self.net.params[:self.net.n_decay]
        return float(np.dot(w, w.astype(np.float64)))

    def on_train_begin(self, logs=None):
        self.restart = False
        self._w2 = self.weight_norm2()

    def on_epoch_end(self, epoch, logs=None):
        est = self.est
        est.n_iter_ += 1
        est.t_ += self.n_train
        # scikit-learn adds 0.5*alpha*||W||^2/len(batch) to each batch loss and
        # weights batch losses by len(batch): nb * 0.5*alpha*||W||^2 / n per epoch.
        w2 = self.weight_norm2()
        penalty = 0.5 * est.alpha * self.n_batches * 0.5 * (self._w2 + w2) / self.n_train
        self._w2 = w2
        est.loss_ = float(logs["loss"]) * est._loss_scale() + penalty
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))
        est._update_no_improvement_count(self.val, self.net)

        if est.solver == "sgd" and est.learning_rate == "invscaling":
            self.opt.lr = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t
            self.restart = True
        if est._no_improvement_count > est.n_iter_no_change:
            what = ("Validation score" if est.early_stopping else "Training loss")
            msg = (f"{what} did not improve more than tol={est.tol:f} for "
                   f"{est.n_iter_no_change} consecutive epochs.")
            if est.solver == "sgd" and est.learning_rate == "adaptive" and self.opt.lr > 1e-6:
                self.opt.lr /= 5.0
                est._no_improvement_count = 0
                self.restart = True
                if est.verbose:
                    print(msg + " Setting learning rate to %f" % self.opt.lr)
            else:
                if est.verbose:
                    print(msg + (" Learning rate too small." if est.learning_rate == "adaptive"
                                 and est.solver == "sgd" else "") + " Stopping.")
                self.stop = True
        if self.incremental:
            self.stop = True
        elif est.n_iter_ == est.max_iter and not self.stop:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % est.max_iter, ConvergenceWarning)
            self.stop = True
        if self.stop or self.restart:
            self.trainer.stop_training = True


# -- the shared estimator -------------------------------------------------------------------

def _param_constraints():
    if Interval is None:  # pragma: no cover
        return {}
    return {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_HIDDEN))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"), Options(numbers.Real, {np.inf})],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "backend": [StrOptions(set(BACKENDS) | {"auto"}), None],
        "dtype": "no_validation",  # checked in _net_dtype with a clearer message
    }


class _BaseMLP(BaseEstimator):
    """Shared implementation; use :class:`MLPClassifier` or :class:`MLPRegressor`."""

    _parameter_constraints = _param_constraints()

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, backend="auto", dtype="float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype

    # -- parameters ---------------------------------------------------------------------
    def _check_params(self):
        """Validate every hyper-parameter (at fit time, as scikit-learn does)."""
        if hasattr(self, "_validate_params") and self._parameter_constraints:
            self._validate_params()
        if self.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' is not supported by fastnn.sklearn (fastnn trains with minibatches); "
                "use solver='adam' or solver='sgd', or sklearn.neural_network for L-BFGS")
        if self.solver not in ("sgd", "adam"):
            raise ValueError(f"solver must be 'adam' or 'sgd', got {self.solver!r}")
        self._net_dtype()
        self._ops()  # an unavailable backend raises BackendUnavailable before anything changes
        hidden = self._hidden_sizes()
        if any(h <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        return hidden

    def _hidden_sizes(self):
        h = self.hidden_layer_sizes
        if not hasattr(h, "__iter__"):
            h = [h]
        out = []
        for v in h:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise ValueError(f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}")
            out.append(int(v))
        return out

    def _net_dtype(self):
        dt = self.dtype
        if isinstance(dt, str) and dt in _DTYPES:
            return _DTYPES[dt]
        try:
            npdt = np.dtype(dt)
        except TypeError:
            npdt = None
        if npdt is None or npdt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dt!r}")
        return npdt.type

    def _ops(self):
        return get_ops(self.backend)

    # -- networks ------------------------------------------------------------------------
    def _make_net(self, layer_units, dtype):
        act = _HIDDEN[self.activation]
        layers = []
        for i in range(len(layer_units) - 1):
            layers.append(Linear(layer_units[i], layer_units[i + 1]))
            if i < len(layer_units) - 2:
                layers.append(act())
        if self.out_activation_ == "logistic":
            layers.append(Sigmoid())
        return Sequential(*layers, seed=0, dtype=dtype)

    def _init_weights(self, net, rng):
        """scikit-learn's Glorot-uniform start: W and b ~ U(-r, r),
        r = sqrt(f / (fan_in + fan_out)), f = 2 for logistic hidden units, else 6."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        for lin in net.linears:
            bound = np.sqrt(factor / (lin.insize + lin.outsize))
            lin.W[...] = rng.uniform(-bound, bound, (lin.insize, lin.outsize))
            lin.b[...] = rng.uniform(-bound, bound, lin.outsize)

    def _link(self, net):
        """Make ``coefs_``/``intercepts_`` views of ``net``'s flat buffer."""
        self._net = net
        self.coefs_ = [lin.W for lin in net.linears]
        self.intercepts_ = [lin.b for lin in net.linears]

    def _net_from_coefs(self):
        units = [c.shape[0] for c in self.coefs_] + [self.coefs_[-1].shape[1]]
        dtype = self.coefs_[0].dtype.type if self.coefs_[0].dtype in (np.float32, np.float64) else np.float64
        net = self._make_net(units, dtype)
        for lin, c, b in zip(net.linears, self.coefs_, self.intercepts_):
            lin.W[...] = c
            lin.b[...] = b
        return net

    def _current_net(self):
        """The network holding the fitted weights. ``coefs_`` are views of it unless
        they were replaced (by the user, or by pickling/deep-copying), in which case a
        network is built from them."""
        net = self.__dict__.get("_net")
        if (net is not None and len(self.coefs_) == len(net.linears)
                and all(c is lin.W and b is lin.b
                        for c, b, lin in zip(self.coefs_, self.intercepts_, net.linears))):
            return net
        return self._net_from_coefs()

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        state.pop("_net", None)  # coefs_/intercepts_ carry the weights; views do not pickle
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "coefs_" in self.__dict__:
            self._relink()

    def _relink(self):
        net = self._current_net()
        if net is not self.__dict__.get("_net"):
            opt = self.__dict__.get("_optimizer")
            saved = {k: getattr(opt, k) for k in opt.state_names()} if opt is not None else {}
            t = getattr(opt, "t", 0)
            self._link(net)
            if opt is not None and all(v.shape == net.params.shape for v in saved.values()):
                opt.ensure_setup(net)  # keep the optimizer's state for the rebuilt buffer
                for k, v in saved.items():
                    getattr(opt, k)[...] = v
                opt.t = t
            else:
                self.__dict__.pop("_optimizer", None)

    # -- the loss, as scikit-learn reports it -------------------------------------------
    def _loss_scale(self):
        return 1.0

    # -- input ---------------------------------------------------------------------------
    def _to_net_input(self, X, dtype):
        if hasattr(X, "toarray"):  # scipy sparse: the kernels are dense
            X = X.toarray()
        X = np.ascontiguousarray(X, dtype=dtype)
        if not X.flags.writeable:
            # Read-only arrays (memmaps) are a different type to Numba: copying avoids a
            # second compilation of every kernel for them.
            X = X.copy()
        return X

    def _forward(self, X):
        """Output of the fitted network (scores for softmax, else activations)."""
        check_is_fitted(self, "coefs_")
        X = _validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32),
                           reset=False)
        net = self._current_net()
        X = self._to_net_input(X, net.dtype)
        ops = self._ops()
        with _limit_threads(ops):
            return ops.predict(net, X, None)

    # -- fitting -------------------------------------------------------------------------
    def _make_optimizer(self, batch_size):
        wd = float(self.alpha) / batch_size
        if self.solver == "sgd":
            m = float(self.momentum)
            return SGD(self.learning_rate_init, momentum=m,
                       nesterov=bool(self.nesterovs_momentum) and m > 0, weight_decay=wd)
        return Adam(self.learning_rate_init, beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon,
                    weight_decay=wd)

    def _initialize(self, n_outputs, layer_units, dtype, rng):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        net = self._make_net(layer_units, dtype)
        self._init_weights(net, rng)
        self._link(net)
        self.__dict__.pop("_optimizer", None)
        self._best_params = net.params.copy()
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _fit(self, X, y, incremental=False):
        hidden = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        n_samples, n_features = X.shape
        layer_units = [n_features] + hidden + [Y.shape[1]]
        random_state = check_random_state(self.random_state)
        # A Generator seeded from random_state: weights, shuffling and the split are
        # reproducible for an int random_state, as in scikit-learn.
        rng = np.random.default_rng(random_state.randint(0, 2**31 - 1, size=4))
        dtype = self._net_dtype()
        if first_pass:
            self._initialize(Y.shape[1], layer_units, dtype, rng)
        else:
            self._relink()
            have = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
            if have != layer_units:
                raise ValueError(f"warm_start/partial_fit needs the same layer sizes as the fitted model: "
                                 f"fitted {have}, now {layer_units}; set warm_start=False to start over")
            if self.n_outputs_ != Y.shape[1]:
                raise ValueError(f"y has {Y.shape[1]} outputs but the fitted model has {self.n_outputs_}")
        net = self._net
        if net.dtype != dtype:
            self._link(net.astype(dtype))
            net = self._net
            self.__dict__.pop("_optimizer", None)
        X = self._to_net_input(X, net.dtype)

        if self.early_stopping:
            stratify = self._stratify_labels(Y) if self.n_outputs_ == 1 else None
            idx_train, idx_val = train_test_split(np.arange(n_samples), random_state=random_state,
                                                  test_size=self.validation_fraction, stratify=stratify)
            if len(idx_val) < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            val = (X[idx_val], self._val_targets(Y[idx_val]))
            X_train, Y_train = X[idx_train], Y[idx_train]
        else:
            val, X_train, Y_train = None, X, Y
        n_train = len(X_train)
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_train))

        opt = self.__dict__.get("_optimizer")
        if not incremental or opt is None:
            opt = self._optimizer = self._make_optimizer(batch_size)
        else:
            opt.weight_decay = float(self.alpha) / batch_size
        cost = self._cost()
        targets = self._train_targets(Y_train, net.dtype)
        trainer = Trainer(net, cost, opt, batch_size=batch_size, backend=self.backend,
                          shuffle=self.shuffle, seed=int(rng.integers(2**63 - 1)))
        ctrl = _EpochControl(self, opt, n_train, -(-n_train // batch_size), val, incremental)
        self.n_iter_ = 0
        with _limit_threads(trainer.ops):
            while not ctrl.stop:
                remaining = 1 if incremental else self.max_iter - self.n_iter_
                if remaining <= 0:
                    break
                hist = trainer.fit(X_train, targets, epochs=remaining, callbacks=[ctrl])
                if getattr(hist, "interrupted", False):
                    warnings.warn("Training interrupted by user.")
                    break
                if not (ctrl.restart or ctrl.stop):
                    break
        if self.early_stopping:  # scikit-learn keeps the weights with the best validation score
            net.params[...] = self._best_params
        if not np.all(np.isfinite(net.params)):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain "
                             "large values and need to be preprocessed.")
        return self

    def _update_no_improvement_count(self, val, net):
        """scikit-learn's rule: count epochs that fail to improve by ``tol``."""
        if self.early_stopping:
            X_val, y_val = val
            ops = self._ops()
            with _limit_threads(ops):
                out = ops.predict(net, X_val, None)
            score = self._score_outputs(out, y_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = net.params.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def fit(self, X, y):
        """Fit the model to ``X`` (n_samples, n_features) and ``y``.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastnn (scikit-learn's API).

    Parameters are those of :class:`sklearn.neural_network.MLPClassifier`, with the
    same meanings and defaults (``solver`` is ``"adam"`` or ``"sgd"``; ``max_fun``
    is accepted and unused, as it only concerns L-BFGS), plus:

    backend : {"auto", "numpy", "numba", "cuda"}, default="auto"
        fastnn backend that trains and predicts.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the weights and of the arithmetic.

    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_features_in_, feature_names_in_, n_layers_,
    n_outputs_, out_activation_ : as in scikit-learn.

    Examples
    --------
    >>> from fastnn.sklearn import MLPClassifier
    >>> clf = MLPClassifier(hidden_layer_sizes=(50,), max_iter=20, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test)  # doctest: +SKIP
    """

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _cost(self):
        return CrossEntropy() if self.out_activation_ == "softmax" else BCE()

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                              dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def _train_targets(self, Y, dtype):
        if self.out_activation_ == "softmax":
            return Y.argmax(axis=1).astype(np.int64)
        return Y.astype(dtype)

    def _stratify_labels(self, Y):
        return Y[:, 0]

    def _val_targets(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _score_outputs(self, out, y):
        if not np.all(np.isfinite(out)):
            return np.nan
        return accuracy_score(y, self._labels_from_outputs(out))

    def _labels_from_outputs(self, out):
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def predict(self, X):
        """Class labels (n_samples,), or an indicator matrix for multilabel targets."""
        return self._labels_from_outputs(self._forward(X))

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes) in the order of ``classes_``
        (for multilabel targets, each label's probability)."""
        out = self._forward(X).astype(np.float64)
        if self.out_activation_ == "softmax":
            return _softmax(out)
        if self.n_outputs_ == 1:
            p = out.ravel()
            return np.vstack([1 - p, p]).T
        return out

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        p = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(p, out=p)

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``X``, ``y``, continuing from the current state.

        ``classes`` (all labels that will ever be seen) is required on the first call.
        """
        first = not hasattr(self, "classes_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                             f"was: {self.classes_!r}")
        return self._fit(X, y, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multilabel": True}


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastnn (scikit-learn's API).

    Parameters are those of :class:`sklearn.neural_network.MLPRegressor` with the
    same meanings and defaults (``loss="squared_error"`` only; ``solver`` is
    ``"adam"`` or ``"sgd"``; ``max_fun`` is accepted and unused), plus ``backend``
    and ``dtype`` as in :class:`MLPClassifier`.
    """

    _parameter_constraints = {**_BaseMLP._parameter_constraints,
                              **({"loss": [StrOptions({"squared_error", "poisson"})]} if StrOptions else {})}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, backend="auto", dtype="float32"):
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
        if self.loss != "squared_error":
            raise ValueError(f"loss={self.loss!r} is not supported by fastnn.sklearn; use loss='squared_error'")
        return hidden

    def _output_activation(self):
        return "identity"

    def _cost(self):
        return MSE()

    def _loss_scale(self):
        # fastnn's MSE sums over outputs; scikit-learn reports the mean over them.
        return 1.0 / self.n_outputs_

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

    def _score_outputs(self, out, y):
        if not np.all(np.isfinite(out)):
            return np.nan
        return r2_score(y, out.ravel() if out.shape[1] == 1 else out)

    def predict(self, X):
        """Predicted values (float64), (n_samples,) or (n_samples, n_outputs)."""
        out = self._forward(X).astype(np.float64, copy=False)
        return out.ravel() if out.shape[1] == 1 else out

    def partial_fit(self, X, y):
        """One epoch over ``X``, ``y``, continuing from the current state."""
        return self._fit(X, y, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
