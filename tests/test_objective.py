"""rmsopt/_objective.py called directly: the jac forms, counting, the
finite differences, the in-place ``out`` form, value_at_grad, the checks
on what user code returns.

Oracles: scipy's own finite differences (``approx_derivative``, the code
behind minimize's jac='2-point', '3-point', 'cs', and the public
``approx_fprime`` for jac=None, BFGS's absolute step): the same bits where
no bound is near; the number of times user code was really called (the
counts are scipy's: nfev = calls of fun, finite differences included;
njev = gradient evaluations; jac=True one of each per call).
"""

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.optimize._numdiff import approx_derivative

from rmsopt._objective import (HOST, Objective, jac_mode, scalar, split_pair,
                               writes_into_out)
from problems import (X0, rosen, rosen_der, rosen_grad_into_jit,
                      rosen_grad_jit, rosen_jit, rosen_value_and_grad_into_jit,
                      rosen_value_and_grad_jit)

F8 = np.dtype("f8")
F4 = np.dtype("f4")


class Counted:
    """A user function that counts its calls (the oracle of nfev, njev)."""

    def __init__(self, func):
        self.func = func
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return self.func(*args)


def rosen_der_into(x, out):
    out[:] = rosen_der(x)


def rosen_value_and_der_into(x, out):
    out[:] = rosen_der(x)
    return rosen(x)


# -- jac forms ---------------------------------------------------------------------

@pytest.mark.parametrize("jac, mode", [
    (rosen_der, "callable"), (rosen_grad_jit, "callable"),
    (True, "value_and_grad"), (None, "absolute"), (False, "absolute"),
    ("2-point", "2-point"), ("3-point", "3-point"), ("cs", "cs")])
def test_jac_mode(jac, mode):
    assert jac_mode(jac) == mode


@pytest.mark.parametrize("jac", ["4-point", "2-POINT", 1, 0, np.ones(2), ()])
def test_jac_mode_rejects_other_values(jac):
    with pytest.raises(ValueError, match="jac must be a callable, True, None"
                                         r", or one of \('2-point'"):
        jac_mode(jac)


def test_objective_needs_a_callable_fun():
    with pytest.raises(TypeError, match="fun must be callable, got 3"):
        Objective(3, None, (), 2, F8)


# -- finite differences: scipy's numbers -----------------------------------------------

@pytest.mark.parametrize("method, calls", [("2-point", 6), ("3-point", 10),
                                           ("cs", 5)])
def test_finite_differences_are_scipys(method, calls):
    fun = Counted(rosen)
    obj = Objective(fun, method, (), 5, F8)
    g = obj.grad(X0)
    np.testing.assert_array_equal(g, approx_derivative(rosen, X0,
                                                       method=method))
    assert g.dtype == F8
    # n + 1 (forward), 2 n (central), n (complex step) calls of fun
    assert fun.calls == calls
    assert obj.counts() == (calls, 1)


def test_jac_none_is_approx_fprime_with_bfgs_step():
    fun = Counted(rosen)
    obj = Objective(fun, None, (), 5, F8)
    g = obj.grad(X0)
    np.testing.assert_array_equal(
        g, approx_fprime(X0, rosen, np.sqrt(np.finfo(float).eps)))
    assert fun.calls == 6 and obj.counts() == (6, 1)


def test_absolute_step_too_small_to_move_x_falls_back_to_relative():
    x = np.array([1e9])  # 1e9 + 1.5e-8 == 1e9: scipy's relative step
    obj = Objective(lambda x: float(x @ x), None, (), 1, F8)
    np.testing.assert_array_equal(obj.grad(x), approx_derivative(
        lambda x: float(x @ x), x, method="2-point"))


def test_finite_differences_with_args_and_a_relative_step():
    shift = np.arange(5.0) / 10

    def fun(x, s):
        return rosen(x - s)
    for rel in (1e-4, np.linspace(1e-5, 1e-3, 5)):
        obj = Objective(fun, "2-point", (shift,), 5, F8, rel_step=rel)
        # the documented step: h = rel_step * sign(x) * max(1, |x|)
        h = rel * np.where(X0 >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(X0))
        f0 = fun(X0, shift)
        expected = np.empty(5)
        for i in range(5):
            point = X0.copy()
            point[i] += h[i]
            expected[i] = (fun(point, shift) - f0) / (point[i] - X0[i])
        np.testing.assert_array_equal(obj.grad(X0), expected)


