"""pytest plugin: run scikit-learn's own ``sklearn/neural_network/tests/test_mlp.py`` against
fastnn's estimators (tests/test_sklearn_suite.py runs it).

It puts fastnn.sklearn's MLPClassifier and MLPRegressor in ``sklearn.neural_network`` before
the test module imports them, and marks the tests that still fail as expected failures,
each with its reason (a documented difference: README, "scikit-learn estimators").
"""

import pytest

#: test name -> why it fails with fastnn (keep this list short; the target is at most 2). Empty since
#: fit(sample_weight=) and MLPRegressor(loss="poisson") exist.
EXPECTED_FAILURES = {}


def pytest_configure(config):
    import sklearn.neural_network as nn

    import fastnn.sklearn as fs

    nn.MLPClassifier = fs.MLPClassifier
    nn.MLPRegressor = fs.MLPRegressor


def pytest_collection_modifyitems(config, items):
    for item in items:
        why = EXPECTED_FAILURES.get(item.originalname or item.name)
        if why:
            item.add_marker(pytest.mark.xfail(reason=why, strict=True))
