"""Every example runs to the end; each asserts its results against an
independent answer (BFGS, lstsq, L-BFGS-B, a NumPy loop)."""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    # Figures go to a temporary folder, not into the repository.
    out = subprocess.run([sys.executable, "-W", "error", str(script)],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "MPLBACKEND": "Agg",
                              "RMSOPT_FIGURE_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"rosenbrock.py", "small_network.py", "linear_layer.py",
            "jitted.py"} <= names
