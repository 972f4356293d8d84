"""``python -m rmsopt``: minimize a few classic problems and print the results.

The problems use embedded data only: scipy's Rosenbrock function (n = 2 and
n = 10, python and nopython drivers) and a least-squares fit of Hald's cement
data (13 observations, 4 predictors; Hald 1952), compared with the exact
solution from ``numpy.linalg.lstsq``.
"""

import time

import numpy as np
from scipy.optimize import rosen, rosen_der

from . import minimize
from ._layout import cached_njit

# Hald's cement data: heat evolved (y) against four ingredients (percent).
HALD_X = np.array([
    [7, 26, 6, 60], [1, 29, 15, 52], [11, 56, 8, 20], [11, 31, 8, 47],
    [7, 52, 6, 33], [11, 55, 9, 22], [3, 71, 17, 6], [1, 31, 22, 44],
    [2, 54, 18, 22], [21, 47, 4, 26], [1, 40, 23, 34], [11, 66, 9, 12],
    [10, 68, 8, 12]], dtype=float)
HALD_Y = np.array([78.5, 74.3, 104.3, 87.6, 95.9, 109.2, 102.7, 72.5, 93.1,
                   115.9, 83.8, 113.3, 109.4])


@cached_njit()
def rosen_grad_jit(x):
    """Gradient of the Rosenbrock function, compiled."""
    g = np.zeros_like(x)
    for i in range(x.size - 1):
        d = x[i + 1] - x[i] * x[i]
        g[i] += -400.0 * x[i] * d - 2.0 * (1.0 - x[i])
        g[i + 1] += 200.0 * d
    return g


def least_squares(beta, a, y):
    """Mean squared residual and its gradient, ``(f, g)``."""
    r = a @ beta - y
    return r @ r / y.size, 2.0 * (a.T @ r) / y.size


def main():
    """Run the problems and print one line each."""
    rows = []

    def run(name, fun, x0, jac, x_star, **options):
        start = time.perf_counter()
        res = minimize(fun, x0, jac=jac, options=options)
        seconds = time.perf_counter() - start
        error = np.max(np.abs(res.x - x_star))
        rows.append((name, res.nit, res.fun, error, res.status, seconds))

    for n in (2, 10):
        x0 = np.linspace(-1.2, 1.2, n)  # from the far side of the valley
        run(f"Rosenbrock n={n}, python jac", rosen, x0, rosen_der, np.ones(n),
            lr=1e-3, maxiter=20000)
        run(f"Rosenbrock n={n}, jitted jac", rosen, x0, rosen_grad_jit,
            np.ones(n), lr=1e-3, maxiter=20000)

    # Standardise the predictors so one learning rate suits every weight.
    mean, scale = HALD_X.mean(axis=0), HALD_X.std(axis=0)
    a = np.column_stack([np.ones(len(HALD_Y)), (HALD_X - mean) / scale])
    exact = np.linalg.lstsq(a, HALD_Y, rcond=None)[0]
    start = np.zeros(a.shape[1])
    run("Hald cement least squares", lambda b: least_squares(b, a, HALD_Y),
        start, True, exact, lr=0.05, maxiter=20000, gtol=1e-8)

    print(f"{'problem':32s} {'nit':>6s} {'fun':>12s} {'max|x-x*|':>10s} "
          f"{'status':>6s} {'seconds':>8s}")
    for name, nit, fun, error, status, seconds in rows:
        print(f"{name:32s} {nit:6d} {fun:12.4e} {error:10.2e} {status:6d} "
              f"{seconds:8.3f}")
    print("status 0 = gtol reached, 1 = maxiter; seconds include the first "
          "call's compilation.")


if __name__ == "__main__":
    main()