@pytest.mark.parametrize("method", ["2-point", "3-point"])
def test_finite_differences_inside_bounds(method):
    seen = []

    def fun(x):
        seen.append(x.copy())
        return rosen(x)
    # x0 on the lower bound of some coordinates and just below the upper
    # bound of others: one-sided differences there
    lo = np.array([X0[0], -5, X0[2], -5, -5])
    hi = np.array([5, X0[1] + 1e-9, 5, X0[3] + 1e-9, 5])
    obj = Objective(fun, method, (), 5, F8, lo, hi)
    g = obj.grad(X0)
    for point in seen:
        assert (lo <= point).all() and (point <= hi).all()
    # scipy adjusts its steps differently near a bound: the same
    # derivative to the accuracy of the scheme
    theirs = approx_derivative(rosen, X0, method=method, bounds=(lo, hi))
    np.testing.assert_allclose(g, theirs, rtol={"2-point": 1e-6,
                                                "3-point": 1e-8}[method])
    np.testing.assert_allclose(g, rosen_der(X0), rtol=1e-5)


def test_finite_differences_in_float32():
    obj = Objective(rosen, "2-point", (), 5, F4)
    g = obj.grad(X0.astype(F4))
    assert g.dtype == F4
    # float32's step (sqrt of its eps) and rounding: scipy's numbers for a
    # float32 x to about 1e-4, the true derivative to a few percent
    theirs = approx_derivative(rosen, X0.astype(F4), method="2-point")
    np.testing.assert_allclose(g, theirs, rtol=2e-4)
    np.testing.assert_allclose(g, rosen_der(X0), rtol=3e-2)


# -- counting ----------------------------------------------------------------------------

def test_counts_with_a_separate_jac():
    fun, jac = Counted(rosen), Counted(rosen_der)
    obj = Objective(fun, jac, (), 5, F8)
    for _ in range(3):
        obj.grad(X0)
    assert obj.value(X0) == rosen(X0)
    assert (fun.calls, jac.calls) == (1, 3)
    assert obj.counts() == (1, 3) == (obj.nfev, obj.njev)
    assert obj.value_at_grad is None  # a separate jac gives no value


def test_counts_with_jac_true():
    fun = Counted(lambda x: (rosen(x), rosen_der(x)))
    obj = Objective(fun, True, (), 5, F8)
    obj.grad(X0)
    obj.grad(X0 + 1)
    assert obj.value_at_grad == rosen(X0 + 1)
    assert obj.value(X0) == rosen(X0)
    # each call gives both, and counts one of each
    assert fun.calls == 3 and obj.counts() == (3, 2)


@pytest.mark.parametrize("jac, gives", [(True, True), (rosen_der, False),
                                        ("2-point", False)])
def test_record_and_pending_calls(jac, gives):
    fun = (lambda x: (rosen(x), rosen_der(x))) if jac is True else rosen
    obj = Objective(fun, jac, (), 5, F8)
    start = obj.counts()
    obj.record(4)
    nfev, njev = obj.counts()
    assert njev == start[1] + 4 and nfev == start[0] + 4 * gives
    # pending calls (the compiled loop's counter) count as recorded ones
    assert obj.counts(pending=3) == (nfev + 3 * gives, njev + 3)
    assert obj.counts() == (nfev, njev)  # nothing recorded by asking


def test_value_at_grad_follows_the_last_gradient():
    obj = Objective(rosen, "2-point", (), 5, F8)
    obj.grad(X0)
    assert obj.value_at_grad == rosen(X0)  # f(x) of the forward differences
    for method in ("3-point", "cs"):  # central and complex steps have none
        obj = Objective(rosen, method, (), 5, F8)
        obj.grad(X0)
        assert obj.value_at_grad is None
    obj = Objective(rosen_value_and_grad_jit, True, (), 5, F8)
    assert obj.value_at_grad is None  # no gradient yet
    obj.grad(X0)
    assert obj.value_at_grad == rosen_jit(X0)
    assert type(obj.value_at_grad) is float


