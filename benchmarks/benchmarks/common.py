"""The benchmarks' shared harness: problems, reference loops and timing.

One module for rmsopt's asv suite (the modules beside this one) and for the
stand-alone scripts in the folder above (``peers.py``, ``compare_drivers.py``,
``crossover.py``, ``models.py``). asv imports the suite as the package
``benchmarks``; a script run as ``python benchmarks/peers.py`` has
``benchmarks/`` first on ``sys.path``, where the same package imports, so
the scripts use this module as ``benchmarks.common``.

Problems
    Rosenbrock (scipy's chained form) and linear least squares, by name
    (:class:`Problem`), each with its gradient in the forms rmsopt accepts:

    ``numpy``
        a Python function using NumPy (the python driver),
    ``njit``
        a ``numba.njit`` function returning a new array, scipy's form (either
        driver; ``driver="nopython"`` runs the whole loop compiled),
    ``njit_out``
        a ``numba.njit`` function writing into its second parameter ``out``
        (rmsopt's in-place form: no allocation per iteration).

Reference loops
    Hand-written numba RMSProp with no checks: the whole loop of a small
    problem (:func:`compiled_limit`), and the step alone of a large one,
    fused or with the same memory traffic but trivial arithmetic
    (:data:`STEP_KERNELS`). rmsopt is measured against them.

Timing
    As ``shared/PERFORMANCE.md`` asks on a shared, noisy machine: every round
    times all cases once, in a fresh random order
    (:func:`interleaved_rounds`), results are medians over rounds, and ratios
    are taken between cases of the same run, never across runs.

One RMSProp everywhere, PyTorch's defaults but ``lr=1e-3`` as in
``shared/PERFORMANCE.md``, and ``gtol=0`` so that a timed run never stops
early.
"""

import functools
import gc
import platform
import random
import statistics
import time
import warnings

import numba
import numpy as np
import scipy
from scipy.optimize import rosen, rosen_der

import rmsopt

# The jitted gradients compile as rmsopt's kernels do; cache=True keeps them
# in benchmarks/benchmarks/__pycache__ (git-ignored) or NUMBA_CACHE_DIR, so
# that each benchmark process loads them instead of compiling.
NJIT = dict(cache=True, error_model="numpy")

LR, ALPHA, EPS = 1e-3, 0.99, 1e-8
OPTIONS = dict(lr=LR, alpha=ALPHA, eps=EPS, gtol=0.0)

JAC_FORMS = ("numpy", "njit", "njit_out")
DRIVERS = ["python", "nopython"]


# -- asv: the base class, and what this rmsopt supports ----------------------

class Benchmark:
    """Base class of the asv benchmarks (as scipy's
    ``benchmarks/common.py``)."""

    # asv's default: a benchmark process may take a minute; compiling in
    # setup counts, so allow more.
    timeout = 180


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


def require(jac_form=None, options=(), driver=None):
    """Raise NotImplementedError (asv: skipped) for a case that cannot run.

    Parameters
    ----------
    jac_form : str, optional
        The gradient form of the case, one of :data:`JAC_FORMS`.
    options : iterable of str
        Options of ``rmsopt.minimize`` the case sets.
    driver : str, optional
        The driver the case asks for: ``"nopython"`` needs a jitted jac.
    """
    if driver == "nopython" and jac_form == "numpy":
        raise NotImplementedError("the nopython driver needs a jitted jac")
    if jac_form == "njit_out" and not has_inplace_gradient():
        raise NotImplementedError("this rmsopt has no in-place gradients")
    for name in options:
        if not has_option(name):
            raise NotImplementedError(f"this rmsopt has no option {name!r}")


def measured_or_reason(measure, *args):
    """``measure(*args)``, or why the case is skipped, as a str.

    For ``setup_cache``, which measures every case at once and cannot skip
    one: ``setup`` passes the result to :func:`skip_unmeasured`.
    """
    try:
        return measure(*args)
    except NotImplementedError as exc:
        return str(exc)


def skip_unmeasured(result):
    """Raise NotImplementedError (asv: skipped) where ``setup_cache`` stored
    a reason instead of a measurement (:func:`measured_or_reason`)."""
    if isinstance(result, str):
        raise NotImplementedError(result)


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
def rosen_der_out(x, out):
    """scipy's ``rosen_der`` written into ``out``, element by element.

    The same operations in the same order as scipy's, so the same bits: a
    run with it matches one with ``rosen_der`` exactly.
    """
    n = x.shape[0]
    for i in range(1, n - 1):
        xm = x[i]
        out[i] = (200.0 * (xm - x[i - 1] ** 2)
                  - 400.0 * (x[i + 1] - xm ** 2) * xm - 2.0 * (1.0 - xm))
    out[0] = -400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0])
    out[n - 1] = 200.0 * (x[n - 1] - x[n - 2] ** 2)


