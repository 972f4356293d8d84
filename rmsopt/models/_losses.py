r"""Loss-and-gradient functions of classical models, compiled with numba.

Each is ``loss(w, out, X, y, l2, fit_intercept) -> float`` (Huber's takes
``epsilon`` too): it
writes the gradient into ``out`` and returns the value, the in-place form
that :func:`rmsopt.minimize` runs with ``jac=True`` in its compiled loop with
no allocation per iteration (the multinomial loss allocates one vector of
``n_classes``).

The data term is a mean over the samples, so its scale does not depend on
the number of samples (nor on the size of a mini-batch), and the penalty is

.. math::

    \tfrac12 \sum_j \lambda_j \lVert W_{\cdot j} \rVert^2

on the coefficients only, never on the intercept: ``l2`` is one
:math:`\lambda` for every feature (a float) or one per feature (an array of
shape ``(n_features,)``; the estimators use that to fit standardised
features).

Layout of ``w``: the coefficients first, then the intercept(s) when
``fit_intercept`` (the multinomial coefficients are the ``(n_classes,
n_features)`` matrix in row-major order, then ``n_classes`` intercepts;
Huber's scale comes last). X is a 2-D float array of shape ``(n_samples,
n_features)`` (row-major is fastest), y a 1-D array of ``n_samples``.

Bounds checking is off in compiled code, so each function checks the sizes
of ``w``, ``X`` and ``y`` (and the class labels) itself, in O(1) per sample:
a mismatch fills ``out`` with NaN and returns NaN, which ends a
:func:`rmsopt.minimize` run with status 3 instead of reading outside the
arrays.
"""

import math

import numba
import numpy as np
from numba import types
from numba.extending import overload

from .._docs import filled
from .._layout import JIT_OPTIONS, cached_njit


# The parameters the losses share, written once (rmsopt._docs).
_shared_docs = filled({
    "w": """\
w : ndarray, shape (n_features,) or (n_features + 1,)
    Coefficients, then the intercept if ``fit_intercept``.""",
    "out, X, y": """\
out : ndarray, shape like ``w``
    Receives the gradient.
X : ndarray, shape (n_samples, n_features)
y : ndarray, shape (n_samples,)""",
    "l2, fit_intercept": """\
l2 : float or ndarray of shape (n_features,)
fit_intercept : bool""",
})
# The helpers below are inlined into the losses (numba's IR inliner, or
# LLVM's for a per-sample term passed as an argument); they keep the losses'
# options wherever numba compiles one on its own.
_INLINE = dict(inline="always", **JIT_OPTIONS)


def _lam(l2, j):
    """The penalty of feature ``j``: ``l2`` itself or ``l2[j]``."""
    return l2 if np.ndim(l2) == 0 else l2[j]


def _l2_ok(l2, p):
    """The penalty is one number, or one per feature."""
    return np.ndim(l2) == 0 or np.size(l2) == p


def _check_l2_type(l2):
    if isinstance(l2, (types.Float, types.Integer)):
        return "scalar"
    if isinstance(l2, types.Array) and l2.ndim == 1:
        return "array"
    raise numba.TypingError("l2 must be a float or a 1-D array of one "
                            "penalty per feature")


# numba compiles the branch for the type of l2 only (a float or an array).
@overload(_lam, inline="always",
          jit_options=JIT_OPTIONS)
def _lam_overload(l2, j):
    if _check_l2_type(l2) == "scalar":
        return lambda l2, j: l2
    return lambda l2, j: l2[j]


@overload(_l2_ok, inline="always",
          jit_options=JIT_OPTIONS)
def _l2_ok_overload(l2, p):
    if _check_l2_type(l2) == "scalar":
        return lambda l2, p: True
    return lambda l2, p: l2.size == p


@numba.njit(**_INLINE)
def _fail(out):
    out[:] = np.nan
    return np.nan


# The checks combine with ``&``, not ``and``: without branches inside them,
# numba prunes the reference counts that inlining their array arguments adds.
@numba.njit(**_INLINE)
def _data_ok(X, y, l2):
    """One target per sample, at least one sample, ``l2`` of a good size."""
    n, p = X.shape
    return (y.size == n) & (n > 0) & _l2_ok(l2, p)