# -- the in-place form ---------------------------------------------------------------------

def test_writes_into_out():
    assert writes_into_out(rosen_der_into)
    assert writes_into_out(rosen_grad_into_jit)  # a numba dispatcher
    assert writes_into_out(lambda x, out, *args: None)
    assert not writes_into_out(rosen_der)
    assert not writes_into_out(lambda x, a, out: None)  # only the second
    assert not writes_into_out(lambda x, *, out: None)  # keyword-only
    assert not writes_into_out(lambda x, *out: None)
    assert not writes_into_out(rosen_grad_jit)
    assert not writes_into_out(max)  # no signature to read


@pytest.mark.parametrize("jac, fun", [
    (rosen_der_into, rosen), (rosen_grad_into_jit, rosen_jit),
    (True, rosen_value_and_der_into), (True, rosen_value_and_grad_into_jit)])
def test_in_place_gradients_write_one_buffer(jac, fun):
    # the jitted functions compute the chained gradient in another order
    jitted = fun in (rosen_jit, rosen_value_and_grad_into_jit)
    exact = rosen_grad_jit if jitted else rosen_der
    value_of = rosen_jit if jitted else rosen
    obj = Objective(fun, jac, (), 5, F8)
    assert obj.inplace and obj.out.shape == (5,) and obj.out is obj.out_view
    first = obj.grad(X0)
    assert first is obj.out  # no new array
    np.testing.assert_array_equal(first, exact(X0))
    second = obj.grad(X0 + 0.5)
    assert second is first
    np.testing.assert_array_equal(second, exact(X0 + 0.5))
    assert obj.value(X0) == value_of(X0)
    assert obj.counts() == ((3, 2) if jac is True else (1, 2))
    if jac is True:
        # value() rewrote the buffer at the same x: still a gradient there
        np.testing.assert_array_equal(obj.out, exact(X0))


def test_loop_gradient_is_the_users_function_where_nothing_wraps_it():
    obj = Objective(rosen, rosen_der, (), 5, F8)
    assert obj.loop_gradient() is rosen_der
    obj = Objective(rosen, rosen_der_into, (), 5, F8)
    gradient = obj.loop_gradient()
    assert gradient(X0) is obj.out
    assert obj.counts() == (0, 0)  # the loop counts, then records
    obj = Objective(lambda x: [rosen(x), rosen_der(x)], True, (), 5, F8)
    np.testing.assert_array_equal(obj.loop_gradient()(X0), rosen_der(X0))
    assert obj.value_at_grad == rosen(X0)


# -- what user code returns -----------------------------------------------------------------

def test_check_gradient_converts():
    obj = Objective(rosen, rosen_der, (), 3, F4)
    g64 = np.array([1.0, 2.0, 3.0])
    g = obj.check_gradient(g64)
    assert g.dtype == F4 and g.flags.c_contiguous
    assert obj.raw_grad_dtype == F8
    np.testing.assert_array_equal(g, g64.astype(F4))
    assert obj.check_gradient([1, 2, 3]).dtype == F4  # a list of ints
    assert obj.raw_grad_dtype == np.dtype(int)
    strided = np.arange(6.0, dtype=F4)[::2]
    g = obj.check_gradient(strided)
    assert g.flags.c_contiguous
    np.testing.assert_array_equal(g, strided)
    frozen = np.ones(3, F4)
    frozen.flags.writeable = False
    g = obj.check_gradient(frozen)
    assert g.flags.writeable and g is not frozen
    # a 0-d gradient of a one-parameter problem
    one = Objective(lambda x: 0.0, lambda x: 2.0, (), 1, F8)
    np.testing.assert_array_equal(one.grad(np.ones(1)), [2.0])


