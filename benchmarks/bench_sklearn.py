"""fastnn.sklearn against scikit-learn's own MLPClassifier on MNIST, in one run.

    python benchmarks/bench_sklearn.py [--epochs 10] [--repeats 1] [--out bench_sklearn.json]

Same parameters through both libraries, same float32 data (scikit-learn trains in
the dtype of X, so both run in float32):

* ``adam``: hidden (100,), relu, adam, batch 200;
* ``sgd``: hidden (50,), logistic, sgd (momentum 0.9, Nesterov: scikit-learn's
  defaults), batch 10.

``max_iter`` is the number of epochs for both; ``n_iter_no_change = max_iter`` so the
``tol`` rule can never stop either one early (its counter must exceed the setting).

What happens, in order:

1. Result check at the benchmark shape, in float64: one epoch of each setting on the
   first 2,000 training images with fastnn's chosen backend and with its ``numpy``
   backend (``kernels/reference.py``); the reported losses and the weights must agree
   to rtol 1e-6, otherwise nothing is timed and the script exits with status 3.
2. Compile/warm-up: the first fastnn fit in this process (tiny data) minus a second
   identical one is reported as JIT compile (or cache-load) time.
3. Timed fits, interleaved per repeat (scikit-learn, then fastnn) so that machine
   noise hits both alike; the table shows median wall times, their ratio and the
   test accuracy of each library (mean over the repeats, which use random_state
   0, 1, ...).

Prints a Markdown table and the JSON (also written to ``--out``) with the machine.
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


def check_against_reference(X, y, backend, epochs=1, n=2000):
    """fastnn's backend against its numpy reference backend, float64, benchmark shapes."""
    from fastnn.sklearn import MLPClassifier

    out = {}
    for name, params in SETTINGS.items():
        kw = dict(params, max_iter=epochs, n_iter_no_change=epochs, random_state=0, dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = MLPClassifier(backend="numpy", **kw).fit(X[:n], y[:n])
            got = MLPClassifier(backend=backend, **kw).fit(X[:n], y[:n])
        err_loss = max(abs(a - b) / abs(b) for a, b in zip(got.loss_curve_, ref.loss_curve_))
        err_w = max(float(np.max(np.abs(g - r) / (np.abs(r) + 1e-6))) for g, r in zip(got.coefs_, ref.coefs_))
        ok = err_loss <= CHECK_RTOL and all(
            np.allclose(g, r, rtol=CHECK_RTOL, atol=1e-9) for g, r in zip(got.coefs_, ref.coefs_))
        out[name] = {"ok": bool(ok), "loss_rel_err": err_loss, "weight_rel_err": err_w}
    return out


def compile_time(backend):
    from fastnn.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X, y = rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64)
    times = {}
    for name, params in SETTINGS.items():
        t = []
        for _ in range(2):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                MLPClassifier(backend=backend, max_iter=2, random_state=0, **params).fit(X, y)
            t.append(time.perf_counter() - t0)
        times[name] = {"first_fit_s": t[0], "second_fit_s": t[1], "compile_s": max(0.0, t[0] - t[1])}
    return times


