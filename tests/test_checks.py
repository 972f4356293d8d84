"""rmsopt/_checks.py called directly: x0's dtype and shape, bounds, state,
callbacks. (test_validation.py checks the same errors through minimize.)

Oracles: scipy (what L-BFGS-B makes of each form of bounds, how
scipy.optimize.minimize tells the two callback styles apart, its x0
message and dtype), NumPy (the largest |x0|).
"""

import warnings

import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize import Bounds, OptimizeResult

from rmsopt import _checks
from rmsopt._layout import Flags, work_rows
from problems import X0, rosen, rosen_der

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

# -- check_layout / check_x0 -------------------------------------------------------


@pytest.mark.parametrize("dtype, expected", [
    (np.float64, np.float64), (np.float32, np.float32),
    (np.int64, np.float64), (np.int32, np.float64), (np.int8, np.float64),
    (np.uint8, np.float64), (np.uint64, np.float64)])
def test_check_layout_dtypes(dtype, expected):
    n, got = _checks.check_layout((4,), dtype)
    assert n == 4 and got == np.dtype(expected)
    if np.dtype(dtype).kind in "iu":
        # scipy turns integer x0 into float64 too
        res = so.minimize(rosen, np.array([1, 2], dtype=dtype),
                          jac=rosen_der, method="BFGS",
                          options={"maxiter": 1})
        assert res.x.dtype == got


@pytest.mark.parametrize("dtype, error, match", [
    (np.complex128, TypeError, "x0 must be real; got dtype complex128"),
    (np.complex64, TypeError, "x0 must be real; got dtype complex64"),
    (np.bool_, TypeError, "real numbers; got dtype bool"),
    (np.object_, TypeError, "real numbers; got dtype object"),
    (np.str_, TypeError, "real numbers; got dtype <U"),
    (np.float16, TypeError, "x0 has dtype float16; rmsopt computes in "
                            "float32 or float64"),
    (np.longdouble, TypeError, "computes in float32 or float64"),
])
def test_check_layout_rejects_other_dtypes(dtype, error, match):
    if np.dtype(dtype) == np.float64:  # a platform whose longdouble is double
        pytest.skip("longdouble is float64 here")
    with pytest.raises(error, match=match):
        _checks.check_layout((3,), dtype)


def test_check_layout_shapes():
    assert _checks.check_layout((), np.float64) == (1, np.dtype("f8"))
    assert _checks.check_layout((7,), np.float32) == (7, np.dtype("f4"))
    with pytest.raises(ValueError, match="x0 must not be empty"):
        _checks.check_layout((0,), np.float64)
    # scipy's own message for a 2-D x0
    with pytest.raises(ValueError) as theirs:
        so.minimize(rosen, np.ones((2, 2)), method="BFGS")
    for shape in ((2, 2), (1, 3), (3, 1, 1)):
        with pytest.raises(ValueError) as ours:
            _checks.check_layout(shape, np.float64)
        assert str(ours.value) == str(theirs.value)


def test_check_x0_converts_without_copying():
    x0 = X0.copy()
    arr, absmax = _checks.check_x0(x0)
    assert arr is x0  # the run copies it once, into its work array
    assert absmax == 1.3
    x32 = X0.astype(np.float32)
    assert _checks.check_x0(x32)[0] is x32
    arr, absmax = _checks.check_x0([1, -5, 2])
    assert arr.dtype == np.float64 and absmax == 5.0
    np.testing.assert_array_equal(arr, [1.0, -5.0, 2.0])
    arr, absmax = _checks.check_x0(np.float32(-2.5))  # 0-d: one parameter
    assert arr.shape == (1,) and arr.dtype == np.float32 and absmax == 2.5


@pytest.mark.parametrize("bad, index", [(np.nan, 0), (np.inf, 2),
                                        (-np.inf, 1)])
def test_check_x0_names_the_first_non_finite_value(bad, index):
    x0 = np.ones(4)
    x0[index] = bad
    x0[3] = np.nan
    with pytest.raises(ValueError, match=f"x0 must be finite; found {bad} "
                                         f"at index {index}"):
        _checks.check_x0(x0)


@pytest.mark.parametrize("x0, error", [
    ([1.0, "a"], TypeError), ([[1.0], [2.0, 3.0]], TypeError),
    (np.array([1, 2], dtype=object), TypeError), ([1 + 1j], TypeError)])
def test_check_x0_rejects_what_is_not_real(x0, error):
    with pytest.raises(error, match="x0 must be"):
        _checks.check_x0(x0)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]),
                  st.integers(1, 20),
                  elements=dict(allow_nan=False, allow_infinity=False)))
def test_check_x0_absmax_is_numpys(x0):
    arr, absmax = _checks.check_x0(x0)
    assert arr is x0
    assert absmax == float(np.max(np.abs(x0)))


# -- check_bounds: the forms L-BFGS-B accepts ---------------------------------------

