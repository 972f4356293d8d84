"""Shared test problems and comparisons: a plain module, not a test file.

Tests import from here (never from ``conftest`` or another test file), and
so do the scripts the tests run in subprocesses (with this folder on their
path). Jitted functions live here, at module level, so every test shares one
compiled specialisation per signature (compilation dominates the suite's
time).
"""

import numba
import numpy as np
from scipy.optimize import rosen, rosen_der

__all__ = ["rosen", "rosen_der", "rosen_jit", "rosen_grad_jit",
           "rosen_value_and_grad_jit", "rosen_grad_into_jit",
           "rosen_value_and_grad_into_jit", "rosen_python_grad", "X0",
           "lsq_grad_jit", "lsq_fun", "LSQ_A", "LSQ_Y", "lsq_vg", "lsq_value",
           "BATCH_A", "BATCH_Y", "assert_same"]

# -- the chained Rosenbrock function ------------------------------------------

X0 = np.array([-1.2, 1.0, 0.8, 1.3, 0.6])


@numba.njit(cache=True)
def rosen_grad_jit(x):
    """Chained Rosenbrock gradient; works for float32 and float64."""
    g = np.zeros_like(x)
    for i in range(x.size - 1):
        d = x[i + 1] - x[i] * x[i]
        g[i] += -400 * x[i] * d - 2 * (1 - x[i])
        g[i + 1] += 200 * d
    return g


@numba.njit(cache=True)
def rosen_jit(x):
    f = 0.0
    for i in range(x.size - 1):
        f += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return f


@numba.njit(cache=True)
def rosen_value_and_grad_jit(x):
    return rosen_jit(x), rosen_grad_jit(x)


@numba.njit(cache=True)
def rosen_grad_into_jit(x, out):
    """In-place form: the second parameter is named ``out``."""
    out[:] = 0
    for i in range(x.size - 1):
        d = x[i + 1] - x[i] * x[i]
        out[i] += -400 * x[i] * d - 2 * (1 - x[i])
        out[i + 1] += 200 * d


@numba.njit(cache=True)
def rosen_value_and_grad_into_jit(x, out):
    rosen_grad_into_jit(x, out)
    return rosen_jit(x)


def rosen_python_grad(x):
    """rosen_der in x's own dtype (scipy's may promote)."""
    return np.asarray(rosen_der(x), dtype=x.dtype)


# -- least squares: 0.5 * ||a w - y||^2 / len(y) -------------------------------

_rng = np.random.default_rng(0)
LSQ_A = _rng.standard_normal((40, 5))
LSQ_Y = LSQ_A @ _rng.standard_normal(5) + 0.1 * _rng.standard_normal(40)

# The mini-batch problem: 103 samples (the last batch of 10 is smaller).
_rng = np.random.default_rng(0)
BATCH_A = _rng.standard_normal((103, 4))
BATCH_Y = BATCH_A @ np.arange(1.0, 5.0) + 0.1 * _rng.standard_normal(103)
del _rng


@numba.njit(cache=True)
def lsq_grad_jit(w, a, y):
    """Gradient of 0.5 * ||a w - y||^2 / len(y)."""
    return a.T @ (a @ w - y) / y.size


@numba.njit(cache=True)
def lsq_vg(w, a, y):
    """Value and gradient of 0.5 * ||a w - y||^2 / len(y) (``jac=True``)."""
    r = a @ w - y
    return 0.5 * (r @ r) / y.size, a.T @ r / y.size


def lsq_fun(w, a, y):
    r = a @ w - y
    return 0.5 * float(r @ r) / y.size


def lsq_value(w, a, y):
    """The value of :func:`lsq_vg`, as a Python float."""
    return float(lsq_vg(w, a, y)[0])


# -- comparisons ----------------------------------------------------------------

def assert_same(a, b):
    """Two results agree bit for bit: x, jac, state and every count."""
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.jac, b.jac)
    for key in ("square_avg", "grad_avg", "momentum_buffer"):
        if a.state[key] is None:
            assert b.state[key] is None
        else:
            np.testing.assert_array_equal(a.state[key], b.state[key])
    for name in ("fun", "nit", "nfev", "njev", "status", "message"):
        assert a[name] == b[name], name
    assert a.state["step"] == b.state["step"]
