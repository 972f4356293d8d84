"""Iterations, evaluations, status and final value of a few runs.

As scipy's ``BenchSmoothUnbounded`` tracks nfev and success, not only time:
an algorithmic or counting regression shows here even where no timing moves.
Both drivers must give the same numbers (rmsopt's bits are driver-independent).

All runs happen once, in ``setup_cache`` (one process, so the compiled loops
compile once); the ``track_`` methods read its numbers.
"""

import numpy as np

from .common import DRIVERS, Benchmark, checked_minimize, lsq_data, \
    lsq_loss_and_grad, measured_or_reason, quadratic, quadratic_grad_out, \
    require, rosen, rosen_der, rosen_der_njit, rosen_x0, skip_unmeasured


def _new_style_callback(intermediate_result):
    """Needs fun at every iteration: nfev counts those calls."""


# name -> (jac form needed, function building the minimize arguments)
CASES = {
    # a convex quadratic solved to the default gtol=1e-5 (status 0)
    "quadratic50_out": ("njit_out", lambda: dict(
        fun=quadratic, x0=np.ones(50), jac=quadratic_grad_out,
        args=(np.linspace(1.0, 100.0, 50),), options=dict(lr=1e-3))),
    # Rosenbrock, stopped by maxiter (status 1)
    "rosen2": ("njit", lambda: dict(
        fun=rosen, x0=rosen_x0(2), jac=rosen_der_njit,
        options=dict(lr=1e-3, maxiter=2000))),
    # forward differences: n + 1 calls of fun per gradient
    "rosen2_2point": ("numpy", lambda: dict(
        fun=rosen, x0=rosen_x0(2), jac="2-point",
        options=dict(lr=1e-3, maxiter=2000))),
    # a new-style callback: fun at every iteration
    "rosen2_callback": ("njit", lambda: dict(
        fun=rosen, x0=rosen_x0(2), jac=rosen_der_njit,
        callback=_new_style_callback, options=dict(lr=1e-3, maxiter=2000))),
    # a NumPy jac, python driver only
    "rosen100_numpy": ("numpy", lambda: dict(
        fun=rosen, x0=rosen_x0(100), jac=rosen_der,
        options=dict(lr=1e-3, maxiter=2000))),
    # jac=True: each call counts in nfev and njev
    "lsq200x10": ("njit", lambda: dict(
        fun=lsq_loss_and_grad, x0=np.zeros(10), jac=True, args=lsq_data(),
        options=dict(lr=1e-2, maxiter=2000))),
}


def _counts(jac_form, make, driver):
    """nit, nfev, njev, status and fun of the run ``make()`` describes."""
    require(jac_form, driver=driver)
    kwargs = make()
    kwargs["options"] = dict(kwargs["options"], driver=driver)
    res = checked_minimize(**kwargs)
    return dict(nit=int(res.nit), nfev=int(res.nfev), njev=int(res.njev),
                status=int(res.status), fun=float(res.fun))


class Counts(Benchmark):
    """nit, nfev, njev, status and fun of one run per case and driver."""

    params = [list(CASES), DRIVERS]
    param_names = ["case", "driver"]

    def setup_cache(self):
        return {(case, driver): measured_or_reason(_counts, jac_form, make,
                                                   driver)
                for case, (jac_form, make) in CASES.items()
                for driver in DRIVERS}

    def setup(self, results, case, driver):
        skip_unmeasured(results[case, driver])

    def track_nit(self, results, case, driver):
        return results[case, driver]["nit"]

    def track_nfev(self, results, case, driver):
        return results[case, driver]["nfev"]

    def track_njev(self, results, case, driver):
        return results[case, driver]["njev"]

    def track_status(self, results, case, driver):
        return results[case, driver]["status"]

    def track_fun(self, results, case, driver):
        return results[case, driver]["fun"]

    track_nit.unit = "iterations"
    track_nfev.unit = "calls"
    track_njev.unit = "calls"
    track_status.unit = "status"
    track_fun.unit = "f(x)"
