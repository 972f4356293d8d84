#!/usr/bin/env python
"""The fixed cost of one ``rmsopt.minimize`` call: a 10-iteration call on
Rosenbrock n=2 with an in-place jitted jac (``jac(x, out)``), lr=1e-3,
gtol=0 (the issue's first row).

Each source tree given runs in its own process (compiled loops from the
disk cache, warmed up first), in interleaved rounds; the medians are
printed, and with two trees their ratio. Without ``--trees`` it measures
the installed rmsopt.

    python benchmarks/call_cost.py [--trees A,B] [--rounds 5]

(e.g. ``git worktree add /tmp/old <commit>`` for A, ``.`` for B).
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

CHILD = r"""
import time
import numba
import numpy as np
import rmsopt

@numba.njit
def jac(x, out):
    out[0] = -2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2)
    out[1] = 200 * (x[1] - x[0] ** 2)

def fun(x):
    return 0.0

x0 = np.array([-1.2, 1.0])
options = {"lr": 1e-3, "maxiter": 10, "gtol": 0.0}
for _ in range(300):
    rmsopt.minimize(fun, x0, jac=jac, options=options)
start = time.perf_counter()
for _ in range(1000):
    rmsopt.minimize(fun, x0, jac=jac, options=options)
print(rmsopt.__file__, (time.perf_counter() - start) / 1000 * 1e6)
"""


def one_round(tree):
    """Microseconds per call in a new process importing ``tree``'s rmsopt
    (or the installed one)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.path.abspath(tree) + os.pathsep + env.get(
            "PYTHONPATH", "")
    # from an empty folder: `python -c` puts the working folder first on
    # sys.path, ahead of PYTHONPATH
    with tempfile.TemporaryDirectory() as empty:
        out = subprocess.run([sys.executable, "-c", CHILD], env=env,
                             check=True, capture_output=True, text=True,
                             cwd=empty).stdout
    return float(out.split()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    trees = options.trees.split(",") if options.trees else [None]
    times = {tree: [] for tree in trees}
    for _ in range(options.rounds):
        for tree in trees:  # interleaved: the machine's load hits all
            times[tree].append(one_round(tree))
    medians = {tree: float(np.median(t)) for tree, t in times.items()}
    for tree, median in medians.items():
        print(f"{tree or 'installed'}: {median:.1f} us per call")
    if len(trees) == 2:
        a, b = (medians[tree] for tree in trees)
        print(f"ratio {trees[1]} / {trees[0]}: {b / a:.2f}")


if __name__ == "__main__":
    main()
