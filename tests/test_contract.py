"""scipy's contract: result fields, status codes, callbacks, jac forms, bounds,
tol, disp, the plug-in, and that nothing the user owns is modified."""

import numpy as np
import pytest
import scipy.optimize as so
from numpy.testing import assert_allclose
from scipy.optimize import Bounds, OptimizeResult, OptimizeWarning

import rmsopt
from problems import X0, rosen, rosen_der, rosen_python_grad


def quad(x):
    return 0.5 * float(x @ x)


def quad_grad(x):
    return x.copy()


# -- result and status --------------------------------------------------------

def test_result_fields_and_maxiter():
    res = rmsopt.minimize(rosen, X0, jac=rosen_der, options={"maxiter": 7})
    assert isinstance(res, OptimizeResult)
    for name in ("x", "fun", "jac", "nit", "nfev", "njev", "status",
                 "success", "message", "state"):
        assert name in res
    assert res.status == 1 and not res.success
    assert res.message == "Maximum number of iterations has been exceeded."
    assert res.nit == 7
    assert res.njev == 8          # x0 and after each of the 7 steps
    assert res.nfev == 1          # only the final value was needed
    assert res.fun == rosen(res.x)
    assert_allclose(res.jac, rosen_der(res.x), rtol=0, atol=0)


def test_default_maxiter_is_200_n():
    res = rmsopt.minimize(rosen, X0[:2], jac=rosen_der, options={"gtol": 0})
    assert res.nit == 400 and res.status == 1


def test_success_when_the_gradient_is_small():
    res = rmsopt.minimize(quad, np.ones(3), jac=quad_grad,
                          options={"lr": 1e-3, "gtol": 1e-3,
                                   "maxiter": 100000})
    assert res.status == 0 and res.success
    assert res.message == "Optimization terminated successfully."
    assert np.max(np.abs(res.jac)) <= 1e-3
    assert res.nit < 100000


def test_gtol_zero_at_x0_that_is_already_optimal():
    res = rmsopt.minimize(quad, np.zeros(3), jac=quad_grad)
    assert res.success and res.nit == 0 and res.njev == 1


def test_maxiter_zero_checks_x0_only():
    res = rmsopt.minimize(rosen, X0, jac=rosen_der, options={"maxiter": 0})
    assert res.status == 1 and res.nit == 0
    np.testing.assert_array_equal(res.x, X0)


def test_tol_maps_to_gtol_and_explicit_gtol_wins():
    res = rmsopt.minimize(quad, np.ones(2), jac=quad_grad, tol=0.5,
                          options={"lr": 1e-2})
    assert res.success and np.max(np.abs(res.jac)) <= 0.5
    loose = rmsopt.minimize(quad, np.ones(2), jac=quad_grad, tol=10.0,
                            options={"gtol": 0.5, "lr": 1e-2})
    assert loose.nit == res.nit


def test_nan_gradient_stops_with_last_finite_iterate():
    steps = []

    def grad(x):
        steps.append(x.copy())
        if len(steps) == 4:
            return np.full_like(x, np.nan)
        return rosen_der(x)
    res = rmsopt.minimize(rosen, X0, jac=grad, options={"maxiter": 100})
    assert res.status == 3 and not res.success
    assert res.message == "NaN result encountered."
    assert res.nit == 3
    np.testing.assert_array_equal(res.x, steps[-1])  # x where jac gave NaN
    assert np.isfinite(res.x).all()


def test_a_gradient_too_large_to_square_stops_before_the_step():
    # float32: g*g would overflow although g is finite.
    x0 = np.ones(3, dtype=np.float32)
    res = rmsopt.minimize(lambda x: 0.0, x0,
                          jac=lambda x: np.full(3, 1e30, np.float32))
    assert res.status == 3
    np.testing.assert_array_equal(res.x, x0)
    assert np.isfinite(res.state["square_avg"]).all()


def test_a_step_that_would_overflow_x_keeps_it_finite():
    # |x0| is near float32's maximum, so the kernel guards the update.
    x0 = np.array([3e38, 1.0], dtype=np.float32)
    res = rmsopt.minimize(lambda x: 0.0, x0,
                          jac=lambda x: np.array([-1.0, 1.0], np.float32),
                          options={"lr": 1e37, "maxiter": 5})
    assert res.status == 3 and res.nit == 1
    assert res.x[0] == x0[0]           # this coordinate would have been inf
    assert res.x[1] != x0[1]           # the other one moved
    assert np.isfinite(res.x).all()


