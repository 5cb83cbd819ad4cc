"""Smoke tests of the whole-epoch benchmark harness (fastnn.bench) on tiny synthetic data.

No timing is asserted: these check that the harness runs, writes the JSON it promises,
and refuses loudly to time anything when an implementation gives wrong weights.
"""

import json
import sys
import types

import numpy as np
import pytest

import fastnn
import fastnn.backends as backends
from fastnn import bench
from fastnn.backends.numpy import Ops
from fastnn.training import BatchLoop


def _run(tmp_path, *extra):
    out = tmp_path / "res.json"
    rc = bench.main(["--quick", "--backend", "numpy", "--threads", "1", "--out", str(out), *extra])
    return rc, out


def test_quick_run_writes_table_and_json(tmp_path, capsys):
    rc, out = _run(tmp_path, "--config", "a,c", "--fraction", "0.5", "--skip", "jax",
                   "--time-to-accuracy", "--tta-max-epochs", "1")
    assert rc == bench.EXIT_OK
    printed = capsys.readouterr().out
    assert "| config |" in printed and "a. 784-50-10 sigmoid" in printed
    assert "Smoke test (--quick)" in printed and " target " not in printed.split("Time to accuracy")[0]
    assert "Time to accuracy" in printed

    res = json.loads(out.read_text())
    assert res["schema"] == "fastnn-bench/1"
    for key in ("cpu_model", "logical_cpus", "numpy", "numba", "torch", "date", "threads"):
        assert key in res["machine"]
    assert res["settings"]["fastnn_column"] == "fastnn-numpy"
    assert set(res["configs"]) == {"a", "c"}
    torch_installed = bench.import_torch() is not None
    for key, rec in res["configs"].items():
        check = rec["check"]
        assert check["passed"] and check["max_weight_change"] > 0
        expected = {"numpy"} | ({"torch"} if torch_installed else set())
        assert set(check["max_abs_diff"]) == expected
        assert all(d <= 1e-9 for d in check["max_abs_diff"].values())
        for col, t in rec["timings"].items():
            assert len(t["times_s"]) == 1 and t["median_s"] > 0
        # --fraction 0.5 times half the epoch of the Python-loop columns and scales up.
        assert rec["timings"]["numpy"]["extrapolated"]
        assert not rec["timings"]["fastnn-numpy"]["extrapolated"]
        assert rec["speedup"]["vs_numpy"] > 0
    g = res["configs"]["c"]["gflops"]
    assert g["dense_gflop_per_epoch"] == pytest.approx(6 * 512 * (784 * 256 + 256 * 10) / 1e9)
    assert 0 < g["per_column"]["fastnn-numpy"]["fraction_of_matmul"]
    tta = res["time_to_accuracy"]["results"]["fastnn-numpy"]
    assert len(tta["test_accuracy"]) == 1 and 0 <= tta["test_accuracy"][0] <= 1


def test_report_without_the_reference_matmul(tmp_path, capsys):
    # --skip matmul: GFLOP/s are reported without a fraction of the (unmeasured) matmul rate
    rc, out = _run(tmp_path, "--config", "c", "--skip", "matmul,torch,jax")
    assert rc == bench.EXIT_OK
    res = json.loads(out.read_text())
    assert "matmul" not in res or not res["matmul"]
    assert "fraction_of_matmul" not in res["configs"]["c"]["gflops"]["per_column"]["fastnn-numpy"]
    assert "GFLOP/s" in capsys.readouterr().out


def test_dense_flops_of_config_c_match_the_issue():
    # Issue 3: (c) is 73 GFLOP of dense-equivalent work per 60,000-image epoch.
    assert bench.CONFIGS["c"].dense_flops(60000) / 1e9 == pytest.approx(73.2, abs=0.1)


class _WrongRunner(BatchLoop):
    """Trains correctly, then nudges one weight: the kind of bug the check must catch."""

    def run(self, order, b0, b1):
        out = super().run(order, b0, b1)
        self.net.params[0] += 1e-4
        return out