@numba.njit(**_INLINE)
def _glm_ok(w, X, y, l2, fit_intercept, n_extra):
    """The sizes of a GLM loss's arguments agree: ``w`` holds the
    coefficients, the intercept if ``fit_intercept``, then ``n_extra``
    more parameters."""
    fi = 1 if fit_intercept else 0
    return (w.size == X.shape[1] + fi + n_extra) & _data_ok(X, y, l2)


@numba.njit(**_INLINE)
def _dot(X, i, w, start, z):
    """``z + X[i] . w[start:start + p]``, summed from left to right."""
    for j in range(X.shape[1]):
        z += X[i, j] * w[start + j]
    return z


@numba.njit(**_INLINE)
def _add_row(out, start, d, X, i):
    """``out[start:start + p] += d * X[i]``."""
    for j in range(X.shape[1]):
        out[start + j] += d * X[i, j]


@numba.njit(**_INLINE)
def _glm_sums(term, params, w, out, X, y, fit_intercept):
    r"""The data term of a GLM loss, summed over the samples.

    ``term(X, i, w, b, y_i, params)`` gives sample ``i``'s loss, its
    derivative ``d_i`` with respect to the linear predictor
    :math:`x_i^\top w + b` (``b`` is 0 without an intercept), and its
    derivative with respect to an extra parameter (0 when there is none).
    Sets ``out`` to zero, then its coefficients' part to
    :math:`\sum_i d_i x_i` (and the intercept's to :math:`\sum_i d_i`);
    returns the sums of the losses and of the extra derivatives. Every sum
    runs over the samples in order, as the losses always added them.
    """
    n, p = X.shape
    b = w[p] if fit_intercept else 0.0
    out[:] = 0.0
    total = 0.0
    db = 0.0
    extra = 0.0
    for i in range(n):
        value, d, e = term(X, i, w, b, y[i], params)
        total += value
        _add_row(out, 0, d, X, i)
        db += d
        extra += e
    if fit_intercept:  # the same additions as out[p] += d, in a register
        out[p] = db
    return total, extra


@numba.njit(**_INLINE)
def _mean_and_penalty(total, out, w, X, l2, n_rows):
    """``total / n`` plus the penalty on the ``n_rows`` rows of ``p``
    coefficients that start ``w``; divides ``out[:w.size]`` by ``n`` and adds
    the penalty's gradient."""
    n, p = X.shape
    f = total / n
    for j in range(w.size):
        out[j] /= n
    for k in range(n_rows):
        for j in range(p):
            lam = _lam(l2, j)
            wkj = w[k * p + j]
            f += 0.5 * lam * wkj * wkj
            out[k * p + j] += lam * wkj
    return f


# The per-sample terms of the GLM losses, for _glm_sums.
@numba.njit(**_INLINE)
def _squared_residual(X, i, w, b, yi, params):
    r = _dot(X, i, w, 0, b - yi)
    return r * r, r, 0.0


@cached_njit()
@_shared_docs
def least_squares(w, out, X, y, l2, fit_intercept):
    r"""Least squares with an L2 penalty (ridge), and its gradient.

    .. math::

        f(w, b) = \frac{1}{2n} \sum_{i=1}^n (x_i^\top w + b - y_i)^2
                  + \frac12 \sum_j \lambda_j w_j^2

    scikit-learn's :class:`~sklearn.linear_model.Ridge` minimises
    :math:`2n f` with :math:`\lambda_j = \alpha / n`.

    Parameters
    ----------
    w : ndarray, shape (n_features,) or (n_features + 1,)
        Coefficients, then the intercept :math:`b` if ``fit_intercept``.
    %(out, X, y)s
    l2 : float or ndarray of shape (n_features,)
        :math:`\lambda`.
    fit_intercept : bool

    Returns
    -------
    f : float
        :math:`f(w, b)`, half the mean squared residual plus the penalty.

    Examples
    --------
    >>> import numpy as np, rmsopt
    >>> from rmsopt.models import least_squares
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    >>> res = rmsopt.minimize(least_squares, np.zeros(4),
    ...                       args=(X, y, 0.0, True), jac=True,
    ...                       options={"lr": 0.01, "maxiter": 3000})
    >>> bool(np.allclose(res.x, [1.0, -2.0, 0.5, 3.0], atol=0.05))
    True
    """
    if not _glm_ok(w, X, y, l2, fit_intercept, 0):
        return _fail(out)
    total, _ = _glm_sums(_squared_residual, (), w, out, X, y, fit_intercept)
    return _mean_and_penalty(0.5 * total, out, w, X, l2, 1)


