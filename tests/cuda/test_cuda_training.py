"""Training with backend="cuda" against the numpy backend, and the backend's plumbing.

Training equality: a few epochs of ``fit`` in float64 must give the numpy backend's
weights, optimizer state and History to TRAIN_RTOL64 (1e-6), for SGD, momentum,
Nesterov and Adam; MSE, cross-entropy and BCE; batch 1 and a short last batch.
"""

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install 'fastnn-numba[cuda]')")

import fastnn as fn  # noqa: E402
from conftest import SIMULATED, TRAIN_RTOL64  # noqa: E402
from fastnn.backends import cuda as cuda_backend  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _data(n, d, k, seed, kind):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if kind == "labels":
        return X, rng.integers(0, k, n)
    if kind == "binary":
        return X, rng.integers(0, 2, (n, k)).astype(float)
    return X, rng.uniform(0.1, 0.9, (n, k))


def _fit_both(layers, cost, opt, X, Y, epochs, batch_size, dtype=np.float64, callbacks=None):
    """Train two copies of one network from one seed with numpy and cuda; return both and
    their Histories and optimizers."""
    out = []
    for backend in ("numpy", "cuda"):
        net = fn.Sequential(*copy.deepcopy(layers), seed=7, dtype=dtype)
        o = copy.deepcopy(opt)
        hist = net.fit(X, Y, copy.deepcopy(cost), o, epochs=epochs, batch_size=batch_size, seed=11,
                       backend=backend, callbacks=copy.deepcopy(callbacks))
        out.append((net, hist, o))
    return out


def _assert_same_training(a, b, rtol=TRAIN_RTOL64, atol=1e-12):
    (na, ha, oa), (nb, hb, ob) = a, b
    assert_allclose(nb.params, na.params, rtol=rtol, atol=atol)
    assert_allclose(nb.grads, na.grads, rtol=rtol, atol=atol)
    for name in oa.state_names():
        assert_allclose(getattr(ob, name), getattr(oa, name), rtol=rtol, atol=atol)
    assert ob.t == oa.t
    assert set(hb.history) == set(ha.history)
    for key in ha.history:
        assert_allclose(hb.history[key], ha.history[key], rtol=rtol, atol=atol)


CASES = {
    # name: (layers, cost, optimizer, (n, d, k, target kind), epochs, batch size)
    "mse-sigmoid-sgd-batch1": ([fn.Linear(2, 3), fn.Sigmoid(), fn.Linear(3, 1), fn.Sigmoid()],
                               fn.MSE(), fn.SGD(0.5), (5, 2, 1, "float"), 2, 1),
    "ce-tanh-momentum-short-last": ([fn.Linear(3, 4), fn.Tanh(), fn.Linear(4, 3)], fn.CrossEntropy(),
                                    fn.SGD(0.2, momentum=0.9), (13, 3, 3, "labels"), 2, 4),
    "bce-relu-adam-wd": ([fn.Linear(3, 5), fn.ReLU(), fn.Linear(5, 2), fn.Sigmoid()], fn.BCE(),
                         fn.Adam(0.01, weight_decay=0.01), (11, 3, 2, "binary"), 2, 5),
    "mse-labels-leaky-nesterov-wd": ([fn.Linear(4, 3), fn.LeakyReLU(0.1), fn.Linear(3, 3)], fn.MSE(),
                                     fn.SGD(0.1, momentum=0.5, nesterov=True, weight_decay=0.05),
                                     (10, 4, 3, "labels"), 2, 3),
    "bce-softmax-hidden-softmax-out": ([fn.Linear(3, 4), fn.Softmax(), fn.Linear(4, 2), fn.Softmax()],
                                       fn.BCE(), fn.SGD(0.3), (7, 3, 2, "binary"), 2, 3),
    "mse-linear-nobias-stack": ([fn.Linear(3, 4, bias=False), fn.Linear(4, 2), fn.Tanh()], fn.MSE(),
                                fn.SGD(0.1, momentum=0.9), (9, 3, 2, "float"), 2, 4),
}