def test_hyperparameters_beyond_the_overflow_proof_are_guarded():
    res = rmsopt.minimize(lambda x: 0.0, np.ones(2), jac=lambda x: np.ones(2),
                          options={"lr": 1e308, "maxiter": 5})
    assert res.status == 3 and np.isfinite(res.x).all()
    np.testing.assert_array_equal(res.x, np.ones(2))


def test_non_finite_objective_is_never_success():
    # scipy reports success here (zero gradient); rmsopt does not.
    res = rmsopt.minimize(lambda x: np.inf, np.ones(2),
                          jac=lambda x: np.zeros(2))
    assert res.status == 3 and not res.success and res.nit == 0


# -- callbacks ----------------------------------------------------------------

def test_legacy_callback_once_per_iteration_with_a_copy():
    seen = []

    def callback(xk):
        seen.append(xk.copy())
        xk[:] = 1e6  # must not affect the run
    res = rmsopt.minimize(rosen, X0, jac=rosen_der, callback=callback,
                          options={"maxiter": 5})
    ref = rmsopt.minimize(rosen, X0, jac=rosen_der, options={"maxiter": 5})
    assert len(seen) == res.nit == 5
    np.testing.assert_array_equal(seen[-1], res.x)
    np.testing.assert_array_equal(res.x, ref.x)


def test_new_style_callback_gets_intermediate_result():
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result)
    res = rmsopt.minimize(rosen, X0, jac=rosen_der, callback=callback,
                          options={"maxiter": 4})
    assert len(seen) == 4
    assert isinstance(seen[0], OptimizeResult)
    assert seen[-1].fun == rosen(seen[-1].x) == res.fun
    assert [r.nit for r in seen] == [1, 2, 3, 4]
    assert res.nfev == 4  # one per callback; the last is reused at the end


@pytest.mark.parametrize("style", ["legacy", "new"])
def test_stop_iteration_gives_status_99(style):
    def legacy(xk):
        if len(calls) == 2:
            raise StopIteration
        calls.append(1)

    def new(intermediate_result):
        legacy(intermediate_result.x)
    calls = []
    res = rmsopt.minimize(rosen, X0, jac=rosen_der,
                          callback=legacy if style == "legacy" else new)
    assert res.status == 99 and not res.success
    assert res.message == "`callback` raised `StopIteration`."
    assert res.nit == 3
    assert_allclose(res.jac, rosen_der(res.x))


def test_user_exceptions_propagate_unchanged():
    error = ZeroDivisionError("mine")

    def grad(x):
        raise error
    with pytest.raises(ZeroDivisionError) as info:
        rmsopt.minimize(rosen, X0, jac=grad)
    assert info.value is error


def test_keyboard_interrupt_carries_the_result():
    def callback(xk):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
    calls = []
    with pytest.raises(KeyboardInterrupt) as info:
        rmsopt.minimize(rosen, X0, jac=rosen_der, callback=callback)
    res = info.value.result
    assert res.status == 98 and res.nit == 4 and res.njev == 5
    assert np.isfinite(res.x).all()


# -- jac forms and counting -----------------------------------------------------

@pytest.mark.parametrize("jac, per_grad", [
    (None, 6), ("2-point", 6), ("3-point", 10), ("cs", 5)])
def test_finite_differences_match_the_analytic_gradient(jac, per_grad):
    res = rmsopt.minimize(rosen, X0, jac=jac, options={"maxiter": 3})
    exact = rmsopt.minimize(rosen, X0, jac=rosen_der, options={"maxiter": 3})
    # forward differences err by about h * f'' (h ~ 1.5e-8, f'' ~ 1e3)
    atol = {None: 1e-4, "2-point": 1e-4, "3-point": 1e-7, "cs": 0}[jac]
    assert_allclose(res.jac, rosen_der(res.x), rtol=1e-12, atol=atol)
    assert_allclose(res.x, exact.x, rtol=1e-6)
    assert res.njev == 4
    # 2-point reuses its f(x) for the final value; the others need one more.
    final = 0 if per_grad == 6 else 1
    assert res.nfev == 4 * per_grad + final