class _WrongOps(Ops):
    name = "numba"

    def make_runner(self, net, cost, optimizer, X, targets, batch_size, sparse="auto"):
        return _WrongRunner(self, net, cost, optimizer, X, targets, batch_size)


def test_check_fails_loudly_on_wrong_backend_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(backends._instances, "numba", _WrongOps())
    rc, out = bench.main(["--quick", "--backend", "numba", "--config", "b", "--skip", "matmul,torch,jax",
                          "--out", str(tmp_path / "res.json")]), tmp_path / "res.json"
    assert rc == bench.EXIT_CHECK_FAILED
    err = capsys.readouterr().err
    assert "result check FAILED" in err and "fastnn-numba" in err
    assert "No timings were taken" in err
    assert not out.exists()


def test_check_fails_when_numpy_baseline_is_wrong(tmp_path, monkeypatch, capsys):
    real = bench.numpy_train

    def forgets_bias_update(cfg, Ws, bs, X, targets, order, state=None):
        saved = [b.copy() for b in bs]
        state = real(cfg, Ws, bs, X, targets, order, state)
        for b, s in zip(bs, saved):
            b[...] = s
        return state

    monkeypatch.setattr(bench, "numpy_train", forgets_bias_update)
    rc, out = _run(tmp_path, "--config", "c", "--skip", "matmul,torch,jax")
    assert rc == bench.EXIT_CHECK_FAILED
    err = capsys.readouterr().err
    assert "result check FAILED for config c" in err and "numpy:" in err
    assert not out.exists()


def test_check_config_raises_directly():
    X, y, _, _ = bench.synthetic_data(n_train=64, n_test=1)
    rec = bench.check_config(bench.CONFIGS["b"], X, y, "numpy", 5, 0, None)
    assert rec["passed"] and rec["steps"] == 5


def test_cuda_dispatch_missing_module(monkeypatch, capsys):
    monkeypatch.delattr(bench, "cuda", raising=False)
    monkeypatch.setitem(sys.modules, "fastnn.bench.cuda", None)   # import raises ModuleNotFoundError
    assert bench.main(["--backend", "cuda"]) == bench.EXIT_USAGE
    assert "fastnn.bench.cuda" in capsys.readouterr().err


def test_cuda_dispatch_passes_argv(monkeypatch):
    seen = []
    fake = types.ModuleType("fastnn.bench.cuda")
    fake.main = lambda argv=None: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "fastnn.bench.cuda", fake)
    monkeypatch.setattr(bench, "cuda", fake, raising=False)
    argv = ["--backend", "cuda", "--config", "c"]
    assert bench.main(argv) == 0
    assert seen == [argv]


@pytest.mark.parametrize("argv", [["--config", "z"], ["--config", "none"], ["--repeats", "0"],
                                  ["--skip", "bogus"], ["--threads", "999"],
                                  ["--fraction", "2"], ["--time-to-accuracy", "--tta-arch", "784-x-10"],
                                  ["--time-to-accuracy", "--tta-arch", "10-10"]])
def test_bad_options_are_usage_errors(argv, tmp_path, capsys):
    assert bench.main(["--quick", "--backend", "numpy", "--out", str(tmp_path / "r.json"), *argv]) \
        == bench.EXIT_USAGE
    assert "fastnn.bench:" in capsys.readouterr().err


def test_numpy_baseline_same_order_as_fit():
    # The baselines must visit samples in fit's order: fit's first epoch uses this permutation.
    a = bench.shuffle_order(7, 100)
    b = np.random.default_rng(7).permutation(100)
    assert a.dtype == np.int64 and np.array_equal(a, b)


@pytest.mark.slow
def test_quick_run_on_numba_backend(tmp_path):
    reason = fastnn.available_backends()["numba"]
    if reason is not None:
        pytest.skip(f"numba backend unavailable: {reason}")
    out = tmp_path / "res.json"
    rc = bench.main(["--quick", "--backend", "numba", "--config", "c", "--skip", "torch,fastnn-numpy",
                     "--threads", "1", "--out", str(out)])
    assert rc == bench.EXIT_OK
    res = json.loads(out.read_text())
    assert res["settings"]["fastnn_column"] == "fastnn-numba"
    for rec in res["configs"].values():
        assert rec["check"]["passed"] and "fastnn-numba" in rec["check"]["max_abs_diff"]
        assert rec["compile"]["in_process"]["first_fit_s"] > 0
        assert set(rec["targets_met"]) == {"vs_numpy", "vs_torch", "vs_jax"}


