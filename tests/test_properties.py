"""Property-based: whatever the options, x0 and what fun and jac return, in
both drivers, a run ends in one of two ways only:

- a result with a finite x of x0's dtype, a valid status (0 success, 1
  maxiter, 3 NaN/inf) that says the truth: success only where the largest
  component of the gradient the rule follows is within gtol at x, and fun
  there is finite; nit within maxiter;
- a TypeError or ValueError with a message.

Anything else (another exception, a crash, a NaN x, a false success) fails.
"""

import math
import warnings

import numba
import numpy as np
import pytest

import rmsopt

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = 300

# Any real (the invalid included), or, nine times as often, a valid value
# (each run draws up to seven of them).
reals = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1.0, 1.0, 1e300, -0.0]), st.integers(-3, 3))


def option(*valid):
    return st.one_of(*[st.sampled_from(valid)] * 9, reals)


options = st.fixed_dictionaries({}, optional={
    "lr": option(1e-3, 1e-2, 0.1, 0.0, 1e30),
    "alpha": option(0.0, 0.9, 0.99), "eps": option(1e-8, 1e-3, 1e-300),
    "momentum": option(0.0, 0.5, 0.9),
    "weight_decay": option(0.0, 0.01, 10.0),
    "initial_scale": option(0.0, 1.0, 1e30),
    "gtol": option(0.0, 1e-5, 1e-2, 10.0),
    "centered": st.booleans(), "maximize": st.booleans(),
    "nesterov": option(False, False, True), "eps_in_sqrt": st.booleans(),
    "lr_in_momentum": st.booleans(),
    "decoupled_weight_decay": st.booleans(),
    "bias_correction": st.booleans(),
    "convention": option("pytorch", "keras", "tf1", "optax"),
    "maxiter": st.one_of(st.integers(0, 40), st.just(-1)),
})
valid_x0 = st.one_of(
    st.integers(1, 5).flatmap(lambda n: st.lists(
        st.floats(-1e6, 1e6), min_size=n, max_size=n)).map(np.array),
    st.sampled_from([np.float32, np.float64, np.int64]).flatmap(
        lambda dtype: st.integers(1, 5).map(
            lambda n: np.linspace(-2, 3, n).astype(dtype))))
x0s = st.one_of(valid_x0, valid_x0, valid_x0, st.sampled_from(
    [np.array([np.nan, 1.0]), np.array([np.inf]), np.zeros((2, 2)),
     np.array([]), np.array([1 + 2j]), np.array(["a"])]))
# The gradient is scale * x + shift, shift possibly NaN, inf or huge.
shifts = st.one_of(st.floats(-1e3, 1e3), st.sampled_from(
    [np.nan, np.inf, -np.inf, 1e300, 1e38]))
scales = st.sampled_from([1.0, -1.0, 0.0, 1e-3, 1e200])


@numba.njit
def affine_gradient(x, scale, shift):
    return scale * x + shift


def affine_fun(x, scale, shift):
    return float(0.5 * scale * (x @ x) + shift * np.sum(x))


# What a Python jac may return instead of its gradient.
RETURNS = {
    "the gradient": lambda g: g,
    "a list": lambda g: list(g),
    "a tuple": lambda g: tuple(g),
    "ints": lambda g: np.round(g).astype(np.int64),
    "float32": lambda g: g.astype(np.float32),
    "a strided view": lambda g: np.repeat(g, 2)[::2],
    "one too many": lambda g: np.append(g, 1.0),
    "a scalar": lambda g: 1.0,
    "None": lambda g: None,
    "complex": lambda g: g + 1j,
    "a string": lambda g: "gradient",
    "a 2-D array": lambda g: g[:, None],
}


def check_outcome(run, x0, opts, gradient):
    """Run; accept a clear TypeError/ValueError, or an honest result."""
    try:
        with warnings.catch_warnings():
            # the user's own arithmetic may overflow; rmsopt's warnings
            # (unknown options, fallbacks) are fine here
            warnings.simplefilter("ignore")
            res = run()
    except (TypeError, ValueError) as exc:
        assert str(exc), type(exc)
        event(f"a {type(exc).__name__}")
        return "error"
    x0 = np.atleast_1d(np.asarray(x0))
    dtype = x0.dtype if x0.dtype.kind == "f" else np.dtype(np.float64)
    assert res.x.dtype == dtype and res.x.shape == x0.shape
    assert np.isfinite(res.x).all(), res
    assert res.status in (0, 1, 3), res
    assert res.success == (res.status == 0)
    maxiter = opts.get("maxiter", 200 * x0.size)
    assert 0 <= res.nit <= maxiter
    if res.success:  # the gtol test, redone in x's dtype
        assert math.isfinite(res.fun)
        g = np.asarray(gradient(res.x), dtype=dtype)
        sign = -1 if opts.get("maximize") else 1
        g = sign * g
        weight_decay = dtype.type(opts.get("weight_decay", 0))
        decoupled = opts.get("decoupled_weight_decay",
                             opts.get("convention") == "keras")
        if weight_decay and not decoupled:
            g = g + weight_decay * res.x
        assert np.max(np.abs(g)) <= opts.get("gtol", 1e-5), res
    event(f"status {res.status}")
    return res.status


@pytest.mark.parametrize("driver", ["python", "nopython"])
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          derandomize=True)
@given(x0=x0s, opts=options, scale=scales, shift=shifts)
def test_a_jitted_jac_ends_in_a_result_or_a_clear_error(driver, x0, opts,
                                                        scale, shift):
    args = (scale, shift)
    check_outcome(lambda: rmsopt.minimize(
        affine_fun, x0, args=args, jac=affine_gradient,
        options={**opts, "driver": driver}), x0, opts,
        lambda x: affine_gradient(x, *args))


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          derandomize=True)
@given(x0=x0s, opts=options, scale=scales, shift=shifts,
       returns=st.sampled_from(sorted(RETURNS)))
def test_a_python_jac_ends_in_a_result_or_a_clear_error(x0, opts, scale,
                                                        shift, returns):
    def jac(x):
        return RETURNS[returns](scale * np.asarray(x, float) + shift)

    def gradient(x):  # as rmsopt converts what jac returns
        return np.asarray(jac(x), dtype=float)
    check_outcome(lambda: rmsopt.minimize(
        lambda x: affine_fun(x, scale, shift), x0, jac=jac, options=opts),
        x0, opts, gradient)
