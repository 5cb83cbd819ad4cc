"""``_BaseMLP``: the implementation :class:`MLPClassifier` and :class:`MLPRegressor` share
(parameters, the network, fitting through :class:`fastnn.Trainer`, pickling)."""

import numbers
import warnings

import numpy as np

from fastnn._checks import check_sample_weight
from fastnn.backends import BACKENDS, get_ops
from fastnn.layers import Identity, Linear, ReLU, Sigmoid, Tanh
from fastnn.network import Sequential
from fastnn.optimizers import SGD, Adam
from fastnn.sklearn._compat import (
    BaseEstimator, Interval, Options, StrOptions, _validate_data, check_is_fitted, check_random_state,
    train_test_split)
from fastnn.sklearn._epochs import _EpochControl
from fastnn.sklearn._threads import _limit_threads
from fastnn.training import Trainer

_HIDDEN = {"identity": Identity, "logistic": Sigmoid, "tanh": Tanh, "relu": ReLU}
_DTYPES = {"float32": np.float32, "float64": np.float64}


# -- the shared estimator -------------------------------------------------------------------

def _stochastic_solver(est):
    """partial_fit exists for the stochastic solvers only, as in scikit-learn."""
    if est.solver not in ("sgd", "adam"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. {est.solver} is not "
                             "stochastic.")
    return True