# --------------------------------------------------------------------------- issue 11: JAX,
# dense configs, bag-of-words


def _jax():
    """jax, or skip: an optional peer, a skip (with the reason) in CI too."""
    jax = bench.import_jax()
    if jax is None:
        pytest.skip("jax is not installed (optional peer: pip install 'fastnn-numba[jax]')")
    return jax


def test_jax_column_checked_timed_and_compiled_separately(tmp_path, capsys):
    jax = _jax()
    was = bool(jax.config.jax_enable_x64)
    rc, out = _run(tmp_path, "--config", "b,c", "--skip", "matmul,torch,numpy",
                   "--time-to-accuracy", "--tta-max-epochs", "1")
    assert rc == bench.EXIT_OK
    assert bool(jax.config.jax_enable_x64) == was          # the float64 check did not leak x64
    printed = capsys.readouterr().out
    assert "JAX (jit+scan) (s)" in printed and "vs JAX" in printed
    res = json.loads(out.read_text())
    assert "jax" in res["settings"]["threads"] and res["settings"]["jax"].startswith("jax ")
    for key, rec in res["configs"].items():
        # checked in float64 against the reference before timing, like every column
        assert rec["check"]["max_abs_diff"]["jax"] <= 1e-9
        t = rec["timings"]["jax"]
        assert t["median_s"] > 0 and t["dtype"] == "float32" and not t["extrapolated"]
        assert set(t["compile"]) == {"first_call_s", "second_call_s", "compile_s"}
        assert 0 <= t["test_accuracy"] <= 1 and rec["speedup"]["vs_jax"] > 0
    assert "b_over_a" not in res["epoch_ratios"]            # a was not run
    tta = res["time_to_accuracy"]
    assert "jax" in tta["results"] and tta["jax_compile"]["compile_s"] >= 0
    assert tta["check"]["max_abs_diff"]["jax"] <= 1e-9      # Adam, checked before timing


def test_jax_float64_epoch_equals_the_reference_with_a_short_last_batch():
    jax = _jax()
    from fastnn.bench.jaxpeer import JaxEpoch, x64

    X, y, _, _ = bench.synthetic_data(n_train=75, n_test=1)       # 75 = 7 batches of 10 + 5
    for key in ("b", "c"):
        cfg = bench.CONFIGS[key]
        base = bench.make_net(cfg, 3, np.float64)
        ref = base.copy()
        ref.fit(X.astype(np.float64), y, bench.make_cost(cfg), bench.make_optimizer(cfg), epochs=1,
                batch_size=10, seed=4, backend="numpy")
        cfg10 = bench.Config(**{**cfg.__dict__, "batch_size": 10})
        with x64(jax, True):
            je = JaxEpoch(jax, cfg10, X.astype(np.float64), bench.numpy_targets(cfg, y, np.float64),
                          np.float64)
            params, _ = je.epoch(*je.init(*bench.net_arrays(base)), bench.shuffle_order(4, 75))
            got = bench.flat(*je.arrays(params))
        np.testing.assert_allclose(got, ref.params, rtol=1e-10, atol=1e-12)


def test_check_fails_loudly_on_a_wrong_jax(tmp_path, monkeypatch, capsys):
    _jax()
    from fastnn.bench import jaxpeer

    real = jaxpeer.JaxEpoch._loss
    monkeypatch.setattr(jaxpeer.JaxEpoch, "_loss", lambda self, p, x, t: 1.01 * real(self, p, x, t))
    rc, out = _run(tmp_path, "--config", "c", "--skip", "matmul,torch")
    assert rc == bench.EXIT_CHECK_FAILED
    err = capsys.readouterr().err
    assert "result check FAILED for config c" in err and "jax:" in err
    assert not out.exists()


