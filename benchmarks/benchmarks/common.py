"""Problems, gradients and helpers shared by rmsopt's asv benchmarks.

Every problem comes with its gradient in the forms rmsopt accepts:

``numpy``
    a Python function using NumPy (the python driver),
``njit``
    a ``numba.njit`` function returning a new array, scipy's form (either
    driver; ``driver="nopython"`` runs the whole loop compiled),
``njit_out``
    a ``numba.njit`` function writing into its second parameter ``out``
    (rmsopt's in-place form: no allocation per iteration).

One RMSProp everywhere, PyTorch's defaults but ``lr=1e-3`` as in
``shared/PERFORMANCE.md``, and ``gtol=0`` so that a timed run never stops
early.
"""

import functools
import warnings

import numba
import numpy as np
from scipy.optimize import rosen, rosen_der

import rmsopt

# The jitted gradients compile as rmsopt's kernels do; cache=True keeps them
# in benchmarks/benchmarks/__pycache__ (git-ignored), so that each benchmark
# process loads them instead of compiling.
NJIT = dict(cache=True, error_model="numpy")

OPTIONS = dict(lr=1e-3, alpha=0.99, eps=1e-8, gtol=0.0)

JAC_FORMS = ("numpy", "njit", "njit_out")


class Benchmark:
    """Base class of the benchmarks (as scipy's ``benchmarks/common.py``)."""

    # asv's default: a benchmark process may take a minute; compiling in
    # setup counts, so allow more.
    timeout = 180


# -- what this rmsopt supports ------------------------------------------------
# The suite also runs on older commits (asv continuous, asv run on a range):
# a case whose feature a commit lacks is skipped there, never failed.

@functools.lru_cache(maxsize=None)
def has_option(name):
    """True when ``rmsopt.minimize`` documents the option ``name``."""
    text = rmsopt.show_options(disp=False)
    return any(line.startswith(name + " :") for line in text.splitlines())


@functools.lru_cache(maxsize=None)
def has_inplace_gradient():
    """True when rmsopt calls ``jac(x, out)`` for a jac whose second
    parameter is ``out``."""
    def probe(x, out):
        out[:] = 1.0

    try:
        res = rmsopt.minimize(lambda x: 0.0, np.zeros(1), jac=probe,
                              options=dict(maxiter=1, gtol=0.0))
    except TypeError:  # called as jac(x): "missing argument 'out'"
        return False
    return res.nit == 1


def require(jac_form=None, options=()):
    """Raise NotImplementedError (asv: skipped) for what this rmsopt lacks."""
    if jac_form == "njit_out" and not has_inplace_gradient():
        raise NotImplementedError("this rmsopt has no in-place gradients")
    for name in options:
        if not has_option(name):
            raise NotImplementedError(f"this rmsopt has no option {name!r}")


def checked_minimize(fun, x0, jac, args=(), options=None, expect_nit=None,
                     callback=None):
    """``rmsopt.minimize`` with unknown options and warnings as errors.

    For setup: a benchmark must never time a run that silently ignored an
    option, stopped early, or fell back to another driver.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = rmsopt.minimize(fun, x0, args=args, jac=jac, options=options,
                              callback=callback)
    if expect_nit is not None and res.nit != expect_nit:
        raise RuntimeError(f"expected {expect_nit} iterations, got {res.nit} "
                           f"(status {res.status}: {res.message})")
    return res


# -- Rosenbrock (scipy's chained form) ----------------------------------------

@numba.njit(**NJIT)
def rosen_der_njit(x):
    """scipy's ``rosen_der``, element by element, returning a new array."""
    n = x.shape[0]
    der = np.empty_like(x)
    for i in range(1, n - 1):
        xm = x[i]
        der[i] = (200.0 * (xm - x[i - 1] ** 2)
                  - 400.0 * (x[i + 1] - xm ** 2) * xm - 2.0 * (1.0 - xm))
    der[0] = -400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0])
    der[n - 1] = 200.0 * (x[n - 1] - x[n - 2] ** 2)
    return der