def test_finite_difference_points_respect_bounds():
    lo = X0.copy()
    def fun(x):
        assert (x >= lo).all(), "a finite-difference point left the box"
        return rosen(x)
    for jac in ("2-point", "3-point"):
        res = rmsopt.minimize(fun, X0, jac=jac, bounds=Bounds(lo, np.inf),
                              options={"maxiter": 1})
        # at x0 (on the lower bound) one-sided differences are used
        assert_allclose(res.jac, rosen_der(res.x), rtol=1e-4)


def test_jac_true_counts_each_call_once_in_both():
    res = rmsopt.minimize(lambda x: (rosen(x), rosen_der(x)), X0, jac=True,
                          options={"maxiter": 5})
    assert res.nfev == res.njev == 6
    assert res.fun == rosen(res.x)


def test_float32_stays_float32_and_ints_become_float64():
    res = rmsopt.minimize(rosen, X0.astype(np.float32),
                          jac=rosen_python_grad, options={"maxiter": 3})
    assert res.x.dtype == res.jac.dtype == np.float32
    assert res.state["square_avg"].dtype == np.float32
    res = rmsopt.minimize(rosen, [1, 2, 3], jac=rosen_der,
                          options={"maxiter": 3})
    assert res.x.dtype == np.float64


def test_float32_gradient_from_float64_jac_is_cast():
    x0 = X0.astype(np.float32)
    res = rmsopt.minimize(rosen, x0, jac=lambda x: rosen_der(x.astype(float)),
                          options={"maxiter": 3})
    ref = rmsopt.minimize(rosen, x0, jac=rosen_python_grad,
                          options={"maxiter": 3})
    assert res.x.dtype == np.float32
    assert_allclose(res.x, ref.x, rtol=1e-6)


# -- bounds ---------------------------------------------------------------------

def test_bounds_project_the_iterates():
    lo = np.array([-2.0, 1.2, -np.inf, 0.0, 0.0])
    hi = np.array([-1.0, 2.0, np.inf, 0.5, 1.0])
    seen = []
    res = rmsopt.minimize(rosen, np.clip(X0, lo, hi), jac=rosen_der,
                          bounds=Bounds(lo, hi), callback=seen.append,
                          options={"lr": 0.1, "maxiter": 50})
    pairs = list(zip(lo, hi))
    pairs[2] = (None, None)
    same = rmsopt.minimize(rosen, np.clip(X0, lo, hi), jac=rosen_der,
                           bounds=pairs, options={"lr": 0.1, "maxiter": 50})
    np.testing.assert_array_equal(res.x, same.x)
    for xk in seen:
        assert (lo <= xk).all() and (xk <= hi).all()
    # Oracle: PyTorch's rule in NumPy, projected after every step.
    x, v = np.clip(X0, lo, hi), np.zeros(5)
    for _ in range(50):
        g = rosen_der(x)
        v = 0.99 * v + 0.01 * g * g
        x = np.clip(x - 0.1 * g / (np.sqrt(v) + 1e-8), lo, hi)
    assert_allclose(res.x, x, rtol=1e-13)
    assert (res.x == lo).any() or (res.x == hi).any()  # a bound is active


def test_x0_outside_the_bounds_is_clipped_with_a_warning():
    x0 = X0.copy()
    with pytest.warns(OptimizeWarning, match="clipped"):
        res = rmsopt.minimize(rosen, x0, jac=rosen_der,
                              bounds=[(0, 1)] * 5, options={"maxiter": 0})
    np.testing.assert_array_equal(res.x, np.clip(X0, 0, 1))
    np.testing.assert_array_equal(x0, X0)


def test_bound_optimum_is_success_via_the_projected_gradient():
    # min sum(x) on [0, 1]^2: the gradient stays 1 but projects to 0 at 0.
    res = rmsopt.minimize(lambda x: float(x.sum()), [0.5, 0.5],
                          jac=lambda x: np.ones(2), bounds=[(0, 1)] * 2,
                          options={"lr": 0.1})
    assert res.success and (res.x == 0).all()