@pytest.mark.parametrize("case", list(CASES))
def test_training_matches_numpy_float64(case):
    layers, cost, opt, (n, d, k, kind), epochs, bs = CASES[case]
    X, Y = _data(n, d, k, 3, kind)
    a, b = _fit_both(layers, cost, opt, X, Y, epochs, bs)
    assert isinstance(b[0].params, np.ndarray)
    assert not np.allclose(b[0].params, fn.Sequential(*copy.deepcopy(layers), seed=7, dtype=np.float64).params)
    _assert_same_training(a, b)


def test_training_float32_close_to_numpy():
    X, y = _data(13, 3, 3, 5, "labels")
    a, b = _fit_both([fn.Linear(3, 4), fn.ReLU(), fn.Linear(4, 3)], fn.CrossEntropy(), fn.Adam(0.01),
                     X, y, 2, 4, dtype=np.float32)
    assert b[0].params.dtype == np.float32
    _assert_same_training(a, b, rtol=1e-4, atol=1e-5)


class _Schedule(fn.Callback):
    """Asks for per-batch runs and halves the learning rate after every epoch."""

    wants_batches = True

    def __init__(self):
        self.seen = []

    def on_batch_end(self, batch, logs=None):
        self.seen.append(batch)

    def on_epoch_end(self, epoch, logs=None):
        self.trainer.optimizer.lr *= 0.5


def test_per_batch_runs_and_lr_schedule_match_numpy():
    X, y = _data(9, 3, 2, 8, "labels")
    a, b = _fit_both([fn.Linear(3, 3), fn.Sigmoid(), fn.Linear(3, 2)], fn.CrossEntropy(), fn.SGD(0.5),
                     X, y, 2, 2, callbacks=[_Schedule()])
    assert b[2].lr == pytest.approx(0.125)
    _assert_same_training(a, b)


def test_validation_predict_and_evaluate_on_device():
    X, y = _data(13, 3, 3, 9, "labels")
    net = fn.Sequential(fn.Linear(3, 4), fn.Tanh(), fn.Linear(4, 3), seed=1, dtype=np.float64)
    hist = net.fit(X, y, fn.CrossEntropy(), fn.SGD(0.1), epochs=1, batch_size=5, seed=0, backend="cuda",
                   validation_data=(X[:6], y[:6]))
    assert "val_loss" in hist.history and "val_accuracy" in hist.history
    want = net.predict(X, backend="numpy")
    assert_allclose(net.predict(X, batch_size=4, backend="cuda"), want, rtol=1e-12, atol=1e-14)
    assert net.predict(X[:0], backend="cuda").shape == (0, 3)
    ev_np = net.evaluate(X, y, fn.CrossEntropy(), backend="numpy")
    ev_cu = net.evaluate(X, y, fn.CrossEntropy(), batch_size=5, backend="cuda")
    assert ev_cu["loss"] == pytest.approx(ev_np["loss"], rel=1e-12)
    assert ev_cu["accuracy"] == ev_np["accuracy"]


def test_non_plain_network_falls_back_to_generic_loop():
    # two activations in a row is not a plain MLP: the per-layer loop with the CUDA host launchers
    X, Y = _data(6, 2, 2, 4, "float")
    layers = [fn.Linear(2, 3), fn.Tanh(), fn.Sigmoid(), fn.Linear(3, 2)]
    cuda_backend._warned.clear()
    with pytest.warns(RuntimeWarning, match="cannot keep this training on the GPU"):
        a, b = _fit_both(layers, fn.MSE(), fn.SGD(0.3, momentum=0.5), X, Y, 1, 4)
    _assert_same_training(a, b)
    net = fn.Sequential(*copy.deepcopy(layers), seed=7, dtype=np.float64)
    assert_allclose(net.predict(X, backend="cuda"), net.predict(X, backend="numpy"), rtol=1e-12)


