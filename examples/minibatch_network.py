"""Mini-batch training of the seed's small network, compiled, with a schedule.

The 10-50-1 ReLU network of ``small_network.py`` (PyTorch's RMSprop
example), now learning a teacher network of the same shape from 2000 noisy
samples, in mini-batches of 32 reshuffled every epoch, with a cosine
learning-rate schedule:

* ``loss_and_grad`` is the forward and backward pass written with
  ``numba.njit``, so the whole loop runs in rmsopt's compiled driver
  (batches are slices of a shuffled copy of ``X`` and ``y``: no copy per
  batch);
* ``options={"batch": {"args": (0, 1), "size": 32, "epochs": 30}}`` says
  that ``X`` and ``y`` (args 0 and 1) are the data to split;
* ``options={"history": 1}`` records the mean mini-batch loss of every
  epoch, and ``rmsopt.plot_convergence`` draws it with the full-batch run's
  for the same number of passes over the data (``minibatch_network.png``,
  in ``$RMSOPT_FIGURE_DIR`` or the current folder);
* the result is checked against a plain NumPy loop of PyTorch's RMSprop
  over the same batches, and against the full-batch run's loss.

Run: ``python examples/minibatch_network.py`` (needs matplotlib)
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

import rmsopt  # noqa: E402
from rmsopt import schedules  # noqa: E402

N_IN, N_HIDDEN = 10, 50
N_SAMPLES, BATCH, EPOCHS = 2000, 32, 30
N_PARAMS = N_HIDDEN * N_IN + N_HIDDEN + N_HIDDEN + 1  # 601


@numba.njit(cache=True)
def loss_and_grad(theta, X, y):
    """Mean squared error of the network on (X, y) and its gradient.

    theta = [W1 (50x10, row-major), b1 (50), W2 (50), b2 (1)].
    """
    W1 = theta[:N_HIDDEN * N_IN].reshape((N_HIDDEN, N_IN))
    b1 = theta[N_HIDDEN * N_IN:N_HIDDEN * N_IN + N_HIDDEN]
    W2 = theta[N_HIDDEN * N_IN + N_HIDDEN:N_PARAMS - 1]
    b2 = theta[N_PARAMS - 1]
    n = X.shape[0]
    h = X @ W1.T + b1                 # (n, 50) pre-activation
    a = np.maximum(h, 0.0)            # ReLU
    r = a @ W2 + b2 - y               # (n,) residuals
    loss = (r @ r) / n
    d_out = 2.0 * r / n
    grad = np.empty_like(theta)
    grad[N_HIDDEN * N_IN + N_HIDDEN:N_PARAMS - 1] = a.T @ d_out
    grad[N_PARAMS - 1] = d_out.sum()
    d_h = np.outer(d_out, W2) * (h > 0)
    grad[:N_HIDDEN * N_IN] = (d_h.T @ X).ravel()
    grad[N_HIDDEN * N_IN:N_HIDDEN * N_IN + N_HIDDEN] = d_h.sum(axis=0)
    return loss, grad


def init_params(rng):
    """nn.Linear's default: uniform in +-1/sqrt(fan_in)."""
    b_in, b_hidden = 1 / np.sqrt(N_IN), 1 / np.sqrt(N_HIDDEN)
    return np.concatenate([rng.uniform(-b_in, b_in, N_HIDDEN * N_IN + N_HIDDEN),
                           rng.uniform(-b_hidden, b_hidden, N_HIDDEN + 1)])


rng = np.random.default_rng(0)
X = rng.standard_normal((N_SAMPLES, N_IN))
teacher = 3 * init_params(rng)  # a network of the same shape to learn
hidden = np.maximum(X @ teacher[:500].reshape(N_HIDDEN, N_IN).T
                    + teacher[500:550], 0.0)
y = hidden @ teacher[550:600] + teacher[600] \
    + 0.1 * rng.standard_normal(N_SAMPLES)
theta0 = init_params(rng)
loss0 = loss_and_grad(theta0, X, y)[0]

# 1. The jitted gradient against central differences.
e = np.zeros(N_PARAMS)
for i in rng.choice(N_PARAMS, 20, replace=False):
    e[i] = 1e-6
    fd = (loss_and_grad(theta0 + e, X, y)[0]
          - loss_and_grad(theta0 - e, X, y)[0]) / 2e-6
    e[i] = 0
    assert abs(fd - loss_and_grad(theta0, X, y)[1][i]) < 1e-6 * (1 + abs(fd))

# 2. Mini-batch training in the compiled driver.
per_epoch = -(-N_SAMPLES // BATCH)
lr = schedules.cosine(0.01, t_max=EPOCHS * per_epoch, eta_min=1e-4)
options = {"lr": lr, "alpha": 0.9, "history": 1,
           "batch": {"args": (0, 1), "size": BATCH, "epochs": EPOCHS,
                     "seed": 0}}
res = rmsopt.minimize(loss_and_grad, theta0, args=(X, y), jac=True,
                      options=options)
print(res.message)
print(f"mini-batch: {res.nit} iterations ({EPOCHS} epochs of {per_epoch}), "
      f"loss {loss0:.4f} -> {res.fun:.4f} on all the data")

# The same number of passes over the data with full-batch gradients.
full = rmsopt.minimize(loss_and_grad, theta0, args=(X, y), jac=True,
                       options={"lr": 0.01, "alpha": 0.9, "history": 1,
                                "maxiter": EPOCHS})
print(f"full batch: {full.nit} iterations, loss {loss0:.4f} -> "
      f"{full.fun:.4f}")
assert res.fun < 0.5 * full.fun, "mini-batches should win per pass"

# 3. Independent check: PyTorch's RMSprop in NumPy over the same batches.
order_rng = np.random.default_rng(0)
theta, v, t = theta0.copy(), np.zeros(N_PARAMS), 0
for _ in range(EPOCHS):
    order = order_rng.permutation(N_SAMPLES)
    Xe, ye = X[order], y[order]
    for start in range(0, N_SAMPLES, BATCH):
        g = loss_and_grad(theta, Xe[start:start + BATCH],
                          ye[start:start + BATCH])[1]
        v = 0.9 * v + 0.1 * g * g
        theta = theta - lr(t) * g / (np.sqrt(v) + 1e-8)
        t += 1
diff = np.abs(theta - res.x).max()
print(f"max |theta_rmsopt - theta_numpy_loop| = {diff:.1e}")
assert np.allclose(theta, res.x, rtol=1e-8, atol=1e-10)

# 4. The figure: loss per pass over the data.
fig, ax = plt.subplots(figsize=(6, 4))
rmsopt.plot_convergence(res, ax=ax, marker="o", ms=3,
                        label=f"mini-batches of {BATCH} (mean batch loss)")
ax.plot(full.history.nit * per_epoch, full.history.fun,
        label="full batch, one step per pass")
ax.set_xlabel(f"iteration of the mini-batch run ({per_epoch} per epoch)")
ax.set_ylabel("mean squared error")
ax.set_title("10-50-1 ReLU network, RMSProp")
ax.legend()
fig.tight_layout()
out = os.path.join(os.environ.get("RMSOPT_FIGURE_DIR", "."),
                   "minibatch_network.png")
fig.savefig(out, dpi=100)
print(f"figure: {out}")
