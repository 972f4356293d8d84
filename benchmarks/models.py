"""Fit time and objective agreement of rmsopt.models against scikit-learn.

For each estimator and data set (bundled with scikit-learn, or generated:
5000 x 50 classification, 5000 x 100 regression, 5000 x 20 counts): the relative
gap of the fitted objective (scikit-learn's scaling) between rmsopt with its
defaults and scikit-learn with its defaults, and against scikit-learn run to
a tight tolerance; the largest coefficient difference from that tight fit
(relative to the largest coefficient, or absolute below 1); and the median fit time of each over interleaved rounds
(after one warm-up fit, so that numba's compilation is not counted; the
first fit in a process also compiles, about a second per estimator). The
timing harness is benchmarks/benchmarks/common.py's.

Run: ``python benchmarks/models.py [rounds]`` (prints a Markdown table)
"""

import sys
import warnings

import numpy as np
from sklearn import datasets, linear_model
from sklearn.exceptions import ConvergenceWarning

from rmsopt import models

from benchmarks.common import interleaved_rounds, medians, timed


def load(name):
    if name == "classification":   # generated, 5000 x 50
        return datasets.make_classification(5000, 50, n_informative=20,
                                            random_state=0)
    if name == "regression":       # generated, 5000 x 100
        return datasets.make_regression(5000, 100, n_informative=50,
                                        noise=10.0, random_state=0)
    if name == "counts":           # generated Poisson counts, 5000 x 20
        rng = np.random.default_rng(0)
        X = rng.standard_normal((5000, 20))
        return X, rng.poisson(np.exp(0.3 + X @ rng.normal(0, 0.2, 20)))
    if name == "linnerud":
        d = datasets.load_linnerud()
        return d.target, d.data[:, 0]
    return getattr(datasets, f"load_{name}")(return_X_y=True)


def ridge(m, X, y, a):
    r = y - X @ m.coef_ - m.intercept_
    return r @ r + a * m.coef_ @ m.coef_


def logistic(m, X, y, C):
    Z = X @ m.coef_.T + m.intercept_
    if Z.shape[1] == 1:
        Z = np.column_stack([np.zeros(len(y)), Z[:, 0]])
    lab = np.searchsorted(m.classes_, y)
    data = np.logaddexp.reduce(Z, axis=1) - Z[np.arange(len(y)), lab]
    return C * data.sum() + 0.5 * np.sum(m.coef_ ** 2)


def poisson(m, X, y, a):
    z = X @ m.coef_ + m.intercept_
    return np.mean(np.exp(z) - y * z) + 0.5 * a * m.coef_ @ m.coef_


def huber(m, X, y, a, eps=1.35):
    t = np.abs(y - X @ m.coef_ - m.intercept_) / m.scale_
    H = np.where(t < eps, t * t, 2 * eps * t - eps ** 2)
    return np.sum(m.scale_ * (1 + H)) + a * m.coef_ @ m.coef_


CASES = [
    ("Ridge", "diabetes", ridge, "alpha", 1.0),
    ("Ridge", "linnerud", ridge, "alpha", 10.0),
    ("LogisticRegression", "breast_cancer", logistic, "C", 1.0),
    ("LogisticRegression", "iris", logistic, "C", 1.0),
    ("LogisticRegression", "wine", logistic, "C", 0.1),
    ("PoissonRegressor", "diabetes", poisson, "alpha", 1e-3),
    ("PoissonRegressor", "linnerud", poisson, "alpha", 1.0),
    ("HuberRegressor", "diabetes", huber, "alpha", 1e-4),
    ("HuberRegressor", "linnerud", huber, "alpha", 1e-2),
    ("Ridge", "regression", ridge, "alpha", 1.0),
    ("LogisticRegression", "classification", logistic, "C", 1.0),
    ("PoissonRegressor", "counts", poisson, "alpha", 1e-2),
    ("HuberRegressor", "regression", huber, "alpha", 1e-4),
]


def coef_gap(ours, tight):
    """The largest difference of the coefficients and intercepts, relative
    to the largest of scikit-learn's (1 where all are below 1)."""
    a = np.concatenate([np.ravel(ours.coef_), np.ravel(ours.intercept_)])
    b = np.concatenate([np.ravel(tight.coef_), np.ravel(tight.intercept_)])
    return float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b))))


def main(rounds=5):
    warnings.simplefilter("ignore", ConvergenceWarning)  # sklearn defaults
    print("| estimator | data (n x p) | gap vs sklearn default | gap vs "
          "sklearn tight | coef gap vs tight | rmsopt iterations | rmsopt ms | sklearn ms | "
          "time ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, data, objective, param, value in CASES:
        X, y = load(data)
        params = {param: value}
        ours = lambda: getattr(models, name)(**params)  # noqa: E731
        theirs = lambda: getattr(linear_model, name)(**params)  # noqa: E731
        tight = getattr(linear_model, name)(**params)
        if "max_iter" in tight.get_params() and name != "Ridge":
            tight.set_params(max_iter=100000, tol=1e-10)
        f_tight = objective(tight.fit(X, y), X, y, value)
        # A first fit of each, untimed (rmsopt's compiles): the objectives
        # are compared on these fits.
        m_ours, m_theirs = ours().fit(X, y), theirs().fit(X, y)
        fit = lambda make: make().fit(X, y)  # noqa: E731
        times = medians(interleaved_rounds(
            {"ours": lambda: timed(fit, ours),
             "theirs": lambda: timed(fit, theirs)}, rounds))
        f_ours = objective(m_ours, X, y, value)
        f_theirs = objective(m_theirs, X, y, value)
        a, b = times["ours"], times["theirs"]
        print(f"| {name}({param}={value:g}) | {data} ({X.shape[0]} x "
              f"{X.shape[1]}) | {(f_ours - f_theirs) / abs(f_theirs):+.1e} "
              f"| {(f_ours - f_tight) / abs(f_tight):+.1e} | "
              f"{coef_gap(m_ours, tight):.1e} | "
              f"{int(np.ravel(m_ours.n_iter_)[0])} | {1e3 * a:.2f} | "
              f"{1e3 * b:.2f} | {a / b:.1f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
