"""The command line of ``python -m fastnn.bench`` (also ``fastnn bench``): options, thread
settings and the run that ties the parts together."""

import argparse
import contextlib
import datetime
import importlib
import json
import os
import sys
from dataclasses import asdict

import fastnn as fn
from fastnn.bench._util import _log
from fastnn.bench.bow import BOW_LIBS, bow_spec, run_bow
from fastnn.bench.configs import (CONFIGS, EPOCH_WARN_REL32, EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE, TARGETS,
                                  BenchCheckError, Recipe, dense_data, load_data)
from fastnn.bench.jaxpeer import import_jax, jax_version, start_jax
from fastnn.bench.peers import import_torch
from fastnn.bench.report import _json_default, machine_info, markdown_report
from fastnn.bench.timing import (_merge_matmul, check_config, cold_and_cached, first_fit_compile,
                                 matmul_gflops, time_config)
from fastnn.bench.tta import time_to_accuracy


@contextlib.contextmanager
def thread_settings(n, torch):
    """Use ``n`` threads in fastnn/numba, torch and NumPy's BLAS; restores the old counts after.

    Yields what each library reports it got.
    """
    got = {"requested": n}
    restore = []
    try:
        import numba
    except ImportError as exc:
        got["numba"] = f"not set: {exc}"
    else:
        if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"--threads must lie in 1..{numba.config.NUMBA_NUM_THREADS} "
                             f"(NUMBA_NUM_THREADS), got {n}")
        try:   # fastnn's one knob for its threads, when this version has it
            from fastnn.config import set_num_threads as setter
        except ImportError:
            setter = numba.set_num_threads
        old = numba.get_num_threads()
        setter(n)
        restore.append(lambda: setter(old))
        got["numba"] = numba.get_num_threads()
    if torch is not None:
        old_t = torch.get_num_threads()
        torch.set_num_threads(n)
        restore.append(lambda: torch.set_num_threads(old_t))
        got["torch"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=n, user_api="blas")
        restore.append(limiter.restore_original_limits)
        got["numpy_blas"] = n
    except ImportError:
        got["numpy_blas"] = "not set (threadpoolctl not installed)"
    try:
        yield got
    finally:
        for undo in reversed(restore):
            undo()


def default_threads():
    try:
        import numba

        return numba.get_num_threads()
    except ImportError:
        return os.cpu_count() or 1


