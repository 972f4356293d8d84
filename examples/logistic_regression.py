"""Logistic regression on the breast cancer data, fitted with RMSProp.

``rmsopt.models.LogisticRegression`` minimises the same objective as
scikit-learn's ``LogisticRegression`` (``C * sum(log loss) + |w|^2 / 2``), on
features it standardises internally. The script fits both, checks that the
objectives agree to 1e-5, and draws the coefficients side by side
(``logistic_regression.png``, in ``$RMSOPT_FIGURE_DIR`` or the current
folder).

Run: ``python examples/logistic_regression.py`` (needs scikit-learn and
matplotlib)
"""

import os
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import linear_model  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from rmsopt.models import LogisticRegression  # noqa: E402

data = load_breast_cancer()
X, y = data.data, data.target
C = 1.0


def objective(model):
    z = X @ model.coef_[0] + model.intercept_[0]
    return C * np.sum(np.logaddexp(0, z) - y * z) + 0.5 * np.sum(
        model.coef_ ** 2)


ours = LogisticRegression(C=C).fit(X, y)
with warnings.catch_warnings():  # lbfgs needs many iterations unscaled
    warnings.simplefilter("ignore", ConvergenceWarning)
    ref = linear_model.LogisticRegression(C=C, max_iter=100000,
                                          tol=1e-10).fit(X, y)
f_ours, f_ref = objective(ours), objective(ref)
print(f"objective: rmsopt {f_ours:.8f} ({ours.n_iter_[0]} iterations), "
      f"scikit-learn {f_ref:.8f}, relative difference "
      f"{(f_ours - f_ref) / f_ref:.1e}")
print(f"training accuracy: rmsopt {ours.score(X, y):.4f}, "
      f"scikit-learn {ref.score(X, y):.4f}")
assert (f_ours - f_ref) / f_ref < 1e-5

# Coefficients per standard deviation of each feature: comparable sizes.
sd = X.std(axis=0)
order = np.argsort(ours.coef_[0] * sd)
fig, ax = plt.subplots(figsize=(6, 5.5))
pos = np.arange(X.shape[1])
ax.barh(pos - 0.2, (ours.coef_[0] * sd)[order], height=0.4, label="rmsopt")
ax.barh(pos + 0.2, (ref.coef_[0] * sd)[order], height=0.4,
        label="scikit-learn (lbfgs)")
ax.set_yticks(pos, data.feature_names[order], fontsize=6)
ax.set_xlabel("coefficient x feature standard deviation")
ax.set_title("Breast cancer: logistic regression, C = 1")
ax.legend(fontsize=8)
fig.tight_layout()
path = os.path.join(os.environ.get("RMSOPT_FIGURE_DIR", "."),
                    "logistic_regression.png")
fig.savefig(path, dpi=80)
print(f"figure: {path}")
