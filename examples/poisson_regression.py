"""Poisson regression of counts, fitted with RMSProp.

Counts drawn from ``Poisson(exp(X w + b))`` with known ``w`` and ``b``;
``rmsopt.models.PoissonRegressor`` recovers them, and its objective (mean
half Poisson deviance + ``alpha / 2 |w|^2``) agrees with scikit-learn's
``PoissonRegressor`` to 1e-6. The figure (``poisson_regression.png``, in
``$RMSOPT_FIGURE_DIR`` or the current folder) compares the mean observed
count with the predicted mean in ten groups of predictions.

Run: ``python examples/poisson_regression.py`` (needs scikit-learn and
matplotlib)
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import linear_model  # noqa: E402

from rmsopt.models import PoissonRegressor  # noqa: E402

rng = np.random.default_rng(0)
n, w_true, b_true = 2000, np.array([0.6, -0.4, 0.2, 0.0]), 0.3
X = rng.standard_normal((n, 4))
y = rng.poisson(np.exp(X @ w_true + b_true))
alpha = 1e-3


def objective(model):
    z = X @ model.coef_ + model.intercept_
    return np.mean(np.exp(z) - y * z) + 0.5 * alpha * model.coef_ @ model.coef_


ours = PoissonRegressor(alpha=alpha).fit(X, y)
ref = linear_model.PoissonRegressor(alpha=alpha, tol=1e-10,
                                    max_iter=10000).fit(X, y)
print(f"true      w = {w_true}, b = {b_true}")
print(f"rmsopt    w = {np.round(ours.coef_, 3)}, b = {ours.intercept_:.3f} "
      f"({ours.n_iter_} iterations)")
print(f"sklearn   w = {np.round(ref.coef_, 3)}, b = {ref.intercept_:.3f}")
gap = (objective(ours) - objective(ref)) / abs(objective(ref))
print(f"objective relative difference {gap:.1e}; D^2 {ours.score(X, y):.3f}")
assert gap < 1e-6
assert np.allclose(ours.coef_, w_true, atol=0.05)

mu = ours.predict(X)
groups = np.array_split(np.argsort(mu), 10)
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.plot([mu[g].mean() for g in groups], [y[g].mean() for g in groups], "o",
        label="mean observed count")
top = mu[groups[-1]].mean() * 1.1
ax.plot([0, top], [0, top], "k--", lw=1, label="predicted = observed")
ax.set_xlabel("predicted mean (rmsopt)")
ax.set_ylabel("observed mean")
ax.set_title("Poisson regression, deciles of prediction")
ax.legend(fontsize=8)
fig.tight_layout()
path = os.path.join(os.environ.get("RMSOPT_FIGURE_DIR", "."),
                    "poisson_regression.png")
fig.savefig(path, dpi=80)
print(f"figure: {path}")
