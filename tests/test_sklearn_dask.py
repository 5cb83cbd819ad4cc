"""Grid and randomized searches over fastnn estimators on a Dask cluster
(joblib's "dask" backend), with a LocalCluster of two worker processes."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6", reason="needs scikit-learn >= 1.6 (the 'sklearn' extra)")
pytest.importorskip("dask", reason="needs dask (the 'dask' extra: pip install 'fastnn-numba[dask]')")
distributed = pytest.importorskip("distributed", reason="needs dask.distributed (the 'dask' extra)")

import joblib  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402

from fastnn.sklearn import MLPClassifier, MLPRegressor, worker_thread_cap  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:240] / 16.0, y[:240]


def _numba_threads_in_task():
    """Threads the numba backend would use for a fit in this task (None without numba)."""
    from fastnn.backends import BackendUnavailable, get_ops
    from fastnn.sklearn import _limit_threads

    try:
        ops = get_ops("numba")
    except BackendUnavailable:
        return None
    with _limit_threads(ops) as n:
        from fastnn import config

        return (n, config.get_num_threads())


def test_workers_cap_numba_threads(client):
    # Dask's nanny starts workers with OMP_NUM_THREADS=1: one core per task thread.
    caps = client.gather([client.submit(worker_thread_cap, pure=False) for _ in range(4)])
    assert caps == [1, 1, 1, 1]
    got = client.submit(_numba_threads_in_task, pure=False).result()
    if got is not None:
        assert got == (1, 1)


def test_grid_search_runs_on_the_cluster(client, data):
    X, y = data
    base = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, batch_size=32, random_state=0)
    grid = GridSearchCV(base, {"alpha": [1e-4, 1e-2], "learning_rate_init": [1e-2, 3e-2]}, cv=2)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
    assert len(stream.data) > 0  # the fits ran as tasks on the workers
    workers = {t["worker"] for t in stream.data}
    assert workers <= set(client.scheduler_info()["workers"])
    assert len(grid.cv_results_["params"]) == 4
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"])) and grid.best_score_ > 0.5
    assert grid.best_estimator_.predict(X).shape == y.shape


def test_randomized_search_runs_on_the_cluster(client, data):
    X, y = data
    base = MLPRegressor(hidden_layer_sizes=(8,), max_iter=10, batch_size=32, random_state=0)
    search = RandomizedSearchCV(base, {"hidden_layer_sizes": [(4,), (8,), (16,)], "alpha": [1e-4, 1e-3]},
                                n_iter=4, cv=2, random_state=0)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y.astype(float))
    assert len(stream.data) > 0
    assert len(search.cv_results_["params"]) == 4
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