class _OptimizerView:
    """``_optimizer``: the fastnn optimizer that trains, seen as scikit-learn's optimizer
    object (its ``learning_rate``: the step size of the current iteration; Adam's includes
    the bias correction, as in ``sklearn.neural_network._stochastic_optimizers``)."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    @property
    def learning_rate(self):
        o = self.optimizer
        if getattr(o, "kind", "") == "adam" and o.t:
            return o.lr * np.sqrt(1 - o.beta2 ** o.t) / (1 - o.beta1 ** o.t)
        return o.lr

    def __getattr__(self, name):
        if "optimizer" not in self.__dict__:  # unpickling: attributes not restored yet
            raise AttributeError(name)
        return getattr(self.__dict__["optimizer"], name)

    def __setattr__(self, name, value):
        if name == "optimizer":
            object.__setattr__(self, name, value)
        else:
            setattr(self.optimizer, name, value)


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
        "dtype": "no_validation",  # checked in _net_dtype with a clearer message (None: follow X)
    }


class _BaseMLP(BaseEstimator):
    """Shared implementation; use :class:`MLPClassifier` or :class:`MLPRegressor`."""

    _parameter_constraints = _param_constraints()

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, backend="auto", dtype=None):
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
        if self.solver not in ("sgd", "adam", "lbfgs"):
            raise ValueError(f"solver must be 'adam', 'sgd' or 'lbfgs', got {self.solver!r}")
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

    def _net_dtype(self, X=None):
        """The weights' dtype: ``dtype``, or with ``dtype=None`` (the default) X's floating
        dtype, as scikit-learn does (float32 stays float32; anything else is float64)."""
        dt = self.dtype
        if dt is None:
            if X is None:
                return None
            return np.float32 if X.dtype == np.float32 else np.float64
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
        r = sqrt(f / (fan_in + fan_out)), f = 2 for logistic hidden units, else 6, drawn from
        the RandomState ``rng`` in scikit-learn's order (each layer's W, then its b), so that a
        given ``random_state`` starts from scikit-learn's very weights."""
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
        if hasattr(X, "tocsr"):  # scipy.sparse stays sparse: fastnn trains the first layer on its non-zeros
            return X.tocsr().astype(dtype, copy=False)
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
        out_dtype = X.dtype  # outputs in X's floating dtype (float32 stays float32), as scikit-learn
        X = self._to_net_input(X, net.dtype)
        ops = self._ops()
        with _limit_threads(ops):
            return ops.predict(net, X, None).astype(out_dtype, copy=False)

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
        for name in ("loss_curve_", "validation_scores_", "best_validation_score_", "best_loss_"):
            self.__dict__.pop(name, None)  # from an earlier fit with another solver
        if self.solver == "lbfgs":  # scikit-learn keeps no curve or stopping state for L-BFGS
            return
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

    def _fit(self, X, y, incremental=False, sample_weight=None):
        hidden = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0])
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        n_samples, n_features = X.shape
        layer_units = [n_features] + hidden + [Y.shape[1]]
        random_state = check_random_state(self.random_state)
        dtype = self._net_dtype(X)
        if first_pass:  # the weights first, from random_state, as scikit-learn draws them
            self._initialize(Y.shape[1], layer_units, dtype, random_state)
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
        if self.solver == "lbfgs":
            return self._fit_lbfgs(net, X, Y, sw)

        if self.early_stopping:
            stratify = self._stratify_labels(Y) if self.n_outputs_ == 1 else None  # never multilabel
            idx_train, idx_val = train_test_split(np.arange(n_samples), random_state=random_state,
                                                  test_size=self.validation_fraction, stratify=stratify)
            if len(idx_val) < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            val = (X[idx_val], self._val_targets(Y[idx_val]), None if sw is None else sw[idx_val])
            X_train, Y_train, sw_train = X[idx_train], Y[idx_train], None if sw is None else sw[idx_train]
        else:
            val, X_train, Y_train, sw_train = None, X, Y, sw
        # then (after the split, which draws from random_state as scikit-learn's does) a
        # Generator seeded from it for the shuffles: reproducible for an int random_state
        rng = np.random.default_rng(random_state.randint(0, 2**31 - 1, size=4))
        n_train = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_train))

        opt = self.__dict__.get("_optimizer")
        if opt is not None and not isinstance(opt, _OptimizerView):  # pickled before _OptimizerView
            opt = self._optimizer = _OptimizerView(opt)
        if not incremental or opt is None:
            opt = self._optimizer = _OptimizerView(self._make_optimizer(batch_size))
        else:
            opt.weight_decay = float(self.alpha) / batch_size
        opt = opt.optimizer
        cost = self._cost()
        targets = self._train_targets(Y_train, net.dtype)
        # decay_per_weight: scikit-learn's L2 term alpha / sum(w) of each batch (its size without weights)
        trainer = Trainer(net, cost, opt, batch_size=batch_size, backend=self.backend,
                          shuffle=self.shuffle, seed=int(rng.integers(2**63 - 1)), decay_per_weight=True)
        ctrl = _EpochControl(self, opt, n_train, batch_size, val, incremental)
        self.n_iter_ = 0
        with _limit_threads(trainer.ops):
            while not ctrl.stop:
                remaining = 1 if incremental else self.max_iter - self.n_iter_
                if remaining <= 0:
                    break
                # scikit-learn trains on through NaN and judges the weights at the end
                hist = trainer.fit(X_train, targets, epochs=remaining, callbacks=[ctrl], on_nonfinite="ignore",
                                   sample_weight=sw_train)
                if getattr(hist, "interrupted", False):
                    warnings.warn("Training interrupted by user.")
                    break
                if not (ctrl.restart or ctrl.stop):
                    break
        if self.early_stopping:  # scikit-learn keeps the weights with the best validation score
            net.params[...] = self._best_params
        self._check_finite(net)
        return self

    @staticmethod
    def _check_finite(net):
        if not np.all(np.isfinite(net.params)):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain "
                             "large values and need to be preprocessed.")

    def _loss_grad_lbfgs(self, packed, X, y, sample_weight=None, *buffers):
        """scikit-learn's ``_loss_grad_lbfgs``: (loss, grad) at the packed weights ``packed``
        (its packing is fastnn's flat buffer: every W row-major, then every b) for the
        binarized targets ``y`` and ``sample_weight``; the other buffers of scikit-learn's
        signature are unused."""
        from fastnn.sklearn._lbfgs import LossGrad

        net = self._current_net()
        cost = self._cost()
        Y = np.asarray(y)
        Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
        targets = cost.prepare(self._train_targets(Y, net.dtype), net.outsize, net.dtype)
        X = self._to_net_input(X, net.dtype)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0])
        return LossGrad(self, net, cost, X, targets, self._ops(), sw)(np.asarray(packed, np.float64))

    def _fit_lbfgs(self, net, X, Y, sw=None):
        from fastnn.sklearn._lbfgs import fit_lbfgs

        ops, cost = self._ops(), self._cost()
        targets = cost.prepare(self._train_targets(Y, net.dtype), net.outsize, net.dtype)
        with _limit_threads(ops):
            fit_lbfgs(self, net, cost, X, targets, ops, sw)
        self._check_finite(net)
        return self

    def _update_no_improvement_count(self, val, net):
        """scikit-learn's rule: count epochs that fail to improve by ``tol``."""
        if self.early_stopping:
            X_val, y_val, sw_val = val
            ops = self._ops()
            with _limit_threads(ops):
                out = ops.predict(net, X_val, None)
            score = self._score_outputs(out, y_val, sw_val)
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

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n_samples, n_features) and ``y``, each sample's loss weighted
        by ``sample_weight`` (n_samples,) >= 0 when given (scikit-learn's semantics: each
        batch's weighted mean loss, its L2 term ``alpha / sum(w)``).

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)
