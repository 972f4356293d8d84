"""The large-n step: memory bandwidth, threads, and peak memory.

The gradient costs nothing (:func:`common.constant_grad_out`), so a run's
time is the fused step (read x, g, v; write x, v) plus a fixed cost per call
(validating and copying x0, allocating the state, building the result).
``LargeCallOverhead`` times that fixed cost (``maxiter=0``), so that the time
per step is ``(LargeStep - LargeCallOverhead) / 10``, and the effective
bandwidth ``5 * n * itemsize`` bytes over it. ``StepBandwidth`` makes that
subtraction itself and reports ratios to hand-written kernels measured in the
same process, the form in which ``shared/PERFORMANCE.md`` states its targets:
at n >= 1e7, at least 0.9x the bandwidth limit of the same access pattern;
in cache, at least 0.9x the serial compute ceiling per thread. Memory: no
allocation per iteration, and a peak of about x + g + state.
"""

import functools
import tracemalloc

import numpy as np

import rmsopt

from .common import ALPHA, DRIVERS, EPS, LR, OPTIONS, STEP_KERNELS, \
    Benchmark, checked_minimize, constant_grad_out, differential, \
    has_option, interleaved_rounds, measured_or_reason, medians, \
    per_iteration, require, skip_unmeasured, zero

ITERATIONS = 10
SIZES = [10**5, 10**6, 10**7]
DTYPES = ["float32", "float64"]


def _options(parallel, driver, maxiter):
    """The run's options; ``parallel`` is passed only where it is known.

    A commit without the option always ran the step serially: its
    ``parallel=False`` case is the plain run, its ``parallel=True`` case is
    skipped.
    """
    options = dict(OPTIONS, maxiter=maxiter, driver=driver)
    if parallel:
        require(options=("parallel",))
    if has_option("parallel"):
        options["parallel"] = parallel
    return options


@functools.lru_cache(maxsize=None)  # asv re-runs setup before every sample
def _large_case(n, dtype, parallel, driver, maxiter):
    """x0 and options; the kernels warmed (compiled or loaded from disk).

    The compiled code does not depend on n, so the warm-up runs at n=1000;
    ``parallel=True`` runs the threaded kernels at any n.
    """
    require("njit_out")
    options = _options(parallel, driver, maxiter)
    small = np.full(1000, 0.5, dtype=dtype)
    checked_minimize(zero, small, constant_grad_out, options=options,
                     expect_nit=maxiter)
    return np.full(n, 0.5, dtype=dtype), options


class LargeStep(Benchmark):
    """10 iterations of minimize with a free in-place gradient."""

    params = [SIZES, DTYPES, [False, True], DRIVERS]
    param_names = ["n", "dtype", "parallel", "driver"]

    def setup(self, n, dtype, parallel, driver):
        self.x0, self.options = _large_case(n, dtype, parallel, driver,
                                            ITERATIONS)

    def time_10_iterations(self, n, dtype, parallel, driver):
        rmsopt.minimize(zero, self.x0, jac=constant_grad_out,
                        options=self.options)


class LargeCallOverhead(Benchmark):
    """The same call with maxiter=0: everything but the steps."""

    params = [SIZES, DTYPES]
    param_names = ["n", "dtype"]

    def setup(self, n, dtype):
        self.x0, self.options = _large_case(n, dtype, False, "nopython", 0)

    def time_0_iterations(self, n, dtype):
        rmsopt.minimize(zero, self.x0, jac=constant_grad_out,
                        options=self.options)


class PeakMemory(Benchmark):
    """Peak resident memory of a 10-iteration run at n = 1e7 (serial step).

    ``peakmem_minimize`` is the process's peak resident size (Python, numba,
    x0 included); ``peakmem_reference`` the same process without the run, so
    that their difference is the run's. The python driver: the buffers are
    the drivers' common ones, and it compiles nothing (``PeakArrays`` covers
    both drivers).
    """

    params = [DTYPES]
    param_names = ["dtype"]
    n = 10**7

    def setup(self, dtype):
        # warmed at n=1000: the setup's own peak stays below the run's, and
        # nothing compiles during the measured run
        self.x0, self.options = _large_case(self.n, dtype, False, "python",
                                            ITERATIONS)

    def peakmem_minimize(self, dtype):
        rmsopt.minimize(zero, self.x0, jac=constant_grad_out,
                        options=self.options)

    def peakmem_reference(self, dtype):
        pass


