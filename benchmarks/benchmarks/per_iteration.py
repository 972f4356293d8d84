"""Time per iteration of the two CPU drivers on small problems.

Each benchmark times one ``rmsopt.minimize`` call of a fixed number of
iterations (``gtol=0``: no early stop), the whole call included; divide by
``ITERATIONS[driver]`` for the time per iteration. ``CallOverhead`` times the
same calls with ``maxiter=0`` (validation, allocation, the first gradient, the
result), the part of each call that is not per iteration.

The targets (``shared/PERFORMANCE.md``): a jitted jac within 1.15x of a
hand-written compiled loop; a Python jac at most 1 us per iteration above the
cost of calling it.
"""

import functools

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
