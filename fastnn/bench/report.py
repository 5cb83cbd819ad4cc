"""The benchmark's record: machine details, the Markdown tables and JSON encoding."""

import datetime
import os
import platform
import subprocess

import numpy as np

import fastnn as fn
from fastnn.bench.peers import import_torch


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


COLUMN_TITLES = {"numpy": "NumPy loop", "torch": "PyTorch CPU"}


def _col_title(c):
    return COLUMN_TITLES.get(c, c)


def markdown_report(res):
    """The results as Markdown tables (a string)."""
    main = res["settings"]["fastnn_column"]
    lines = []
    cols = []
    for rec in res["configs"].values():
        for c in rec["timings"]:
            if c not in cols:
                cols.append(c)
    head = ["config"] + [f"{_col_title(c)} (s)" for c in cols] + ["vs NumPy", "vs PyTorch", "JIT compile (s)"]
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
        for which, tgt in (("numpy", "target_numpy"), ("torch", "target_torch")):
            v = sp.get(f"vs_{which}")
            cell = _fmt_x(v)
            if v is not None and rec.get(tgt) and main == "fastnn-numba":
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
        row.append(", ".join(parts) if parts else ("none" if main == "fastnn-numpy" else "n/a"))
        lines.append("| " + " | ".join(row) + " |")
    notes = []
    if cols:
        notes.append(f"Median of {res['settings']['repeats']} epoch(s) of {res['settings']['n_train']} "
                     f"samples, {res['settings']['data']}; speedup = column time / {main} time, both "
                     "from this run.")
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
                 f"numpy {mi.get('numpy')}, numba {mi.get('numba')}, torch {mi.get('torch')}; {mi.get('date')}.")
    lines.append("")
    lines += [n + "  " for n in notes]
    tta = res.get("time_to_accuracy")
    if tta:
        lines += ["", f"Time to accuracy ({tta['recipe']}; training time, evaluation excluded):", ""]
        tg = list(tta["recipe_fields"]["targets"])
        head = ["framework"] + [f"{t:.0%}: epochs, s" for t in tg] + ["best test acc", "eval s (excluded)"]
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
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
