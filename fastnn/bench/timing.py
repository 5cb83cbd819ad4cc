"""The measured parts of the benchmark: result check, compile time, epoch timings and the
reference matmul (time to accuracy: :mod:`fastnn.bench.tta`; bag-of-words:
:mod:`fastnn.bench.bow`)."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import fastnn as fn
from fastnn.bench._util import _log, _max_rel_err, _median, _now, _rel_norm_diff
from fastnn.bench.configs import (CHECK_ATOL64, CHECK_RTOL64, BenchCheckError, flat, make_cost,
                                  make_net, make_optimizer, net_arrays, shuffle_order)
from fastnn.bench.jaxpeer import JaxEpoch, x64
from fastnn.bench.peers import TorchRun, _act, numpy_targets


def _numpy_train():
    """``fastnn.bench.numpy_train`` as the package holds it when called: a replacement put
    there (as the tests do, to check that a wrong baseline fails the check) is what runs."""
    from fastnn import bench

    return bench.numpy_train


def matmul_gflops(n=2048, repeats=5):
    """GFLOP/s of ``np.dot`` on two n x n float32 matrices: median and best of ``repeats``.

    The best is used as the machine's practical peak (on a shared machine the median
    mostly measures the neighbours).
    """
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    np.dot(a, b)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = _now()
        np.dot(a, b)
        times.append(_now() - t0)
    flop = 2 * n ** 3
    return {"n": n, "dtype": "float32", "repeats": repeats, "times_s": times,
            "median_gflops": flop / _median(times) / 1e9, "gflops": flop / min(times) / 1e9}


def _merge_matmul(first, second):
    """Matmul records from the start and the end of the run: the best of both is the peak."""
    out = dict(first)
    out["times_s"] = first["times_s"] + second["times_s"]
    out["repeats"] = len(out["times_s"])
    flop = 2 * first["n"] ** 3
    out["median_gflops"] = flop / _median(out["times_s"]) / 1e9
    out["gflops"] = max(first["gflops"], second["gflops"])
    out["note"] = "measured at the start and at the end of the epoch timings; gflops is the best run"
    return out


def check_config(cfg, X, y, backend, steps, seed, torch, jax=None):
    """Train ``steps`` steps (float64, benchmark shapes) with every implementation from one
    set of weights and one order, and compare each with the reference backend.

    ``jax`` (the module, or None) adds JAX, run with ``jax_enable_x64`` on for this check
    only; the NumPy loop is left out when the optimizer is Adam (the loop has none). Returns the record; raises :class:`BenchCheckError` on disagreement.
    """
    # The last batch has the same size as the epoch's last (short) batch, so that path is checked too.
    bsz = cfg.batch_size
    m = min(len(X), (steps - 1) * bsz + (len(X) % bsz or bsz))
    X64 = np.ascontiguousarray(X[:m], dtype=np.float64)
    y_c = y[:m]
    base = make_net(cfg, seed, np.float64)
    data_seed = seed + 1
    results = {}

    ref_net = base.copy()
    ref_net.fit(X64, y_c, make_cost(cfg), make_optimizer(cfg), epochs=1, batch_size=cfg.batch_size,
                seed=data_seed, backend="numpy")
    ref = ref_net.params.copy()

    if backend != "numpy":
        net = base.copy()
        net.fit(X64, y_c, make_cost(cfg), make_optimizer(cfg), epochs=1, batch_size=cfg.batch_size,
                seed=data_seed, backend=backend)
        results[f"fastnn-{backend}"] = net.params.copy()

    order = shuffle_order(data_seed, m)
    if cfg.optimizer != "adam":
        Ws, bs = net_arrays(base)
        _numpy_train()(cfg, Ws, bs, X64, numpy_targets(cfg, y_c, np.float64), order)
        results["numpy"] = flat(Ws, bs)

    if torch is not None:
        tr = TorchRun(torch, cfg, *net_arrays(base), np.float64)
        T = numpy_targets(cfg, y_c, np.float64)
        tr.train(torch.from_numpy(X64), torch.from_numpy(T), torch.from_numpy(order))
        results["torch"] = flat(*tr.arrays())

    if jax is not None:
        with x64(jax, True):
            je = JaxEpoch(jax, cfg, X64, numpy_targets(cfg, y_c, np.float64), np.float64)
            params, _ = je.epoch(*je.init(*net_arrays(base)), order)
            results["jax"] = flat(*je.arrays(params))

    record = {"steps": -(-m // cfg.batch_size), "samples": m, "dtype": "float64",
              "reference": "fastnn backend 'numpy' (kernels/reference.py)",
              "rtol": CHECK_RTOL64, "atol": CHECK_ATOL64, "max_abs_diff": {}, "passed": True}
    failures = []
    moved = float(np.abs(ref - base.params).max())
    record["max_weight_change"] = moved
    for name, got in results.items():
        diff, ratio = _max_rel_err(got, ref, CHECK_RTOL64, CHECK_ATOL64)
        record["max_abs_diff"][name] = diff
        if not np.all(np.isfinite(got)) or ratio > 1.0:
            failures.append(f"{name}: max |w - w_ref| = {diff:.3g} (allowed {CHECK_ATOL64:g} + "
                            f"{CHECK_RTOL64:g} |w_ref|, worst element at {ratio:.3g}x the tolerance)")
    if moved == 0.0:
        failures.append("the reference did not change the weights: the check would prove nothing")
    if failures:
        record["passed"] = False
        raise BenchCheckError(
            f"result check FAILED for config {cfg.key} ({cfg.title}) after {record['steps']} steps "
            f"in float64 against the reference:\n  " + "\n  ".join(failures)
            + "\nNo timings were taken: a wrong result must not be benchmarked.")
    return record


def first_fit_compile(cfg, X, y, backend, seed):
    """In-process JIT time: a first tiny ``fit`` minus an identical second one."""
    n = min(len(X), max(4 * cfg.batch_size, 64))
    times = []
    for _ in range(2):
        net = make_net(cfg, seed)
        t0 = _now()
        net.fit(X[:n], y[:n], make_cost(cfg), make_optimizer(cfg), epochs=1,
                batch_size=cfg.batch_size, seed=seed, backend=backend)
        times.append(_now() - t0)
    return {"samples": n, "first_fit_s": times[0], "second_fit_s": times[1],
            "compile_s": max(0.0, times[0] - times[1])}


_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import fastnn
from fastnn import bench
t_import = time.perf_counter() - t0
backend = sys.argv[1]
fastnn.get_ops(backend)
t_backend = time.perf_counter() - t0
out = {"import_s": t_import, "backend_load_s": t_backend, "configs": {}}
for key in sys.argv[2].split(","):
    cfg = bench.CONFIGS[key]
    X, y, _, _ = bench.synthetic_data(n_train=max(4 * cfg.batch_size, 64), n_test=1)
    times = []
    for _ in range(2):
        net = bench.make_net(cfg, 0)
        t1 = time.perf_counter()
        net.fit(X, y, bench.make_cost(cfg), bench.make_optimizer(cfg), epochs=1,
                batch_size=cfg.batch_size, seed=0, backend=backend)
        times.append(time.perf_counter() - t1)
    out["configs"][key] = {"first_fit_s": times[0], "second_fit_s": times[1],
                           "compile_s": max(0.0, times[0] - times[1])}
first = out["configs"][sys.argv[2].split(",")[0]]
out["ready_s"] = t_backend + first["compile_s"]
print("PROBE" + json.dumps(out))
"""


