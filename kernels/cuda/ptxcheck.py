"""Compile check for the CUDA kernels without a GPU: PTX with NVVM, then SASS with ptxas.

The simulator runs kernels as Python, so it accepts code that a GPU would reject
(unsupported calls, float64 leaking into float32 kernels, too much shared memory).
This module compiles every kernel in :data:`fastnn.kernels.cuda._kernels.SIGNATURES`
with ``numba.cuda.compile_ptx`` for each architecture in ``config.PTX_ARCHS`` (sm_80,
sm_90) and explicit float32/float64 signatures, assembles the PTX with ``ptxas -v``
for the same architecture, and reports registers, spills and shared memory::

    python -m fastnn.kernels.cuda.ptxcheck            # table; exit status 1 on any error
    python -m fastnn.kernels.cuda.ptxcheck --arch 90 --dtype float32

Needs numba-cuda with NVVM (``numba-cuda[cu13]``) and ``ptxas`` from the
``nvidia-cuda-nvcc`` wheel (``site-packages/nvidia/cu13/bin``; the extra
``fastnn-numba[cuda-dev]``), or ``FASTNN_PTXAS`` naming a ptxas new enough for the
PTX that NVVM writes (a system CUDA 12 ptxas is usually too old for CUDA 13 NVVM).
"""

import argparse
import contextlib
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time


class PtxCheckError(RuntimeError):
    """A kernel failed to compile to PTX or to assemble with ptxas."""


def find_ptxas():
    """Path of a ptxas to use, or None: ``FASTNN_PTXAS``, else the nvidia-cuda-nvcc wheel's."""
    env = os.environ.get("FASTNN_PTXAS")
    if env:
        return env if os.path.isfile(env) else None
    spec = importlib.util.find_spec("nvidia")
    for base in (spec.submodule_search_locations if spec else None) or []:
        for sub in ("cu13", "cuda_nvcc"):
            cand = pathlib.Path(base) / sub / "bin" / "ptxas"
            if cand.is_file():
                return str(cand)
    return None


def missing_requirements():
    """None when the check can run here, else the reason it cannot."""
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed (pip install 'fastnn-numba[cuda-dev]')"
    try:
        from numba import config as nbconfig
        if getattr(nbconfig, "ENABLE_CUDASIM", 0):
            return "NUMBA_ENABLE_CUDASIM=1: the simulator cannot compile PTX; run without it"
        from numba.cuda.cudadrv import nvvm

        if not nvvm.is_available():
            return "NVVM (libnvvm) was not found: install numba-cuda[cu13]"
    except Exception as exc:  # pragma: no cover - broken installs
        return f"numba.cuda cannot compile here ({type(exc).__name__}: {exc})"
    if find_ptxas() is None:
        return "ptxas was not found: pip install nvidia-cuda-nvcc (or set FASTNN_PTXAS)"
    return None


@contextlib.contextmanager
def _target_device(cc):
    """Make numba-cuda compile device functions for ``cc`` without asking a driver.

    numba-cuda types a call to a ``cuda.jit(device=True)`` function by compiling it
    for ``get_current_device().compute_capability``, which needs a GPU. During the
    check the target architecture stands in for that device.
    """
    from unittest import mock

    import numba.cuda.dispatcher as disp

    class _Device:
        compute_capability = tuple(cc)

    with mock.patch.object(disp, "get_current_device", lambda: _Device()):
        yield


_RE_REGS = re.compile(r"Used (\d+) registers")
_RE_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_RE_SMEM = re.compile(r"(\d+) bytes smem")
_RE_F64 = re.compile(r"^\s*(?:add|sub|mul|fma|div|sqrt|ex2|lg2|rcp)\.\S*f64", re.M)


def parse_ptxas(text):
    """Registers, spill stores/loads, stack and static shared memory from ``ptxas -v`` output."""
    regs = [int(m) for m in _RE_REGS.findall(text)]
    spills = [tuple(map(int, m)) for m in _RE_SPILL.findall(text)]
    smem = [int(m) for m in _RE_SMEM.findall(text)]
    return {
        "registers": max(regs) if regs else None,
        "stack": max((s[0] for s in spills), default=0),
        "spill_stores": max((s[1] for s in spills), default=0),
        "spill_loads": max((s[2] for s in spills), default=0),
        "smem": max(smem) if smem else 0,
    }


