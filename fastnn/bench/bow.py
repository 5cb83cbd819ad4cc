"""The bag-of-words benchmark (``--config bow``): fastnn on a scipy.sparse CSR matrix against
scikit-learn's ``MLPClassifier`` on the same CSR and PyTorch with ``torch.sparse.mm``.

Steps:

1. :func:`~fastnn.bench.bowdata.make_bow` generates the problem from the seed (sizes in
   :class:`~fastnn.bench.bowdata.BowSpec`; ``--bow-docs``/``--bow-vocab``/... change them) and
   saves it (``scipy.sparse.save_npz``) to a temporary folder.
2. Result check before timing, in float64 on the first ``2.5`` batches: fastnn on the CSR
   slice and PyTorch's sparse first layer, from the same weights and order, against fastnn's
   reference backend on the densified slice (the only densification, a few hundred rows).
   A library that does not take sparse input yet is recorded as such; a wrong one stops
   the benchmark (exit status 3). The estimators draw their own weights and orders, so they
   are not compared weight by weight; their test accuracy is reported.
3. One fresh interpreter per library (:mod:`fastnn.bench.bowrun`): warm-up, then one timed
   training of ``epochs`` epochs, the peak RSS growth during it, and test accuracy.
"""

import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

import fastnn as fn
from fastnn.bench._util import _log, _max_rel_err, _now
from fastnn.bench.bowdata import BowSpec, make_bow, quick_spec, stats
from fastnn.bench.bowrun import MARK, TorchSparseRun
from fastnn.bench.configs import (CHECK_ATOL64, CHECK_RTOL64, TARGETS, BenchCheckError, Config, flat,
                                  make_cost, make_net, make_optimizer, net_arrays, shuffle_order)

#: The libraries, in the order they run and appear in the table.
BOW_LIBS = ("fastnn", "fastnn-sklearn", "sklearn", "torch")
BOW_TITLES = {"fastnn": "fastnn (Sequential.fit on CSR)", "fastnn-sklearn": "fastnn.sklearn.MLPClassifier",
              "sklearn": "scikit-learn MLPClassifier", "torch": "PyTorch (torch.sparse.mm)"}


def bow_config(spec):
    """The :class:`Config` of the bag-of-words model (``spec`` a BowSpec or its dict)."""
    s = spec if isinstance(spec, dict) else spec.as_dict()
    return Config("bow", "bag-of-words", (s["vocab"], s["hidden"], s["n_classes"]), "relu", "identity",
                  "ce", "adam", s["lr"], s["batch_size"])


