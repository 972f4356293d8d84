"""rmsopt.curve_fit against scipy.optimize.curve_fit.

Tolerances: popt to 1e-5 relative (RMSProp stops where the cost stops
decreasing; measured at most 3e-6), pcov to 1e-3 relative to its largest
entry (scipy's Jacobian uses forward differences at its own solution;
measured at most 3e-5).
"""

import warnings

import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize import OptimizeWarning

import rmsopt


def decay(x, a, b, c):
    return a * np.exp(-b * x) + c


def gauss(x, a, mu, s):
    return a * np.exp(-0.5 * ((x - mu) / s) ** 2)


def michaelis_menten(x, vmax, km):
    return vmax * x / (km + x)


RNG = np.random.default_rng(0)
X_DECAY = np.linspace(0, 4, 50)
Y_DECAY = decay(X_DECAY, 2.5, 1.3, 0.5) + 0.05 * RNG.standard_normal(50)
X_GAUSS = np.linspace(-5, 5, 80)
Y_GAUSS = gauss(X_GAUSS, 3, 0.7, 1.2) + 0.1 * RNG.standard_normal(80)
# Puromycin (treated), the classic Michaelis-Menten data set (Bates & Watts)
X_MM = np.array([0.02, 0.02, 0.06, 0.06, 0.11, 0.11, 0.22, 0.22, 0.56, 0.56,
                 1.10, 1.10])
Y_MM = np.array([76, 47, 97, 107, 123, 139, 159, 152, 191, 201, 207, 200.])
SIGMA = 0.05 + 0.02 * RNG.random(50)
COV = 0.003 * np.exp(-np.abs(np.subtract.outer(X_DECAY, X_DECAY)) / 0.5)

PROBLEMS = {
    "decay": (decay, X_DECAY, Y_DECAY, [1, 1, 1], {}),
    "gauss": (gauss, X_GAUSS, Y_GAUSS, [2, 0, 1], {}),
    "michaelis-menten": (michaelis_menten, X_MM, Y_MM, [200, 0.1], {}),
    "sigma": (decay, X_DECAY, Y_DECAY, [1, 1, 1], {"sigma": SIGMA}),
    "absolute-sigma": (decay, X_DECAY, Y_DECAY, [1, 1, 1],
                       {"sigma": SIGMA, "absolute_sigma": True}),
    "covariance": (decay, X_DECAY, Y_DECAY, [1, 1, 1], {"sigma": COV}),
    "bounds": (michaelis_menten, X_MM, Y_MM, [200, 0.1],
               {"bounds": ([0, 0.07], [250, 1])}),
}


def assert_close(popt, pcov, ref, ref_cov):
    np.testing.assert_allclose(popt, ref, rtol=1e-5)
    np.testing.assert_allclose(pcov, ref_cov, rtol=0,
                               atol=1e-3 * np.abs(ref_cov).max())


@pytest.mark.parametrize("name", PROBLEMS)
def test_matches_scipy(name):
    f, x, y, p0, kw = PROBLEMS[name]
    y0 = y.copy()
    popt, pcov = rmsopt.curve_fit(f, x, y, p0=p0, **kw)
    assert np.array_equal(y, y0)
    ref, ref_cov = so.curve_fit(f, x, y, p0=p0, **kw)
    assert_close(popt, pcov, ref, ref_cov)


def test_bounds_active():
    """The bound on km binds: both stop on it."""
    bounds = ([0, 0.08], [np.inf, 1])
    popt, _ = rmsopt.curve_fit(michaelis_menten, X_MM, Y_MM, p0=[200, 0.1],
                               bounds=bounds)
    ref, _ = so.curve_fit(michaelis_menten, X_MM, Y_MM, p0=[200, 0.1],
                          bounds=bounds)
    assert popt[1] == 0.08 and ref[1] == pytest.approx(0.08)
    np.testing.assert_allclose(popt, ref, rtol=1e-5)


def test_default_p0_from_signature_and_bounds():
    def line(x, a, b):
        return a * x + b
    x = np.linspace(0, 1, 20)
    y = 3 * x - 1
    popt, _ = rmsopt.curve_fit(line, x, y)
    np.testing.assert_allclose(popt, [3, -1], atol=1e-6)
    popt, _ = rmsopt.curve_fit(line, x, y, bounds=([0, -5], [10, 5]))
    np.testing.assert_allclose(popt, [3, -1], atol=1e-6)


