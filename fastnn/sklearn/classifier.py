"""``MLPClassifier``: scikit-learn's multi-layer perceptron classifier, trained by fastnn."""

import numpy as np

from fastnn.costs import BCE, CrossEntropy
from fastnn.kernels.reference import softmax_forward as _softmax
from fastnn.sklearn._base import _BaseMLP, _stochastic_solver
from fastnn.sklearn._compat import (
    ClassifierMixin, LabelBinarizer, _validate_data, accuracy_score, available_if, column_or_1d, type_of_target,
    unique_labels)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastnn (scikit-learn's API).

    Parameters are those of :class:`sklearn.neural_network.MLPClassifier`, with the
    same meanings and defaults (``solver`` ``"adam"``, ``"sgd"`` or ``"lbfgs"``), plus:

    backend : {"auto", "numpy", "numba", "cuda"}, default="auto"
        fastnn backend that trains and predicts.
    dtype : {None, "float32", "float64"}, default=None
        Precision of the weights and of the arithmetic; None follows X's floating dtype
        (float32 stays float32, anything else is float64), as scikit-learn does.

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

    # pickle records a class as module + name: keep the public fastnn.sklearn.MLPClassifier (the
    # path in pickles made when fastnn.sklearn was one module), not fastnn.sklearn.classifier.
    __module__ = "fastnn.sklearn"

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
        # scikit-learn stratifies on the binarized (n, K) bool targets, so its error messages
        # name classes as 'True' and 'False'
        return Y

    def _val_targets(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _score_outputs(self, out, y, sample_weight=None):
        if not np.all(np.isfinite(out)):
            return np.nan
        return accuracy_score(y, self._labels_from_outputs(out), sample_weight=sample_weight)

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
        out = self._forward(X)  # in the weights' dtype (X's, by default)
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

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X``, ``y`` (weighted by ``sample_weight``, as in :meth:`fit`),
        continuing from the current state.

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
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multilabel": True}
