"""The ways a fit used to claim success without converging, as regression
tests on synthetic data: the shared fit loop (``rmsopt._fit``) and
``curve_fit`` report success only where the convergence test holds, return
the best point, and give the covariance scipy's rules give.

The oracles: the analytic gradient and Jacobian of each model, and
``scipy.optimize.curve_fit``.
"""

import warnings

import numpy as np
import pytest
import scipy.optimize as so

import rmsopt
from rmsopt._fit import rmsprop_fit, scaled


def quadratic(scales):
    """``loss(w, out) = sum(scales * w**2) / 2``, its gradient in ``out``,
    recording each point and loss it is called at."""
    calls = []

    def loss(w, out):
        out[:] = scales * w
        f = 0.5 * float(np.sum(scales * w * w))
        calls.append((w.copy(), f))
        return f
    return loss, calls


def fit(loss, w0, **kwargs):
    settings = {"lr": 0.01, "momentum": 0.0, "max_iter": 5000, "tol": 1e-8,
                "options": {}}
    return rmsprop_fit(loss, np.asarray(w0, dtype=float), (),
                       **{**settings, **kwargs})


# 1. Success by exhaustion

def test_max_iter_is_a_failure_that_says_so():
    loss, _ = quadratic(np.array([1.0, 1e-4]))
    # steps of about lr: 300 of them cannot cover a distance of 100
    result = fit(loss, [100.0, 100.0], max_iter=300)
    assert not result.converged
    assert result.n_iter == 300
    assert "max_iter=300" in result.message


def test_a_rate_that_collapses_is_a_stall_not_a_success():
    """A gradient that points the wrong way: no chunk lowers the loss, the
    rate falls tenfold each time, and the fit says it stalled."""
    def loss(w, out):
        out[:] = -w                      # the wrong sign
        return 0.5 * float(w @ w)
    result = fit(loss, [1.0, -2.0])
    assert not result.converged
    assert result.message.startswith("stalled")
    assert "learning rate fell" in result.message
    np.testing.assert_array_equal(result.w, [1.0, -2.0])  # the best: start


def test_converged_only_where_the_gradient_test_holds():
    loss, _ = quadratic(np.array([1.0, 3.0]))
    result = fit(loss, [1.0, -1.0], tol=1e-6, max_iter=100000)
    assert result.converged and result.message == ""
    g = np.empty(2)
    f = loss(result.w, g)
    assert np.max(np.abs(g)) <= 1e-6 * max(1.0, f)
    assert result.fun == f


# 2. A first step that leaves the data

def narrow_peak(x, a, mu, s):
    return a * np.exp(-0.5 * ((x - mu) / s) ** 2)


X_PEAK = np.linspace(0, 100, 400)
Y_PEAK = narrow_peak(X_PEAK, 5.0, 50.0, 0.8) + 0.01 * np.random.default_rng(
    3).standard_normal(X_PEAK.size)


