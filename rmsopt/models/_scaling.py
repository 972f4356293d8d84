"""Standardised data for the estimators.

Features are centred (when there is an intercept to absorb the shift) and
scaled to unit variance first, so that one learning rate suits every
coefficient; the penalty is rewritten for the scaled coefficients and the
estimators map the solution back, so the problem solved is exactly the
unscaled one.
"""

from typing import NamedTuple

import numpy as np


class Scaling(NamedTuple):
    """X_std = (X - x_mean) / x_scale and y_std = (y - y_mean) / y_scale."""
    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float
    y_scale: float


def standardize(X, y, *, center, scale, scale_y):
    """``(X_std, y_std, Scaling)``: new arrays, the inputs untouched.

    ``center`` subtracts the means (of X, and of y when ``scale_y``);
    ``scale`` divides by the standard deviations (constant columns keep
    scale 1). Without ``scale_y``, y is returned as it is. X_std is
    C-contiguous float64: the losses read it row by row. Data whose mean
    or standard deviation overflows float64 is a ``ValueError``.
    """
    p = X.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        x_mean = X.mean(axis=0) if center else np.zeros(p)
        # one new array, worked in place (no temporaries of X's size)
        X_std = np.array(X, dtype=np.float64, order="C", copy=True)
        if center:
            X_std -= x_mean
        x_scale = np.ones(p)
        if scale:
            sd = np.sqrt(np.einsum("ij,ij->j", X_std, X_std) / len(X_std)) \
                if center else X.std(axis=0)
            x_scale = np.where(sd > 0, sd, 1.0)
        _check_finite("X", x_mean, x_scale)
        X_std /= x_scale
        if not scale_y:
            return X_std, y, Scaling(x_mean, x_scale, 0.0, 1.0)
        y_mean = float(y.mean()) if center else 0.0
        sd = float(y.std())
        _check_finite("y", y_mean, sd)
    y_scale = sd if sd > 0 else 1.0
    y_std = (y - y_mean) / y_scale
    return X_std, y_std, Scaling(x_mean, x_scale, y_mean, y_scale)


def _check_finite(name, mean, scale):
    """A clear error where the data's mean or spread overflows float64
    (standardised, the data would be zeros: a fit of nothing)."""
    if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
        raise ValueError(f"{name} is too large to standardise: its mean or "
                         "standard deviation overflows float64; rescale "
                         f"{name} (divide it by a constant) before fitting")
