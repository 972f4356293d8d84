"""First call in a fresh process: import, disk cache, compilation.

Each sample is a new Python process (asv's ``timeraw_``) that imports rmsopt
and runs one short minimize. The timed code starts at ``import rmsopt`` and
ends when minimize returns; numba's disk cache lives in a temporary folder
(``NUMBA_CACHE_DIR``, set before numba is imported) so that the cases are
independent of the machine's state:

``import``
    ``import rmsopt`` alone (mostly numba's import): subtract it from the
    others.
``python_jac_cached``
    a Python jac, the step kernels already in the disk cache (written by an
    earlier process in setup): the usual first call. Target: no compilation.
``python_jac_empty_cache``
    the same with an empty cache: the step kernels compile (a first install).
``new_njit_jac``
    a jitted jac the process has just defined, rmsopt's kernels cached (an
    earlier process ran another jitted jac of the same signature): numba
    compiles the user's jac only; the loop, compiled for the jac's
    signature rather than for the function, comes from the disk cache.
    Target: cold compile of the driver <= 1 s.
``new_njit_jac_empty_cache``
    the same with an empty cache: the step and the loop compile (the first
    run of these options on a machine).
"""

import os
import shutil
import subprocess
import sys
import tempfile

from .common import Benchmark

_PYTHON_JAC = """
import numpy as np
import rmsopt

def jac(x):
    return 2.0 * x

res = rmsopt.minimize(lambda x: float(x @ x), np.ones(10), jac=jac,
                      options=dict(maxiter=100, gtol=0.0))
assert res.nit == 100, res
"""

_NEW_NJIT_JAC = """
import numba
import numpy as np
import rmsopt

@numba.njit
def jac(x):
    return 2.0 * x

res = rmsopt.minimize(lambda x: float(x @ x), np.ones(10), jac=jac,
                      options=dict(maxiter=100, gtol=0.0))
assert res.nit == 100, res
"""

CODE = {
    "import": "import rmsopt",
    "python_jac_cached": _PYTHON_JAC,
    "python_jac_empty_cache": _PYTHON_JAC,
    "new_njit_jac": _NEW_NJIT_JAC,
    "new_njit_jac_empty_cache": _NEW_NJIT_JAC,
}
EMPTY_CACHE = ("python_jac_empty_cache", "new_njit_jac_empty_cache")


class ColdStart(Benchmark):
    """A fresh process: import rmsopt, run one 100-iteration minimize."""

    params = [list(CODE)]
    param_names = ["case"]
    # Each sample is a process of about a second: a few are enough.
    repeat = (2, 5, 30.0)
    warmup_time = 0
    timeout = 300

    def setup(self, case):
        self.cache = tempfile.mkdtemp(prefix="rmsopt-asv-numba-")
        if case not in EMPTY_CACHE:
            # An earlier process fills the disk cache with rmsopt's kernels
            # (its jitted jac is another function, of the same signature).
            env = dict(os.environ, NUMBA_CACHE_DIR=self.cache)
            for code in (_PYTHON_JAC, _NEW_NJIT_JAC):
                subprocess.run([sys.executable, "-c", code], env=env,
                               check=True)

    def teardown(self, case):
        shutil.rmtree(self.cache, ignore_errors=True)

    def timeraw_first_minimize(self, case):
        if case in EMPTY_CACHE:
            # a new empty folder for each process (each sample)
            cache = f"tempfile.mkdtemp(dir={self.cache!r})"
        else:
            cache = repr(self.cache)
        setup = ("import os, tempfile\n"
                 f"os.environ['NUMBA_CACHE_DIR'] = {cache}\n")
        return CODE[case], setup
