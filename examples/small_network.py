"""Train a small neural network with RMSProp, backpropagation written in NumPy.

The network of PyTorch's RMSprop example (``nn.Linear(10, 50)``, ReLU,
``nn.Linear(50, 1)``, ``nn.MSELoss``, ``optim.RMSprop(lr=0.01, alpha=0.9,
eps=1e-08)``, 100 random samples), without PyTorch:

* all weights and biases live in one flat parameter vector (``pack`` /
  ``unpack``), initialised like ``nn.Linear``: uniform in
  ``+-1/sqrt(fan_in)``;
* ``loss_and_grad`` does the forward pass and the backward pass by hand, and
  is handed to ``rmsopt.minimize`` with ``jac=True``;
* the hand-written gradient is checked against finite differences
  (``scipy.optimize.approx_fprime``) before training;
* a new-style ``callback(intermediate_result)`` prints the loss every 20
  iterations of the 200 full-batch iterations;
* the result is checked against a plain NumPy loop of PyTorch's RMSprop
  update, and the loss must have gone down.

Run: ``python examples/small_network.py``
"""

import numpy as np
from scipy.optimize import approx_fprime

import rmsopt

N_IN, N_HIDDEN, N_OUT, N_SAMPLES = 10, 50, 1, 100
SHAPES = [("W1", (N_HIDDEN, N_IN)), ("b1", (N_HIDDEN,)),
          ("W2", (N_OUT, N_HIDDEN)), ("b2", (N_OUT,))]
SIZES = [int(np.prod(shape)) for _, shape in SHAPES]
N_PARAMS = sum(SIZES)  # 50*10 + 50 + 1*50 + 1 = 601


def pack(params):
    """One flat float64 vector from a dict of arrays named as in SHAPES."""
    return np.concatenate([np.ravel(params[name]) for name, _ in SHAPES])


def unpack(theta):
    """A dict of views into ``theta``, shaped as in SHAPES."""
    out, start = {}, 0
    for (name, shape), size in zip(SHAPES, SIZES):
        out[name] = theta[start:start + size].reshape(shape)
        start += size
    return out


def init_params(rng):
    """PyTorch's nn.Linear default: weight and bias uniform in +-1/sqrt(fan_in)."""
    params = {}
    for (name, shape) in SHAPES:
        fan_in = N_IN if name in ("W1", "b1") else N_HIDDEN
        bound = 1.0 / np.sqrt(fan_in)
        params[name] = rng.uniform(-bound, bound, size=shape)
    return pack(params)


def loss_and_grad(theta, X, y):
    """MSE loss of the 10-50-1 ReLU network and its gradient w.r.t. theta."""
    p = unpack(theta)
    # forward
    h = X @ p["W1"].T + p["b1"]          # (N, 50) pre-activation
    a = np.maximum(h, 0.0)               # ReLU
    out = a @ p["W2"].T + p["b2"]        # (N, 1)
    r = out - y
    loss = np.mean(r ** 2)
    # backward
    d_out = 2.0 * r / r.size             # dL/d out
    d_W2 = d_out.T @ a
    d_b2 = d_out.sum(axis=0)
    d_h = (d_out @ p["W2"]) * (h > 0)    # through the ReLU
    d_W1 = d_h.T @ X
    d_b1 = d_h.sum(axis=0)
    grad = pack({"W1": d_W1, "b1": d_b1, "W2": d_W2, "b2": d_b2})
    return loss, grad


def loss(theta, X, y):
    return loss_and_grad(theta, X, y)[0]


rng = np.random.default_rng(0)
X = rng.standard_normal((N_SAMPLES, N_IN))
y = rng.standard_normal((N_SAMPLES, N_OUT))
theta0 = init_params(rng)
print(f"parameters: {N_PARAMS}, samples: {N_SAMPLES}")

# 1. Gradient check at the starting point: backprop against central
#    differences (forward differences would have an error ~1e-7).
loss0, g_backprop = loss_and_grad(theta0, X, y)
h = 1e-6
g_fd = (approx_fprime(theta0, loss, h, X, y)
        + approx_fprime(theta0, loss, -h, X, y)) / 2
rel_err = np.linalg.norm(g_backprop - g_fd) / np.linalg.norm(g_fd)
print(f"gradient check: |g_backprop - g_fd| / |g_fd| = {rel_err:.2e}")
assert rel_err < 1e-6, "backprop and finite differences disagree"

# 2. Train: 200 full-batch RMSProp iterations, PyTorch's hyper-parameters.
options = {"lr": 0.01, "alpha": 0.9, "eps": 1e-8, "maxiter": 200}
history = []


def report(intermediate_result):
    history.append(intermediate_result.fun)
    if intermediate_result.nit % 20 == 0:
        print(f"iteration {intermediate_result.nit:4d}  "
              f"loss {intermediate_result.fun:.4f}")


print(f"iteration    0  loss {loss0:.4f}")
res = rmsopt.minimize(loss_and_grad, theta0, args=(X, y), jac=True,
                      callback=report, options=options)
print(f"{res.message} nit={res.nit} nfev={res.nfev} njev={res.njev}")
print(f"loss: {loss0:.4f} -> {res.fun:.4f}")
assert res.nit == 200 and len(history) == 200
assert history[-1] == res.fun
assert res.fun < 0.5 * loss0, "the loss did not go down"

# 3. Independent check: PyTorch's RMSprop update written out in NumPy.
#    v <- alpha v + (1 - alpha) g^2;  theta <- theta - lr g / (sqrt(v) + eps)
theta, v = theta0.copy(), np.zeros_like(theta0)
for _ in range(options["maxiter"]):
    g = loss_and_grad(theta, X, y)[1]
    v = options["alpha"] * v + (1 - options["alpha"]) * g * g
    theta = theta - options["lr"] * g / (np.sqrt(v) + options["eps"])
diff = np.abs(theta - res.x).max()
print(f"max |theta_rmsopt - theta_numpy_loop| = {diff:.1e}")
assert np.allclose(theta, res.x, rtol=1e-9, atol=1e-12)