def compile_probe(keys, backend, cache_dir, timeout=1800):
    """Run :data:`_PROBE` for configs ``keys`` (in order) in a fresh interpreter with
    ``NUMBA_CACHE_DIR=cache_dir``."""
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    root = os.path.dirname(os.path.dirname(os.path.abspath(fn.__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = _now()
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, backend, ",".join(keys)], capture_output=True,
                              text=True, env=env, timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        return {"error": f"probe timed out after {timeout} s"}
    wall = _now() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("PROBE"):
            rec = json.loads(line[5:])
            rec["process_wall_s"] = wall
            return rec
    return {"error": f"probe failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}"}


def cold_and_cached(keys, backend):
    """Compile times with an empty numba cache (cold), then again with the cache it wrote."""
    with tempfile.TemporaryDirectory(prefix="fastnn-bench-numba-cache-") as d:
        cold = compile_probe(keys, backend, d)
        cached = compile_probe(keys, backend, d)
    return {"cold": cold, "cached": cached, "order": list(keys),
            "note": "one fresh interpreter per measurement with NUMBA_CACHE_DIR set to a new empty "
                    "directory ('cold'), then reused ('cached'); the configs run in 'order' in that "
                    "process, so a later config reuses what an earlier one compiled. compile_s = first "
                    "tiny fit minus an identical second one; ready_s = import + backend load + the "
                    "first config's compile, the wait before its first fit starts training"}


def _fraction_for(args, cfg, column, main_col):
    """Fraction of the epoch timed for a column (slow per-sample Python loops get less;
    the benchmarked fastnn column always trains the whole epoch)."""
    if column in (main_col, "jax") or (column.startswith("fastnn-") and column != "fastnn-numpy"):
        return 1.0
    if args.fraction is not None:
        return args.fraction
    if args.quick:
        return 1.0
    return 0.1 if cfg.batch_size == 1 else 1.0


def jax_compile(je, Ws, bs, order):
    """JAX's compile time: a first whole-epoch call (trace, compile, run) minus a second one."""
    times = []
    for _ in range(2):
        params, state = je.init(Ws, bs)
        t0 = _now()
        je.epoch(params, state, order)
        times.append(_now() - t0)
    return {"first_call_s": times[0], "second_call_s": times[1],
            "compile_s": max(0.0, times[0] - times[1])}


def time_config(cfg, data, args, backend, torch, columns, jax=None):
    """Warm up, then time one epoch per column ``args.repeats`` times (interleaved).

    The JAX column (``jax`` the module) runs with ``jax_enable_x64`` off (float32); its
    warm-up is two whole-epoch calls, whose difference is its compile time (``jax_compile``).
    """
    X, y, X_test, y_test = data
    n = len(X)
    seed = args.seed
    base = make_net(cfg, seed)
    order = shuffle_order(seed, n)
    T = numpy_targets(cfg, y, np.float32)
    X_t = T_t = order_t = None
    if torch is not None and "torch" in columns:
        X_t, T_t, order_t = torch.from_numpy(X), torch.from_numpy(T), torch.from_numpy(order)
    fractions = {c: _fraction_for(args, cfg, c, f"fastnn-{backend}") for c in columns}
    counts = {c: n if f >= 1 else max(cfg.batch_size, int(round(f * n))) for c, f in fractions.items()}
    numpy_train = _numpy_train()
    je = None
    if jax is not None and "jax" in columns:
        with x64(jax, False):
            je = JaxEpoch(jax, cfg, X, T, np.float32)

    def run(column, m):
        """Train ``m`` samples of one epoch with ``column``; returns (seconds, final flat params)."""
        if column.startswith("fastnn-"):
            be = column[len("fastnn-"):]
            net = base.copy()
            cost, opt = make_cost(cfg), make_optimizer(cfg)
            Xs, ys = (X, y) if m == n else (X[:m], y[:m])
            t0 = _now()
            hist = net.fit(Xs, ys, cost, opt, epochs=1, batch_size=cfg.batch_size, seed=seed, backend=be)
            dt = _now() - t0
            inner[column] = hist.times[0]
            return dt, net.params.copy(), net
        if column == "numpy":
            Ws, bs = net_arrays(base)
            o = order[:m]
            t0 = _now()
            numpy_train(cfg, Ws, bs, X, T, o)
            dt = _now() - t0
            return dt, flat(Ws, bs), (Ws, bs)
        if column == "torch":
            tr = TorchRun(torch, cfg, *net_arrays(base), np.float32)
            o = order_t[:m]
            t0 = _now()
            tr.train(X_t, T_t, o)
            dt = _now() - t0
            return dt, flat(*tr.arrays()), tr
        if column == "jax":
            with x64(jax, False):
                params, state = je.init(*net_arrays(base))
                t0 = _now()
                params, _ = je.epoch(params, state, order[:m])
                dt = _now() - t0
                assert params[0][0].dtype == np.float32, "x64 leaked into the float32 timing"
            return dt, flat(*je.arrays(params)), params
        raise ValueError(column)

    inner = {}   # fastnn columns: the epoch time History reports (without fit's input checks)

    # Warm-up: a few batches of each (JIT, caches, torch's first-call setup).
    warm = min(n, max(8 * cfg.batch_size, 256))
    compile_jax = None
    for c in columns:
        if c == "jax":   # the compiled epoch's shape is the whole epoch's: warm up with that
            with x64(jax, False):
                compile_jax = jax_compile(je, *net_arrays(base), order)
        else:
            run(c, warm)

    times = {c: [] for c in columns}
    inner_times = {c: [] for c in columns if c.startswith("fastnn-")}
    finals = {}
    for r in range(args.repeats):
        for c in columns:
            dt, params, obj = run(c, counts[c])
            times[c].append(dt * n / counts[c])
            if c in inner_times:
                inner_times[c].append(inner[c] * n / counts[c])
            finals[c] = (params, obj)
        _log(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(f"{c} {times[c][-1]:.3g}s" for c in columns))

    out = {}
    main_col = f"fastnn-{backend}"
    for c in columns:
        rec = {"times_s": times[c], "median_s": _median(times[c]), "fraction_timed": fractions[c],
               "samples_timed": counts[c], "extrapolated": counts[c] < n}
        if c in inner_times:
            rec["history_epoch_s"] = inner_times[c]
        params, obj = finals[c]
        if counts[c] == n:
            if main_col in finals and c != main_col and counts[main_col] == n:
                rec["final_rel_diff_vs_" + main_col] = _rel_norm_diff(params, finals[main_col][0])
            rec["test_accuracy"] = _test_accuracy(cfg, c, obj, X_test, y_test, torch, je)
        if c == "jax":
            rec["compile"] = compile_jax
            rec["dtype"] = "float32"
        out[c] = rec
    return out


def _test_accuracy(cfg, column, obj, X_test, y_test, torch, je=None):
    """Test accuracy of a column's trained weights (a sanity check of the timed run)."""
    if column == "jax":
        with x64(je.jax, False):
            pred = je.predict(obj, X_test)
    elif column.startswith("fastnn-"):
        pred = obj.predict(X_test, backend=column[len("fastnn-"):])
    elif column == "numpy":
        h = X_test
        acts = [cfg.hidden] * (len(obj[0]) - 1) + [cfg.output]
        with np.errstate(over="ignore"):
            for W, b, a in zip(*obj, acts):
                h = _act(np, a, h @ W + b)
        pred = h
    else:
        pred = obj.predict(torch.from_numpy(X_test))
    return float(np.mean(pred.argmax(axis=1) == y_test))
