"""GPU benchmark of the ``"cuda"`` backend: ``python -m fastnn.bench --backend cuda``.

For issue 3's configurations (a) 784-50-10 sigmoid MSE SGD batch 1, (b) the same at
batch 10, (c) 784-256-10 relu softmax-CE momentum batch 128, plus (d) 784-1024-1024-10
relu softmax-CE momentum batch 1024, on MNIST (or ``--quick`` synthetic data):

1. refuses to run under numba's CUDA simulator or without a GPU (exit status 2);
2. checks the result first: a few steps in float64 at the benchmark shape with the
   cuda and numpy backends from the same weights and order must agree to rtol 1e-6
   (exit status 3 otherwise; nothing is timed);
3. reports JIT compile time separately (first ``fit`` minus a second identical one);
4. times ``--repeats`` epochs after a warm-up epoch (medians; each epoch ends with the
   loss read back, so the GPU is synchronised) and converts them to achieved GFLOP/s
   (6 FLOPs per weight and sample, minus the first layer's unneeded input gradient)
   against the device's FP32 peak (SMs x FP32 lanes per SM x 2 x clock);
5. times PyTorch (``torch.nn`` + ``torch.optim`` on the GPU, same weights and order) and
   a hand-written CuPy loop, when those are installed with GPU support.

Results are printed as a Markdown table and written as JSON (``--out``).
"""

import argparse
import datetime
import json
import os
import sys

import numpy as np

import fastnn as fn
from fastnn.bench._util import _log, _median, _now
from fastnn.bench.configs import (CHECK_ATOL64, CHECK_RTOL64, CONFIGS, EXIT_CHECK_FAILED, EXIT_OK,
                                  EXIT_USAGE, Config, load_data, make_cost, make_net, make_optimizer,
                                  net_arrays, shuffle_order)
from fastnn.bench.peers import TorchRun, numpy_targets, numpy_train
from fastnn.bench.report import machine_info

