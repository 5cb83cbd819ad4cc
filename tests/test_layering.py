"""The layering rules of ``kernels/`` (STYLE.md), checked on the source with ``ast``.

* a file under ``kernels/`` imports nothing of fastnn outside ``fastnn.kernels``;
* ``kernels/cpu`` and ``kernels/cuda`` never import each other;
* the reference (``kernels/reference.py`` and its optimizer half ``reference_optim.py``)
  imports numpy and nothing else (the two halves may import each other);
* no kernel uses a raw ``@njit``/``numba.jit``/``cuda.jit`` or passes ``fastmath=``
  outside the one jit helper of its target (``kernels/cpu/jit.py``, ``kernels/cuda/jit.py``).

Each rule is also shown to fire on a small offending source, so the test can fail.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

from conftest import ROOT

KERNELS = pathlib.Path(ROOT) / "kernels"
JIT_HELPERS = {"cpu/jit.py", "cuda/jit.py"}
REFERENCE = {"reference.py": "fastnn.kernels.reference", "reference_optim.py": "fastnn.kernels.reference_optim",
             "reference_costs.py": "fastnn.kernels.reference_costs"}
JIT_NAMES = {"njit", "jit", "vectorize", "guvectorize", "stencil", "cfunc", "generated_jit"}


def _resolve(rel, node):
    """Absolute names that an import node of file ``rel`` (relative to kernels/) reaches
    (``from m import a`` reaches ``m.a``: ``a`` may be a submodule)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level == 0:
        base = (node.module or "").split(".")
    else:
        pkg = ["fastnn", "kernels", *pathlib.PurePosixPath(rel).parent.parts]
        if node.level - 1 >= len(pkg):
            return ["<above the top-level package>"]
        base = pkg[:len(pkg) - (node.level - 1)] + (node.module.split(".") if node.module else [])
    return [".".join(base + [a.name]) for a in node.names]


def violations(rel, source):
    """The layering rules that the source of ``kernels/<rel>`` breaks, one string each."""
    rel = str(pathlib.PurePosixPath(rel))
    tree = ast.parse(source, rel)
    found = []
    side = rel.split("/")[0] if "/" in rel else None  # "cpu", "cuda" or None (kernels/*.py)
    helper = rel in JIT_HELPERS
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for mod in _resolve(rel, node):
                top = mod.split(".")[0]
                if top.startswith("<"):
                    found.append(f"{where}: a relative import climbs above kernels")
                if top == "fastnn" and not (mod == "fastnn.kernels" or mod.startswith("fastnn.kernels.")):
                    found.append(f"{where}: imports {mod} (kernels import nothing of the API)")
                for a, b in (("cpu", "cuda"), ("cuda", "cpu")):
                    if side == a and mod.startswith(f"fastnn.kernels.{b}"):
                        found.append(f"{where}: kernels/{a} imports {mod}")
                if rel in REFERENCE and top != "numpy" and mod.rsplit(".", 1)[0] not in REFERENCE.values():
                    found.append(f"{where}: {rel} imports {mod} (numpy only)")
            if (isinstance(node, ast.ImportFrom) and not helper and (node.module or "").split(".")[0] == "numba"
                    and any(a.name in JIT_NAMES for a in node.names)):
                found.append(f"{where}: imports a jit decorator from {node.module} (use the jit helper)")
        if helper:
            continue
        if isinstance(node, ast.Call) and any(k.arg == "fastmath" for k in node.keywords):
            found.append(f"{where}: passes fastmath= (set in the jit helper only)")
        if isinstance(node, ast.Name) and node.id == "njit":
            found.append(f"{where}: uses njit (use the jit helper)")
        if (isinstance(node, ast.Attribute) and node.attr in JIT_NAMES and isinstance(node.value, ast.Name)
                and node.value.id in ("numba", "cuda")):
            found.append(f"{where}: uses {node.value.id}.{node.attr} (use the jit helper)")
    return found


def _kernel_files():
    return sorted(p.relative_to(KERNELS).as_posix() for p in KERNELS.rglob("*.py"))


def test_kernel_tree_is_found():
    files = _kernel_files()
    assert {"reference.py", "layout.py", "cpu/jit.py", "cuda/jit.py", "cpu/epoch_blas.py", "cuda/epoch.py"} <= set(files)


@pytest.mark.parametrize("rel", _kernel_files())
def test_kernels_keep_the_layering(rel):
    assert violations(rel, (KERNELS / rel).read_text()) == []


@pytest.mark.parametrize("rel, source, rule", [
    ("cpu/ops.py", "from fastnn import config\n", "imports fastnn.config"),
    ("cpu/ops.py", "import fastnn.layers\n", "imports fastnn.layers"),
    ("cpu/ops.py", "from ... import network\n", "imports fastnn.network"),
    ("cpu/ops.py", "from .... import x\n", "climbs above kernels"),
    ("layout.py", "from fastnn.backends import plan\n", "imports fastnn.backends"),
    ("cpu/epoch_blas.py", "from fastnn.kernels.cuda import launch\n", "kernels/cpu imports"),
    ("cuda/epoch.py", "from ..cpu import rows\n", "kernels/cuda imports fastnn.kernels.cpu"),
    ("reference.py", "import math\n", "numpy only"),
    ("reference.py", "from fastnn.kernels import layout\n", "numpy only"),
    ("reference_optim.py", "import math\n", "numpy only"),
    ("cpu/rows.py", "from numba import njit\n", "jit decorator"),
    ("cpu/rows.py", "import numba\n@numba.njit\ndef f(): pass\n", "numba.njit"),
    ("cpu/rows.py", "@jit(fastmath=True)\ndef f(): pass\n", "fastmath="),
    ("cuda/_kernels.py", "from numba import cuda\nk = cuda.jit(f)\n", "cuda.jit"),
])
def test_each_rule_fires(rel, source, rule):
    found = violations(rel, source)
    assert any(rule in v for v in found), found


def test_allowed_imports_pass():
    ok = ("import numpy as np\nfrom numba import prange\nfrom fastnn.kernels.cpu.jit import jit\n"
          "from . import config\nfrom ..layout import NIN\n")
    assert violations("cpu/ops.py", ok) == []
    assert violations("cpu/jit.py", "from numba import njit\nf = njit(fastmath=True)(g)\n") == []
    assert violations("reference.py", "import numpy as np\n") == []
    assert violations("reference.py", "from fastnn.kernels.reference_optim import sgd_update\n") == []


def test_importing_kernels_does_not_import_the_api():
    code = ("import sys, fastnn.kernels.cpu, fastnn.kernels.reference, fastnn.kernels.layout\n"
            "api = sorted(m for m in sys.modules if m.startswith('fastnn.') and not m.startswith('fastnn.kernels')"
            " and m != 'fastnn._version')\n"
            "print(api); assert not api, api\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
