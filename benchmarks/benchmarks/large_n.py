"""The large-n step: memory bandwidth, threads, and peak memory.

The gradient costs nothing (:func:`common.constant_grad_out`), so a run's
time is the fused step (read x, g, v; write x, v) plus a fixed cost per call
(validating and copying x0, allocating the state, building the result).
``time_0_iterations`` measures that fixed cost, so that the time per step is
``(time_10_iterations - time_0_iterations) / 10``, and the effective
bandwidth ``5 * n * itemsize`` bytes over it.

Targets (``shared/PERFORMANCE.md``): at n >= 1e7, at least 0.9x the measured
bandwidth limit of the same access pattern; in cache (n <= 1e6), at least
0.9x the serial compute ceiling per thread. Memory: no allocation per
iteration, and a peak of about x + g + state.
"""

import functools
import tracemalloc

import numpy as np

import rmsopt

from .common import OPTIONS, Benchmark, checked_minimize, constant_grad_out, \
    has_option, require, zero

ITERATIONS = 10


def _options(parallel, driver, maxiter):
    """The run's options; ``parallel`` is passed only where it is known.

    A commit without the option always ran the step serially: its
    ``parallel=False`` case is the plain run, its other cases are skipped.
    """
    options = dict(OPTIONS, maxiter=maxiter, driver=driver)
    if parallel is not False:
        require(options=("parallel",))
    if parallel is not False or has_option("parallel"):
        options["parallel"] = parallel
    return options


@functools.lru_cache(maxsize=None)  # asv re-runs setup before every sample
def _large_case(n, dtype, parallel, driver):
    require("njit_out")
    x0 = np.full(n, 0.5, dtype=dtype)
    options = {k: _options(parallel, driver, k) for k in (0, ITERATIONS)}
    # Warm the JIT at this n: "auto" may choose its kernel by size.
    checked_minimize(zero, x0, constant_grad_out,
                     options=dict(options[ITERATIONS], maxiter=1),
                     expect_nit=1)
    return x0, options


class LargeStep(Benchmark):
    """10 iterations (and 0) of minimize with a free in-place gradient."""

    params = [[10**5, 10**6, 10**7], ["float32", "float64"],
              [False, True, "auto"], ["python", "nopython"]]
    param_names = ["n", "dtype", "parallel", "driver"]

    def setup(self, n, dtype, parallel, driver):
        self.x0, self.options = _large_case(n, dtype, parallel, driver)

    def time_10_iterations(self, n, dtype, parallel, driver):
        rmsopt.minimize(zero, self.x0, jac=constant_grad_out,
                        options=self.options[ITERATIONS])

    def time_0_iterations(self, n, dtype, parallel, driver):
        rmsopt.minimize(zero, self.x0, jac=constant_grad_out,
                        options=self.options[0])


class PeakMemory(Benchmark):
    """Peak memory of a 10-iteration run at n = 1e7.

    ``peakmem_minimize`` is the process's peak resident size (Python, numba,
    x0 included); ``peakmem_reference`` the same process without the run, so
    that their difference is the run's. ``track_peak_arrays`` counts the
    run's peak allocation (tracemalloc, which sees NumPy's arrays) in arrays
    of n elements: a machine-independent number, about 3 for x + g + v, plus
    whatever the result copies.
    """

    params = [["float32", "float64"]]
    param_names = ["dtype"]
    n = 10**7

    def setup(self, dtype):
        require("njit_out")
        self.x0 = np.full(self.n, 0.5, dtype=dtype)
        self.options = dict(OPTIONS, maxiter=ITERATIONS)
        # Warm at a small n, so that the setup's peak stays below the run's;
        # with both step kernels where there is a choice.
        small = self.x0[:1000].copy()
        for parallel in ([False, True] if has_option("parallel") else [None]):
            options = dict(self.options)
            if parallel is not None:
                options["parallel"] = parallel
            checked_minimize(zero, small, constant_grad_out, options=options,
                             expect_nit=ITERATIONS)

    def peakmem_minimize(self, dtype):
        rmsopt.minimize(zero, self.x0, jac=constant_grad_out,
                        options=self.options)

    def peakmem_reference(self, dtype):
        pass

    def track_peak_arrays(self, dtype):
        tracemalloc.start()
        try:
            rmsopt.minimize(zero, self.x0, jac=constant_grad_out,
                            options=self.options)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak / self.x0.nbytes

    track_peak_arrays.unit = "arrays of n"