def test_sign_network_cannot_train_and_changes_nothing():
    net = fn.Sequential(fn.Linear(2, 1), fn.Sign(), seed=0, dtype=np.float64)
    before = net.params.copy()
    with pytest.raises(ValueError, match="forward-only"):
        net.fit(np.ones((3, 2)), np.ones(3), fn.MSE(), fn.SGD(0.1), backend="cuda")
    assert_array_equal(net.params, before)
    assert_array_equal(net.predict(np.array([[1.0, 2.0]]), backend="cuda"),
                       net.predict(np.array([[1.0, 2.0]]), backend="numpy"))


class _EditWeights(fn.Callback):
    """Writes the weights and the optimizer state at every epoch's end, as a user's callback may."""

    def on_epoch_end(self, epoch, logs=None):
        self.net.params *= 0.5
        for name in self.trainer.optimizer.state_names():
            getattr(self.trainer.optimizer, name)[...] = 0


def test_weights_written_by_a_callback_at_epoch_end_are_used():
    X, y = _data(40, 3, 3, 5, "labels")
    layers = [fn.Linear(3, 5), fn.ReLU(), fn.Linear(5, 3)]
    a, b = _fit_both(layers, fn.CrossEntropy(), fn.SGD(0.1, momentum=0.9), X, y, 3, 8, callbacks=[_EditWeights()])
    _assert_same_training(a, b)


def test_divergence_on_cuda_restores_and_raises():
    X, y = _data(24, 3, 3, 6, "labels")
    net = fn.Sequential(fn.Linear(3, 4), fn.ReLU(), fn.Linear(4, 3), seed=0)  # float32
    opt = fn.SGD(1e8, momentum=0.9)
    opt.ensure_setup(net)
    before = net.params.copy()
    with pytest.raises(fn.DivergenceError, match="epoch 1, batch"):
        net.fit(X, y, fn.MSE(), opt, epochs=2, batch_size=8, backend="cuda")
    assert_array_equal(net.params, before)
    assert_array_equal(opt.velocity, 0) and opt.t == 0


def test_cuda_is_not_chosen_by_auto_before_a_hardware_run(monkeypatch):
    ops = fn.get_ops("cuda")
    monkeypatch.setattr(ops, "simulated", False)  # as on a real GPU
    assert cuda_backend.HARDWARE_RECORD is None and not ops.auto_select
    monkeypatch.setattr(cuda_backend, "HARDWARE_RECORD", "H200, 2027-01-01, README 'GPU results'")
    assert ops.auto_select


# -------------------------------------------------------------- backend selection


@pytest.mark.skipif(not SIMULATED, reason="checks the simulator's special case")
def test_simulated_cuda_is_available_by_name_but_not_auto(monkeypatch):
    monkeypatch.delenv("FASTNN_BACKEND", raising=False)
    fn.set_backend(None)
    assert fn.get_ops("cuda").name == "cuda"
    assert fn.available_backends()["cuda"] is None
    assert fn.get_ops("auto").name != "cuda"
    assert fn.get_backend() != "cuda"
    assert cuda_backend.CudaOps.unavailable_reason() is None


