r"""scikit-learn estimators fitted with RMSProp.

Same names, parameters, objective and attributes as scikit-learn's
:class:`~sklearn.linear_model.Ridge`,
:class:`~sklearn.linear_model.LogisticRegression`,
:class:`~sklearn.linear_model.PoissonRegressor` and
:class:`~sklearn.linear_model.HuberRegressor`, so that they can replace them
in a pipeline and their fitted objectives can be compared. RMSProp's own
settings come as extra parameters (``lr``, ``momentum``, ``standardize``,
``options``). See :mod:`rmsopt._fit` for how a fit runs, and
:mod:`rmsopt.models._params` for what the parameters must be.
"""

import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import d2_tweedie_score
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised without sklearn
    raise ImportError("The estimators of rmsopt.models need scikit-learn "
                      "(>= 1.6): pip install rmsopt[models]") from exc

from . import _losses
from .._fit import polished_fit, rmsprop_fit
from ._params import (AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, check_params,
                      shared_docs)
from ._scaling import standardize


TOL_POLISHED, TOL = 1e-8, 1e-6  # the default tol with and without polish
MAX_DENSE = 2000  # coefficients up to which the polish's curvature is a matrix


class _RMSPropLinear(BaseEstimator):
    """What the four estimators share: the checks of the parameters, the fit
    on standardised features (through :mod:`rmsopt._fit`) and the
    linear scores.

    A subclass gives ``_checks`` (its own parameters' tests), ``_scale_y``,
    and the methods ``_validate_fit`` (X and the targets the loss takes),
    ``_problem`` (the loss, start, arguments and bounds on the standardised
    data) and ``_set_solution`` (the fitted attributes).
    """

    _checks = {}
    _scale_y = False  # standardise y as well (Ridge, HuberRegressor)
    # the polish's curvature a matrix (False: its diagonal; Huber's data
    # term weighs only the inliers, by 1 / scale: X^T X / n misleads)
    _dense_curvature = True

    def fit(self, X, y):
        """Fit the model.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,)
            Targets: class labels for :class:`LogisticRegression`,
            non-negative for :class:`PoissonRegressor`.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        options = check_params(self, self._checks)
        X, y = self._validate_fit(X, y)
        Xs, ys, scaling = standardize(X, y, center=bool(self.fit_intercept),
                                      scale=self.standardize,
                                      scale_y=self._scale_y)
        loss, w0, args, bounds = self._problem(Xs, ys, scaling)
        polish = bool(self.polish) and self.batch_size is None
        max_iter = int(self.max_iter)
        tol = float(self.tol) if self.tol is not None else (
            TOL_POLISHED if polish else TOL)
        settings = {"lr": float(self.lr), "momentum": float(self.momentum),
                    "max_iter": max_iter, "tol": tol, "options": options,
                    "bounds": bounds}
        if polish:
            fit = polished_fit(loss, w0, args, **settings,
                               curvature=self._curvature(Xs, w0, args[2]))
        else:
            fit = rmsprop_fit(loss, w0, args, **settings,
                              batch_size=self.batch_size)
        self._set_solution(fit, scaling, X, y)
        if not fit.converged:  # warn as scikit-learn does, at fit's caller
            warnings.warn(f"{type(self).__name__} (RMSProp) did not "
                          f"converge: {fit.message}.", ConvergenceWarning,
                          stacklevel=2)
        return self

    def _curvature(self, Xs, w0, l2):
        r"""The Hessian in standardised units, roughly, for the polish:
        :math:`S \otimes X^\top X / n` for the data term, with ``S`` the
        loss's weights between the rows of coefficients (one row but for a
        multinomial; ``_class_weights``), plus each coefficient's own
        penalty ``l2`` (the coefficients first in ``w``; then the
        intercepts, uncoupled as the features are centred, and the rest,
        at 1). A ridge of 1e-6 of its mean diagonal keeps it positive
        definite; only its diagonal above ``MAX_DENSE`` coefficients, or
        where ``_dense_curvature`` is False."""
        rows, (n, p) = self._coefficient_rows(), Xs.shape
        S, penalty = self._class_weights(), np.tile(l2 * np.ones(p), rows)
        if not self._dense_curvature or rows * p > MAX_DENSE:
            d = np.kron(S.diagonal(), (Xs * Xs).mean(axis=0)) + penalty
            return np.concatenate([d + 1e-6 * max(float(d.mean()), 1e-300),
                                   np.ones(w0.size - rows * p)])
        block = np.kron(S, Xs.T @ Xs / n) + np.diag(penalty)
        block += 1e-6 * max(float(np.mean(block.diagonal())), 1e-300) * \
            np.eye(rows * p)
        H = np.eye(w0.size)
        H[:rows * p, :rows * p] = block
        return H

    def _class_weights(self):
        r"""The data term's Hessian between rows of coefficients, relative
        to :math:`X^\top X / n`."""
        return np.eye(self._coefficient_rows())

    def _coefficient_rows(self):
        return 1

    def _linear_predictor(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_.T + self.intercept_


@shared_docs
class _Regressor(RegressorMixin, _RMSPropLinear):
    """What the three regressors share: real targets, one coefficient per
    feature, and the linear prediction."""

    def _validate_fit(self, X, y):
        return validate_data(self, X, y, dtype=np.float64, y_numeric=True)

    def _set_solution(self, fit, scaling, X, y):
        """Coefficients and intercept of the unscaled problem from the scaled
        ones: x_std w_std + b_std = x (w_std / s) + b_std - mean . w."""
        ws, p = fit.w, X.shape[1]
        self.coef_ = ws[:p] * scaling.y_scale / scaling.x_scale
        self.intercept_ = 0.0
        if self.fit_intercept:
            self.intercept_ = (scaling.y_mean + scaling.y_scale * ws[p]
                               - float(scaling.x_mean @ self.coef_))
        self.n_iter_ = fit.n_iter

    def predict(self, X):
        """Predicted targets.

        %(X)s

        Returns
        -------
        y : ndarray, shape (n_samples,)
        """
        return self._linear_predictor(X)

    def score(self, X, y, sample_weight=None):
        """R², the coefficient of determination of the predictions.

        %(X, y, sample_weight)s

        Returns
        -------
        r2 : float
        """
        return super().score(X, y, sample_weight=sample_weight)


@shared_docs
class Ridge(_Regressor):
    r"""Linear least squares with an L2 penalty, fitted with RMSProp.

    Minimises scikit-learn's :class:`~sklearn.linear_model.Ridge` objective

    .. math::

        \lVert y - X w - b \rVert_2^2 + \alpha \lVert w \rVert_2^2

    (the intercept :math:`b` is not penalised) through
    :func:`rmsopt.models.least_squares`.

    Parameters
    ----------
    alpha : float, default 1.0
        Strength of the penalty (>= 0).
    fit_intercept : bool, default True
    max_iter : int, default 10000
        Most iterations (RMSProp's, then L-BFGS-B's with ``polish``).
    tol : float, optional
        The fit has converged when the largest component of the gradient
        of the standardised mean objective is at most
        ``tol * max(1, objective)`` (:mod:`rmsopt._fit`'s rule). Default:
        1e-8 with ``polish`` (coefficients to about 1e-4 where the
        penalty is weak: the error is the gradient over the smallest
        curvature), 1e-6 without (RMSProp alone; scikit-learn's default is
        1e-4, on its own solvers' criteria).
    %(rmsprop)s

    Attributes
    ----------
    coef_ : ndarray, shape (n_features,)
    intercept_ : float
    n_iter_ : int
        RMSProp iterations run.
    %(n_features_in_)s

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from rmsopt.models import Ridge
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = Ridge(alpha=0.1).fit(X, y)
    >>> round(model.score(X, y), 3)
    0.513
    """

    _checks = {"alpha": NON_NEGATIVE}
    _scale_y = True

    def __init__(self, alpha=1.0, *, fit_intercept=True, max_iter=10000,
                 tol=None, lr=0.01, momentum=0.9, batch_size=None,
                 standardize=True, polish=True, options=None):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.standardize = standardize
        self.polish = polish
        self.options = options

    def _problem(self, Xs, ys, scaling):
        n, p = Xs.shape
        fi = bool(self.fit_intercept)
        l2 = self.alpha / (n * scaling.x_scale ** 2)
        return _losses.least_squares, np.zeros(p + fi), (Xs, ys, l2, fi), None


@shared_docs
class HuberRegressor(_Regressor):
    r"""Linear regression robust to outliers (Huber loss), fitted with
    RMSProp.

    Minimises scikit-learn's :class:`~sklearn.linear_model.HuberRegressor`
    objective over the coefficients :math:`w`, intercept :math:`b` and scale
    :math:`\sigma > 0`,

    .. math::

        \sum_{i=1}^n \left[\sigma + H_\epsilon\!\left(
        \frac{y_i - x_i^\top w - b}{\sigma}\right)\sigma\right]
        + \alpha \lVert w \rVert_2^2

    with :math:`H_\epsilon(t) = t^2` for :math:`|t| < \epsilon` and
    :math:`2\epsilon|t| - \epsilon^2` beyond, through
    :func:`rmsopt.models.huber`.

    Parameters
    ----------
    epsilon : float, default 1.35
        Where the loss turns linear (>= 1); smaller is more robust.
    max_iter : int, default 10000
    alpha : float, default 0.0001
        Strength of the L2 penalty (>= 0).
    fit_intercept : bool, default True
    tol : float, optional
        As for :class:`Ridge` (scikit-learn's default is 1e-5).
    %(rmsprop)s

    Attributes
    ----------
    coef_ : ndarray, shape (n_features,)
    intercept_ : float
    scale_ : float
        :math:`\sigma`.
    outliers_ : ndarray of bool, shape (n_samples,)
        Samples whose absolute residual exceeds ``epsilon * scale_``.
    n_iter_ : int
    %(n_features_in_)s

    Examples
    --------
    >>> import numpy as np
    >>> from rmsopt.models import HuberRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 2))
    >>> y = X @ np.array([1.0, 2.0]) + 0.1 * rng.standard_normal(100)
    >>> y[:5] += 50                                    # five outliers
    >>> model = HuberRegressor().fit(X, y)
    >>> np.round(model.coef_, 1), int(model.outliers_[:5].sum())
    (array([1., 2.]), 5)
    """

    _checks = {"alpha": NON_NEGATIVE, "epsilon": AT_LEAST_ONE}
    _scale_y = True
    _dense_curvature = False

    def __init__(self, *, epsilon=1.35, max_iter=10000, alpha=0.0001,
                 fit_intercept=True, tol=None, lr=0.01, momentum=0.9,
                 batch_size=None, standardize=True, polish=True,
                 options=None):
        self.epsilon = epsilon
        self.max_iter = max_iter
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.standardize = standardize
        self.polish = polish
        self.options = options

    def _problem(self, Xs, ys, scaling):
        n, p = Xs.shape
        fi = bool(self.fit_intercept)
        # The objective is of degree one in (y, sigma), two in w: the
        # penalty gains a factor y_scale in standardised units.
        l2 = 2 * self.alpha * scaling.y_scale / (n * scaling.x_scale ** 2)
        w0 = np.zeros(p + fi + 1)
        w0[-1] = 1.0  # sigma, in units of y's standard deviation
        # sigma > 0, as scikit-learn bounds it (10 machine epsilons)
        tiny = 10 * np.finfo(np.float64).eps / scaling.y_scale
        bounds = [(None, None)] * (p + fi) + [(tiny, None)]
        return (_losses.huber, w0, (Xs, ys, l2, fi, float(self.epsilon)),
                bounds)

    def _set_solution(self, fit, scaling, X, y):
        super()._set_solution(fit, scaling, X, y)
        self.scale_ = float(fit.w[-1] * scaling.y_scale)
        residual = np.abs(y - X @ self.coef_ - self.intercept_)
        self.outliers_ = residual > self.epsilon * self.scale_


@shared_docs
class PoissonRegressor(_Regressor):
    r"""Poisson regression (log link, L2 penalty), fitted with RMSProp.

    Minimises scikit-learn's :class:`~sklearn.linear_model.PoissonRegressor`
    objective, the mean half Poisson deviance plus the penalty,

    .. math::

        \frac1n \sum_{i=1}^n \left[y_i \log\frac{y_i}{\mu_i} - y_i + \mu_i
        \right] + \frac\alpha2 \lVert w \rVert_2^2,
        \qquad \mu_i = e^{x_i^\top w + b}

    through :func:`rmsopt.models.poisson` (which leaves out the terms free
    of :math:`w`).

    Parameters
    ----------
    alpha : float, default 1.0
        Strength of the penalty (>= 0).
    %(fit_intercept, max_iter, tol)s
    %(rmsprop)s

    Attributes
    ----------
    coef_ : ndarray, shape (n_features,)
    intercept_ : float
    n_iter_ : int
    %(n_features_in_)s

    Examples
    --------
    >>> import numpy as np
    >>> from rmsopt.models import PoissonRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 2))
    >>> y = rng.poisson(np.exp(X @ np.array([0.5, -0.3]) + 1.0))
    >>> model = PoissonRegressor(alpha=0.0).fit(X, y)
    >>> np.round(model.coef_, 1), round(float(model.intercept_), 1)
    (array([ 0.5, -0.3]), 1.0)
    """

    _checks = {"alpha": NON_NEGATIVE}

    def __init__(self, *, alpha=1.0, fit_intercept=True, max_iter=10000,
                 tol=None, lr=0.01, momentum=0.9, batch_size=None,
                 standardize=True, polish=True, options=None):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.standardize = standardize
        self.polish = polish
        self.options = options

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags

    def _validate_fit(self, X, y):
        X, y = super()._validate_fit(X, y)
        if (y < 0).any():
            raise ValueError("PoissonRegressor needs targets y >= 0; got a "
                             f"minimum of {y.min()}")
        return X, y

    def _problem(self, Xs, y, scaling):
        n, p = Xs.shape
        fi = bool(self.fit_intercept)
        l2 = self.alpha / scaling.x_scale ** 2
        w0 = np.zeros(p + fi)
        if fi:  # start at the best constant model, as scikit-learn does
            w0[p] = np.log(max(float(y.mean()), np.finfo(np.float64).tiny))
        return _losses.poisson, w0, (Xs, y, l2, fi), None

    def predict(self, X):
        """Predicted means :math:`e^{X w + b}`.

        %(X)s

        Returns
        -------
        mu : ndarray, shape (n_samples,)
        """
        return np.exp(self._linear_predictor(X))

    def score(self, X, y, sample_weight=None):
        """D², the fraction of Poisson deviance explained (as scikit-learn's
        ``PoissonRegressor.score``).

        %(X, y, sample_weight)s

        Returns
        -------
        d2 : float
        """
        return d2_tweedie_score(y, self.predict(X),
                                sample_weight=sample_weight, power=1)


@shared_docs
class LogisticRegression(ClassifierMixin, _RMSPropLinear):
    r"""Logistic regression (binary or multinomial, L2 penalty), fitted with
    RMSProp.

    Minimises scikit-learn's
    :class:`~sklearn.linear_model.LogisticRegression` objective (its ``lbfgs``
    solver: multinomial from three classes on)

    .. math::

        C \sum_{i=1}^n \left[\log \sum_k e^{z_{ik}} - z_{i y_i}\right]
        + \frac12 \lVert W \rVert_F^2,
        \qquad z_{ik} = W_k^\top x_i + b_k

    which for two classes is the log loss of one linear function, through
    :func:`rmsopt.models.logistic` and :func:`rmsopt.models.multinomial`.

    Parameters
    ----------
    C : float, default 1.0
        Inverse strength of the penalty (> 0; ``np.inf`` for none).
    %(fit_intercept, max_iter, tol)s
    %(rmsprop)s

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
    coef_ : ndarray, shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray, shape (1,) or (n_classes,)
    n_iter_ : ndarray, shape (1,)
        RMSProp iterations run.
    %(n_features_in_)s

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from rmsopt.models import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> model = LogisticRegression().fit(X, y)
    >>> model.coef_.shape, round(model.score(X, y), 2)
    ((3, 4), 0.97)
    """

    _checks = {"C": POSITIVE}

    def __init__(self, C=1.0, *, fit_intercept=True, max_iter=10000,
                 tol=None, lr=0.01, momentum=0.9, batch_size=None,
                 standardize=True, polish=True, options=None):
        self.C = C
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.standardize = standardize
        self.polish = polish
        self.options = options

    def _validate_fit(self, X, y):
        """X, and the index of each sample's class in ``classes_``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("LogisticRegression needs samples of at least "
                             "2 classes in the data, but the data contains "
                             f"only one class: {self.classes_[0]!r}")
        return X, labels

    def _problem(self, Xs, labels, scaling):
        n, p = Xs.shape
        fi = bool(self.fit_intercept)
        K = len(self.classes_)
        l2 = 1.0 / (self.C * n * scaling.x_scale ** 2)
        # Start from the class frequencies (the best model without
        # features): a shorter path than from zero.
        freq = np.bincount(labels, minlength=K) / n
        self._frequencies = freq
        if K == 2:
            w0 = np.zeros(p + fi)
            if fi:
                w0[p] = np.log(freq[1] / freq[0])
            return (_losses.logistic, w0,
                    (Xs, labels.astype(np.float64), l2, fi), None)
        w0 = np.zeros(K * (p + fi))
        if fi:
            w0[K * p:] = np.log(freq) - np.log(freq).mean()
        return (_losses.multinomial, w0,
                (Xs, labels.astype(np.int64), l2, fi), None)

    def _coefficient_rows(self):
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _class_weights(self):
        """The softmax's weights at the class frequencies ``f``:
        ``diag(f) - f f^T`` (``f_0 f_1`` for two classes)."""
        f = self._frequencies
        if len(f) == 2:
            return np.array([[f[0] * f[1]]])
        return np.diag(f) - np.outer(f, f)

    def _set_solution(self, fit, scaling, X, labels):
        p = X.shape[1]
        rows = self._coefficient_rows()
        self.coef_ = fit.w[:rows * p].reshape(rows, p) / scaling.x_scale
        if self.fit_intercept:
            self.intercept_ = fit.w[rows * p:] - self.coef_ @ scaling.x_mean
            if rows > 1:
                # the softmax is the same for any common shift of the
                # (unpenalised) intercepts: the one summing to zero, as
                # scikit-learn's
                self.intercept_ -= self.intercept_.mean()
        else:
            self.intercept_ = np.zeros(rows)
        self.n_iter_ = np.array([fit.n_iter])

    def score(self, X, y, sample_weight=None):
        """The fraction of samples whose class is predicted right.

        %(X, y, sample_weight)s

        Returns
        -------
        accuracy : float
        """
        return super().score(X, y, sample_weight=sample_weight)

    def decision_function(self, X):
        """The linear scores :math:`X W^\\top + b`.

        %(X)s

        Returns
        -------
        scores : ndarray, shape (n_samples,) for two classes (the score of
            ``classes_[1]``), else (n_samples, n_classes)
        """
        scores = self._linear_predictor(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X):
        """Predicted class labels.

        %(X)s

        Returns
        -------
        labels : ndarray, shape (n_samples,)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(np.intp)]
        return self.classes_[scores.argmax(axis=1)]

    def predict_proba(self, X):
        """Class probabilities (softmax; the logistic function for two
        classes).

        %(X)s

        Returns
        -------
        proba : ndarray, shape (n_samples, n_classes)
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Logarithms of the class probabilities.

        %(X)s

        Returns
        -------
        log_proba : ndarray, shape (n_samples, n_classes)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.column_stack([np.zeros_like(scores), scores])
        top = scores.max(axis=1, keepdims=True)
        shifted = scores - top
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