@numba.njit(**_INLINE)
def _log_loss(X, i, w, b, yi, params):
    z = _dot(X, i, w, 0, b)
    e = math.exp(-abs(z))
    # sigmoid(z) without overflow on either side
    s = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
    return max(z, 0.0) + math.log1p(e) - yi * z, s - yi, 0.0


@cached_njit()
@_shared_docs
def logistic(w, out, X, y, l2, fit_intercept):
    r"""Binary logistic regression (log loss) with an L2 penalty.

    With :math:`z_i = x_i^\top w + b` and labels :math:`y_i \in \{0, 1\}`,

    .. math::

        f(w, b) = \frac1n \sum_{i=1}^n
                  \left[\log\left(1 + e^{z_i}\right) - y_i z_i\right]
                  + \frac12 \sum_j \lambda_j w_j^2,
        \qquad
        \nabla_w f = \frac1n \sum_i (\sigma(z_i) - y_i)\, x_i + \lambda w

    computed as :math:`\max(z, 0) + \operatorname{log1p}(e^{-|z|})` so that
    nothing overflows. scikit-learn's
    :class:`~sklearn.linear_model.LogisticRegression` minimises :math:`C n f`
    with :math:`\lambda_j = 1 / (C n)`.

    Parameters
    ----------
    %(w)s
    %(out, X, y)s
        Labels 0 or 1 (any real values in [0, 1] are accepted as
        probabilities).
    %(l2, fit_intercept)s

    Returns
    -------
    f : float
        :math:`f(w, b)`, the mean log loss plus the penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from rmsopt.models import logistic
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([0.0, 0.0, 1.0, 1.0])
    >>> g = np.empty(2)
    >>> f = logistic(np.zeros(2), g, X, y, 0.0, True)
    >>> round(f, 6), g  # log(2), and the mean of (0.5 - y) * [x, 1]
    (0.693147, array([-0.5,  0. ]))
    """
    if not _glm_ok(w, X, y, l2, fit_intercept, 0):
        return _fail(out)
    total, _ = _glm_sums(_log_loss, (), w, out, X, y, fit_intercept)
    return _mean_and_penalty(total, out, w, X, l2, 1)