def test_analytic_jacobian():
    def jac(x, a, b, c):
        e = np.exp(-b * x)
        return np.column_stack([e, -a * x * e, np.ones_like(x)])
    popt, pcov = rmsopt.curve_fit(decay, X_DECAY, Y_DECAY, p0=[1, 1, 1],
                                  jac=jac)
    ref, ref_cov = so.curve_fit(decay, X_DECAY, Y_DECAY, p0=[1, 1, 1],
                                jac=jac)
    assert_close(popt, pcov, ref, ref_cov)


def test_full_output():
    popt, pcov, info, mesg, ier = rmsopt.curve_fit(
        decay, X_DECAY, Y_DECAY, p0=[1, 1, 1], full_output=True)
    assert ier == 1 and isinstance(mesg, str)
    np.testing.assert_allclose(info["fvec"], decay(X_DECAY, *popt) - Y_DECAY)
    assert info["nfev"] > info["nit"] > 0


def test_covariance_unknown_as_scipy():
    """As many data as parameters: scipy warns and gives inf; so do we."""
    x, y = np.array([0.0, 1.0]), np.array([1.0, 3.0])

    def line(x, a, b):
        return a * x + b
    with pytest.warns(OptimizeWarning, match="Covariance"):
        popt, pcov = rmsopt.curve_fit(line, x, y, p0=[1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        ref, ref_cov = so.curve_fit(line, x, y, p0=[1, 1])
    assert np.isinf(pcov).all() and np.isinf(ref_cov).all()
    np.testing.assert_allclose(popt, ref, atol=1e-6)
    # absolute_sigma: the covariance is known
    popt, pcov = rmsopt.curve_fit(line, x, y, p0=[1, 1],
                                  sigma=[1.0, 1.0], absolute_sigma=True)
    np.testing.assert_allclose(pcov, [[2, -1], [-1, 1]], atol=1e-6)


def test_max_iterations_is_an_error():
    with pytest.raises(RuntimeError, match="Optimal parameters not found: "
                                           "max_iter=10"):
        rmsopt.curve_fit(decay, X_DECAY, Y_DECAY, p0=[1, 1, 1], maxiter=10,
                         polish=False)


def test_the_polish_finishes_a_short_rmsprop_phase():
    """maxiter bounds RMSProp only: least_squares finishes from its best
    point, to scipy's answer."""
    popt, pcov, info, mesg, ier = rmsopt.curve_fit(
        decay, X_DECAY, Y_DECAY, p0=[1, 1, 1], maxiter=10,
        full_output=True)
    ref, ref_cov = so.curve_fit(decay, X_DECAY, Y_DECAY, p0=[1, 1, 1])
    assert info["nit"] == 10 and "max_iter=10" in info["rmsprop"]
    assert info["polish"].success and ier == 1
    assert_close(popt, pcov, ref, ref_cov)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"sigma": np.ones(3)}, ValueError, "incorrect shape"),
    ({"sigma": -np.ones(50)}, ValueError, "positive"),
    ({"sigma": -np.eye(50)}, ValueError, "positive definite"),
    ({"p0": [5, 1, 1], "bounds": (0, 2)}, ValueError, "infeasible"),
    ({"bounds": ([0, 0], [1, 1, 1])}, ValueError, "bounds"),
    ({"jac": "2-point"}, ValueError, "jac must be"),
    ({"disp": True}, ValueError, "may not set disp"),
    ({"maxiter": -1}, ValueError, "maxiter must be an integer >= 0"),
    ({"maxiter": 2.5}, ValueError, "maxiter must be an integer >= 0"),
    ({"polish": "yes"}, TypeError, "polish must be True or False"),
])
def test_bad_input(kwargs, error, match):
    kwargs = {"p0": [1, 1, 1], **kwargs}
    with pytest.raises(error, match=match):
        rmsopt.curve_fit(decay, X_DECAY, Y_DECAY, **kwargs)


def test_nan_data():
    y = Y_DECAY.copy()
    y[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rmsopt.curve_fit(decay, X_DECAY, y, p0=[1, 1, 1])
    with pytest.raises(ValueError, match="number of fit parameters"):
        rmsopt.curve_fit(lambda x, *p: x, X_DECAY, Y_DECAY)