def bow_spec(args):
    """The :class:`BowSpec` from the ``--bow-*`` options (``--quick``: a tiny one)."""
    spec = quick_spec() if args.quick else BowSpec()
    over = {"docs": (spec, "n_docs", args.bow_docs), "vocab": (spec, "vocab", args.bow_vocab),
            "epochs": (spec.model, "epochs", args.bow_epochs), "hidden": (spec.model, "hidden", args.bow_hidden),
            "batch": (spec.model, "batch_size", args.bow_batch)}
    for opt, (obj, name, v) in over.items():
        if v is not None:
            if v < 1:
                raise ValueError(f"--bow-{opt} must be >= 1")
            setattr(obj, name, v)
    spec.seed = args.seed
    if spec.n_docs < 2 * spec.n_classes:
        raise ValueError(f"--bow-docs must be >= {2 * spec.n_classes}")
    lo, hi = spec.topic_band
    spec.topic_band = (min(lo, spec.vocab // 10), min(hi, spec.vocab))
    spec.topic_words = min(spec.topic_words, max(1, (spec.topic_band[1] - spec.topic_band[0]) // 2))
    return spec


def check_bow(spec, X, y, backend, seed, torch):
    """Float64 check on the first 2.5 batches: fastnn (CSR) and torch (sparse) vs the reference."""
    cfg = bow_config(spec)
    m = min(X.shape[0], 2 * cfg.batch_size + max(1, cfg.batch_size // 2))
    Xs = X[:m].astype(np.float64)
    ys = y[:m]
    base = make_net(cfg, seed, np.float64)
    ref = base.copy()
    ref.fit(Xs.toarray(), ys, make_cost(cfg), make_optimizer(cfg), epochs=1, batch_size=cfg.batch_size,
            seed=seed, backend="numpy")
    rec = {"samples": m, "steps": -(-m // cfg.batch_size), "dtype": "float64", "rtol": CHECK_RTOL64,
           "atol": CHECK_ATOL64, "reference": "fastnn backend 'numpy' on the densified slice",
           "max_abs_diff": {}, "not_checked": {}, "passed": True,
           "max_weight_change": float(np.abs(ref.params - base.params).max())}
    results = {}
    net = base.copy()
    net.fit(Xs, ys, make_cost(cfg), make_optimizer(cfg), epochs=1, batch_size=cfg.batch_size,
            seed=seed, backend=backend)
    results["fastnn"] = net.params.copy()
    if torch is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse.*")   # torch's beta/invariant notes
            tr = TorchSparseRun(torch, cfg, *net_arrays(base), np.float64)
            tr.train(Xs, torch.from_numpy(ys), shuffle_order(seed, m))
        results["torch"] = flat(*tr.arrays())
    for lib in ("sklearn", "fastnn-sklearn"):
        rec["not_checked"][lib] = "its own initial weights and sample order: test accuracy only"
    failures = []
    for name, got in results.items():
        diff, ratio = _max_rel_err(got, ref.params, CHECK_RTOL64, CHECK_ATOL64)
        rec["max_abs_diff"][name] = diff
        if not np.all(np.isfinite(got)) or ratio > 1.0:
            failures.append(f"{name}: max |w - w_ref| = {diff:.3g} ({ratio:.3g}x the tolerance)")
    if rec["max_weight_change"] == 0.0:
        failures.append("the reference did not change the weights: the check would prove nothing")
    if failures:
        rec["passed"] = False
        raise BenchCheckError("result check FAILED for config bow after "
                              f"{rec['steps']} steps in float64 against the reference:\n  "
                              + "\n  ".join(failures) + "\nNo timings were taken.")
    return rec


def _run_child(lib, datadir, settings, timeout):
    root = os.path.dirname(os.path.dirname(os.path.abspath(fn.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = _now()
    try:
        proc = subprocess.run([sys.executable, "-m", "fastnn.bench.bowrun", lib, datadir,
                               json.dumps(settings)], capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        return {"library": lib, "status": "error", "reason": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            rec = json.loads(line[len(MARK):])
            rec["process_wall_s"] = _now() - t0
            return rec
    return {"library": lib, "status": "error",
            "reason": f"exit {proc.returncode}: {proc.stderr.strip()[-800:]}"}


def _available(lib, torch, skip):
    if lib in skip:
        return "left out (--skip)"
    if lib == "torch" and torch is None:
        return "torch is not installed"
    if lib == "sklearn":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            return "scikit-learn is not installed"
    return None


def run_bow(spec, backend, threads, torch, skip=(), mem_cap_gb=4.0, timeout=3600):
    """The whole bag-of-words benchmark; returns its record."""
    _log(f"bag-of-words: {spec.describe()}")
    t0 = _now()
    X, y, X_test, y_test = make_bow(spec)
    rec = {"title": "bag-of-words", "data": spec.describe(), "model": spec.describe_model(),
           "spec": spec.as_dict(),
           "generate_s": _now() - t0, "stats": stats(X, X_test), "backend": backend,
           "mem_cap_gb": mem_cap_gb, "libraries": {}}
    _log(f"  generated in {rec['generate_s']:.1f} s: {rec['stats']['nnz_train']} non-zeros in "
         f"{X.shape[0]} x {X.shape[1]}")
    _log("  result check (float64, 2.5 batches) ...")
    rec["check"] = check_bow(spec, X, y, backend, spec.seed, torch)
    settings = {"spec": rec["spec"], "seed": spec.seed, "backend": backend, "threads": threads,
                "mem_cap_gb": mem_cap_gb}
    with tempfile.TemporaryDirectory(prefix="fastnn-bench-bow-") as d:
        import scipy.sparse as sp

        sp.save_npz(os.path.join(d, "X_train.npz"), X, compressed=False)
        sp.save_npz(os.path.join(d, "X_test.npz"), X_test, compressed=False)
        np.save(os.path.join(d, "y_train.npy"), y)
        np.save(os.path.join(d, "y_test.npy"), y_test)
        del X, X_test
        for lib in BOW_LIBS:
            why = _available(lib, torch, skip)
            if why:
                rec["libraries"][lib] = {"library": lib, "status": "skipped", "reason": why}
                continue
            _log(f"  {lib} (fresh interpreter) ...")
            r = _run_child(lib, d, settings, timeout)
            rec["libraries"][lib] = r
            _log(f"    {r['status']}" + (f": {r['train_s']:.3g} s, test accuracy {r.get('test_accuracy')}, "
                                         f"peak +{r.get('peak_growth_mb', 0):.0f} MB" if "train_s" in r else
                                         f" ({r.get('reason', '')[:200]})"))
    rec["ratios"] = _ratios(rec["libraries"])
    return rec


def _ratios(libs):
    """fastnn's speedup and accuracy difference (points) against each peer, where both ran."""
    me = libs.get("fastnn", {})
    out = {"targets": {"vs_sklearn": TARGETS["bow_vs_sklearn"], "vs_torch": TARGETS["bow_vs_torch"],
                       "accuracy_points": TARGETS["bow_accuracy_points"]}}
    for name in ("sklearn", "torch", "fastnn-sklearn"):
        peer = libs.get(name, {})
        if "train_s" in me and "train_s" in peer:
            out[f"vs_{name}"] = peer["train_s"] / me["train_s"]
            if me.get("test_accuracy") is not None and peer.get("test_accuracy") is not None:
                out[f"accuracy_points_vs_{name}"] = 100 * (me["test_accuracy"] - peer["test_accuracy"])
    return out