@cached_njit()
@_shared_docs
def multinomial(w, out, X, y, l2, fit_intercept):
    r"""Multinomial logistic regression (softmax cross-entropy) with L2.

    With :math:`K` classes, coefficients :math:`W` of shape :math:`(K, p)`,
    intercepts :math:`b` and :math:`z_{ik} = W_k^\top x_i + b_k`,

    .. math::

        f(W, b) = \frac1n \sum_{i=1}^n
                  \left[\log \sum_{k=1}^K e^{z_{ik}} - z_{i y_i}\right]
                  + \frac12 \sum_{k, j} \lambda_j W_{kj}^2,
        \qquad
        \nabla_{W_k} f = \frac1n \sum_i
                  (\operatorname{softmax}(z_i)_k - [y_i = k])\, x_i
                  + \lambda \odot W_k

    with the log-sum-exp shifted by :math:`\max_k z_{ik}`. This is
    scikit-learn's symmetric (over-parametrised) form, which the penalty makes
    unique: :class:`~sklearn.linear_model.LogisticRegression` minimises
    :math:`C n f` with :math:`\lambda_j = 1 / (C n)`.

    Parameters
    ----------
    w : ndarray, shape (K * n_features,) or (K * (n_features + 1),)
        ``W`` in row-major order, then the ``K`` intercepts if
        ``fit_intercept``. ``K`` is inferred from the size of ``w``.
    %(out, X, y)s
        Class indices ``0, ..., K - 1`` (integers, or floats holding them).
        Anything else gives NaN.
    %(l2, fit_intercept)s

    Returns
    -------
    f : float
        :math:`f(W, b)`, the mean cross-entropy plus the penalty.

    Examples
    --------
    >>> import numpy as np
    >>> from rmsopt.models import multinomial
    >>> X = np.eye(3)
    >>> y = np.array([0, 1, 2])
    >>> g = np.empty(12)                # 3 classes x (3 features + 1)
    >>> f = multinomial(np.zeros(12), g, X, y, 0.0, True)
    >>> round(f, 6) == round(float(np.log(3)), 6)
    True
    """
    n, p = X.shape
    width = p + (1 if fit_intercept else 0)
    if width == 0 or not _data_ok(X, y, l2):
        return _fail(out)
    K = w.size // width
    if K < 1 or K * width != w.size:
        return _fail(out)
    out[:] = 0.0
    z = np.empty(K)
    total = 0.0
    for i in range(n):
        label = y[i]
        c = int(label)
        if c < 0 or c >= K or c != label:
            return _fail(out)
        zmax = -np.inf
        for k in range(K):
            bk = w[K * p + k] if fit_intercept else 0.0
            z[k] = _dot(X, i, w, k * p, bk)
            zmax = max(zmax, z[k])
        zc = z[c]
        s = 0.0
        for k in range(K):
            z[k] = math.exp(z[k] - zmax)
            s += z[k]
        total += math.log(s) + zmax - zc  # log-sum-exp - z_c
        for k in range(K):
            d = z[k] / s - (1.0 if k == c else 0.0)
            _add_row(out, k * p, d, X, i)
            if fit_intercept:
                out[K * p + k] += d
    return _mean_and_penalty(total, out, w, X, l2, K)


@numba.njit(**_INLINE)
def _poisson_nll(X, i, w, b, yi, params):
    z = _dot(X, i, w, 0, b)
    mu = math.exp(z)
    return mu - yi * z, mu - yi, 0.0


@cached_njit()
@_shared_docs
def poisson(w, out, X, y, l2, fit_intercept):
    r"""Poisson regression with the log link and an L2 penalty.

    With :math:`z_i = x_i^\top w + b` (so the mean is :math:`\mu_i = e^{z_i}`)
    and counts :math:`y_i \ge 0`,

    .. math::

        f(w, b) = \frac1n \sum_{i=1}^n \left[e^{z_i} - y_i z_i\right]
                  + \frac12 \sum_j \lambda_j w_j^2,
        \qquad
        \nabla_w f = \frac1n \sum_i (e^{z_i} - y_i)\, x_i + \lambda w

    This is the negative log-likelihood up to a constant: the half Poisson
    deviance that scikit-learn's
    :class:`~sklearn.linear_model.PoissonRegressor` averages is
    :math:`f` plus :math:`\frac1n \sum_i (y_i \log y_i - y_i)` (with
    :math:`0 \log 0 = 0`), and its objective is that plus the penalty with
    :math:`\lambda_j = \alpha`. A huge :math:`z` overflows to inf, which ends a
    :func:`rmsopt.minimize` run with status 3.

    Parameters
    ----------
    %(w)s
    %(out, X, y)s
        Non-negative targets (counts or rates).
    %(l2, fit_intercept)s

    Returns
    -------
    f : float
        :math:`f(w, b)`, the mean negative log-likelihood (up to a
        constant) plus the penalty.

    Examples
    --------
    >>> import numpy as np, rmsopt
    >>> from rmsopt.models import poisson
    >>> X = np.zeros((4, 1))
    >>> y = np.array([1.0, 2.0, 3.0, 2.0])   # mean 2: the intercept is log 2
    >>> res = rmsopt.minimize(poisson, np.zeros(2), args=(X, y, 0.0, True),
    ...                       jac=True, options={"lr": 0.01, "maxiter": 2000})
    >>> round(float(np.exp(res.x[1])), 2)
    2.0
    """
    if not _glm_ok(w, X, y, l2, fit_intercept, 0):
        return _fail(out)
    total, _ = _glm_sums(_poisson_nll, (), w, out, X, y, fit_intercept)
    return _mean_and_penalty(total, out, w, X, l2, 1)