def timed_fit(cls, params, Xtr, ytr, Xte, yte):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the epoch count here
        t0 = time.perf_counter()
        est = cls(**params).fit(Xtr, ytr)
        seconds = time.perf_counter() - t0
    return seconds, float(est.score(Xte, yte)), est


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10, help="max_iter (epochs) for both libraries")
    ap.add_argument("--repeats", type=int, default=1, help="timed fits per library and setting")
    ap.add_argument("--settings", default="adam,sgd", help="comma-separated subset of: " + ",".join(SETTINGS))
    ap.add_argument("--backend", default="auto", help="fastnn backend (default auto)")
    ap.add_argument("--data-dir", default=os.environ.get("FASTNN_DATA") or "/work/shared/data/mnist")
    ap.add_argument("--train-size", type=int, default=60000, help="training images used (default all)")
    ap.add_argument("--out", default="bench_sklearn.json", help="JSON output file")
    args = ap.parse_args(argv)

    from sklearn.neural_network import MLPClassifier as SkMLP

    from fastnn.backends import resolve_backend
    from fastnn.sklearn import MLPClassifier as FastMLP

    backend = resolve_backend(None if args.backend == "auto" else args.backend)
    Xtr, ytr, Xte, yte = load_mnist(args.data_dir, download=False)
    Xtr, ytr = Xtr[:args.train_size], ytr[:args.train_size]
    info = machine_info(backend)

    print(f"# fastnn.sklearn vs scikit-learn, MNIST ({len(Xtr)} train / {len(Xte)} test), "
          f"{args.epochs} epochs, fastnn backend {backend!r}", flush=True)
    checks = check_against_reference(Xtr, ytr, backend)
    print("result check (float64, 1 epoch on 2000 images, vs the numpy reference backend):",
          json.dumps(checks), flush=True)
    if not all(c["ok"] for c in checks.values()):
        print("result check FAILED: nothing timed", file=sys.stderr)
        return EXIT_CHECK_FAILED
    comp = compile_time(backend)
    print("compile / warm-up:", json.dumps(comp), flush=True)

    rows = []
    for name in args.settings.split(","):
        base = dict(SETTINGS[name], max_iter=args.epochs, n_iter_no_change=args.epochs)
        res = {"sklearn": {"s": [], "acc": []}, "fastnn": {"s": [], "acc": []}}
        for r in range(args.repeats):
            params = dict(base, random_state=r)
            for lib, cls, kw in (("sklearn", SkMLP, params), ("fastnn", FastMLP, dict(params, backend=backend))):
                s, acc, est = timed_fit(cls, kw, Xtr, ytr, Xte, yte)
                res[lib]["s"].append(s)
                res[lib]["acc"].append(acc)
                print(f"  {name} repeat {r} {lib:8s} {s:8.2f} s  test accuracy {acc:.4f}  "
                      f"n_iter_ {est.n_iter_}", flush=True)
        sk_s, fn_s = statistics.median(res["sklearn"]["s"]), statistics.median(res["fastnn"]["s"])
        sk_a, fn_a = float(np.mean(res["sklearn"]["acc"])), float(np.mean(res["fastnn"]["acc"]))
        rows.append({"setting": name, "params": {k: v for k, v in base.items()},
                     "sklearn_s": sk_s, "fastnn_s": fn_s, "speedup": sk_s / fn_s,
                     "sklearn_acc": sk_a, "fastnn_acc": fn_a, "acc_diff_pp": 100 * (fn_a - sk_a),
                     "speedup_target_met": sk_s / fn_s >= 5.0,
                     "accuracy_target_met": abs(100 * (fn_a - sk_a)) <= 0.5,
                     "raw": res})

    if hasattr(os, "getloadavg"):
        info["loadavg_end"] = os.getloadavg()
    print()
    print("| setting | scikit-learn s | fastnn s | speedup | sklearn acc | fastnn acc | diff (pp) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        p = row["params"]
        desc = (f"{p['hidden_layer_sizes']}, {p['activation']}, {p['solver']}, batch {p['batch_size']}, "
                f"{p['max_iter']} epochs")
        print(f"| {desc} | {row['sklearn_s']:.2f} | {row['fastnn_s']:.2f} | {row['speedup']:.1f}x | "
              f"{100 * row['sklearn_acc']:.2f}% | {100 * row['fastnn_acc']:.2f}% | {row['acc_diff_pp']:+.2f} |")
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": info,
              "epochs": args.epochs, "repeats": args.repeats, "train_size": len(Xtr),
              "result_check": checks, "compile": comp, "results": rows}
    print()
    print(json.dumps(result, indent=1, default=str))
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