def build_parser(prog="python -m fastnn.bench"):
    p = argparse.ArgumentParser(
        prog=prog,
        description="Whole-epoch MNIST benchmark: fastnn vs a plain NumPy loop vs PyTorch CPU "
                    "(results checked against the reference before timing).")
    p.add_argument("--config", default="a,b,c",
                   help="comma-separated configurations: " + "; ".join(
                       f"{k} = {c.title}" for k, c in CONFIGS.items() if not c.dense)
                        + "; a-dense, b-dense, c-dense = the same on MNIST standardised per pixel; "
                        "bow = the bag-of-words problem (fastnn vs scikit-learn vs PyTorch sparse on "
                        "CSR); 'all' = all of them; 'none' with --time-to-accuracy runs only that "
                        "(default a,b,c)")
    p.add_argument("--dense", action="store_true",
                   help="add the dense variant of each chosen configuration a, b, c")
    p.add_argument("--repeats", type=int, default=None, help="timed epochs per column; the median is "
                   "reported (default 3, 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="tiny synthetic data, few check steps, no compile subprocesses (smoke test)")
    p.add_argument("--backend", default="numba", choices=("numba", "numpy", "cuda"),
                   help="fastnn backend to benchmark (default numba; numpy when numba cannot run "
                        "here). cuda hands over to fastnn.bench.cuda")
    p.add_argument("--mnist", default=None, metavar="PATH",
                   help="directory with the MNIST IDX .gz files (default: $FASTNN_DATA or the cache)")
    p.add_argument("--download", action="store_true", help="download MNIST if it is missing")
    p.add_argument("--out", default=None, help="JSON results file "
                   "(default bench-results/bench-<timestamp>.json)")
    p.add_argument("--time-to-accuracy", action="store_true",
                   help="also measure the training time to 97%% and 98%% test accuracy")
    p.add_argument("--tta-max-epochs", type=int, default=None, help="epoch limit for --time-to-accuracy "
                   "(default 20, 2 with --quick)")
    p.add_argument("--tta-arch", default=None, help="layer sizes of the time-to-accuracy recipe "
                   "(default 784-256-10; ReLU hidden layers)")
    p.add_argument("--tta-optimizer", default=None, choices=("adam", "momentum"),
                   help="optimizer of the recipe (default adam; momentum means SGD with momentum 0.9)")
    p.add_argument("--tta-lr", type=float, default=None, help="learning rate of the recipe "
                   "(default 1e-3 for adam, 0.05 for momentum)")
    p.add_argument("--tta-batch", type=int, default=None, help="batch size of the recipe (default 64)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for numba, torch and NumPy's BLAS (default: numba's thread count)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and sample order")
    p.add_argument("--check-steps", type=int, default=None,
                   help="training steps of the float64 result check (default 300, 20 with --quick)")
    p.add_argument("--fraction", type=float, default=None,
                   help="fraction of the epoch timed for the NumPy loop, PyTorch and fastnn-numpy "
                        "(default 0.1 at batch size 1, else 1)")
    p.add_argument("--skip", default="", help="comma-separated parts to leave out: numpy, torch, jax, "
                   "fastnn-numpy, compile (the cold/cached compile subprocesses), matmul, and the "
                   "bag-of-words libraries sklearn, fastnn-sklearn")
    p.add_argument("--bow-docs", type=int, default=None, help="documents of the bag-of-words problem "
                   "(default 50000, 400 with --quick; 20%% are the test set)")
    p.add_argument("--bow-vocab", type=int, default=None, help="its vocabulary (default 50000, 2000 "
                   "with --quick)")
    p.add_argument("--bow-epochs", type=int, default=None, help="its training epochs (default 2, 1 "
                   "with --quick)")
    p.add_argument("--bow-hidden", type=int, default=None, help="its hidden units (default 256, 32 "
                   "with --quick)")
    p.add_argument("--bow-batch", type=int, default=None, help="its batch size (default 256, 32 with "
                   "--quick)")
    p.add_argument("--bow-mem-cap", type=float, default=4.0, metavar="GB",
                   help="address-space cap of each bag-of-words library's process above its size "
                        "before the fit: a library that densifies the matrix fails with MemoryError "
                        "instead of exhausting the machine (default 4; 0 = none)")
    return p


def _parse_configs(text, dense=False):
    if text.strip().lower() == "none":
        return []
    if text.strip().lower() == "all":
        return list(CONFIGS) + ["bow"]
    keys = [k.strip().lower() for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in CONFIGS and k != "bow"]
    if bad or not keys:
        raise ValueError(f"unknown configuration(s) {', '.join(bad) or '(none)'}; choose from "
                         + ", ".join(list(CONFIGS) + ["bow", "all"]))
    if dense:
        keys += [f"{k}-dense" for k in keys if f"{k}-dense" in CONFIGS]
    return list(dict.fromkeys(keys))


def _dispatch_cuda(argv):
    try:
        bench_cuda = importlib.import_module("fastnn.bench.cuda")
    except ModuleNotFoundError as exc:
        if exc.name in ("fastnn.bench.cuda",):
            _log("fastnn.bench: --backend cuda needs fastnn.bench.cuda, which this version of fastnn "
                 "does not have (the CUDA backend's benchmark is not implemented yet).")
            return EXIT_USAGE
        raise
    return bench_cuda.main(argv)


def resolve_backend(name):
    """The backend to benchmark: ``name``, or numpy (with the reason) when numba cannot run."""
    try:
        fn.get_ops(name)
        return name, None
    except fn.BackendUnavailable as exc:
        if name == "numba":
            return "numpy", str(exc)
        raise SystemExit(f"fastnn.bench: {exc}")


def run_bench(args):
    """Run the benchmark described by parsed ``args``; returns the results dict."""
    keys = _parse_configs(args.config, args.dense)
    if not keys and not args.time_to_accuracy:
        raise ValueError("--config none leaves nothing to do without --time-to-accuracy")
    args._recipe = make_recipe(args)   # checks the --tta-* options before anything runs
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - {"numpy", "torch", "jax", "fastnn-numpy", "compile", "matmul", *BOW_LIBS}
    if unknown:
        raise ValueError(f"--skip: unknown part(s) {', '.join(sorted(unknown))}")
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        raise ValueError("--repeats must be >= 1")
    args.repeats = repeats
    check_steps = args.check_steps if args.check_steps is not None else (20 if args.quick else 300)
    if args.fraction is not None and not 0 < args.fraction <= 1:
        raise ValueError("--fraction must lie in (0, 1]")
    if args.bow_mem_cap < 0:
        raise ValueError("--bow-mem-cap must be >= 0")
    args._bow_spec = bow_spec(args) if "bow" in keys else None

    backend, why = resolve_backend(args.backend)
    if why:
        _log(f"fastnn.bench: numba backend unavailable ({why}); benchmarking backend 'numpy' instead.")
    torch = None if "torch" in skip else import_torch()
    if torch is None and "torch" not in skip:
        _log("fastnn.bench: torch is not installed; the PyTorch column is left out.")
    jax = None if "jax" in skip else import_jax()
    if jax is None and "jax" not in skip:
        _log("fastnn.bench: jax is not installed (or does not load); the JAX column is left out.")
    threads = args.threads if args.threads is not None else default_threads()
    if threads < 1:
        raise ValueError("--threads must be >= 1")
    with thread_settings(threads, torch) as got_threads:
        if jax is not None:
            got_threads["jax"] = start_jax(jax, threads)
        return _run_bench(args, keys, skip, repeats, check_steps, backend, why, torch, threads, got_threads,
                          jax)


def _run_bench(args, keys, skip, repeats, check_steps, backend, why, torch, threads, got_threads, jax):
    mlp_keys = [k for k in keys if k != "bow"]
    data, data_desc = load_data(args) if mlp_keys or args.time_to_accuracy else ((None,) * 4, "none")
    X, y, X_test, y_test = data
    dense = dense_data(data) if any(CONFIGS[k].dense for k in mlp_keys) else None
    main_col = f"fastnn-{backend}"
    columns = [main_col]
    if "numpy" not in skip:
        columns.append("numpy")
    if torch is not None:
        columns.append("torch")
    if jax is not None:
        columns.append("jax")
    if backend != "numpy" and "fastnn-numpy" not in skip:
        columns.append("fastnn-numpy")

    res = {
        "schema": "fastnn-bench/1",
        "command": "python -m fastnn.bench " + " ".join(args._argv),
        "machine": machine_info(threads),
        "settings": {"backend_requested": args.backend, "backend": backend, "backend_fallback_reason": why,
                     "fastnn_column": main_col, "columns": columns, "repeats": repeats,
                     "check_steps": check_steps, "seed": args.seed, "threads": got_threads,
                     "data": data_desc, "n_train": len(X) if X is not None else 0,
                     "n_test": len(X_test) if X_test is not None else 0, "quick": bool(args.quick),
                     "dense_data": "the -dense configs train on MNIST standardised per pixel with the "
                                   "training set's mean and standard deviation (StandardScaler; constant "
                                   "pixels -> 0)",
                     "jax": jax_version(jax) if jax is not None else None,
                     "jax_timing": "jax.jit of lax.scan over the epoch's full batches (gathered by the "
                                   "order inside the step) plus one step for the short last batch, "
                                   "float32 (x64 off); compile = first call minus second call",
                     "dtype": "float32",
                     "numpy_baseline": "fastnn.bench.numpy_train: per-batch forward/backward/update with "
                                       "NumPy matmuls; computes no loss/accuracy",
                     "fastnn_timing": "wall time of Sequential.fit(epochs=1) on the whole training set "
                                      "(history_epoch_s: the epoch time fit's History reports, "
                                      "without input checks and setup)"},
        "configs": {},
    }
    if "matmul" not in skip and mlp_keys:
        _log("matmul reference ...")
        res["matmul"] = matmul_gflops(256 if args.quick else 2048)
    if mlp_keys and backend == "numba" and "compile" not in skip and not args.quick:
        _log(f"compile time of configs {','.join(mlp_keys)}: cold, then cached, in fresh interpreters ...")
        res["compile"] = cold_and_cached(mlp_keys, backend)
        for k in ("cold", "cached"):
            if "error" in res["compile"][k]:
                _log(f"  {k} compile probe: {res['compile'][k]['error']}")
    for key in mlp_keys:
        cfg = CONFIGS[key]
        _log(f"config {key}: {cfg.title}")
        rec = {"title": cfg.title, "config": asdict(cfg), "target_numpy": cfg.target_numpy,
               "target_torch": cfg.target_torch, "target_jax": cfg.target_jax, "dense": cfg.dense}
        cdata = dense if cfg.dense else data
        X, y = cdata[0], cdata[1]
        comp = {}
        if "compile" in res:
            comp["subprocess"] = {k: res["compile"][k].get("configs", {}).get(key)
                                  for k in ("cold", "cached")}
        if backend == "numpy":
            comp["note"] = "backend numpy compiles nothing"
        else:
            comp["in_process"] = first_fit_compile(cfg, X, y, backend, args.seed)
        rec["compile"] = comp
        _log(f"  result check ({check_steps} steps, float64) ...")
        rec["check"] = check_config(cfg, X, y, backend, check_steps, args.seed, torch, jax)
        _log("  timing ...")
        rec["timings"] = time_config(cfg, cdata, args, backend, torch, columns, jax)
        t_main = rec["timings"][main_col]["median_s"]
        rec["speedup"] = {f"vs_{c}": rec["timings"][c]["median_s"] / t_main for c in columns if c != main_col}
        for c in columns:
            d = rec["timings"][c].get(f"final_rel_diff_vs_{main_col}")
            if d is not None and d > EPOCH_WARN_REL32:
                _log(f"  WARNING: after the timed float32 epoch, {c}'s weights differ from {main_col}'s "
                     f"by {d:.3g} (relative norm); the float64 check passed, so this is rounding growth")
        if main_col == "fastnn-numba":
            rec["targets_met"] = {
                f"vs_{c}": (rec["speedup"][f"vs_{c}"] >= t if f"vs_{c}" in rec["speedup"] else None)
                for c, t in (("numpy", cfg.target_numpy), ("torch", cfg.target_torch), ("jax", cfg.target_jax))
                if t is not None}
        if key in ("c", "c-dense"):
            flops = cfg.dense_flops(len(X))
            per = {}
            for c in columns:
                g = flops / rec["timings"][c]["median_s"] / 1e9
                per[c] = {"gflops": g, "fraction_of_matmul": g / res["matmul"]["gflops"] if "matmul" in res else None}
            rec["gflops"] = {"dense_gflop_per_epoch": flops / 1e9, "min_gflop_per_epoch": cfg.min_flops(len(X)) / 1e9,
                             "counting": "6 FLOPs per weight per sample (forward, weight gradient, input "
                                         "gradient, for every layer)", "per_column": per}
            if "matmul" not in res:
                for v in per.values():
                    v.pop("fraction_of_matmul")
        res["configs"][key] = rec
    res["epoch_ratios"] = _b_over_a(res["configs"], columns)
    if "bow" in keys:
        res["bow"] = run_bow(args._bow_spec, backend, threads, torch, skip, args.bow_mem_cap or None)
    if "matmul" in res:
        res["matmul"] = _merge_matmul(res["matmul"], matmul_gflops(res["matmul"]["n"]))
        for rec in res["configs"].values():
            for v in rec.get("gflops", {}).get("per_column", {}).values():
                v["fraction_of_matmul"] = v["gflops"] / res["matmul"]["gflops"]
    if args.time_to_accuracy:
        recipe = args._recipe
        recipe.max_epochs = args.tta_max_epochs or (2 if args.quick else recipe.max_epochs)
        _log(f"time to accuracy: {recipe.describe()}")
        res["time_to_accuracy"] = time_to_accuracy(recipe, data, backend, torch, args.seed, jax,
                                                   check_steps)
    return res


def _b_over_a(configs, columns):
    """b's epoch time / a's epoch time per column (issue 11: <= 0.6 for fastnn on raw MNIST)."""
    out = {}
    for suffix in ("", "-dense"):
        a, b = configs.get("a" + suffix), configs.get("b" + suffix)
        if a and b:
            out["b_over_a" + suffix] = {c: b["timings"][c]["median_s"] / a["timings"][c]["median_s"]
                                        for c in columns if c in a["timings"] and c in b["timings"]}
    if "b_over_a" in out:
        out["target_b_over_a_max"] = TARGETS["b_over_a_max"]
    return out


def make_recipe(args):
    """The time-to-accuracy :class:`Recipe` from the ``--tta-*`` options."""
    recipe = Recipe()
    if args.tta_arch:
        try:
            sizes = tuple(int(v) for v in args.tta_arch.replace(",", "-").split("-"))
        except ValueError:
            raise ValueError(f"--tta-arch must look like 784-256-10, got {args.tta_arch!r}") from None
        if len(sizes) < 2 or sizes[0] != 784 or sizes[-1] != 10 or min(sizes) < 1:
            raise ValueError(f"--tta-arch must start with 784 and end with 10, got {args.tta_arch!r}")
        recipe.sizes = sizes
    if args.tta_optimizer == "momentum":
        recipe.optimizer, recipe.momentum, recipe.lr = "momentum", 0.9, 0.05
    if args.tta_lr is not None:
        if not args.tta_lr > 0:
            raise ValueError("--tta-lr must be > 0")
        recipe.lr = args.tta_lr
    if args.tta_batch is not None:
        if args.tta_batch < 1:
            raise ValueError("--tta-batch must be >= 1")
        recipe.batch_size = args.tta_batch
    return recipe


def _default_out():
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("bench-results", f"bench-{stamp}.json")


def main(argv=None, prog="python -m fastnn.bench"):
    """Command-line entry point (``python -m fastnn.bench``, ``fastnn bench``: ``prog`` names it
    in --help and errors); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    args._argv = argv
    if args.backend == "cuda":
        return _dispatch_cuda(argv)
    try:
        res = run_bench(args)
    except BenchCheckError as exc:
        _log("\n" + "!" * 72 + f"\nfastnn.bench: {exc}\n" + "!" * 72)
        return EXIT_CHECK_FAILED
    except ValueError as exc:
        _log(f"fastnn.bench: {exc}")
        return EXIT_USAGE
    except SystemExit as exc:
        if isinstance(exc.code, str):
            _log(exc.code)
            return EXIT_USAGE
        raise
    report = markdown_report(res)
    res["markdown"] = report
    print(report)
    out = args.out or _default_out()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=2, default=_json_default)
    _log(f"results written to {out}")
    return EXIT_OK