N = 3
FAR = np.array([-1e3, 1e3, -1e3])

FORMS = {
    "Bounds arrays": Bounds([0, -1, -np.inf], [1, np.inf, 2]),
    "Bounds scalars": Bounds(0, 1),
    "Bounds lower only": Bounds(0.5),
    "Bounds of length 1": Bounds([0], [1]),
    "pairs with None": [(0, 1), (None, 2), (-1, None)],
    "pairs with inf": [(0, 1), (-np.inf, 2), (-1, np.inf)],
    "an (n, 2) array": np.array([[0, 1], [-1, 2], [-3, 3]]),
    "one pair for all": [(0, 1)],
    "equal bounds": [(0.5, 0.5)] * N,
    "a generator of pairs": None,  # built afresh by each test
}


def pairs():
    return ((0, k) for k in range(1, N + 1))


def lbfgsb_solution(bounds):
    """Where L-BFGS-B ends on ||x - FAR||^2: FAR projected on its box."""
    res = so.minimize(lambda x: float(((x - FAR) ** 2).sum()), np.zeros(N),
                      jac=lambda x: 2 * (x - FAR), method="L-BFGS-B",
                      bounds=bounds)
    return res.x


@pytest.mark.parametrize("name", FORMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32],
                         ids=lambda d: d.__name__)
def test_check_bounds_reads_each_form_as_lbfgsb_does(name, dtype):
    form = FORMS[name]
    if form is None:  # one pass only: L-BFGS-B gets its own
        form, theirs = pairs(), lbfgsb_solution(list(pairs()))
    else:
        theirs = lbfgsb_solution(form)
    lo, hi = _checks.check_bounds(form, N, np.dtype(dtype))
    assert lo.dtype == hi.dtype == dtype and lo.shape == hi.shape == (N,)
    # L-BFGS-B ends on an active bound exactly, elsewhere (no bound) near
    np.testing.assert_allclose(np.clip(FAR, lo, hi), theirs, rtol=1e-12,
                               atol=0)


@pytest.mark.parametrize("bounds", [
    None, [(None, None)] * N, Bounds(-np.inf, np.inf),
    [(-np.inf, np.inf)] * N])
def test_check_bounds_without_a_finite_bound_is_none(bounds):
    assert _checks.check_bounds(bounds, N, np.dtype("f8")) == (None, None)
    if bounds is not None:  # L-BFGS-B runs unconstrained there
        np.testing.assert_allclose(lbfgsb_solution(bounds), FAR)


@pytest.mark.parametrize("bounds, error, match", [
    ([(0, 1)] * 2, ValueError, "The number of bounds is not compatible with "
                               "the length of `x0`."),
    (Bounds(np.zeros(4), np.ones(4)), ValueError, "not compatible"),
    ([(1, 0)] + [(None, None)] * 2, ValueError,
     "An upper bound is less than the corresponding lower bound."),
    (Bounds([0, 2, 0], [1, 1, 1]), ValueError, "An upper bound is less"),
])
def test_check_bounds_errors_are_scipys(bounds, error, match):
    with pytest.raises(error) as ours:
        _checks.check_bounds(bounds, N, np.dtype("f8"))
    assert str(ours.value) == match or match in str(ours.value)
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lbfgsb_solution(bounds)  # scipy rejects them too


@pytest.mark.parametrize("bounds, error, match", [
    (3, TypeError, "bounds must be a scipy.optimize.Bounds or a sequence"),
    ([(0, 1, 2)] * N, ValueError, r"sequence of \(min, max\) pairs"),
    ((np.zeros(N), np.ones(N)), ValueError, r"\(min, max\) pairs"),
    ([(np.nan, 1)] * N, ValueError, "bounds must not be NaN"),
    (Bounds([0, 0, np.nan], 1), ValueError, "bounds must not be NaN"),
])
def test_check_bounds_other_errors(bounds, error, match):
    with pytest.raises(error, match=match):
        _checks.check_bounds(bounds, N, np.dtype("f8"))


# -- check_state ---------------------------------------------------------------------

def rows(centered=False, momentum=False):
    return work_rows(Flags(False, centered, momentum, False, False, False,
                           False, False, False))


def test_check_state_fresh_and_continued():
    assert _checks.check_state(None, rows()) == (0, None)
    v, m, b = np.ones(3), np.zeros(3), np.full(3, 2.0)
    state = {"step": np.int64(7), "square_avg": v, "grad_avg": m,
             "momentum_buffer": b}
    step, arrays = _checks.check_state(state, rows(True, True))
    assert step == 7 and type(step) is int
    assert arrays == {"v": v, "m": m, "b": b}
    assert all(arrays[k] is a for k, a in (("v", v), ("m", m), ("b", b)))
    # only the rows this run uses; a row the previous run lacked is None
    assert _checks.check_state(state, rows())[1] == {"v": v}
    step, arrays = _checks.check_state({"step": 0, "square_avg": v},
                                       rows(True, True))
    assert arrays == {"v": v, "m": None, "b": None}


