"""Time per iteration of the two CPU drivers on small problems.

Each benchmark times one ``rmsopt.minimize`` call of a fixed number of
iterations (``gtol=0``: no early stop), the whole call included; divide by
``ITERATIONS[driver]`` for the time per iteration. ``CallOverhead`` times the
same calls with ``maxiter=0`` (validation, allocation, the first gradient, the
result), the part of each call that is not per iteration.

``PerIterationRatios`` measures, in one process and interleaved, what the
targets of ``shared/PERFORMANCE.md`` are stated in: the nopython driver over a
hand-written compiled loop (target <= 1.15), and the python driver's cost
above the user's jac (target <= 1 us per iteration). Ratios hold across
machines where absolute times do not.
"""

import functools
import statistics
import time

import numba
import numpy as np

import rmsopt

from .common import JAC_FORMS, OPTIONS, Benchmark, checked_minimize, problem, \
    require

ITERATIONS = {"python": 1_000, "nopython": 10_000}

PROBLEMS = ["rosen2", "rosen100", "rosen1000", "lsq200x10"]
DRIVERS = ["python", "nopython"]


@functools.lru_cache(maxsize=None)  # asv re-runs setup before every sample
def _setup(problem_name, jac_form, driver, maxiter):
    if jac_form == "numpy" and driver == "nopython":
        raise NotImplementedError("the nopython driver needs a jitted jac")
    require(jac_form)
    fun, x0, jac, args = problem(problem_name, jac_form)
    options = dict(OPTIONS, maxiter=maxiter, driver=driver)
    # Warm the JIT (the jac, rmsopt's step or its compiled loop) and check
    # that the run takes every iteration without a warning.
    checked_minimize(fun, x0, jac, args, options, expect_nit=maxiter)
    return fun, x0, jac, args, options


class PerIteration(Benchmark):
    """One minimize call of ITERATIONS[driver] iterations."""

    params = [PROBLEMS, list(JAC_FORMS), DRIVERS]
    param_names = ["problem", "jac", "driver"]

    def setup(self, problem_name, jac_form, driver):
        self.call = _setup(problem_name, jac_form, driver, ITERATIONS[driver])

    def time_minimize(self, problem_name, jac_form, driver):
        fun, x0, jac, args, options = self.call
        rmsopt.minimize(fun, x0, args=args, jac=jac, options=options)


class CallOverhead(Benchmark):
    """The same calls with maxiter=0: the cost of a call outside the loop."""

    params = [["rosen2", "lsq200x10"], list(JAC_FORMS), DRIVERS]
    param_names = ["problem", "jac", "driver"]

    def setup(self, problem_name, jac_form, driver):
        self.call = _setup(problem_name, jac_form, driver, 0)

    def time_minimize(self, problem_name, jac_form, driver):
        fun, x0, jac, args, options = self.call
        rmsopt.minimize(fun, x0, args=args, jac=jac, options=options)


# -- ratios, as PERFORMANCE.md states its targets -----------------------------

@numba.njit(error_model="numpy")
def _compiled_limit(jac, x, g, v, n_iter, lr, alpha, eps, args):
    """The hand-written limit: an in-place jitted jac and PyTorch's update in
    one compiled loop, no checks, no counting."""
    one_minus_alpha = 1.0 - alpha
    for _ in range(n_iter):
        jac(x, g, *args)
        for i in range(x.shape[0]):
            gi = g[i]
            vi = alpha * v[i] + one_minus_alpha * gi * gi
            v[i] = vi
            x[i] -= lr * gi / (np.sqrt(vi) + eps)


RATIO_PROBLEMS = ["rosen2", "rosen100", "lsq200x10"]
ROUNDS = 5


def _seconds(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _per_iteration(problem_name):
    """Seconds per iteration, medians over interleaved rounds, of:

    ``nopython``: rmsopt's nopython driver with the in-place jitted jac;
    ``limit``: :func:`_compiled_limit` with the same jac;
    ``python``: rmsopt's python driver with the NumPy jac;
    ``numpy_jac``: that NumPy jac alone, called in a Python loop.

    rmsopt's times are differences of two runs (``short`` and ``long``
    iterations) over ``long - short``, which cancels the cost of the call.
    """
    require("njit_out")
    jit_fun, x0, jit_jac, args = problem(problem_name, "njit_out")
    np_fun, _, np_jac, _ = problem(problem_name, "numpy")
    lengths = {"nopython": (1_000, 11_000), "python": (100, 1_100)}
    calls = {}
    for driver, fun, jac in (("nopython", jit_fun, jit_jac),
                             ("python", np_fun, np_jac)):
        for maxiter in lengths[driver]:
            options = dict(OPTIONS, maxiter=maxiter, driver=driver)
            checked_minimize(fun, x0, jac, args, options, expect_nit=maxiter)
            calls[driver, maxiter] = functools.partial(
                rmsopt.minimize, fun, x0, args=args, jac=jac, options=options)

    # with jac=True (least squares) fun computes the gradient
    grad_out = jit_fun if jit_jac is True else jit_jac
    np_grad = np_fun if np_jac is True else np_jac
    n_limit = lengths["nopython"][1] - lengths["nopython"][0]
    n_jac = lengths["python"][1] - lengths["python"][0]

    def limit():
        x, g, v = x0.copy(), np.empty_like(x0), np.zeros_like(x0)
        _compiled_limit(grad_out, x, g, v, n_limit, OPTIONS["lr"],
                        OPTIONS["alpha"], OPTIONS["eps"], args)

    def numpy_jac():
        for _ in range(n_jac):
            np_grad(x0, *args)

    limit()  # compile
    times = {"nopython": [], "limit": [], "python": [], "numpy_jac": []}
    for _ in range(ROUNDS):
        for driver in ("nopython", "python"):
            short, long = lengths[driver]
            elapsed = (_seconds(calls[driver, long])
                       - _seconds(calls[driver, short]))
            times[driver].append(elapsed / (long - short))
        times["limit"].append(_seconds(limit) / n_limit)
        times["numpy_jac"].append(_seconds(numpy_jac) / n_jac)
    return {name: statistics.median(t) for name, t in times.items()}


class PerIterationRatios(Benchmark):
    """Per-iteration cost against the floors of PERFORMANCE.md, in one process.

    ``track_nopython_over_compiled_limit``: rmsopt's nopython driver over a
    hand-written compiled loop with the same in-place jac (target <= 1.15).
    ``track_python_driver_overhead_us``: rmsopt's python driver with a NumPy
    jac, minus that jac called alone, in microseconds per iteration
    (target <= 1).
    """

    params = [RATIO_PROBLEMS]
    param_names = ["problem"]

    def setup_cache(self):
        results = {}
        for name in RATIO_PROBLEMS:
            try:
                results[name] = _per_iteration(name)
            except NotImplementedError as exc:
                results[name] = str(exc)
        return results

    def setup(self, results, problem_name):
        if isinstance(results[problem_name], str):
            raise NotImplementedError(results[problem_name])

    def track_nopython_over_compiled_limit(self, results, problem_name):
        times = results[problem_name]
        return times["nopython"] / times["limit"]

    def track_python_driver_overhead_us(self, results, problem_name):
        times = results[problem_name]
        return (times["python"] - times["numpy_jac"]) * 1e6

    track_nopython_over_compiled_limit.unit = "ratio"
    track_python_driver_overhead_us.unit = "us"
