"""The parameters of the estimators of :mod:`rmsopt.models`: what each must
be, and the parts of the estimators' docstrings that describe more than one
of them.

No scikit-learn here (the estimators' module needs it): this module imports,
and its doctests collect, where that optional extra is not installed.
"""

import numbers

import numpy as np

from .._docs import filled
from .._fit import check_options

# Docstring parts that the estimators share: shared_docs puts each in place
# of a line "%(name)s", indented as that line (rmsopt._docs).
DOCS = {
    "rmsprop": """\
lr : float, default 0.01
    RMSProp's initial learning rate; divided by ten whenever 100
    iterations end without lowering the loss.
momentum : float, default 0.9
    RMSProp's momentum (PyTorch's form).
batch_size : int, optional
    Fit on mini-batches of this many samples (reshuffled every epoch,
    with a fixed seed: the fit is reproducible) instead of the full
    gradient; the learning rate drops after an epoch that does not
    lower the loss on all the data, and the fit has converged when the
    full gradient is within ``tol``. None: full gradients.
standardize : bool, default True
    Fit on features centred (with an intercept) and scaled to unit
    variance, then map the solution back: the problem solved is the same,
    but one learning rate suits every coefficient. False fits the raw
    features (then choose ``lr`` on the scale of the coefficients).
polish : bool, default True
    Without ``batch_size``: after at most 10 RMSProp iterations, finish
    with scipy's L-BFGS-B from RMSProp's best point, to the same test
    (``tol``): the coefficients to the digits the data allow, in a
    fraction of the time RMSProp alone takes (on these convex problems a
    quasi-Newton method is the better tool once the data fit in memory;
    RMSProp earns its place with ``batch_size``). False gives the pure
    RMSProp fit.
options : dict, optional
    Further :func:`rmsopt.minimize` options (``alpha``, ``eps``,
    ``centered``, ``driver``, ...); not ``lr``, ``maxiter``, ``gtol``,
    ``state`` or ``disp``, which the estimator sets.""",
    "fit_intercept, max_iter, tol": """\
fit_intercept : bool, default True
max_iter : int, default 10000
tol : float, optional
    As for :class:`Ridge`.""",
    "n_features_in_": """\
n_features_in_ : int
feature_names_in_ : ndarray of str
    Only when X has string feature names.""",
    "X": """\
Parameters
----------
X : array_like, shape (n_samples, n_features)""",
    "X, y, sample_weight": """\
Parameters
----------
X : array_like, shape (n_samples, n_features)
y : array_like, shape (n_samples,)
sample_weight : array_like, shape (n_samples,), optional""",
}


# Fills the parts of DOCS into the docstrings of an estimator and of the
# methods it defines.
shared_docs = filled(DOCS)


def _real(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and not np.isnan(value))


def _count(value):
    return (isinstance(value, numbers.Integral)
            and not isinstance(value, bool) and value >= 1)


def _flag(value):
    return isinstance(value, (bool, np.bool_))


# Tests of the parameters: (test, what the value must be). Those of every
# estimator by name, then those that an estimator names for its own.
SHARED_CHECKS = {
    "max_iter": (_count, "an integer >= 1"),
    "tol": (lambda v: v is None or _real(v) and v >= 0,
            "None or a number >= 0"),
    "lr": (lambda v: _real(v) and 0 < v < np.inf, "a finite number > 0"),
    "momentum": (lambda v: _real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "fit_intercept": (_flag, "True or False"),
    "batch_size": (lambda v: v is None or _count(v),
                   "None or an integer >= 1"),
    "standardize": (_flag, "True or False"),
    "polish": (_flag, "True or False"),
}
NON_NEGATIVE = (lambda v: _real(v) and 0 <= v < np.inf,
                "a finite number >= 0")
AT_LEAST_ONE = (lambda v: _real(v) and 1 <= v < np.inf,
                "a finite number >= 1")
POSITIVE = (lambda v: _real(v) and v > 0, "a number > 0 (or inf)")


def check_params(est, checks):
    """Check the parameters of ``est``, those of :data:`SHARED_CHECKS` then
    ``checks`` (name -> (test, expected)), and raise a ValueError that names
    the first that fails; return its ``options``, checked."""
    for name, (ok, expected) in {**SHARED_CHECKS, **checks}.items():
        value = getattr(est, name)
        if not ok(value):
            raise ValueError(f"{type(est).__name__}: {name} must be "
                             f"{expected}, got {value!r}")
    return check_options(est.options)
