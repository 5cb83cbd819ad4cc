"""fastnn.sklearn against scikit-learn's own MLPClassifier, in one run.

    python benchmarks/bench_sklearn.py [--problems mnist,digits,digits-lbfgs]
        [--epochs 10] [--dtypes float32,float64] [--repeats 1] [--out bench_sklearn.json]

Same parameters and the same X through both libraries (scikit-learn trains in the dtype
of X, and so does fastnn.sklearn by default). Problems (``--problems``, default all):

* ``mnist``: 60,000 training / 10,000 test images, one row per setting (``--settings``)
  and X dtype (``--dtypes``; float32 and float64 X). ``max_iter = --epochs`` for both;
  ``n_iter_no_change = max_iter`` so the ``tol`` rule can never stop either one early
  (its counter must exceed the setting). Accuracy on the test images.

  - ``adam``: hidden (100,), relu, adam, batch 200 (scikit-learn's defaults);
  - ``sgd``: hidden (50,), logistic, sgd (momentum 0.9, Nesterov: scikit-learn's
    defaults), batch 10.
* ``digits``: ``sklearn.datasets.load_digits()`` (1,797 8x8 images, float64), the whole
  ``cross_val_score(Pipeline([StandardScaler(), MLPClassifier()]), X, y, cv=5)`` call
  timed, the classifier at its defaults (max_iter 200); accuracy is the mean over folds.
* ``digits-lbfgs``: ``MLPClassifier(solver="lbfgs")`` at its defaults otherwise (max_iter
  200) fitted on all 1,797 digits, StandardScaler'd once on all of them; accuracy is the
  training accuracy (on those same 1,797 samples), ``loss_`` of each is recorded too.

The digits problems ignore ``--epochs`` and ``--dtypes``; their ConvergenceWarnings are
silenced (as are MNIST's: ``max_iter`` is the epoch count there).

What happens, in order:

1. Compile/warm-up, untimed, per row: the row's fit (the whole CV call for ``digits``) on
   its first 200 samples with max_iter 2, once for scikit-learn and twice for fastnn; the
   first fastnn run minus the second is reported as JIT compile (or cache-load) time. It
   comes first so that each row's first fastnn run in the process is this one.
2. Result check, in float64, with fastnn's chosen backend against its ``numpy`` backend
   (``kernels/reference.py``): ``mnist``: one epoch of each setting on the first 2,000
   training images; ``digits``: one epoch at the defaults on the scaled digits;
   ``digits-lbfgs``: 5 L-BFGS iterations on the scaled digits (also compared with
   scikit-learn's own lbfgs, for information only). The reported losses and the weights
   must agree to rtol 1e-6, otherwise nothing is timed and the script exits with status 3.
3. Timed fits, interleaved per repeat (scikit-learn, then fastnn) so that machine
   noise hits both alike; the table shows median wall times, their ratio and the
   accuracy of each library (mean over the repeats, which use random_state 0, 1, ...)
   and their difference in percentage points (the target: within 0.5).

Thread settings are left as they are: each library uses the cores it finds. Prints a
Markdown table and the JSON (also written to ``--out``) with the machine.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastnn  # noqa: E402
from fastnn.datasets import load_mnist  # noqa: E402

SETTINGS = {
    "adam": dict(hidden_layer_sizes=(100,), activation="relu", solver="adam", batch_size=200),
    "sgd": dict(hidden_layer_sizes=(50,), activation="logistic", solver="sgd", batch_size=10),
}
PROBLEMS = ("mnist", "digits", "digits-lbfgs")
DTYPES = ("float32", "float64")
DIGITS = dict(max_iter=200)  # scikit-learn's defaults: (100,), relu, adam, batch min(200, n)
LBFGS = dict(solver="lbfgs", max_iter=200)
CV_FOLDS = 5
LBFGS_CHECK_ITER = 5
WARMUP_N = 200
SANE_ACC = 0.9
CHECK_RTOL = 1e-6
EXIT_CHECK_FAILED = 3


def machine_info(backend):
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "numpy": np.__version__, "fastnn": fastnn.__version__, "fastnn_backend": backend}
    import sklearn

    info["sklearn"] = sklearn.__version__
    try:
        import numba

        from fastnn import config

        info["numba"] = numba.__version__
        info["numba_threads"] = config.get_num_threads()
    except Exception:  # noqa: BLE001 - informational only
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: d.get(k) for k in ("internal_api", "num_threads", "version")}
                        for d in threadpool_info() if d.get("user_api") == "blas"]
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        info["loadavg_start"] = os.getloadavg()
    return info


def load_digits_data():
    """scikit-learn's digits.

    Returns
    -------
    X, Xs, y : raw float64 X, X StandardScaler'd on all 1,797 samples, labels.
    """
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    return X, StandardScaler().fit_transform(X), y


def _losses(est):
    """The reported losses: ``loss_curve_``, or ``[loss_]`` for lbfgs (which keeps no curve)."""
    return list(getattr(est, "loss_curve_", None) or [est.loss_])


def _rel_errs(got, ref):
    """Largest relative difference of the losses and of the weights of two fitted models."""
    err_loss = max(abs(a - b) / abs(b) for a, b in zip(_losses(got), _losses(ref)))
    err_w = max(float(np.max(np.abs(g - r) / (np.abs(r) + 1e-6))) for g, r in zip(got.coefs_, ref.coefs_))
    return err_loss, err_w


def check_against_reference(X, y, backend, cases):
    """fastnn's backend against its numpy reference backend, float64.

    Parameters
    ----------
    X, y : training data of the check.
    backend : str, fastnn's chosen backend.
    cases : dict, name -> MLPClassifier parameters (with ``max_iter``).

    Returns
    -------
    dict, name -> ``ok``, ``loss_rel_err``, ``weight_rel_err``.
    """
    from fastnn.sklearn import MLPClassifier

    out = {}
    for name, params in cases.items():
        kw = dict(params, random_state=0, dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = MLPClassifier(backend="numpy", **kw).fit(X, y)
            got = MLPClassifier(backend=backend, **kw).fit(X, y)
        err_loss, err_w = _rel_errs(got, ref)
        ok = err_loss <= CHECK_RTOL and all(
            np.allclose(g, r, rtol=CHECK_RTOL, atol=1e-9) for g, r in zip(got.coefs_, ref.coefs_))
        out[name] = {"ok": bool(ok), "loss_rel_err": err_loss, "weight_rel_err": err_w}
    return out


def check_lbfgs_vs_sklearn(X, y, backend, max_iter=LBFGS_CHECK_ITER):
    """fastnn's lbfgs against scikit-learn's, float64, same start: information only."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastnn.sklearn import MLPClassifier

    kw = dict(LBFGS, max_iter=max_iter, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SkMLP(**kw).fit(X, y)
        got = MLPClassifier(backend=backend, dtype="float64", **kw).fit(X, y)
    err_loss, err_w = _rel_errs(got, ref)
    return {"loss_rel_err": err_loss, "weight_rel_err": err_w, "n_iter_": [ref.n_iter_, got.n_iter_]}


def run_checks(problems, data, backend):
    """Result checks of every problem asked for (see the module docstring, step 1)."""
    checks = {}
    if "mnist" in problems:
        Xtr, ytr = data["mnist"][:2]
        cases = {name: dict(p, max_iter=1, n_iter_no_change=1) for name, p in SETTINGS.items()}
        checks["mnist"] = check_against_reference(Xtr[:2000], ytr[:2000], backend, cases)
    if "digits" in problems:
        _, Xs, y = data["digits"]
        checks["digits"] = check_against_reference(Xs, y, backend, {"adam": dict(DIGITS, max_iter=1)})
    if "digits-lbfgs" in problems:
        _, Xs, y = data["digits"]
        cases = {"lbfgs": dict(LBFGS, max_iter=LBFGS_CHECK_ITER)}
        checks["digits-lbfgs"] = check_against_reference(Xs, y, backend, cases)
        checks["digits-lbfgs"]["lbfgs"]["vs_sklearn"] = check_lbfgs_vs_sklearn(Xs, y, backend)
    return checks


def fit_score(cls, params, data):
    """Timed ``cls(**params).fit(Xtr, ytr)``.

    Returns
    -------
    seconds, accuracy on ``(Xte, yte)``, dict of ``n_iter_`` and ``loss_``.
    """
    Xtr, ytr, Xte, yte = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the epoch count / 200
        t0 = time.perf_counter()
        est = cls(**params).fit(Xtr, ytr)
        seconds = time.perf_counter() - t0
    return seconds, float(est.score(Xte, yte)), {"n_iter_": est.n_iter_, "loss_": float(est.loss_)}


def cv_score(cls, params, data):
    """Timed ``cross_val_score`` of ``Pipeline([StandardScaler(), cls(**params)])``.

    Returns
    -------
    seconds, mean accuracy over the folds, dict of the fold accuracies.
    """
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", cls(**params))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter 200
        t0 = time.perf_counter()
        scores = cross_val_score(pipe, X, y, cv=CV_FOLDS)
        seconds = time.perf_counter() - t0
    return seconds, float(np.mean(scores)), {"fold_acc": [float(s) for s in scores]}


def make_rows(problems, settings, dtypes, data, epochs):
    """The table's rows: dicts of problem, setting, dtype, params, run (fit_score or
    cv_score), data and desc."""
    rows = []
    if "mnist" in problems:
        Xtr, ytr, Xte, yte = data["mnist"]
        for dt in dtypes:
            d = (Xtr.astype(dt, copy=False), ytr, Xte.astype(dt, copy=False), yte)
            for name in settings:
                p = dict(SETTINGS[name], max_iter=epochs, n_iter_no_change=epochs)
                desc = (f"{p['hidden_layer_sizes']}, {p['activation']}, {p['solver']}, "
                        f"batch {p['batch_size']}, {epochs} epochs; test acc")
                rows.append(dict(problem="mnist", setting=name, dtype=dt, params=p, run=fit_score,
                                 data=d, desc=desc))
    if "digits" in problems:
        X, _, y = data["digits"]
        rows.append(dict(problem="digits", setting="adam", dtype=str(X.dtype), params=dict(DIGITS),
                         run=cv_score, data=(X, y),
                         desc=f"{CV_FOLDS}-fold CV, StandardScaler + defaults (adam), max_iter 200; mean acc"))
    if "digits-lbfgs" in problems:
        _, Xs, y = data["digits"]
        rows.append(dict(problem="digits-lbfgs", setting="lbfgs", dtype=str(Xs.dtype), params=dict(LBFGS),
                         run=fit_score, data=(Xs, y, Xs, y),
                         desc="scaled, lbfgs at defaults, max_iter 200; training acc"))
    return rows


def warm_up(row, libs):
    """Untimed runs of ``row`` on its first ``WARMUP_N`` samples with max_iter 2: once for
    scikit-learn, twice for fastnn (first minus second: JIT compile or cache-load time)."""
    tiny = tuple(a[:WARMUP_N] for a in row["data"])
    p = dict(row["params"], max_iter=2, random_state=0)
    (_, sk_cls, sk_kw), (_, fn_cls, fn_kw) = libs
    sk = row["run"](sk_cls, dict(p, **sk_kw), tiny)[0]
    t = [row["run"](fn_cls, dict(p, **fn_kw), tiny)[0] for _ in range(2)]
    return {"sklearn_warmup_s": sk, "first_fit_s": t[0], "second_fit_s": t[1],
            "compile_s": max(0.0, t[0] - t[1])}


def time_row(row, libs, repeats):
    """Timed runs of ``row``, interleaved per repeat (random_state = repeat)."""
    res = {lib: {"s": [], "acc": [], "info": []} for lib, _, _ in libs}
    for r in range(repeats):
        for lib, cls, kw in libs:
            s, acc, extra = row["run"](cls, dict(row["params"], random_state=r, **kw), row["data"])
            res[lib]["s"].append(s)
            res[lib]["acc"].append(acc)
            res[lib]["info"].append(extra)
            more = "".join(f"  {k} {v}" for k, v in extra.items() if k != "fold_acc")
            print(f"  {row['problem']} {row['setting']} {row['dtype']} repeat {r} {lib:8s} {s:8.2f} s  "
                  f"accuracy {acc:.4f}{more}", flush=True)
    sk_s, fn_s = statistics.median(res["sklearn"]["s"]), statistics.median(res["fastnn"]["s"])
    sk_a, fn_a = float(np.mean(res["sklearn"]["acc"])), float(np.mean(res["fastnn"]["acc"]))
    return {"problem": row["problem"], "setting": row["setting"], "dtype": row["dtype"],
            "desc": row["desc"], "params": dict(row["params"]),
            "sklearn_s": sk_s, "fastnn_s": fn_s, "speedup": sk_s / fn_s,
            "sklearn_acc": sk_a, "fastnn_acc": fn_a, "acc_diff_pp": 100 * (fn_a - sk_a),
            "speedup_target_met": sk_s / fn_s >= 5.0,
            "accuracy_target_met": abs(100 * (fn_a - sk_a)) <= 0.5,
            "accuracy_sane": min(sk_a, fn_a) > SANE_ACC, "raw": res}


def _split(arg, allowed, what):
    items = [s.strip() for s in arg.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise SystemExit(f"--{what}: unknown {bad or arg!r}; choose from {','.join(allowed)}")
    return items


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated subset of: " + ",".join(PROBLEMS))
    ap.add_argument("--epochs", type=int, default=10, help="MNIST: max_iter (epochs) for both libraries")
    ap.add_argument("--dtypes", default=",".join(DTYPES), help="MNIST: X dtypes, subset of: " + ",".join(DTYPES))
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per library and row")
    ap.add_argument("--settings", default="adam,sgd", help="MNIST: comma-separated subset of: " + ",".join(SETTINGS))
    ap.add_argument("--backend", default="auto", help="fastnn backend (default auto)")
    ap.add_argument("--data-dir", default=os.environ.get("FASTNN_DATA") or "/work/shared/data/mnist")
    ap.add_argument("--train-size", type=int, default=60000, help="MNIST training images used (default all)")
    ap.add_argument("--out", default="bench_sklearn.json", help="JSON output file")
    args = ap.parse_args(argv)
    problems = _split(args.problems, PROBLEMS, "problems")
    dtypes = _split(args.dtypes, DTYPES, "dtypes")
    settings = _split(args.settings, tuple(SETTINGS), "settings")

    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastnn.backends import resolve_backend
    from fastnn.sklearn import MLPClassifier as FastMLP

    backend = resolve_backend(None if args.backend == "auto" else args.backend)
    libs = (("sklearn", SkMLP, {}), ("fastnn", FastMLP, {"backend": backend}))
    data, train_size = {}, None
    if "mnist" in problems:
        Xtr, ytr, Xte, yte = load_mnist(args.data_dir, download=False)
        data["mnist"] = (Xtr[:args.train_size], ytr[:args.train_size], Xte, yte)
        train_size = len(data["mnist"][0])
    if "digits" in problems or "digits-lbfgs" in problems:
        data["digits"] = load_digits_data()
    info = machine_info(backend)

    mnist = (f"MNIST ({train_size} train / {len(data['mnist'][2])} test, {args.epochs} epochs, "
             f"X {','.join(dtypes)}); " if "mnist" in problems else "")
    print(f"# fastnn.sklearn vs scikit-learn: {mnist}problems {','.join(problems)}; "
          f"fastnn backend {backend!r}", flush=True)
    rows = make_rows(problems, settings, dtypes, data, args.epochs)
    comp = {f"{row['problem']}/{row['setting']}/{row['dtype']}": warm_up(row, libs) for row in rows}
    print("compile / warm-up:", json.dumps(comp), flush=True)
    checks = run_checks(problems, data, backend)
    print("result check (float64, vs the numpy reference backend):", json.dumps(checks), flush=True)
    if not all(c["ok"] for per in checks.values() for c in per.values()):
        print("result check FAILED: nothing timed", file=sys.stderr)
        return EXIT_CHECK_FAILED

    results = [time_row(row, libs, args.repeats) for row in rows]

    if hasattr(os, "getloadavg"):
        info["loadavg_end"] = os.getloadavg()
    print()
    print("| problem | X | setting | scikit-learn s | fastnn s | speedup | sklearn acc | fastnn acc | diff (pp) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for row in results:
        print(f"| {row['problem']} | {row['dtype']} | {row['desc']} | {row['sklearn_s']:.2f} | "
              f"{row['fastnn_s']:.2f} | {row['speedup']:.1f}x | {100 * row['sklearn_acc']:.2f}% | "
              f"{100 * row['fastnn_acc']:.2f}% | {row['acc_diff_pp']:+.2f} |")
    for row in results:
        if not row["accuracy_sane"]:
            print(f"NOTE: {row['problem']} {row['setting']} {row['dtype']}: an accuracy is not above "
                  f"{SANE_ACC} (sklearn {row['sklearn_acc']:.4f}, fastnn {row['fastnn_acc']:.4f})")
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": info,
              "problems": problems, "epochs": args.epochs, "dtypes": dtypes, "repeats": args.repeats,
              "train_size": train_size, "result_check": checks, "compile": comp, "results": results}
    print()
    print(json.dumps(result, indent=1, default=str))
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
