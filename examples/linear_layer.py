"""Fit a 3 -> 2 linear layer with MSE loss, compared with least squares.

The ``nn.Linear(3, 2)`` + ``nn.MSELoss`` example with
``torch.optim.RMSprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0,
momentum=0, centered=False)``, written with rmsopt (no PyTorch):

* the layer's weight (2x3) and bias (2) are one flat vector of 8 parameters,
  initialised like ``nn.Linear`` (uniform in ``+-1/sqrt(3)``);
* the PyTorch optimizer arguments become ``options`` one for one;
* fitting a linear layer under MSE is linear least squares, so the answer is
  known: ``numpy.linalg.lstsq`` on ``[x, 1]`` (an intercept column);
* with a constant ``lr`` RMSProp only hovers near that optimum (about
  ``lr`` away, since each step is about ``lr`` long); continuing the run with
  ``options={"state": res.state, "lr": smaller}`` shrinks the hovering
  until the fit agrees with ``lstsq`` to 1e-5.

Run: ``python examples/linear_layer.py``
"""

import numpy as np

import rmsopt

N_SAMPLES, N_IN, N_OUT = 10, 3, 2

rng = np.random.default_rng(0)
x = rng.standard_normal((N_SAMPLES, N_IN))
y = rng.standard_normal((N_SAMPLES, N_OUT))


def unpack(theta):
    """Weight (2, 3) and bias (2,) as views into the flat vector."""
    return theta[:N_OUT * N_IN].reshape(N_OUT, N_IN), theta[N_OUT * N_IN:]


def mse_and_grad(theta, x, y):
    """MSE of ``x @ W.T + b`` against ``y`` and its gradient w.r.t. theta."""
    W, b = unpack(theta)
    r = x @ W.T + b - y
    d = 2.0 * r / r.size
    return np.mean(r ** 2), np.concatenate([(d.T @ x).ravel(), d.sum(axis=0)])


bound = 1.0 / np.sqrt(N_IN)  # nn.Linear's default initialisation
theta0 = rng.uniform(-bound, bound, size=N_OUT * N_IN + N_OUT)

# torch.optim.RMSprop(linear.parameters(), lr=0.01, alpha=0.99, eps=1e-08,
#                     weight_decay=0, momentum=0, centered=False)
torch_options = {"lr": 0.01, "alpha": 0.99, "eps": 1e-08, "weight_decay": 0,
                 "momentum": 0, "centered": False}

# Independent answer: least squares with an intercept column.
A = np.hstack([x, np.ones((N_SAMPLES, 1))])
coef = np.linalg.lstsq(A, y, rcond=None)[0]          # (4, 2)
theta_ls = np.concatenate([coef[:N_IN].T.ravel(), coef[N_IN]])
loss_ls = mse_and_grad(theta_ls, x, y)[0]

loss0 = mse_and_grad(theta0, x, y)[0]
print(f"loss before training: {loss0:.6f}")

# Stage 1: PyTorch's settings for 2000 iterations. gtol=0 runs them all (the
# default gtol=1e-5 could stop the run when the hovering iterate happens to
# pass close to the optimum).
res = rmsopt.minimize(mse_and_grad, theta0, args=(x, y), jac=True,
                      options={**torch_options, "maxiter": 2000, "gtol": 0})
err = np.abs(res.x - theta_ls).max()
print(f"loss after {res.nit} iterations at lr=0.01: {res.fun:.10f}  "
      f"max |theta - theta_lstsq| = {err:.1e}")
assert err < 2 * torch_options["lr"]  # it hovers about lr away

# Stage 2: continue the same run (same mean square, same step count) with
# smaller and smaller learning rates.
for lr in (1e-3, 1e-4, 1e-5):
    res = rmsopt.minimize(mse_and_grad, res.x, args=(x, y), jac=True,
                          options={**torch_options, "lr": lr, "maxiter": 1000,
                                   "gtol": 0, "state": res.state})
    err = np.abs(res.x - theta_ls).max()
    print(f"then {res.nit} iterations at lr={lr:.0e}: loss {res.fun:.10f}  "
          f"max |theta - theta_lstsq| = {err:.1e}")

W, b = unpack(res.x)
W_ls, b_ls = unpack(theta_ls)
print(f"\nloss after training:  {res.fun:.10f} (lstsq: {loss_ls:.10f})")
print("weight (RMSProp):\n", W, "\nweight (lstsq):\n", W_ls)
print("bias (RMSProp):", b, " bias (lstsq):", b_ls)
TOL = 1e-5
assert np.allclose(res.x, theta_ls, rtol=0, atol=TOL), "not within 1e-5"
assert 0 <= res.fun - loss_ls < 1e-9
print(f"fitted weights and bias agree with lstsq to {TOL:g}")
