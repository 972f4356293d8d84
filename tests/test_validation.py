"""Bad input: every case gives a clear error, raised before compiled code runs."""

import numpy as np
import pytest
from scipy.optimize import Bounds, OptimizeWarning

import rmsopt
from problems import X0, rosen, rosen_der


def run(x0=X0, jac=rosen_der, fun=rosen, **options):
    return rmsopt.minimize(fun, x0, jac=jac, options={"maxiter": 3, **options})


# -- x0 -----------------------------------------------------------------------

@pytest.mark.parametrize("x0, error, match", [
    (np.ones((2, 2)), ValueError, "'x0' must only have one dimension."),
    (np.array([1.0, np.nan]), ValueError, "x0 must be finite; found nan at index 1"),
    (np.array([np.inf, 1.0]), ValueError, "x0 must be finite; found inf at index 0"),
    (np.array([1 + 2j, 0j]), TypeError, "x0 must be real; got dtype complex128"),
    (np.array(["a", "b"]), TypeError, "x0 must be an array of real numbers"),
    (np.array([1.0, None]), TypeError, "x0 must be an array of real numbers; got dtype object"),
    (np.array([True, False]), TypeError, "x0 must be an array of real numbers; got dtype bool"),
    (np.array([], dtype=float), ValueError, "x0 must not be empty"),
    (np.ones(3, dtype=np.float16), TypeError, "x0 has dtype float16; rmsopt computes in float32 or float64"),
])
def test_bad_x0(x0, error, match):
    with pytest.raises(error, match=match.replace("(", r"\(").replace(")", r"\)")):
        run(x0=x0, jac=lambda x: np.zeros_like(x), fun=lambda x: 0.0)


# -- jac and what user code returns --------------------------------------------

@pytest.mark.parametrize("jac", ["4-point", 1, "cs2", np.zeros(5)])
def test_bad_jac_value(jac):
    with pytest.raises(ValueError, match="jac must be a callable, True, None"):
        run(jac=jac)


@pytest.mark.parametrize("grad, error, match", [
    (lambda x: np.zeros(4), ValueError, r"gradient must have shape \(5,\) like x0; got shape \(4,\)"),
    (lambda x: np.zeros((5, 1)), ValueError, r"got shape \(5, 1\)"),
    (lambda x: np.zeros(5, complex), TypeError, "gradient must be real; got dtype complex128"),
    (lambda x: None, TypeError, "gradient must be real; got dtype object"),
    (lambda x: "abc", TypeError, "gradient must be real"),
])
def test_bad_gradient(grad, error, match):
    with pytest.raises(error, match=match):
        run(jac=grad)


def test_gradient_of_wrong_length_later_in_the_run():
    calls = []

    def grad(x):
        calls.append(1)
        return np.ones(5) if len(calls) < 3 else np.ones(6)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        run(jac=grad)


def test_fun_must_return_a_scalar():
    with pytest.raises(ValueError, match="must return a scalar value"):
        run(fun=lambda x: x)
    with pytest.raises(TypeError, match="must return a real value"):
        run(fun=lambda x: 1j)


def test_jac_true_needs_a_pair():
    with pytest.raises(TypeError, match=r"jac=True requires fun to return a pair \(value, gradient\), got float"):
        run(fun=lambda x: 1.0, jac=True)


def test_fun_not_callable():
    with pytest.raises(TypeError, match="fun must be callable"):
        rmsopt.minimize(3.0, X0, jac=rosen_der)


def test_unknown_method():
    with pytest.raises(ValueError, match="Unknown solver bfgs"):
        rmsopt.minimize(rosen, X0, method="bfgs")


def test_callback_not_callable():
    with pytest.raises(TypeError, match="callback must be callable"):
        rmsopt.minimize(rosen, X0, jac=rosen_der, callback=3)


# -- hyperparameters and driver options -----------------------------------------