def test_cuda_without_gpu_raises_clear_error():
    # a fresh interpreter without the simulator: no GPU here -> BackendUnavailable with a reason
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "FASTNN_BACKEND")}
    code = (
        "import fastnn as fn\n"
        "from numba import cuda\n"
        "if cuda.is_available():\n"
        "    print('HAS-GPU')\n"
        "else:\n"
        "    try:\n"
        "        fn.get_ops('cuda')\n"
        "    except fn.BackendUnavailable as exc:\n"
        "        print('UNAVAILABLE:', exc)\n"
        "    print('AUTO:', fn.get_ops('auto').name)\n"
        "    net = fn.Sequential(fn.Linear(2, 1), seed=0)\n"
        "    try:\n"
        "        net.fit([[0.0, 1.0]], [1.0], fn.MSE(), fn.SGD(0.1), backend='cuda')\n"
        "    except fn.BackendUnavailable as exc:\n"
        "        print('FIT:', exc)\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    if "HAS-GPU" in res.stdout:
        pytest.skip("this machine has an NVIDIA GPU")
    assert "UNAVAILABLE: backend 'cuda' is unavailable: no usable NVIDIA GPU was found" in res.stdout
    assert "AUTO: cuda" not in res.stdout and "AUTO:" in res.stdout
    assert "FIT: backend 'cuda' is unavailable" in res.stdout


@pytest.mark.skipif(not SIMULATED, reason="checks the refusal under the simulator")
def test_gpu_benchmark_refuses_to_run_under_the_simulator(capsys):
    from fastnn.bench import cuda as bench_cuda

    assert bench_cuda.main(["--backend", "cuda", "--quick"]) == bench_cuda.EXIT_USAGE
    assert "simulator" in capsys.readouterr().err


def test_sparse_input_trains_op_by_op_and_predicts(recwarn):
    """A scipy.sparse X: the CUDA backend has no sparse kernels yet, so it says so once and
    trains op by op (its first layer through SciPy on the host); results equal numpy's."""
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    X = sp.random(37, 19, density=0.15, format="csr", random_state=2, dtype=np.float64)
    y = rng.integers(0, 3, 37)
    nets = []
    for backend in ("numpy", "cuda"):
        net = fn.Sequential(fn.Linear(19, 5), fn.ReLU(), fn.Linear(5, 3), seed=1, dtype=np.float64)
        net.fit(X, y, fn.CrossEntropy(), fn.Adam(0.05), epochs=2, batch_size=8, seed=0, backend=backend)
        nets.append(net)
    assert any("no sparse-input kernels" in str(w.message) for w in recwarn.list)
    assert not np.allclose(nets[0].params, fn.Sequential(fn.Linear(19, 5), fn.ReLU(), fn.Linear(5, 3), seed=1,
                                                         dtype=np.float64).params)
    assert_allclose(nets[1].params, nets[0].params, rtol=TRAIN_RTOL64, atol=1e-12)
    assert_allclose(nets[1].predict(X, backend="cuda"), nets[0].predict(X.toarray()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("decay_per_weight", [False, True])
def test_sample_weights_and_poisson_match_numpy(decay_per_weight):
    """Weighted training (each sample's factor on its loss and delta, per-batch weight decay)
    and the Poisson cost on the device, against the NumPy loop."""
    from fastnn.training import Trainer

    rng = np.random.default_rng(8)
    X = rng.standard_normal((13, 3))
    w = rng.uniform(0, 2, 13)
    w[0] = 0
    cases = [(rng.integers(0, 3, 13), fn.CrossEntropy(), 3, fn.Adam(0.01, weight_decay=0.01)),
             (rng.poisson(2.0, (13, 2)).astype(float), fn.Poisson(), 2, fn.SGD(0.02, momentum=0.9, weight_decay=0.01))]
    for Y, cost, k, opt in cases:
        out = []
        for backend in ("numpy", "cuda"):
            net = fn.Sequential(fn.Linear(3, 4), fn.Tanh(), fn.Linear(4, k), seed=7, dtype=np.float64)
            tr = Trainer(net, copy.deepcopy(cost), copy.deepcopy(opt), batch_size=4, backend=backend, seed=11,
                         decay_per_weight=decay_per_weight)
            out.append((net, tr.fit(X, Y, epochs=2, sample_weight=w)))
        assert_allclose(out[1][0].params, out[0][0].params, rtol=TRAIN_RTOL64, atol=1e-12)
        assert_allclose(out[1][1]["loss"], out[0][1]["loss"], rtol=TRAIN_RTOL64)
