"""RMSProp on the Rosenbrock function, as rmsopt and as a scipy plug-in.

Shows:

* ``rmsopt.minimize`` with scipy's ``rosen`` and its analytic gradient
  ``rosen_der``;
* the same run through ``scipy.optimize.minimize(..., method=rmsopt.rmsprop)``,
  which gives bit-identical iterates;
* continuing a run with a smaller learning rate through
  ``options={"state": res.state, "lr": ...}``: RMSProp with a constant ``lr``
  only circles the minimum, and shrinking ``lr`` lets it settle;
* a check against scipy's BFGS, which finds the known minimum (1, 1).

Run: ``python examples/rosenbrock.py``
"""

import numpy as np
from scipy.optimize import minimize, rosen, rosen_der

import rmsopt

x0 = np.array([-1.2, 1.0])  # the classic starting point
options = {"lr": 1e-3, "maxiter": 10_000}

# 1. rmsopt's own entry point.
res = rmsopt.minimize(rosen, x0, jac=rosen_der, options=options)
print("rmsopt.minimize, lr=1e-3:")
print(res)

# 2. The same run as a custom method of scipy.optimize.minimize.
res_scipy = minimize(rosen, x0, jac=rosen_der, method=rmsopt.rmsprop,
                     options=options)
print("\nscipy.optimize.minimize(method=rmsopt.rmsprop): x =", res_scipy.x)
assert np.array_equal(res.x, res_scipy.x), "the two entry points differ"
assert (res.nit, res.nfev, res.njev) == (res_scipy.nit, res_scipy.nfev,
                                         res_scipy.njev)
print("identical x, nit, nfev, njev:", True)

# With lr fixed, RMSProp hovers near the minimum (the normalised step never
# shrinks to zero), so it stops at maxiter without meeting gtol.
assert res.status == 1 and not res.success

# 3. Continue the same run with smaller learning rates. The state carries
#    the mean square of the gradients and the step count over.
print("\ncontinuing with a smaller learning rate:")
print(f"{'lr':>8} {'nit':>6} {'steps':>6} {'f(x)':>12} {'max|g|':>10}  x")
for lr in (1e-4, 1e-5):
    res = rmsopt.minimize(rosen, res.x, jac=rosen_der,
                          options={"lr": lr, "maxiter": 10_000,
                                   "state": res.state})
    print(f"{lr:8.0e} {res.nit:6d} {res.state['step']:6d} {res.fun:12.3e} "
          f"{np.abs(res.jac).max():10.2e}  {res.x}")
    if res.success:
        break
print(res.message)
assert res.success  # max |gradient| <= gtol = 1e-5

# 4. Independent answer: scipy's BFGS.
bfgs = minimize(rosen, x0, jac=rosen_der, method="BFGS")
print("\nBFGS:   x =", bfgs.x, " f =", f"{bfgs.fun:.3e}")
print("RMSProp x =", res.x, " f =", f"{res.fun:.3e}")
print("max |x_rmsprop - x_bfgs| =", f"{np.abs(res.x - bfgs.x).max():.2e}")
assert np.allclose(bfgs.x, [1.0, 1.0], atol=1e-4)
assert np.allclose(res.x, bfgs.x, atol=1e-4)