@pytest.mark.parametrize("state, error, match", [
    ([1, 2], TypeError, "must be the `state` of a previous rmsopt result"),
    ({"square_avg": np.ones(3)}, TypeError, "a dict with 'step' and "
                                            "'square_avg'"),
    ({"step": 1}, TypeError, "previous rmsopt result"),
    ({"step": -1, "square_avg": None}, ValueError,
     r"state\['step'\] must be a non-negative integer, got -1"),
    ({"step": 1.0, "square_avg": None}, ValueError, "got 1.0"),
    ({"step": True, "square_avg": None}, ValueError, "got True"),
    ({"step": np.True_, "square_avg": None}, ValueError, "non-negative"),
])
def test_check_state_errors(state, error, match):
    with pytest.raises(error, match=match):
        _checks.check_state(state, rows())


def test_check_state_array_and_state_error():
    f8 = np.dtype("f8")
    _checks.check_state_array("v", (3,), f8, True, 3, f8)  # fine: no error
    for shape, dtype, contiguous in (((4,), f8, True),
                                     ((3, 1), f8, True),
                                     ((3,), np.dtype("f4"), True),
                                     ((3,), f8, False)):
        with pytest.raises(ValueError, match=r"state\['square_avg'\] must "
                                             r"be a float64 array of shape "
                                             r"\(3,\) like x0"):
            _checks.check_state_array("v", shape, dtype, contiguous, 3, f8)
    with pytest.raises(ValueError, match=r"state\['momentum_buffer'\] must "
                                         r"be a contiguous float32 array"):
        _checks.check_state_array("b", (3,), f8, True, 3, np.dtype("f4"),
                                  device=True)
    error = _checks.state_error("m")
    assert isinstance(error, ValueError)
    assert str(error) == "state['grad_avg'] must be finite"


# -- callbacks ---------------------------------------------------------------------

def legacy(xk):
    pass


def new(intermediate_result):
    pass


def new_with_more(intermediate_result, extra=1):
    pass


def keyword_only(*, intermediate_result):
    pass


class NewStyle:
    def __call__(self, intermediate_result):
        pass


CALLBACKS = [legacy, new, new_with_more, keyword_only, NewStyle(),
             lambda xk: None, lambda intermediate_result: None]


def scipy_style(callback):
    """What scipy.optimize.minimize hands this callback: 'new' when an
    OptimizeResult, 'legacy' when the array x."""
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("intermediate_result", args[0] if args
                               else None))
    spy.__signature__ = __import__("inspect").signature(callback)
    so.minimize(rosen, X0, jac=rosen_der, method="BFGS", callback=spy,
                options={"maxiter": 1})
    return "new" if isinstance(seen[0], OptimizeResult) else "legacy"


@pytest.mark.parametrize("callback", CALLBACKS,
                         ids=lambda c: getattr(c, "__name__", "instance"))
def test_callback_style_is_scipys(callback):
    assert _checks.callback_style(callback) == scipy_style(callback)


def test_callback_style_none_builtin_and_not_callable():
    assert _checks.callback_style(None) is None
    assert _checks.notifier(None) is None
    with pytest.raises(TypeError, match="callback must be callable, got 3"):
        _checks.callback_style(3)
    # no signature to read: called the legacy way, with x
    with pytest.raises(ValueError):
        __import__("inspect").signature(max)
    assert _checks.callback_style(max) == "legacy"
    seen = []
    assert _checks.callback_style(seen.append) == "legacy"


@pytest.mark.parametrize("style", ["legacy", "new"])
def test_notifier_calls_each_style_with_a_copy(style):
    seen = []
    x = np.arange(3.0)
    values = []

    def value():
        values.append(1)
        return 4.5
    if style == "new":
        def callback(intermediate_result):
            seen.append(intermediate_result)
    else:
        def callback(xk):
            seen.append(xk)
    notify = _checks.notifier(callback)
    assert notify(x.copy, value, 7) is False
    got = seen[0]
    if style == "new":
        assert isinstance(got, OptimizeResult)
        assert got.fun == 4.5 and got.nit == 7 and values == [1]
        got = got.x
    else:
        assert values == []  # fun is evaluated only for a new-style callback
    np.testing.assert_array_equal(got, x)
    assert got is not x


@pytest.mark.parametrize("style", ["legacy", "new"])
def test_notifier_turns_stop_iteration_into_true(style):
    def legacy(xk):
        raise StopIteration

    def new(intermediate_result):
        raise StopIteration
    notify = _checks.notifier(legacy if style == "legacy" else new)
    assert notify(lambda: np.zeros(2), lambda: 0.0, 1) is True
    # other exceptions propagate unchanged
    error = KeyError("mine")

    def failing(xk):
        raise error
    with pytest.raises(KeyError) as info:
        _checks.notifier(failing)(lambda: np.zeros(2), lambda: 0.0, 1)
    assert info.value is error
