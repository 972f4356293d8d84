"""Classical models fitted with RMSProp.

The loss-and-gradient functions (:func:`least_squares`, :func:`logistic`,
:func:`multinomial`, :func:`poisson`, :func:`huber`) need only numba; use
them with :func:`rmsopt.minimize` and ``jac=True``. The scikit-learn-style
estimators (:class:`Ridge`, :class:`LogisticRegression`,
:class:`PoissonRegressor`, :class:`HuberRegressor`) need scikit-learn
(``pip install rmsopt[models]``); they are imported on first use, so
``import rmsopt.models`` works without it.

>>> from rmsopt.models import least_squares
>>> least_squares.__name__
'least_squares'
"""

from ._losses import huber, least_squares, logistic, multinomial, poisson

_ESTIMATORS = ("HuberRegressor", "LogisticRegression", "PoissonRegressor",
               "Ridge")

__all__ = ["least_squares", "logistic", "multinomial", "poisson", "huber",
           *_ESTIMATORS]


def __getattr__(name):
    # The estimators import scikit-learn; only when asked for.
    if name in _ESTIMATORS:
        from . import _estimators
        return getattr(_estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