# -- disp, show_options, unknown options --------------------------------------

def test_disp_prints_scipy_summary(capsys):
    rmsopt.minimize(quad, np.ones(2), jac=quad_grad,
                    options={"disp": True, "gtol": 0.5})
    out = capsys.readouterr().out
    assert "Optimization terminated successfully." in out
    for line in ("Current function value", "Iterations",
                 "Function evaluations", "Gradient evaluations"):
        assert line in out
    with pytest.warns(OptimizeWarning, match="Maximum number of iterations"):
        rmsopt.minimize(quad, np.ones(2), jac=quad_grad,
                        options={"disp": True, "maxiter": 1})


def test_show_options_lists_every_option(capsys):
    from rmsopt._options import OPTIONS
    rmsopt.show_options()
    out = capsys.readouterr().out
    for name in OPTIONS:
        assert f"{name} : default" in out
    assert rmsopt.show_options(disp=False) == out.rstrip("\n")
    with pytest.raises(ValueError, match="Unknown method 'bfgs'"):
        rmsopt.show_options(method="bfgs")


# -- the scipy plug-in --------------------------------------------------------

@pytest.mark.parametrize("form", ["callable", "true"])
def test_scipy_plugin_gives_the_same_result(form):
    options = {"lr": 1e-3, "maxiter": 50, "momentum": 0.5}
    if form == "callable":
        kwargs = dict(fun=rosen, jac=rosen_der)
    else:
        kwargs = dict(fun=lambda x: (rosen(x), rosen_der(x)), jac=True)
    ours = rmsopt.minimize(x0=X0, options=options, **kwargs)
    theirs = so.minimize(x0=X0, method=rmsopt.rmsprop, options=options,
                         **kwargs)
    np.testing.assert_array_equal(ours.x, theirs.x)
    for name in ("fun", "nit", "nfev", "njev", "status", "message"):
        assert ours[name] == theirs[name], name


def test_scipy_plugin_tol_bounds_callback():
    seen = []
    res = so.minimize(quad, np.ones(2), jac=quad_grad, method=rmsopt.rmsprop,
                      tol=0.5, bounds=[(0.2, None)] * 2, callback=seen.append)
    ours = rmsopt.minimize(quad, np.ones(2), jac=quad_grad, tol=0.5,
                           bounds=[(0.2, None)] * 2)
    assert res.success and res.nit == ours.nit == len(seen)
    np.testing.assert_array_equal(res.x, ours.x)
    with pytest.warns(RuntimeWarning, match="cannot handle constraints"):
        so.minimize(quad, np.ones(2), jac=quad_grad, method=rmsopt.rmsprop,
                    constraints=[{"type": "eq", "fun": lambda x: x[0]}])


# -- nothing the user owns is modified ---------------------------------------

def test_x0_args_and_state_are_not_modified():
    x0 = X0.copy()
    a = np.arange(5.0)

    def fun(x, a):
        return rosen(x - a)

    def jac(x, a):
        return rosen_der(x - a)
    first = rmsopt.minimize(fun, x0, args=(a,), jac=jac,
                            options={"maxiter": 3, "momentum": 0.9,
                                     "centered": True})
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v)
             for k, v in first.state.items()}
    rmsopt.minimize(fun, first.x, args=(a,), jac=jac,
                    options={"maxiter": 3, "momentum": 0.9, "centered": True,
                             "state": first.state})
    np.testing.assert_array_equal(x0, X0)
    np.testing.assert_array_equal(a, np.arange(5.0))
    for key, value in state.items():
        np.testing.assert_array_equal(first.state[key], value)


def test_user_code_cannot_write_into_the_iterate():
    def jac(x):
        x[0] = 0.0
        return rosen_der(x)
    with pytest.raises(ValueError, match="read-only"):
        rmsopt.minimize(rosen, X0, jac=jac)


def test_args_that_is_not_a_tuple_is_wrapped():
    res = rmsopt.minimize(lambda x, c: float(((x - c) ** 2).sum()), np.zeros(2),
                          args=3.0, jac=lambda x, c: 2 * (x - c),
                          options={"maxiter": 2})
    assert res.nit == 2
