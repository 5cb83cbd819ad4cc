"""Compile check of the CUDA kernels, without a GPU (runs in the main test process).

The simulator accepts code that a GPU would reject, so every kernel is also compiled
with ``numba.cuda.compile_ptx`` for sm_80 and sm_90 with explicit float32 and float64
signatures, and the PTX is assembled with ptxas (from the nvidia-cuda-nvcc wheel) for
the same architectures. The register/spill table is printed in the terminal
(``python -m fastnn.kernels.cuda.ptxcheck`` prints it standalone). About 30 s of CPU
on a 2-core machine: 15 kernels x 2 dtypes x 2 architectures.
"""

import importlib.util
import os

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    pytest.skip("NUMBA_ENABLE_CUDASIM=1: the simulator cannot compile PTX (this check runs in the main "
                "test process)", allow_module_level=True)
from conftest import skip_or_fail  # noqa: E402

if importlib.util.find_spec("numba_cuda") is None:
    skip_or_fail("numba-cuda is not installed: pip install 'fastnn-numba[cuda-dev]'", allow_module_level=True)

from fastnn.kernels.cuda import _kernels, config, ptxcheck  # noqa: E402

_why = ptxcheck.missing_requirements()
if _why:
    skip_or_fail(f"PTX compile check cannot run: {_why}", allow_module_level=True)

pytestmark = pytest.mark.slow

#: The reduction sums per-row losses in float64 on purpose, whatever the network dtype.
FLOAT64_BY_DESIGN = {"reduce_k"}


@pytest.fixture(scope="module")
def rows(request):
    got = ptxcheck.run_check()  # raises PtxCheckError on any NVVM or ptxas error
    table = "\nCUDA kernels, ptxas -v (registers, spills in bytes):\n" + ptxcheck.format_table(got)
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:  # shown in the normal run, not only with -s
        reporter.write_line(table)
    else:
        print(table)
    return got


def test_every_kernel_compiles_and_assembles_for_each_arch_and_dtype(rows):
    want = {(k, d, f"sm_{a}{b}") for k in _kernels.SIGNATURES for d in ("float32", "float64")
            for a, b in config.PTX_ARCHS}
    assert {(r["kernel"], r["dtype"], r["arch"]) for r in rows} == want
    assert {"sm_80", "sm_90"} <= {r["arch"] for r in rows}
    assert all(r["registers"] > 0 for r in rows)


def test_no_register_spills(rows):
    spilled = [f"{r['kernel']} {r['dtype']} {r['arch']}: {r['spill_stores']} B stores, "
               f"{r['spill_loads']} B loads" for r in rows if r["spill_stores"] or r["spill_loads"]]
    assert not spilled, "register spills:\n" + "\n".join(spilled)


def test_float32_kernels_do_no_float64_arithmetic(rows):
    # a Python float literal in a float32 kernel silently promotes it to float64
    leaks = [f"{r['kernel']} {r['arch']}: {r['f64_ops']} f64 instructions" for r in rows
             if r["dtype"] == "float32" and r["f64_ops"] and r["kernel"] not in FLOAT64_BY_DESIGN]
    assert not leaks, "\n".join(leaks)
    assert all(r["f64_ops"] > 0 for r in rows if r["dtype"] == "float64" and r["kernel"].startswith("mm_"))


def test_ptxas_rejects_a_bad_kernel(tmp_path):
    # the checker must be able to fail: 96 KiB of static shared memory exceeds the 48 KiB limit
    from numba import cuda, float64

    def too_much_shared(out):
        buf = cuda.shared.array(12288, float64)
        buf[cuda.threadIdx.x] = 1.0
        cuda.syncthreads()
        out[0] = buf[0]

    with pytest.raises(ptxcheck.PtxCheckError, match="ptxas failed"):
        ptxcheck.assemble(too_much_shared, "void(float64[::1])", (9, 0), ptxcheck.find_ptxas(), tmp_path,
                          label="too_much_shared")


def test_parse_ptxas_output():
    text = ("ptxas info    : Function properties for k\n"
            "    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n"
            "ptxas info    : Used 40 registers, used 1 barriers, 4288 bytes smem\n")
    assert ptxcheck.parse_ptxas(text) == {"registers": 40, "stack": 8, "spill_stores": 4, "spill_loads": 12,
                                          "smem": 4288}
