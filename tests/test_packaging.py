"""The wheel must ship every package in the tree: pyproject lists them explicitly because
kernels/ is mapped to fastnn.kernels, so a new subpackage is easy to forget."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _tree_packages():
    found = set()
    for top, name in (("fastnn", "fastnn"), ("kernels", "fastnn.kernels")):
        base = ROOT / top
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join((name,) + rel.parts))
    return found


def test_pyproject_lists_every_package():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    tree = _tree_packages()
    assert "fastnn.kernels" in tree and "fastnn.backends" in tree
    assert tree - listed == set(), f"packages missing from pyproject [tool.setuptools] packages: {tree - listed}"
    assert listed - tree == set(), f"pyproject lists packages that do not exist: {listed - tree}"
    assert cfg["package-dir"]["fastnn.kernels"] == "kernels"