def test_dense_configs_train_on_standardised_data(tmp_path):
    rc, out = _run(tmp_path, "--config", "a", "--dense", "--skip", "matmul,torch,jax,numpy")
    assert rc == bench.EXIT_OK
    res = json.loads(out.read_text())
    assert list(res["configs"]) == ["a", "a-dense"]
    rec = res["configs"]["a-dense"]
    assert rec["dense"] and rec["target_jax"] == 1.5 and rec["check"]["passed"]
    assert set(res["epoch_ratios"]) == set()                # no b: no b/a ratio
    assert bench.CONFIGS["c-dense"].target_jax == 1.3 and bench.CONFIGS["c"].target_jax == 2


def test_standardize_is_standard_scaler():
    X, _, Xt, _ = bench.synthetic_data(n_train=200, n_test=50)
    X[:, 3] = 0.25                                          # a constant pixel -> 0
    Xs, Xts = bench.standardize(X, Xt)
    assert Xs.dtype == np.float32 and np.all(Xs[:, 3] == 0)
    np.testing.assert_allclose(Xs.mean(axis=0), 0, atol=1e-5)
    try:
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        return
    sc = StandardScaler().fit(X)
    np.testing.assert_allclose(Xs, sc.transform(X), atol=1e-5)
    np.testing.assert_allclose(Xts, sc.transform(Xt), atol=1e-5)


def test_bag_of_words_is_deterministic_csr():
    from fastnn.bench.bowdata import make_bow, quick_spec

    spec = quick_spec(n_docs=300, seed=5)
    a, b = make_bow(spec), make_bow(spec)
    Xtr, ytr, Xte, yte = a
    assert Xtr.format == "csr" and Xtr.dtype == np.float32 and Xtr.has_sorted_indices
    assert Xtr.shape == (240, spec.vocab) and Xte.shape == (60, spec.vocab)
    assert set(np.unique(ytr)) <= set(range(spec.n_classes))
    for u, v in zip(a, b):
        assert (u != v).nnz == 0 if hasattr(u, "nnz") else np.array_equal(u, v)
    norms = np.sqrt(np.asarray(Xtr.multiply(Xtr).sum(axis=1))).ravel()
    np.testing.assert_allclose(norms, 1, rtol=1e-5)         # tf-idf rows of unit L2 norm
    other = make_bow(quick_spec(n_docs=300, seed=6))[0]
    assert (other != Xtr).nnz > 0


def test_tiny_bag_of_words_run(tmp_path, capsys):
    rc, out = _run(tmp_path, "--config", "bow", "--bow-docs", "200", "--bow-vocab", "500",
                   "--skip", "fastnn-sklearn")
    assert rc == bench.EXIT_OK
    printed = capsys.readouterr().out
    assert "Bag-of-words" in printed and "| library |" in printed
    bow = json.loads(out.read_text())["bow"]
    assert bow["stats"]["train_shape"] == [160, 500]
    libs = bow["libraries"]
    assert libs["fastnn-sklearn"]["status"] == "skipped"
    assert libs["fastnn"]["status"] == "ok", libs["fastnn"]   # trained on the CSR matrix itself
    for lib in ("sklearn", "torch"):
        r = libs[lib]
        if r["status"] == "skipped":
            continue
        assert r["status"] == "ok", r
        assert r["train_s"] > 0 and 0 <= r["test_accuracy"] <= 1 and r["peak_growth_mb"] >= 0
    if libs["torch"]["status"] == "ok":
        assert bow["check"]["max_abs_diff"]["torch"] <= 1e-9
    if libs["fastnn"]["status"] == "ok":
        assert bow["check"]["max_abs_diff"]["fastnn"] <= 1e-9


@pytest.mark.parametrize("argv", [["--config", "bow", "--bow-docs", "0"],
                                  ["--config", "bow", "--bow-mem-cap", "-1"],
                                  ["--config", "a-sparse"]])
def test_bad_bow_options_are_usage_errors(argv, tmp_path, capsys):
    assert bench.main(["--quick", "--backend", "numpy", "--out", str(tmp_path / "r.json"), *argv]) \
        == bench.EXIT_USAGE