@numba.njit(**NJIT)
def rosen_der_njit(x):
    """scipy's ``rosen_der``, returning a new array (scipy's form)."""
    der = np.empty_like(x)
    rosen_der_out(x, der)
    return der


def rosen_x0(n):
    """The classical start (-1.2, 1) repeated, for an even n."""
    return np.tile([-1.2, 1.0], n // 2)


# -- linear least squares: f = |A x - b|^2 / 2, g = A^T (A x - b) -------------

def lsq_data(m=200, n=10, seed=0):
    """``(A, b)``: A of shape (m, n) and b of shape (m,), standard normal."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)), rng.standard_normal(m)


def lsq_fun(x, A, b):
    """The value alone, with NumPy."""
    r = A @ x - b
    return 0.5 * float(r @ r)


def lsq_grad(x, A, b):
    """The gradient alone, with NumPy."""
    return A.T @ (A @ x - b)


def lsq_loss_and_grad_numpy(x, A, b):
    """Value and gradient with NumPy (``jac=True``)."""
    r = A @ x - b
    return 0.5 * (r @ r), A.T @ r


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


@numba.njit(**NJIT)
def lsq_loss_and_grad(x, A, b):
    """Value and gradient, returning a new gradient array (``jac=True``)."""
    g = np.empty_like(x)
    f = lsq_loss_and_grad_out(x, g, A, b)
    return f, g


@numba.njit(**NJIT)
def lsq_grad_out(x, out, A, b):
    """The gradient alone, written into ``out`` (a separate in-place jac).

    The value it discards is dead code once LLVM inlines the call.
    """
    lsq_loss_and_grad_out(x, out, A, b)


# -- a convex quadratic that RMSProp solves to gtol ---------------------------

@numba.njit(**NJIT)
def quadratic_grad_out(x, out, scale):
    """Gradient of sum(scale * x**2) / 2."""
    for i in range(x.shape[0]):
        out[i] = scale[i] * x[i]


def quadratic(x, scale):
    """sum(scale * x**2) / 2."""
    return 0.5 * float(np.sum(scale * x * x))


# -- the small problems, by name ---------------------------------------------

class Problem:
    """A small problem by name, with its gradients in every form it has.

    Parameters
    ----------
    name : str
        ``rosen<n>``: chained Rosenbrock of size n from (-1.2, 1, ...);
        ``lsq<m>x<n>``: least squares with A of shape (m, n) and b from
        :func:`lsq_data`, from x = 0.

    Attributes
    ----------
    name, label : str
        The name (asv's parameter) and the name printed in tables.
    kind : str
        ``"rosen"`` or ``"lsq"``.
    fun, x0, args
        The value alone ``fun(x, *args)``, the start and the data.
    grad : dict
        The gradient alone (``jac=grad[form]``) in the forms ``"numpy"``,
        ``"njit_out"`` and, for Rosenbrock, ``"njit"``.
    loss_and_grad : dict or None
        Least squares: value and gradient in one function (``jac=True``),
        in every form of :data:`JAC_FORMS`.
    """

    def __init__(self, name):
        self.name = name
        self.loss_and_grad = None
        if name.startswith("rosen"):
            n = int(name[len("rosen"):])
            self.kind, self.label = "rosen", f"Rosenbrock n={n}"
            self.fun, self.x0, self.args = rosen, rosen_x0(n), ()
            self.grad = {"numpy": rosen_der, "njit": rosen_der_njit,
                         "njit_out": rosen_der_out}
        elif name.startswith("lsq"):
            m, n = map(int, name[len("lsq"):].split("x"))
            self.kind, self.label = "lsq", f"least squares A({m},{n})"
            self.fun, self.x0, self.args = lsq_fun, np.zeros(n), lsq_data(m, n)
            self.grad = {"numpy": lsq_grad, "njit_out": lsq_grad_out}
            self.loss_and_grad = {"numpy": lsq_loss_and_grad_numpy,
                                  "njit": lsq_loss_and_grad,
                                  "njit_out": lsq_loss_and_grad_out}
        else:
            raise ValueError(f"unknown problem {name!r}")

    def minimize_args(self, jac_form):
        """``(fun, x0, jac, args)`` of the asv cases for a gradient form.

        Least squares computes value and gradient together (``jac=True``),
        Rosenbrock passes its gradient as ``jac``.
        """
        if self.loss_and_grad is not None:
            return self.loss_and_grad[jac_form], self.x0, True, self.args
        return self.fun, self.x0, self.grad[jac_form], self.args


# -- large n: a gradient that costs nothing, so that the step dominates -------

CONSTANT_GRAD = 1.0  # every element of constant_grad_out's gradient


@numba.njit(**NJIT)
def constant_grad_out(x, out):
    """A gradient of ones in ``out``, written once.

    rmsopt's ``out`` buffer starts at zero: the first call fills it (one
    pass over n, about 2% of a 10-iteration run at large n), later calls
    leave it as it is. Filling it matters: an untouched zeroed buffer would
    be read from the kernel's shared zero page, always in cache.
    """
    if out[0] != CONSTANT_GRAD:
        out[:] = CONSTANT_GRAD


def zero(x):
    """fun for the large-n runs: only evaluated once, at the end."""
    return 0.0


# -- hand-written reference loops ---------------------------------------------

def _fused_rmsprop(x, g, v, lr, alpha, one_minus_alpha, eps, steps):
    """``steps`` RMSProp steps with a fixed g: PyTorch's update in one pass,
    no checks (the compiled limit of rmsopt's step)."""
    for _ in range(steps):
        for i in numba.prange(x.shape[0]):
            gi = g[i]
            vi = alpha * v[i] + one_minus_alpha * gi * gi
            v[i] = vi
            x[i] = x[i] - lr * gi / (np.sqrt(vi) + eps)


def _same_traffic(x, g, v, lr, alpha, one_minus_alpha, eps, steps):
    """Reads x, g, v and writes x, v with trivial arithmetic: the bandwidth
    limit of the step's access pattern."""
    for _ in range(steps):
        for i in numba.prange(x.shape[0]):
            gi = g[i]
            v[i] = alpha * v[i] + gi
            x[i] = x[i] - lr * gi


# Serial and threaded builds of each (prange is range when serial), called
# as kernel(x, g, v, lr, alpha, one_minus_alpha, eps, steps). Not cached on
# disk: numba's cache key ignores parallel=, so the two builds of one
# function would overwrite each other; they compile on first use.
STEP_KERNELS = {
    parallel: {name: numba.njit(parallel=parallel, error_model="numpy")(f)
               for name, f in (("same_traffic", _same_traffic),
                               ("fused_rmsprop", _fused_rmsprop))}
    for parallel in (False, True)}

_fused_serial = STEP_KERNELS[False]["fused_rmsprop"]


@numba.njit(error_model="numpy")
def compiled_limit(grad_out, x, g, v, lr, alpha, one_minus_alpha, eps,
                   n_iter, args):
    """The compiled limit of a small problem: ``n_iter`` iterations of an
    in-place jitted gradient ``grad_out(x, g, *args)`` and the fused update,
    in one compiled loop, no checks, no counting."""
    for _ in range(n_iter):
        grad_out(x, g, *args)
        _fused_serial(x, g, v, lr, alpha, one_minus_alpha, eps, 1)


# -- runners: run(n_iter) from x0 -> the final x (or the last gradient) -------

def minimize_runner(fun, x0, jac, args=(), **options):
    """``run(n_iter)``: ``rmsopt.minimize`` from x0, OPTIONS and ``options``,
    exactly n_iter iterations (else RuntimeError); returns ``res.x``."""
    def run(n_iter):
        res = rmsopt.minimize(fun, x0, args=args, jac=jac,
                              options=dict(OPTIONS, maxiter=n_iter, **options))
        if res.nit != n_iter or res.status != 1:
            raise RuntimeError(f"unexpected stop: nit={res.nit}, "
                               f"status={res.status}: {res.message}")
        return res.x
    return run


def numpy_loop_runner(grad, x0, args=()):
    """``run(n_iter)``: the plain NumPy loop, a Python loop of NumPy
    gradient and NumPy update; returns x."""
    def run(n_iter):
        x = x0.copy()
        v = np.zeros_like(x)
        sqrt = np.sqrt
        lr, alpha, oma, eps = LR, ALPHA, 1.0 - ALPHA, EPS
        for _ in range(n_iter):
            g = grad(x, *args)
            v *= alpha
            v += oma * g * g
            x -= lr * g / (sqrt(v) + eps)
        return x
    return run


def grad_alone_runner(grad, x0, args=()):
    """``run(n_iter)``: the gradient alone in a Python loop, the floor of
    any driver calling a Python jac; returns the last gradient."""
    def run(n_iter):
        x = x0.copy()
        g = None
        for _ in range(n_iter):
            g = grad(x, *args)
        return g
    return run


def limit_runner(grad_out, x0, args=()):
    """``run(n_iter)``: :func:`compiled_limit` from x0 with fresh state;
    returns x."""
    def run(n_iter):
        x = x0.copy()
        g = np.empty_like(x)
        v = np.zeros_like(x)
        compiled_limit(grad_out, x, g, v, LR, ALPHA, 1.0 - ALPHA, EPS,
                       n_iter, args)
        return x
    return run


# -- timing -------------------------------------------------------------------

def timed(run, *args):
    """Seconds of one call ``run(*args)``, the garbage collector off.

    No gc.collect() here: with numba loaded a full collection takes about
    0.1 s; :func:`interleaved_rounds` can collect between rounds.
    """
    gc.disable()
    try:
        start = time.perf_counter()
        run(*args)
        return time.perf_counter() - start
    finally:
        gc.enable()


def calibrate(run, target_s, pilot=100):
    """An iteration count for ``run(n_iter)`` to take about ``target_s``.

    1, 2 or 5 times a power of ten, at least 100; ``pilot`` iterations
    first, ten times more until a run is long enough to trust.
    """
    n_iter, t = pilot, timed(run, pilot)
    while t < 0.01 and n_iter < 10**8:
        n_iter *= 10
        t = timed(run, n_iter)
    want = target_s * n_iter / t
    nice = [m * 10**e for e in range(2, 9) for m in (1, 2, 5)]
    return max(100, min(nice, key=lambda k: abs(np.log(k / want))))


def per_iteration(run, n_iter):
    """A case of :func:`interleaved_rounds`: seconds per iteration of
    ``run(n_iter)``, the whole call included."""
    return lambda: timed(run, n_iter) / n_iter


def differential(run, short, long):
    """A case of :func:`interleaved_rounds`: ``(t(run(long)) -
    t(run(short))) / (long - short)``, seconds per iteration with the cost
    of the call outside the loop cancelled."""
    return lambda: (timed(run, long) - timed(run, short)) / (long - short)


def interleaved_rounds(cases, rounds, rng=None, progress=None,
                       collect=False):
    """Samples of every case, one per round, the cases interleaved.

    Parameters
    ----------
    cases : dict
        key -> a callable taking no argument and returning a sample
        (:func:`per_iteration`, :func:`differential`, or seconds from
        :func:`timed`).
    rounds : int
        Samples per case.
    rng : random.Random, optional
        Shuffles the cases in every round (a new unseeded one by default).
    progress : callable, optional
        Called with the number of the round just done (1, 2, ...).
    collect : bool
        Run ``gc.collect()`` before each round, to free outside the timed
        calls what they left (:func:`timed` turns the collector off). It
        slows the round's first call (tenths of a millisecond, cold
        caches): only for cases of many milliseconds.

    Returns
    -------
    dict
        key -> the list of its samples, index r from round r: samples of the
        same index were taken under the same machine load
        (:func:`round_ratios`).
    """
    rng = rng or random.Random()
    keys = list(cases)
    samples = {key: [] for key in keys}
    for r in range(rounds):
        if collect:
            gc.collect()
        # a fresh order each round: a slow spell falls on every case alike
        rng.shuffle(keys)
        for key in keys:
            samples[key].append(cases[key]())
        if progress is not None:
            progress(r + 1)
    return samples


def medians(samples):
    """key -> the median of its samples."""
    return {key: statistics.median(s) for key, s in samples.items()}


def round_ratios(samples, reference):
    """key -> its per-round ratios to the case ``reference(key)``.

    A ratio of two samples of one round cancels the load the round ran
    under; its median over rounds is what the reports quote.
    """
    return {key: [a / b for a, b in zip(s, samples[reference(key)])]
            for key, s in samples.items()}


def fmt_time(seconds):
    """A time in µs with three significant digits or more."""
    us = seconds * 1e6
    if us >= 10:
        return f"{us:.1f} µs"
    if us >= 1:
        return f"{us:.2f} µs"
    return f"{us:.3f} µs"


def versions():
    """``python ..., numpy ..., scipy ..., numba ..., rmsopt ...``, for the
    header of a report."""
    return (f"python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}, numba {numba.__version__}, "
            f"rmsopt {rmsopt.__version__}")
