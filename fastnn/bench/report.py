"""The benchmark's record: machine details, the Markdown tables and JSON encoding."""

import datetime
import os
import platform
import subprocess
import sys

import numpy as np

import fastnn as fn
from fastnn.bench.bow import BOW_TITLES
from fastnn.bench.peers import import_torch
from fastnn.cli._common import plural


def _fmt_s(x):
    if x is None:
        return "n/a"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _fmt_x(x):
    return "n/a" if x is None else (f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 100 else f"{x:.0f}x")


def machine_info(threads):
    """CPU, cores, library versions and thread counts, for the JSON record."""
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": None,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "fastnn": fn.__version__,
        "numpy": np.__version__,
        "threads": threads,
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        info["cpu_model"] = platform.processor() or None
    try:
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.get_num_threads()
        info["numba_threading_layer_config"] = numba.config.THREADING_LAYER
    except Exception as exc:  # numba broken: say so rather than fail the record
        info["numba"] = f"unavailable: {exc}"
    torch = import_torch()
    info["torch"] = torch.__version__ if torch else None
    info["torch_threads"] = torch.get_num_threads() if torch else None
    jax = sys.modules.get("jax")   # never imported here: only reported when the bench loaded it
    info["jax"] = getattr(jax, "__version__", None)
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                        for d in threadpool_info() if d.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = "unknown (threadpoolctl not installed)"
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(fn.__file__)))
        out = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        info["git_commit"] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


COLUMN_TITLES = {"numpy": "NumPy loop", "torch": "PyTorch CPU", "jax": "JAX (jit+scan)"}


def _col_title(c):
    return COLUMN_TITLES.get(c, c)