@pytest.mark.parametrize("polish", [True, False])
def test_a_narrow_peak_is_not_lost_on_the_first_steps(polish):
    """RMSProp's first steps move mu by about lr * |mu| / sqrt(1 - alpha)
    = 5, six widths: the peak falls off the data, the model is ~0
    everywhere and the gradient vanishes. The start is better than that
    point: the fit goes back and takes smaller steps."""
    p0 = [4.0, 50.5, 1.0]
    ref, ref_cov = so.curve_fit(narrow_peak, X_PEAK, Y_PEAK, p0=p0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # forward differences: RMSProp alone cannot meet gtol=1e-10
        popt, pcov = rmsopt.curve_fit(narrow_peak, X_PEAK, Y_PEAK, p0=p0,
                                      lr=0.1, polish=polish, gtol=1e-8)
    np.testing.assert_allclose(popt, ref, rtol=1e-6)
    np.testing.assert_allclose(pcov, ref_cov, rtol=0,
                               atol=1e-3 * np.abs(ref_cov).max())


def test_a_model_that_has_left_the_data_is_not_a_fit():
    """The peak starts far from every x: the model is 0 to rounding, so is
    its Jacobian, and the gradient is exactly 0 (a plain gradient test
    holds). The least-squares test needs each column of J to be nonzero."""
    p0 = [5.0, 200.0, 0.8]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for polish in (False, True):
            with pytest.raises(RuntimeError, match="Optimal parameters not"):
                rmsopt.curve_fit(narrow_peak, X_PEAK, Y_PEAK, p0=p0,
                                 polish=polish)
        with pytest.raises(RuntimeError, match="no longer depends"):
            rmsopt.curve_fit(narrow_peak, X_PEAK, Y_PEAK, p0=p0,
                             polish=False)


# 3. The best point, not the last iterate

def test_the_best_point_is_returned_not_the_last_iterate():
    """A rate far too large for a start near the optimum: the chunk ends
    worse than the start; the fit returns the best point it looked at."""
    loss, calls = quadratic(np.array([1.0, 1.0]))
    result = fit(loss, [1e-3, -1e-3], lr=1.0, momentum=0.9, max_iter=100,
                 tol=1e-12)
    assert not result.converged
    last_w, last_f = calls[-1]
    assert last_f > result.fun
    g = np.empty(2)
    assert loss(result.w, g) == result.fun
    assert result.fun <= 0.5 * 2e-6  # no worse than the start


# 4. Standard errors for small parameters

def decay(x, a, k):
    return a * np.exp(-k * x)


def decay_jac(x, a, k):
    e = np.exp(-k * x)
    return np.stack([e, -a * x * e], axis=1)


X_SMALL = np.linspace(0, 5e4, 60)
Y_SMALL = decay(X_SMALL, 3e-5, 4e-5) * (
    1 + 0.02 * np.random.default_rng(4).standard_normal(60))


@pytest.mark.parametrize("polish", [True, False])
def test_covariance_with_steps_relative_to_small_parameters(polish):
    """Parameters ~1e-5: a step of eps^(1/3) max(1, |p|) = 6e-6 is a fifth
    of a parameter; the covariance from the analytic Jacobian at the same
    point is the oracle."""
    popt, pcov = rmsopt.curve_fit(decay, X_SMALL, Y_SMALL, p0=[2e-5, 3e-5],
                                  polish=polish)
    r = decay(X_SMALL, *popt) - Y_SMALL
    J = decay_jac(X_SMALL, *popt)
    oracle = np.linalg.inv(J.T @ J) * (r @ r) / (X_SMALL.size - 2)
    np.testing.assert_allclose(pcov, oracle, rtol=1e-4)
    ref, _ = so.curve_fit(decay, X_SMALL, Y_SMALL, p0=[2e-5, 3e-5])
    np.testing.assert_allclose(popt, ref, rtol=1e-5)


# 5. Infinite residuals

def test_infinite_residuals_are_an_error_not_a_fit():
    def blows_up(x, a, b):
        with np.errstate(all="ignore"):
            return a * (x + 1) / (b - b)      # inf for every b
    for polish in (True, False):
        with pytest.raises(RuntimeError, match="not (be )?finite"):
            rmsopt.curve_fit(blows_up, X_SMALL, Y_SMALL, p0=[1.0, 1.0],
                             polish=polish)


def test_a_jacobian_with_inf_gives_an_unknown_covariance():
    """inf in J, not only NaN, means no covariance (an SVD of it fails)."""
    from rmsopt._curve_fit import _covariance
    J = np.stack([X_LINE, np.ones_like(X_LINE)], axis=1)
    J[0, 0] = np.inf
    with pytest.warns(so.OptimizeWarning, match="Covariance"):
        pcov = _covariance(J, np.ones(X_LINE.size), False, X_LINE.size, 2)
    assert pcov.shape == (2, 2) and np.isinf(pcov).all()


# 6. Schedules and options

X_LINE = np.linspace(0, 1, 30)
Y_LINE = 2.0 * np.exp(-1.5 * X_LINE) + 0.01 * np.sin(40 * X_LINE)


@pytest.mark.parametrize("lr", [rmsopt.schedules.cosine(0.05, t_max=300),
                                rmsopt.schedules.exponential(0.05, 0.999),
                                lambda t: 0.05 / (1 + t / 100)])
def test_a_schedule_as_lr(lr):
    ref, _ = so.curve_fit(decay, X_LINE, Y_LINE, p0=[1, 1])
    popt, _ = rmsopt.curve_fit(decay, X_LINE, Y_LINE, p0=[1, 1], lr=lr,
                               jac=decay_jac, polish=False)
    np.testing.assert_allclose(popt, ref, rtol=1e-5)


def test_scaled_schedules_scale_every_step():
    for schedule in (rmsopt.schedules.cosine(0.1, 50, eta_min=0.01),
                     rmsopt.schedules.step(0.1, 10, warmup_steps=5),
                     rmsopt.schedules.inverse_time(0.1, 0.5)):
        for t in (0, 3, 7, 20, 60):
            assert scaled(schedule, 0.01)(t) == pytest.approx(
                0.01 * schedule(t), rel=1e-15)
    plateau = scaled(rmsopt.schedules.reduce_on_plateau(0.1, min_lr=1e-3),
                     0.1)
    assert plateau.params[0] == pytest.approx(0.01)
    assert plateau.params[5] == pytest.approx(1e-4)


def test_options_are_used_not_ignored():
    """``options={...}`` and keyword options are the same options; an
    option changes the run (alpha: a different trajectory)."""
    kwargs = {"p0": [1, 1], "polish": False, "gtol": 1e-9,
              "full_output": True}
    a = rmsopt.curve_fit(decay, X_LINE, Y_LINE, options={"alpha": 0.9},
                         **kwargs)
    b = rmsopt.curve_fit(decay, X_LINE, Y_LINE, alpha=0.9, **kwargs)
    c = rmsopt.curve_fit(decay, X_LINE, Y_LINE, **kwargs)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2]["nit"] == b[2]["nit"] != c[2]["nit"]


