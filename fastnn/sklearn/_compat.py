"""The scikit-learn pieces fastnn.sklearn uses, with fallbacks for older releases and
one clear message when scikit-learn is missing."""

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils.metaestimators import available_if
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

__all__ = [
    "BaseEstimator", "ClassifierMixin", "RegressorMixin", "ConvergenceWarning", "accuracy_score",
    "r2_score", "train_test_split", "LabelBinarizer", "check_random_state", "column_or_1d",
    "type_of_target", "unique_labels", "check_is_fitted", "_validate_data", "Interval", "Options",
    "StrOptions", "available_if",
]