@pytest.mark.parametrize("options, error, match", [
    ({"lr": -1.0}, ValueError, r"Invalid learning rate: lr must be in \[0.0, inf\], got -1.0"),
    ({"lr": np.nan}, ValueError, "Invalid learning rate"),
    ({"lr": np.inf}, ValueError, "Invalid lr: must be finite"),
    ({"lr": "0.1"}, TypeError, "lr must be a real number, got '0.1'"),
    ({"lr": True}, TypeError, "lr must be a real number"),
    ({"alpha": 1.0}, ValueError, r"Invalid alpha value: alpha must be in \[0.0, 1.0\)"),
    ({"alpha": -0.1}, ValueError, "Invalid alpha value"),
    ({"eps": 0.0}, ValueError, r"Invalid epsilon value: eps must be in \(0.0, inf\]"),
    ({"eps": -1e-8}, ValueError, "Invalid epsilon value"),
    ({"momentum": -0.5}, ValueError, "Invalid momentum value"),
    ({"momentum": 1.0}, ValueError, "Invalid momentum value"),
    ({"weight_decay": -1.0}, ValueError, "Invalid weight_decay value"),
    ({"initial_scale": -1.0}, ValueError, "Invalid initial_scale value"),
    ({"nesterov": True}, ValueError, "Nesterov momentum requires momentum > 0"),
    ({"centered": 1}, TypeError, "Option centered must be True or False, got 1"),
    ({"maximize": "yes"}, TypeError, "Option maximize must be True or False"),
    ({"maxiter": -1}, ValueError, "maxiter must be a non-negative integer, got -1"),
    ({"maxiter": 2.5}, ValueError, "maxiter must be a non-negative integer"),
    ({"maxiter": True}, ValueError, "maxiter must be a non-negative integer"),
    ({"gtol": np.nan}, ValueError, "Invalid gtol value"),
    ({"gtol": -1.0}, ValueError, "Invalid gtol value"),
    ({"convention": "adam"}, ValueError, "Unknown convention 'adam': expected one of 'pytorch', 'keras', 'tf1', 'optax'"),
    ({"driver": "gpu"}, ValueError, "driver must be 'auto', 'python' or 'nopython'"),
    ({"finite_diff_rel_step": np.ones(3)}, ValueError, r"finite_diff_rel_step must be a scalar or an array of shape \(5,\)"),
    ({"finite_diff_rel_step": 0.0}, ValueError, "finite_diff_rel_step must be finite and nonzero"),
])
def test_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        run(**options)


def test_nopython_driver_needs_a_jitted_gradient():
    with pytest.raises(ValueError, match="driver='nopython' needs a numba-jitted jac"):
        run(driver="nopython")


def test_unknown_option_warns_like_scipy():
    with pytest.warns(OptimizeWarning, match="Unknown solver options: bogus, rho"):
        run(bogus=1, rho=0.9)


# -- bounds -------------------------------------------------------------------

@pytest.mark.parametrize("bounds, match", [
    ([(0, 1)] * 4, "The number of bounds is not compatible with the length of `x0`."),
    (Bounds(np.zeros(3), np.ones(3)), "The number of bounds is not compatible"),
    ([(1, 0)] + [(None, None)] * 4, "An upper bound is less than the corresponding lower bound."),
    ([(np.nan, 1)] * 5, "bounds must not be NaN"),
    ([(0, 1, 2)] * 5, r"bounds must be a sequence of \(min, max\) pairs"),
])
def test_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match.replace("`", ".")):
        rmsopt.minimize(rosen, X0, jac=rosen_der, bounds=bounds)


def test_bounds_not_a_sequence():
    with pytest.raises(TypeError, match="bounds must be a scipy.optimize.Bounds"):
        rmsopt.minimize(rosen, X0, jac=rosen_der, bounds=3)


# -- state --------------------------------------------------------------------

def test_bad_state():
    good = run().state
    for bad in ({"v": 1}, "abc", 3, [good]):
        with pytest.raises(TypeError, match="must be the `state` of a previous rmsopt result"):
            run(state=bad)
    with pytest.raises(ValueError, match=r"state\['square_avg'\] must be a float64 array"):
        run(state={**good, "square_avg": "abc"})
    with pytest.raises(ValueError, match=r"state\['square_avg'\] must be a float64 array of shape \(5,\)"):
        run(state={**good, "square_avg": np.ones(4)})
    with pytest.raises(ValueError, match=r"state\['square_avg'\] must be a float32 array"):
        run(x0=X0.astype(np.float32), state=good)
    with pytest.raises(ValueError, match=r"state\['step'\] must be a non-negative integer"):
        run(state={**good, "step": -1})
    with pytest.raises(ValueError, match=r"state\['square_avg'\] must be finite"):
        run(state={**good, "square_avg": np.full(5, np.nan)})