@numba.njit(**_INLINE)
def _huber_term(X, i, w, b, yi, params):
    """The loss, the derivatives in the linear predictor and in sigma."""
    sigma, epsilon, eps2 = params
    r = _dot(X, i, w, 0, b - yi)
    t = r / sigma
    if abs(t) < epsilon:
        value = sigma + t * r          # sigma + t^2 sigma
        d = 2.0 * t
        dsigma = 1.0 - t * t
    else:
        value = sigma + (2.0 * epsilon * abs(t) - eps2) * sigma
        d = 2.0 * epsilon if t > 0 else -2.0 * epsilon
        dsigma = 1.0 - eps2
    return value, d, dsigma


@cached_njit()
@_shared_docs
def huber(w, out, X, y, l2, fit_intercept, epsilon):
    r"""Huber regression with a scale estimated jointly (Owen's form).

    With residuals :math:`r_i = x_i^\top w + b - y_i`, scale
    :math:`\sigma > 0` and :math:`H_\epsilon(t) = t^2` for
    :math:`|t| < \epsilon`, :math:`2 \epsilon |t| - \epsilon^2` otherwise,

    .. math::

        f(w, b, \sigma) = \frac1n \sum_{i=1}^n
            \left[\sigma + H_\epsilon\!\left(\frac{r_i}{\sigma}\right)
            \sigma\right] + \frac12 \sum_j \lambda_j w_j^2,
        \qquad
        \frac{\partial f}{\partial \sigma} = \frac1n \sum_i
            \left[1 - \min\!\left(\frac{r_i^2}{\sigma^2},
            \epsilon^2\right)\right]

    and :math:`\nabla_w f = \frac1n \sum_i H'_\epsilon(r_i/\sigma)\, x_i +
    \lambda w`. It is jointly convex in :math:`(w, b, \sigma)` for
    :math:`\sigma > 0`; keep :math:`\sigma` positive with a bound (a
    :math:`\sigma \le 0` gives NaN). scikit-learn's
    :class:`~sklearn.linear_model.HuberRegressor` minimises :math:`n f` with
    :math:`\lambda_j = 2 \alpha / n`.

    Parameters
    ----------
    w : ndarray, shape (n_features + 1,) or (n_features + 2,)
        Coefficients, the intercept if ``fit_intercept``, then
        :math:`\sigma`.
    %(out, X, y)s
    %(l2, fit_intercept)s
    epsilon : float
        Where the loss turns from quadratic to linear, in units of
        :math:`\sigma`.

    Returns
    -------
    f : float
        :math:`f(w, b, \sigma)`.

    Examples
    --------
    >>> import numpy as np, rmsopt
    >>> from rmsopt.models import huber
    >>> X = np.arange(10.0).reshape(-1, 1)
    >>> y = 2 * X[:, 0] + 1
    >>> y[3] = 100.0                                   # an outlier
    >>> bounds = [(None, None), (None, None), (1e-6, None)]
    >>> res = rmsopt.minimize(huber, np.array([0.0, 0.0, 1.0]),
    ...                       args=(X, y, 0.0, True, 1.35), jac=True,
    ...                       bounds=bounds,
    ...                       options={"lr": 0.01, "maxiter": 4000})
    >>> bool(abs(res.x[0] - 2) < 0.1)                  # least squares: 0.7
    True
    """
    # sigma is the last parameter; an empty w has none and fails the check.
    sigma = w[w.size - 1] if w.size > 0 else np.nan
    if not (_glm_ok(w, X, y, l2, fit_intercept, 1) and sigma > 0.0):
        return _fail(out)
    params = (sigma, epsilon, epsilon * epsilon)
    total, dsigma = _glm_sums(_huber_term, params, w, out, X, y,
                              fit_intercept)
    out[w.size - 1] = dsigma
    return _mean_and_penalty(total, out, w, X, l2, 1)
