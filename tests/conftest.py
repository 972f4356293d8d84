"""Shared problems. Jitted functions live here, at module level, so every test
shares one compiled specialisation per signature (compilation dominates the
suite's time)."""

import numba
import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der


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
def lsq_grad_jit(w, a, y):
    """Gradient of 0.5 * ||a w - y||^2 / len(y)."""
    return a.T @ (a @ w - y) / y.size


def lsq_fun(w, a, y):
    r = a @ w - y
    return 0.5 * float(r @ r) / y.size


def rosen_python_grad(x):
    """rosen_der in x's own dtype (scipy's may promote)."""
    return np.asarray(rosen_der(x), dtype=x.dtype)


@pytest.fixture(scope="session")
def lsq_data():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 5))
    y = a @ rng.standard_normal(5) + 0.1 * rng.standard_normal(40)
    return a, y


X0 = np.array([-1.2, 1.0, 0.8, 1.3, 0.6])

__all__ = ["rosen", "rosen_der", "rosen_jit", "rosen_grad_jit",
           "rosen_value_and_grad_jit", "lsq_grad_jit", "lsq_fun",
           "rosen_python_grad", "X0"]


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