#: FP32 lanes per SM by compute capability (NVIDIA's CUDA programming guide, arithmetic
#: instruction throughput table); unknown architectures report no peak.
FP32_LANES_PER_SM = {(6, 0): 64, (6, 1): 128, (7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128,
                     (8, 7): 128, (8, 9): 128, (9, 0): 128, (10, 0): 128, (10, 3): 128, (12, 0): 128}
#: Float64 check steps per configuration (batches), small enough for the CPU reference.
CHECK_STEPS = {"a": 200, "b": 100, "c": 20, "d": 3}


def _configs():
    out = dict(CONFIGS)
    out["d"] = Config("d", "784-1024-1024-10 relu, softmax CE, momentum SGD, batch 1024",
                      (784, 1024, 1024, 10), "relu", "identity", "ce", "momentum", lr=0.05, momentum=0.9,
                      batch_size=1024)
    return out


def refuse_reason():
    """None when a real GPU can be benchmarked, else why not."""
    from numba import config as nbconfig

    if getattr(nbconfig, "ENABLE_CUDASIM", 0):
        return ("NUMBA_ENABLE_CUDASIM=1: the CUDA simulator runs kernels as Python threads, so its "
                "timings mean nothing; unset it and run on a machine with an NVIDIA GPU")
    try:
        fn.get_ops("cuda")
    except fn.BackendUnavailable as exc:
        return str(exc)
    return None


def device_info():
    """Name, compute capability, SMs, clock, memory and the FP32 peak of the current GPU."""
    from numba import cuda

    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    cc = tuple(dev.compute_capability)
    sms = int(dev.MULTIPROCESSOR_COUNT)
    clock_khz = int(dev.CLOCK_RATE)
    lanes = FP32_LANES_PER_SM.get(cc)
    free, total = cuda.current_context().get_memory_info()
    info = {"name": name, "compute_capability": f"{cc[0]}.{cc[1]}", "sms": sms, "clock_mhz": clock_khz / 1e3,
            "memory_gib": total / 2**30, "fp32_lanes_per_sm": lanes,
            "fp32_peak_gflops": (sms * lanes * 2 * clock_khz / 1e6) if lanes else None}
    try:
        import numba_cuda

        info["numba_cuda"] = getattr(numba_cuda, "__version__", "?")
    except ImportError:  # pragma: no cover
        pass
    return info


# ------------------------------------------------------------------------ fastnn


def check_config(cfg, X, y, steps, seed):
    """Float64 training of ``steps`` batches with cuda and numpy; returns the max relative error."""
    m = min(len(X), steps * cfg.batch_size)
    nets = {}
    for be in ("numpy", "cuda"):
        net = make_net(cfg, seed, np.float64)
        net.fit(X[:m], y[:m], make_cost(cfg), make_optimizer(cfg), epochs=1, batch_size=cfg.batch_size,
                seed=seed, backend=be)
        nets[be] = net.params
    ref, got = nets["numpy"], nets["cuda"]
    err = np.abs(got - ref) / (CHECK_ATOL64 + CHECK_RTOL64 * np.abs(ref))
    return {"steps": -(-m // cfg.batch_size), "samples": m, "max_err_over_tol": float(err.max()),
            "ok": bool(err.max() <= 1.0)}


def compile_time(cfg, X, y, seed):
    """JIT compile time: a first tiny ``fit`` minus a second identical one (kernels cached)."""
    m = min(len(X), 2 * cfg.batch_size)
    times = []
    for _ in range(2):
        net = make_net(cfg, seed)
        t0 = _now()
        net.fit(X[:m], y[:m], make_cost(cfg), make_optimizer(cfg), epochs=1, batch_size=cfg.batch_size,
                seed=seed, backend="cuda")
        times.append(_now() - t0)
    return {"first_fit_s": times[0], "second_fit_s": times[1], "compile_s": times[0] - times[1]}


def time_fastnn(cfg, data, repeats, seed):
    """One ``fit`` of 1 + repeats epochs; the first epoch is the warm-up."""
    X, y, X_test, y_test = data
    net = make_net(cfg, seed)
    t0 = _now()
    hist = net.fit(X, y, make_cost(cfg), make_optimizer(cfg), epochs=1 + repeats, batch_size=cfg.batch_size,
                   seed=seed, backend="cuda")
    total = _now() - t0
    acc = float((net.predict(X_test, backend="cuda").argmax(axis=1) == y_test).mean())
    return {"times_s": list(hist.times[1:]), "median_s": _median(hist.times[1:]),
            "warmup_epoch_s": hist.times[0], "fit_total_s": total, "test_accuracy": acc}


# ---------------------------------------------------------------- torch and cupy


def torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def time_torch(torch, cfg, data, order, repeats, fraction, seed):
    """torch.nn + torch.optim on the GPU with fastnn's initial weights and sample order."""
    X, y = data[0], data[1]
    T = numpy_targets(cfg, y, np.float32)
    dev = torch.device("cuda")
    X_t, T_t = torch.from_numpy(X).to(dev), torch.from_numpy(T).to(dev)
    order_t = torch.from_numpy(order).to(dev)
    m = len(order) if fraction >= 1 else max(cfg.batch_size, int(round(fraction * len(order))))
    times = []
    for r in range(1 + repeats):
        tr = TorchRun(torch, cfg, *net_arrays(make_net(cfg, seed)), np.float32)
        tr.model.to(dev)
        torch.cuda.synchronize()
        t0 = _now()
        tr.train(X_t, T_t, order_t[:m] if r else order_t[:min(m, 8 * cfg.batch_size)])
        torch.cuda.synchronize()
        if r:  # r == 0 is the warm-up
            times.append((_now() - t0) * len(order) / m)
    return {"times_s": times, "median_s": _median(times), "fraction_timed": m / len(order),
            "torch": torch.__version__}


def cupy_module():
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return None
    return cupy


def time_cupy(cp, cfg, data, order, repeats, fraction, seed):
    X, y = data[0], data[1]
    Xd, Td, od = cp.asarray(X), cp.asarray(numpy_targets(cfg, y, np.float32)), cp.asarray(order)
    m = len(order) if fraction >= 1 else max(cfg.batch_size, int(round(fraction * len(order))))
    times = []
    for r in range(1 + repeats):
        Ws, bs = (list(map(cp.asarray, a)) for a in net_arrays(make_net(cfg, seed)))
        cp.cuda.Device().synchronize()
        t0 = _now()
        numpy_train(cfg, Ws, bs, Xd, Td, od[:m] if r else od[:min(m, 8 * cfg.batch_size)], {}, xp=cp)
        cp.cuda.Device().synchronize()
        if r:
            times.append((_now() - t0) * len(order) / m)
    return {"times_s": times, "median_s": _median(times), "fraction_timed": m / len(order),
            "cupy": cp.__version__}


# -------------------------------------------------------------------------- main


def build_parser():
    p = argparse.ArgumentParser(prog="python -m fastnn.bench --backend cuda",
                                description="Whole-epoch MNIST benchmark of fastnn's cuda backend "
                                            "(results checked against the reference before timing).")
    p.add_argument("--backend", default="cuda", choices=("cuda",), help=argparse.SUPPRESS)
    p.add_argument("--config", default="a,b,c,d", help="comma-separated: a, b, c (issue 3) and d "
                   "(784-1024-1024-10, batch 1024); default a,b,c,d")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs (median reported; default 3)")
    p.add_argument("--quick", action="store_true", help="tiny synthetic data (smoke test)")
    p.add_argument("--mnist", default=None, metavar="PATH", help="directory with the MNIST IDX .gz files")
    p.add_argument("--download", action="store_true", help="download MNIST if it is missing")
    p.add_argument("--out", default=None, help="JSON file (default bench-results/bench-cuda-<time>.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fraction", type=float, default=None, help="fraction of the epoch timed for "
                   "PyTorch and CuPy (default 0.1 at batch size <= 10, else 1)")
    p.add_argument("--skip", default="", help="comma-separated parts to leave out: check, compile, torch, cupy")
    return p


def _row(name, rec, flops, peak):
    if not rec or rec.get("median_s") is None:
        return f"| {name} | n/a | | |"
    g = flops / rec["median_s"] / 1e9
    pct = f"{100 * g / peak:.2f}%" if peak else "n/a"
    extra = " (extrapolated)" if rec.get("fraction_timed", 1) < 1 else ""
    return f"| {name} | {rec['median_s']:.3f}{extra} | {g:.1f} | {pct} |"


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    why = refuse_reason()
    if why:
        _log(f"fastnn.bench --backend cuda: refusing to run: {why}")
        return EXIT_USAGE
    configs = _configs()
    keys = [k.strip().lower() for k in args.config.split(",") if k.strip()]
    bad = [k for k in keys if k not in configs]
    if bad or not keys:
        _log(f"fastnn.bench --backend cuda: unknown configuration(s) {bad}; choose from {', '.join(configs)}")
        return EXIT_USAGE
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    data, data_desc = load_data(args)
    dev = device_info()
    peak = dev["fp32_peak_gflops"]
    torch = None if "torch" in skip else torch_cuda()
    cp = None if "cupy" in skip else cupy_module()
    res = {"device": dev, "machine": machine_info(None), "data": data_desc, "repeats": args.repeats,
           "configs": {}}
    _log(f"device: {dev['name']} (cc {dev['compute_capability']}, {dev['sms']} SMs, "
         f"FP32 peak {peak or float('nan'):.0f} GFLOP/s); data: {data_desc}")
    lines = [f"GPU: {dev['name']}, FP32 peak {peak:.0f} GFLOP/s" if peak else f"GPU: {dev['name']}", ""]
    for k in keys:
        cfg = configs[k]
        X, y = data[0], data[1]
        n = len(X)
        rec = {"title": cfg.title}
        if "check" not in skip:
            rec["check"] = check_config(cfg, X, y, CHECK_STEPS.get(k, 10), args.seed)
            _log(f"[{k}] float64 check: {rec['check']}")
            if not rec["check"]["ok"]:
                _log(f"fastnn.bench --backend cuda: config {k}: cuda and numpy disagree; nothing timed")
                return EXIT_CHECK_FAILED
        if "compile" not in skip:
            rec["compile"] = compile_time(cfg, X, y, args.seed)
        rec["fastnn-cuda"] = time_fastnn(cfg, data, args.repeats, args.seed)
        frac = args.fraction if args.fraction is not None else (0.1 if cfg.batch_size <= 10 else 1.0)
        order = shuffle_order(args.seed, n)
        if torch is not None:
            rec["torch-cuda"] = time_torch(torch, cfg, data, order, args.repeats, frac, args.seed)
        if cp is not None:
            rec["cupy"] = time_cupy(cp, cfg, data, order, args.repeats, frac, args.seed)
        flops = cfg.min_flops(n)
        rec["epoch_gflop"] = flops / 1e9
        res["configs"][k] = rec
        lines += [f"### ({k}) {cfg.title}: {n} samples, {flops / 1e9:.2f} GFLOP per epoch", "",
                  "| implementation | epoch s (median) | GFLOP/s | of FP32 peak |", "| --- | --- | --- | --- |",
                  _row("fastnn cuda", rec["fastnn-cuda"], flops, peak)]
        if "torch-cuda" in rec:
            lines.append(_row("PyTorch (GPU)", rec["torch-cuda"], flops, peak))
        if "cupy" in rec:
            lines.append(_row("CuPy loop", rec["cupy"], flops, peak))
        if "compile" in rec:
            lines.append(f"\nJIT compile (first fit minus second): {rec['compile']['compile_s']:.2f} s")
        lines.append("")
    print("\n".join(lines))
    out = args.out or os.path.join("bench-results",
                                   f"bench-cuda-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=2, default=str)
    _log(f"results written to {out}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