def markdown_report(res):
    """The results as Markdown tables (a string)."""
    main = res["settings"]["fastnn_column"]
    quick = res["settings"].get("quick", False)  # a smoke test: tiny synthetic data, no targets
    lines = ["*Smoke test (--quick): tiny synthetic data; the times say nothing about speed and are "
             "compared with no target.*", ""] if quick else []
    cols = []
    for rec in res["configs"].values():
        for c in rec["timings"]:
            if c not in cols:
                cols.append(c)
    peers = [(c, t) for c, t in (("numpy", "NumPy"), ("torch", "PyTorch"), ("jax", "JAX")) if c in cols]
    head = (["config"] + [f"{_col_title(c)} (s)" for c in cols] + [f"vs {t}" for _, t in peers]
            + ["JIT compile (s)"])
    if cols:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + " --- |" * len(head))
    extrap = set()
    for key, rec in res["configs"].items():
        row = [f"{key}. {rec['title']}"]
        for c in cols:
            t = rec["timings"].get(c)
            if t is None:
                row.append("n/a")
                continue
            mark = ""
            if t["extrapolated"]:
                mark = "*"
                extrap.add(f"{t['fraction_timed']:.0%}")
            row.append(f"{_fmt_s(t['median_s'])}{mark}")
        sp = rec["speedup"]
        for which, _ in peers:
            tgt = f"target_{which}"
            v = sp.get(f"vs_{which}")
            cell = _fmt_x(v)
            if v is not None and rec.get(tgt) and main == "fastnn-numba" and not quick:
                cell += f" ({'met' if v >= rec[tgt] else 'below'} target {rec[tgt]:g}x)"
            row.append(cell)
        comp = rec.get("compile") or {}
        parts = []
        if comp.get("in_process"):
            parts.append(f"first fit {comp['in_process']['compile_s']:.2f}")
        sub = comp.get("subprocess") or {}
        for k in ("cold", "cached"):
            v = sub.get(k) or {}
            if "compile_s" in v:
                parts.append(f"{k} {v['compile_s']:.2f}")
        jc = (rec["timings"].get("jax") or {}).get("compile")
        if jc:
            parts.append(f"JAX {jc['compile_s']:.2f}")
        row.append(", ".join(parts) if parts else ("none" if main == "fastnn-numpy" else "n/a"))
        lines.append("| " + " | ".join(row) + " |")
    notes = []
    if cols:
        notes.append(f"Median of {plural(res['settings']['repeats'], 'epoch')} of {res['settings']['n_train']} "
                     f"samples, {res['settings']['data']}; speedup = column time / {main} time, both "
                     "from this run.")
    er = res.get("epoch_ratios") or {}
    for k, title in (("b_over_a", "raw MNIST"), ("b_over_a-dense", "dense MNIST")):
        if k in er:
            tgt = f" (target for {main} on raw MNIST: <= {er['target_b_over_a_max']:g})" if k == "b_over_a" else ""
            notes.append(f"b's epoch / a's epoch, {title}: " + ", ".join(
                f"{_col_title(c)} {v:.2f}" for c, v in er[k].items()) + tgt + ".")
    if any(rec.get("dense") for rec in res["configs"].values()):
        notes.append("-dense: " + res["settings"].get("dense_data", "standardised MNIST") + ".")
    if "jax" in cols:
        notes.append(f"JAX: {res['settings'].get('jax')}, {res['settings'].get('jax_timing')}; "
                     f"threads: {res['settings']['threads'].get('jax')}.")
    if extrap:
        notes.append(f"\\* timed on {', '.join(sorted(extrap))} of the epoch (the same sample order) "
                     "and scaled up to the whole epoch.")
    m = res.get("matmul")
    if m:
        notes.append(f"Reference matmul: np.dot {m['n']}x{m['n']} float32, best {m['gflops']:.1f} GFLOP/s "
                     f"(median {m['median_gflops']:.1f}) of {m['repeats']} runs at the start and end.")
    for key, rec in res["configs"].items():
        g = rec.get("gflops")
        if g:
            # without the reference matmul (--skip matmul) there is no fraction to show
            parts = [f"{_col_title(c)} {v['gflops']:.1f} GFLOP/s"
                     + (f" ({v['fraction_of_matmul']:.0%} of matmul)" if "fraction_of_matmul" in v else "")
                     for c, v in g["per_column"].items()]
            notes.append(f"Config {key}: {g['dense_gflop_per_epoch']:.1f} GFLOP dense-equivalent per epoch "
                         f"(6 FLOPs per weight and sample); achieved " + "; ".join(parts) + ".")
    c = res.get("compile")
    if c and "ready_s" in c.get("cold", {}) and "ready_s" in c.get("cached", {}):
        notes.append(f"JIT compile: 'first fit' = first tiny fit minus a second one in this process; "
                     f"'cold'/'cached' = the same in a fresh interpreter with an empty, then a filled "
                     f"NUMBA_CACHE_DIR, configs in the order {','.join(c['order'])} (later ones reuse "
                     f"earlier ones' kernels). Import + backend load + first compile: cold "
                     f"{c['cold']['ready_s']:.2f} s, cached {c['cached']['ready_s']:.2f} s.")
    th = res["settings"]["threads"]
    mi = res["machine"]
    notes.append(f"Machine: {mi.get('cpu_model')}, {mi.get('usable_cpus')} usable CPUs; threads: "
                 f"numba {th.get('numba')}, torch {th.get('torch', 'n/a')}, NumPy BLAS {th.get('numpy_blas')}; "
                 f"numpy {mi.get('numpy')}, numba {mi.get('numba')}, torch {mi.get('torch')}, jax {mi.get('jax')}; "
                 f"{mi.get('date')}.")
    lines.append("")
    lines += [n + "  " for n in notes]
    if res.get("bow"):
        lines += [""] + bow_report(res["bow"])
    tta = res.get("time_to_accuracy")
    if tta:
        lines += ["", f"Time to accuracy ({tta['recipe']}; training time, evaluation excluded):", ""]
        tg = list(tta["recipe_fields"]["targets"])
        head = (["framework"] + [f"{t:.0%}: epochs, s" for t in tg]
                + ["best test acc", "eval s (excluded)", "median epoch (s)"])
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + " --- |" * len(head))
        for name, r in tta["results"].items():
            row = [_col_title(name)]
            for t in tg:
                v = r["reached"].get(f"{t:.2f}")
                row.append(f"{v['epochs']}, {v['train_s']:.2f}" if v else
                           f"not in {len(r['test_accuracy'])} epochs")
            row.append(f"{max(r['test_accuracy']):.4f}" if r["test_accuracy"] else "n/a")
            row.append(f"{r['eval_s_total']:.2f}")
            row.append(_fmt_s(r.get("median_epoch_s")))
            lines.append("| " + " | ".join(row) + " |")
        lines += [""] + _tta_notes(tta)
    return "\n".join(lines)


