"""scikit-learn's own MLP tests, run against fastnn.sklearn (the drop-in promise, checked by
the test suite scikit-learn itself uses). The plugin tests/sklearn_mlp_plugin.py swaps the
classes in and lists the expected failures with their reasons."""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("sklearn", minversion="1.6", reason="needs scikit-learn >= 1.6 (the 'sklearn' extra)")


def test_sklearns_own_mlp_tests_pass_with_fastnn(tmp_path):
    import sklearn.neural_network.tests  # noqa: F401  (installed with scikit-learn)
    from sklearn_mlp_plugin import EXPECTED_FAILURES

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT),
                                                       os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "sklearn_mlp_plugin", "-p", "no:cacheprovider",
                        "--pyargs", "sklearn.neural_network.tests.test_mlp", "-q", "-rfxX"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    tail = r.stdout[-3000:]
    assert r.returncode == 0, tail
    counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (passed|failed|xfailed|xpassed)", tail))
    assert counts.get("failed", 0) == 0 and counts.get("xpassed", 0) == 0, tail
    assert counts.get("xfailed", 0) == len(EXPECTED_FAILURES) <= 2, tail
    assert counts.get("passed", 0) >= 59, tail
    print(f"\nscikit-learn's test_mlp.py with fastnn: {counts}")
