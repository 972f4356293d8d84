"""The compiled loop: a numba-jitted objective runs the whole RMSProp loop in numba.

L2-regularised logistic regression on synthetic data. ``loss_and_grad`` is a
``numba.njit`` function returning ``(f, g)``; passed with ``jac=True`` and the
data through ``args``, it lets ``rmsopt.minimize`` run every iteration in
compiled code, with no Python between the steps. The example times:

* the compiled loop (``driver="auto"``, the default for a jitted function);
* the same jitted function called from the Python loop (``driver="python"``),
  whose iterates must be bit-identical to the compiled loop's;
* the same function as plain NumPy (``loss_and_grad.py_func``) in the Python
  loop. NumPy and numba may round ``X @ w`` differently; the two runs agree
  to rounding for the first hundred steps, then part: with a fixed ``lr``,
  RMSProp hovers about ``lr`` from the optimum and amplifies any difference
  there, so after 10000 steps they agree only to about ``lr`` in ``x``
  (and closely in the loss).

It then checks the answer against scipy's L-BFGS-B on the same objective.

The compiled loop is compiled once for the function's signature and cached
on disk, so only ``loss_and_grad`` itself compiles in a new process.

Run: ``python examples/jitted.py``
"""

import time

import numpy as np
from numba import njit
from scipy.optimize import minimize

import rmsopt

N_SAMPLES, N_FEATURES, L2 = 200, 5, 1e-2


@njit(cache=True)
def loss_and_grad(w, X, y, l2):
    """Mean logistic loss + l2/2 |w|^2 of labels y in {0, 1}, and its gradient."""
    z = X @ w
    # log(1 + exp(z)) - y z, written so that exp never overflows
    loss = np.mean(np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))) - y * z)
    e = np.exp(-np.abs(z))
    p = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))  # sigmoid(z)
    grad = X.T @ (p - y) / X.shape[0] + l2 * w
    return loss + 0.5 * l2 * (w @ w), grad


rng = np.random.default_rng(0)
X = np.hstack([rng.standard_normal((N_SAMPLES, N_FEATURES - 1)),
               np.ones((N_SAMPLES, 1))])                       # with intercept
w_true = rng.standard_normal(N_FEATURES)
y = (rng.random(N_SAMPLES) < 1 / (1 + np.exp(-X @ w_true))).astype(np.float64)
args = (X, y, L2)
w0 = np.zeros(N_FEATURES)
options = {"lr": 1e-3, "maxiter": 10_000, "gtol": 0}  # gtol=0: all 10000 steps


def timed(fun, **extra):
    """Best wall time of three runs, and the result."""
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        res = rmsopt.minimize(fun, w0, args=args, jac=True,
                              options={**options, **extra})
        best = min(best, time.perf_counter() - start)
    return best, res


# Warm up: compile loss_and_grad and the loop around it (not timed).
start = time.perf_counter()
rmsopt.minimize(loss_and_grad, w0, args=args, jac=True,
                options={**options, "maxiter": 2})
rmsopt.minimize(loss_and_grad, w0, args=args, jac=True,
                options={**options, "maxiter": 2, "driver": "python"})
print(f"first calls (numba compilation): {time.perf_counter() - start:.2f} s")

t_compiled, res_compiled = timed(loss_and_grad)
t_python, res_python = timed(loss_and_grad, driver="python")
t_numpy, res_numpy = timed(loss_and_grad.py_func)

print(f"\n{options['maxiter']} iterations, {N_SAMPLES} samples, "
      f"{N_FEATURES} features")
print(f"  compiled loop (jitted fun, driver='auto'): {t_compiled:8.4f} s")
print(f"  Python loop   (jitted fun, driver='python'): {t_python:6.4f} s"
      f"   ({t_python / t_compiled:.0f}x slower)")
print(f"  Python loop   (plain NumPy fun):           {t_numpy:8.4f} s"
      f"   ({t_numpy / t_compiled:.0f}x slower)")

same = np.array_equal(res_compiled.x, res_python.x)
print(f"\ncompiled loop and Python loop bit-identical: {same}")
assert same and res_compiled.fun == res_python.fun
assert (res_compiled.nit, res_compiled.nfev, res_compiled.njev) == (
    res_python.nit, res_python.nfev, res_python.njev)
dev = np.abs(res_numpy.x - res_compiled.x).max()
print(f"plain NumPy run: max |x - x_compiled| = {dev:.1e}, "
      f"loss differs by {abs(res_numpy.fun - res_compiled.fun):.1e}")
assert dev < 5 * options["lr"] and abs(res_numpy.fun - res_compiled.fun) < 1e-6
short = {**options, "maxiter": 100}
dev_short = np.abs(
    rmsopt.minimize(loss_and_grad.py_func, w0, args=args, jac=True,
                    options=short).x
    - rmsopt.minimize(loss_and_grad, w0, args=args, jac=True,
                      options=short).x).max()
print(f"after 100 steps: max |x - x_compiled| = {dev_short:.1e}")
assert dev_short < 1e-12

# Independent answer: L-BFGS-B on the same (strongly convex) objective.
ref = minimize(loss_and_grad, w0, args=args, jac=True, method="L-BFGS-B",
               options={"gtol": 1e-12, "ftol": 1e-15})
err = np.abs(res_compiled.x - ref.x).max()
print(f"\nRMSProp  w = {res_compiled.x}  loss {res_compiled.fun:.8f}")
print(f"L-BFGS-B w = {ref.x}  loss {ref.fun:.8f}")
print(f"max |w_rmsprop - w_lbfgsb| = {err:.1e}")
assert err < options["lr"]  # hovering about lr away from the optimum
assert res_compiled.fun - ref.fun < 1e-5