class PeakArrays(Benchmark):
    """A run's peak allocation at n = 1e7, in arrays of n elements.

    tracemalloc sees NumPy's allocations (not numba's): a machine-independent
    number. The target is about 3, x + g + v; it counts everything the call
    allocates, the result's arrays included (7 before commit af79e02, 4
    after).
    """

    params = [DTYPES, DRIVERS]
    param_names = ["dtype", "driver"]
    n = 10**7

    def setup(self, dtype, driver):
        self.x0, self.options = _large_case(self.n, dtype, False, driver,
                                            ITERATIONS)

    def track_peak_arrays(self, dtype, driver):
        tracemalloc.start()
        try:
            rmsopt.minimize(zero, self.x0, jac=constant_grad_out,
                            options=self.options)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak / self.x0.nbytes

    track_peak_arrays.unit = "arrays of n"


# -- ratios to hand-written kernels -------------------------------------------

BANDWIDTH_SIZES = [10**6, 10**7]
ROUNDS = 3
SHORT, LONG = 1, 6  # iterations of the two runs whose difference is timed


def _measure(n, dtype, parallel):
    """Seconds per step: rmsopt's and each kernel of
    :data:`common.STEP_KERNELS`' (``same_traffic``, ``fused_rmsprop``),
    medians over interleaved rounds.

    rmsopt's step is the difference of two runs (SHORT and LONG iterations)
    over LONG - SHORT, which cancels the cost of the call; a kernel runs
    LONG - SHORT steps.
    """
    real = np.dtype(dtype).type
    x, g, v = (np.full(n, 0.5, dtype=dtype) for _ in range(3))
    scalars = (real(LR), real(ALPHA), real(1.0 - ALPHA), real(EPS))
    x0 = np.full(n, 0.5, dtype=dtype)
    options = {k: _options(parallel, "python", k) for k in (SHORT, LONG)}
    for k in (SHORT, LONG):  # warm (the python driver loads from disk)
        checked_minimize(zero, x0[:1000], constant_grad_out,
                         options=options[k], expect_nit=k)

    def run_rmsopt(k):
        rmsopt.minimize(zero, x0, jac=constant_grad_out, options=options[k])

    cases = {"rmsopt": differential(run_rmsopt, SHORT, LONG)}
    for name, kernel in STEP_KERNELS[parallel].items():
        kernel(x, g, v, *scalars, 1)  # compile

        def run_kernel(steps, kernel=kernel):
            kernel(x, g, v, *scalars, steps)
        cases[name] = per_iteration(run_kernel, LONG - SHORT)
    return medians(interleaved_rounds(cases, ROUNDS))


class StepBandwidth(Benchmark):
    """rmsopt's step against hand-written kernels, in one process.

    ``track_ratio_to_same_traffic``: the kernel moving the same bytes with
    trivial arithmetic over rmsopt's step (1 = at the bandwidth limit;
    target >= 0.9 at n = 1e7). ``track_ratio_to_fused_rmsprop``: a
    one-pass hand-written RMSProp over rmsopt's step (1 = the compiled
    limit). ``track_gbps``: rmsopt's effective bandwidth, 5 n itemsize bytes
    per step (machine-dependent). The python driver runs the step, so that
    no loop compiles here.
    """

    params = [BANDWIDTH_SIZES, DTYPES, [False, True]]
    param_names = ["n", "dtype", "parallel"]
    timeout = 300

    def setup_cache(self):
        return {(n, dtype, parallel): measured_or_reason(_measure, n, dtype,
                                                         parallel)
                for n in BANDWIDTH_SIZES for dtype in DTYPES
                for parallel in (False, True)}

    def setup(self, results, n, dtype, parallel):
        skip_unmeasured(results[n, dtype, parallel])

    def track_ratio_to_same_traffic(self, results, n, dtype, parallel):
        times = results[n, dtype, parallel]
        return times["same_traffic"] / times["rmsopt"]

    def track_ratio_to_fused_rmsprop(self, results, n, dtype, parallel):
        times = results[n, dtype, parallel]
        return times["fused_rmsprop"] / times["rmsopt"]

    def track_gbps(self, results, n, dtype, parallel):
        seconds = results[n, dtype, parallel]["rmsopt"]
        return 5 * n * np.dtype(dtype).itemsize / seconds / 1e9

    track_ratio_to_same_traffic.unit = "ratio"
    track_ratio_to_fused_rmsprop.unit = "ratio"
    track_gbps.unit = "GB/s"