@numba.njit(**NJIT)
def rosen_der_out(x, out):
    """scipy's ``rosen_der`` written into ``out``."""
    n = x.shape[0]
    for i in range(1, n - 1):
        xm = x[i]
        out[i] = (200.0 * (xm - x[i - 1] ** 2)
                  - 400.0 * (x[i + 1] - xm ** 2) * xm - 2.0 * (1.0 - xm))
    out[0] = -400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0])
    out[n - 1] = 200.0 * (x[n - 1] - x[n - 2] ** 2)


def rosen_x0(n):
    """The classical start (-1.2, 1) repeated."""
    return np.tile([-1.2, 1.0], n // 2)


# -- linear least squares: f = |A x - b|^2 / 2, g = A^T (A x - b) -------------

def lsq_data(m=200, n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)), rng.standard_normal(m)


def lsq_loss_and_grad_numpy(x, A, b):
    """Value and gradient with NumPy (``jac=True``)."""
    r = A @ x - b
    return 0.5 * (r @ r), A.T @ r


@numba.njit(**NJIT)
def lsq_loss_and_grad(x, A, b):
    """Value and gradient, returning a new gradient array (``jac=True``)."""
    m, n = A.shape
    g = np.zeros_like(x)
    f = 0.0
    for i in range(m):
        r = -b[i]
        for j in range(n):
            r += A[i, j] * x[j]
        f += r * r
        for j in range(n):
            g[j] += A[i, j] * r
    return 0.5 * f, g


@numba.njit(**NJIT)
def lsq_loss_and_grad_out(x, out, A, b):
    """Value returned, gradient written into ``out`` (``jac=True``)."""
    m, n = A.shape
    out[:] = 0.0
    f = 0.0
    for i in range(m):
        r = -b[i]
        for j in range(n):
            r += A[i, j] * x[j]
        f += r * r
        for j in range(n):
            out[j] += A[i, j] * r
    return 0.5 * f


# -- a convex quadratic that RMSProp solves to gtol ---------------------------

@numba.njit(**NJIT)
def quadratic_grad_out(x, out, scale):
    """Gradient of sum(scale * x**2) / 2."""
    for i in range(x.shape[0]):
        out[i] = scale[i] * x[i]


def quadratic(x, scale):
    return 0.5 * float(np.sum(scale * x * x))


# -- the problems -------------------------------------------------------------

def problem(name, jac_form):
    """``(fun, x0, jac, args)`` of a named problem with a gradient form.

    Names: ``rosen<n>`` (chained Rosenbrock of size n from (-1.2, 1, ...)),
    ``lsq<m>x<n>`` (least squares with a random A of shape (m, n), from 0).
    """
    if name.startswith("rosen"):
        n = int(name[len("rosen"):])
        jac = {"numpy": rosen_der, "njit": rosen_der_njit,
               "njit_out": rosen_der_out}[jac_form]
        return rosen, rosen_x0(n), jac, ()
    if name.startswith("lsq"):
        m, n = map(int, name[len("lsq"):].split("x"))
        fun = {"numpy": lsq_loss_and_grad_numpy, "njit": lsq_loss_and_grad,
               "njit_out": lsq_loss_and_grad_out}[jac_form]
        return fun, np.zeros(n), True, lsq_data(m, n)
    raise ValueError(f"unknown problem {name!r}")


# -- large n: a gradient that costs nothing, so that the step dominates -------

@numba.njit(**NJIT)
def constant_grad_out(x, out):
    """A gradient of ones in ``out``, written once.

    rmsopt's ``out`` buffer starts at zero: the first call fills it (one
    pass over n, about 2% of a 10-iteration run at large n), later calls
    leave it as it is. Filling it matters: an untouched zeroed buffer would
    be read from the kernel's shared zero page, always in cache.
    """
    if out[0] != 1.0:
        out[:] = 1.0


def zero(x):
    """fun for the large-n runs: only evaluated once, at the end."""
    return 0.0
