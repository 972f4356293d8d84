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

import rmsopt

from .common import DRIVERS, JAC_FORMS, OPTIONS, Benchmark, Problem, \
    checked_minimize, differential, grad_alone_runner, interleaved_rounds, \
    limit_runner, measured_or_reason, medians, minimize_runner, \
    per_iteration, require, skip_unmeasured

ITERATIONS = {"python": 1_000, "nopython": 10_000}

PROBLEMS = ["rosen2", "rosen100", "rosen1000", "lsq200x10"]


@functools.lru_cache(maxsize=None)  # asv re-runs setup before every sample
def _setup(problem_name, jac_form, driver, maxiter):
    require(jac_form, driver=driver)
    fun, x0, jac, args = Problem(problem_name).minimize_args(jac_form)
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

RATIO_PROBLEMS = ["rosen2", "rosen100", "lsq200x10"]
ROUNDS = 5


def _ratio_times(problem_name):
    """Seconds per iteration, medians over interleaved rounds, of:

    ``nopython``: rmsopt's nopython driver with the in-place jitted jac;
    ``limit``: :func:`common.compiled_limit` with the same jac;
    ``python``: rmsopt's python driver with the NumPy jac;
    ``numpy_jac``: that NumPy jac alone, called in a Python loop.

    rmsopt's times are differences of two runs (``short`` and ``long``
    iterations) over ``long - short``, which cancels the cost of the call.
    """
    require("njit_out")
    problem = Problem(problem_name)
    jit_fun, x0, jit_jac, args = problem.minimize_args("njit_out")
    np_fun, _, np_jac, _ = problem.minimize_args("numpy")
    lengths = {"nopython": (1_000, 11_000), "python": (100, 1_100)}
    cases = {}
    for driver, fun, jac in (("nopython", jit_fun, jit_jac),
                             ("python", np_fun, np_jac)):
        for maxiter in lengths[driver]:
            options = dict(OPTIONS, maxiter=maxiter, driver=driver)
            checked_minimize(fun, x0, jac, args, options, expect_nit=maxiter)
        run = minimize_runner(fun, x0, jac, args, driver=driver)
        cases[driver] = differential(run, *lengths[driver])

    # with jac=True (least squares) fun computes the gradient
    grad_out = jit_fun if jit_jac is True else jit_jac
    np_grad = np_fun if np_jac is True else np_jac
    limit = limit_runner(grad_out, x0, args)
    limit(1)  # compile
    # the references run as many iterations as rmsopt's difference
    steps = {driver: long - short for driver, (short, long) in lengths.items()}
    cases["limit"] = per_iteration(limit, steps["nopython"])
    cases["numpy_jac"] = per_iteration(grad_alone_runner(np_grad, x0, args),
                                       steps["python"])
    return medians(interleaved_rounds(cases, ROUNDS))


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
        return {name: measured_or_reason(_ratio_times, name)
                for name in RATIO_PROBLEMS}

    def setup(self, results, problem_name):
        skip_unmeasured(results[problem_name])

    def track_nopython_over_compiled_limit(self, results, problem_name):
        times = results[problem_name]
        return times["nopython"] / times["limit"]

    def track_python_driver_overhead_us(self, results, problem_name):
        times = results[problem_name]
        return (times["python"] - times["numpy_jac"]) * 1e6

    track_nopython_over_compiled_limit.unit = "ratio"
    track_python_driver_overhead_us.unit = "us"