def assemble(pyfunc, sig, cc, ptxas, workdir, label="kernel", math_flags=False):
    """compile_ptx ``pyfunc`` for ``sig`` and ``cc`` (fastmath when ``math_flags``), then
    ``ptxas -v`` it; return the row dict.

    Raises
    ------
    PtxCheckError
        When NVVM or ptxas rejects the kernel (the message holds the tool's output).
    """
    from .jit import ptx as compile_ptx

    sm = f"sm_{cc[0]}{cc[1]}"
    t0 = time.perf_counter()
    try:
        ptx = compile_ptx(pyfunc, sig, cc, math_flags)
    except Exception as exc:
        raise PtxCheckError(f"{label} [{sm}]: compile_ptx failed: {type(exc).__name__}: {exc}") from exc
    t_ptx = time.perf_counter() - t0
    src = pathlib.Path(workdir) / f"{label}_{sm}.ptx"
    src.write_text(ptx)
    proc = subprocess.run([ptxas, f"-arch={sm}", "-v", str(src), "-o", str(src.with_suffix(".cubin"))],
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or "error" in out.lower():
        raise PtxCheckError(f"{label} [{sm}]: ptxas failed (exit {proc.returncode}):\n{out}")
    row = {"arch": sm, "signature": sig, "ptx_seconds": t_ptx,
           # float64 arithmetic in a float32 kernel is a silent slowdown on most GPUs
           "f64_ops": len(_RE_F64.findall(ptx))}
    row.update(parse_ptxas(out))
    if row["registers"] is None:
        raise PtxCheckError(f"{label} [{sm}]: no register count in the ptxas output:\n{out}")
    return row


def run_check(archs=None, dtypes=("float32", "float64"), names=None, ptxas=None, tile=None, wpt=None,
              tpb=None, fastmath=None):
    """Compile and assemble every kernel; return one dict per (kernel, dtype, arch).

    Raises
    ------
    PtxCheckError
        On the first kernel that NVVM or ptxas rejects.
    """
    from . import _kernels, config

    archs = tuple(tuple(a) for a in (archs or config.PTX_ARCHS))
    ptxas = ptxas or find_ptxas()
    if ptxas is None:
        raise PtxCheckError("ptxas was not found")
    knobs = (config.TILE if tile is None else tile, config.WPT if wpt is None else wpt,
             config.TPB if tpb is None else tpb, config.FASTMATH if fastmath is None else fastmath)
    names = list(names or _kernels.SIGNATURES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cc in archs:
            with _target_device(cc):
                for dtype in dtypes:
                    # fresh (uncached) kernels, so their device functions are compiled for cc
                    _, pyfuncs = _kernels.build.__wrapped__(dtype, *knobs)
                    for name in names:
                        row = {"kernel": name, "dtype": dtype}
                        row.update(assemble(pyfuncs[name], _kernels.signature(name, dtype), cc, ptxas, tmp,
                                            label=f"{name}_{dtype}", math_flags=knobs[3]))
                        rows.append(row)
    return rows


def format_table(rows):
    """The check's result as a fixed-width text table."""
    head = f"{'kernel':<15} {'dtype':<8} {'arch':<6} {'regs':>5} {'spill st':>9} {'spill ld':>9} " \
           f"{'stack':>6} {'smem':>6} {'f64 ops':>8} {'ptx s':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['kernel']:<15} {r['dtype']:<8} {r['arch']:<6} {r['registers']:>5} "
                     f"{r['spill_stores']:>9} {r['spill_loads']:>9} {r['stack']:>6} {r['smem']:>6} "
                     f"{r['f64_ops']:>8} {r['ptx_seconds']:>6.2f}")
    return "\n".join(lines)


def main(argv=None):
    """Command line: print the table; exit status 0 when everything assembled, 1 on an
    error, 2 when the tools are missing."""
    from . import config

    ap = argparse.ArgumentParser(prog="python -m fastnn.kernels.cuda.ptxcheck", description=__doc__.split("\n")[0])
    ap.add_argument("--arch", action="append", help="compute capability like 80 or 90 (repeatable); "
                    "default: " + ", ".join(f"{a}{b}" for a, b in config.PTX_ARCHS))
    ap.add_argument("--dtype", action="append", choices=("float32", "float64"))
    ap.add_argument("--kernel", action="append", help="only this kernel (repeatable)")
    args = ap.parse_args(argv)
    why = missing_requirements()
    if why:
        print(f"ptxcheck: cannot run: {why}", file=sys.stderr)
        return 2
    archs = [(int(a[:-1]), int(a[-1])) for a in args.arch] if args.arch else None
    ptxas = find_ptxas()
    ver = subprocess.run([ptxas, "--version"], capture_output=True, text=True).stdout.strip().splitlines()
    print(f"ptxas: {ptxas} ({ver[-1] if ver else '?'})")
    print(f"knobs: TILE={config.TILE} WPT={config.WPT} TPB={config.TPB} FASTMATH={config.FASTMATH}")
    t0 = time.perf_counter()
    try:
        rows = run_check(archs, tuple(args.dtype or ("float32", "float64")), args.kernel, ptxas)
    except PtxCheckError as exc:
        print(f"ptxcheck: FAILED: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    print(f"{len(rows)} kernel builds compiled and assembled in {time.perf_counter() - t0:.1f} s; "
          f"max spill stores {max(r['spill_stores'] for r in rows)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