def _tta_notes(tta):
    notes = []
    ratios = {k: v for k, v in (tta.get("ratios") or {}).items()}
    if ratios:
        notes.append("fastnn's time to accuracy / the peer's: " + ", ".join(
            f"{k.replace('_vs_', ' vs ')} {v:.2f}" for k, v in ratios.items())
            + " (issue 11's targets at 98%: <= 0.6 vs JAX, <= 0.5 vs PyTorch).")
    if tta.get("jax_compile"):
        notes.append(f"JAX compile (first call minus second, excluded): {tta['jax_compile']['compile_s']:.2f} s.")
    chk = tta.get("check")
    if chk:
        notes.append(f"Checked before timing: {chk['steps']} steps in float64, max |w - w_ref| "
                     + ", ".join(f"{k} {v:.2g}" for k, v in chk["max_abs_diff"].items()) + ".")
    return [n + "  " for n in notes]


def _bow_cell(r, key, fmt):
    v = r.get(key)
    return fmt(v) if v is not None else "n/a"


def bow_report(bow):
    """The bag-of-words table (a list of lines)."""
    st = bow["stats"]
    lines = [f"Bag-of-words ({bow['data']}; {st['train_shape'][0]} x {st['train_shape'][1]} train CSR, "
             f"{st['nnz_train']} non-zeros, density {st['density']:.3%}; model {bow['model']}):", "",
             "| library | train (s) | test accuracy | peak RSS growth (MB) | fastnn speedup | status |",
             "| --- | --- | --- | --- | --- | --- |"]
    ratios = bow.get("ratios") or {}
    for lib, r in bow["libraries"].items():
        sp = ratios.get(f"vs_{lib}")
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('reason', '')}"[:160]
        lines.append("| " + " | ".join([
            BOW_TITLES.get(lib, lib), _bow_cell(r, "train_s", _fmt_s),
            _bow_cell(r, "test_accuracy", lambda v: f"{v:.4f}"),
            _bow_cell(r, "peak_growth_mb", lambda v: f"{v:.0f}"),
            _fmt_x(sp) if sp is not None else "n/a", status.replace("|", "/")]) + " |")
    t = ratios.get("targets", {})
    notes = [f"Issue 11's targets: fastnn >= {t.get('vs_sklearn', 10):g}x scikit-learn and >= "
             f"{t.get('vs_torch', 3):g}x PyTorch sparse, test accuracy within {t.get('accuracy_points', 1):g} "
             "point." + "".join(f" Accuracy difference vs {k[len('accuracy_points_vs_'):]}: {v:+.2f} points."
                                for k, v in ratios.items() if k.startswith("accuracy_points_vs_"))]
    notes.append("Each library in a fresh interpreter: warm-up on two batches, then one timed training; "
                 "peak RSS growth = VmHWM during the fit (reset before it) minus VmRSS before it"
                 + (f"; address-space cap {bow['mem_cap_gb']:g} GB above the size before the fit"
                    if bow.get("mem_cap_gb") else "") + ".")
    chk = bow.get("check") or {}
    if chk:
        parts = ([f"{k} max |w - w_ref| {v:.2g}" for k, v in chk["max_abs_diff"].items()]
                 + [f"{k} not checked ({v.split(':')[0]})" for k, v in chk["not_checked"].items()])
        notes.append(f"Checked before timing ({chk['steps']} steps, float64, vs the reference on the "
                     "densified slice): " + "; ".join(parts) + ".")
    return lines + [""] + [n + "  " for n in notes]


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")