@pytest.mark.parametrize("g, error, match", [
    (np.zeros(4), ValueError, r"must have shape \(3,\) like x0; got shape "
                              r"\(4,\) from jac"),
    (np.zeros((3, 1)), ValueError, r"got shape \(3, 1\)"),
    (np.zeros(3, complex), TypeError, "must be real; got dtype complex128 "
                                      "from jac"),
    (None, TypeError, "must be real; got dtype object"),
    ([1.0, [2.0]], TypeError, r"gradient must be an array of shape \(3,\); "
                              r"got list"),
])
def test_check_gradient_errors(g, error, match):
    obj = Objective(rosen, lambda x: g, (), 3, F8)
    with pytest.raises(error, match=match):
        obj.grad(np.ones(3))


def test_errors_name_fun_with_jac_true():
    obj = Objective(lambda x: (1.0, np.zeros(2)), True, (), 3, F8)
    with pytest.raises(ValueError, match="from fun"):
        obj.grad(np.ones(3))
    obj = Objective(lambda x: 1.0, True, (), 3, F8)
    with pytest.raises(TypeError, match=r"jac=True requires fun to return "
                                        r"a pair \(value, gradient\), got "
                                        r"float"):
        obj.grad(np.ones(3))
    # the value is checked with the gradient, not at the end of the run
    obj = Objective(lambda x: (np.ones(2), np.zeros(3)), True, (), 3, F8)
    with pytest.raises(ValueError, match="must return a scalar value"):
        obj.grad(np.ones(3))


def test_scalar_and_split_pair():
    assert scalar(np.float32(1.5)) == 1.5
    assert scalar(np.array([[2.0]])) == 2.0
    assert scalar(3) == 3
    assert scalar(1 + 2j, allow_complex=True) == 1 + 2j
    with pytest.raises(TypeError, match="must return a real value, got "
                                        "complex128"):
        scalar(1 + 2j)
    for bad in (np.ones(2), "a", None, [1.0, [2.0]]):
        with pytest.raises(ValueError, match="must return a scalar value"):
            scalar(bad)
    assert split_pair((1.0, 2)) == (1.0, 2)
    assert split_pair([1.0, 2]) == [1.0, 2]
    for bad in (1.0, (1.0,), (1, 2, 3)):
        with pytest.raises(TypeError, match="jac=True requires fun"):
            split_pair(bad)
    assert HOST.to_float(np.array(2.5)) == 2.5
    assert type(HOST.to_float(np.float32(2.5))) is float


def test_value_is_counted_and_a_float():
    fun = Counted(lambda x: np.float32(rosen(x)))
    obj = Objective(fun, rosen_der, (), 5, F8)
    value = obj.value(X0)
    assert type(value) is float and value == float(np.float32(rosen(X0)))
    assert fun.calls == 1 and obj.counts() == (1, 0)


def test_a_jitted_jac_is_called_as_it_is():
    obj = Objective(rosen_jit, rosen_grad_jit, (), 5, F8)
    assert obj.loop_gradient() is rosen_grad_jit
    np.testing.assert_array_equal(obj.grad(X0), rosen_grad_jit(X0))
    # a gradient of another dtype is cast, and its dtype remembered (the
    # nopython driver learns from it whether to cast in compiled code)
    obj = Objective(rosen_jit, lambda x: rosen_grad_jit(x).astype(F4), (),
                    5, F8)
    g = obj.grad(X0)
    assert g.dtype == F8 and obj.raw_grad_dtype == F4
    np.testing.assert_array_equal(g, rosen_grad_jit(X0).astype(F4))


def test_the_out_form_is_kept_per_function_and_goes_with_it():
    import gc
    import weakref

    from rmsopt import _objective

    def inplace(x, out):
        out[:] = x

    def allocating(x, out_of_place=None):
        return x
    assert _objective.writes_into_out(inplace)
    assert not _objective.writes_into_out(allocating)
    assert _objective._WRITES_INTO_OUT[inplace] is True
    gone = weakref.ref(inplace)
    del inplace
    gc.collect()
    assert gone() is None  # the memo did not keep it alive
    assert len(_objective._WRITES_INTO_OUT) >= 1  # allocating's
    assert not _objective.writes_into_out(lambda x: x)