@pytest.mark.parametrize("options, match", [
    ({"alpah": 0.9}, "unknown rmsopt.minimize options: alpah"),
    ({"maxiter": 10}, "curve_fit sets them"),
    ({"lr": 0.1}, "use its lr, maxiter and gtol"),
])
def test_options_it_cannot_take_are_errors(options, match):
    with pytest.raises(ValueError, match=match):
        rmsopt.curve_fit(decay, X_LINE, Y_LINE, p0=[1, 1], options=options)
    with pytest.raises(TypeError, match="options must be a dict"):
        rmsopt.curve_fit(decay, X_LINE, Y_LINE, p0=[1, 1], options=[1])


# The polish of the estimators

def coarse_quadratic():
    """A quadratic whose loss is rounded to float32 (about 7 digits) while
    its gradient is exact: L-BFGS-B stops where the loss no longer falls,
    far above a tight gradient test."""
    rng = np.random.default_rng(5)
    M = rng.standard_normal((8, 8))
    A = M @ M.T + 0.1 * np.eye(8)
    b = rng.standard_normal(8)

    def loss(w, out):
        out[:] = A @ w - b
        return float(np.float32(0.5 * w @ A @ w - b @ w + 10.0))
    return loss, A, b


def test_the_polish_meets_the_test_where_the_loss_is_flat():
    from rmsopt._fit import polished_fit
    loss, A, b = coarse_quadratic()
    settings = {"lr": 0.01, "momentum": 0.9, "max_iter": 2000, "tol": 1e-10,
                "options": {}}
    for curvature in (None, np.diag(A).copy(), A):
        result = polished_fit(loss, np.zeros(8), (), **settings,
                              curvature=curvature)
        assert result.converged, result.message
        g = A @ result.w - b
        assert np.max(np.abs(g)) <= 1e-10 * abs(result.fun)
        np.testing.assert_allclose(result.w, np.linalg.solve(A, b),
                                   rtol=1e-7)


def test_polish_fit_alone_stops_at_the_loss_rounding_and_says_so():
    from rmsopt._fit import Fit, polish_fit
    loss, A, b = coarse_quadratic()
    g = np.empty(8)
    start = Fit(np.zeros(8), 0, False, "", loss(np.zeros(8), g),
                float(np.max(np.abs(g))))
    result = polish_fit(loss, start, (), tol=1e-10, max_iter=1000)
    assert not result.converged
    assert "L-BFGS-B stopped" in result.message
    assert result.fun <= start.fun


def test_a_bounded_parameter_must_be_uncoupled_in_the_curvature():
    from rmsopt._fit import Fit, polish_fit
    loss, A, b = coarse_quadratic()
    start = Fit(np.zeros(8), 0, False, "", 10.0, 1.0)
    with pytest.raises(ValueError, match="uncoupled"):
        polish_fit(loss, start, (), tol=1e-10, max_iter=10, curvature=A,
                   bounds=[(None, None)] * 7 + [(0.0, None)])
