"""rmsopt/_result.py: the status table, scipy's messages, the result.

The oracle is scipy itself: its BFGS reports the messages and the summary
rmsopt copies, and scipy.optimize.minimize stops a callback the same way.
"""

import warnings

import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize import OptimizeResult, OptimizeWarning

import rmsopt
from rmsopt import _layout, _result
from rmsopt._options import parse_options
from problems import X0, rosen, rosen_der


def result(fun, status, message=None):
    return _result.make_result(x=np.ones(2), fun=fun, jac=np.zeros(2), nit=3,
                               nfev=4, njev=5, status=status, state={},
                               message=message)


# -- make_result -------------------------------------------------------------------

def test_make_result_fields():
    res = result(1.5, _result.SUCCESS)
    assert isinstance(res, OptimizeResult)
    assert (res.fun, res.nit, res.nfev, res.njev) == (1.5, 3, 4, 5)
    assert res.status == 0 and res.success is True
    assert res.message == _result.MESSAGES[_result.SUCCESS]
    assert res.state == {}
    for status in (_result.MAXITER, _result.NAN, _result.CALLBACK,
                   _result.INTERRUPTED):
        res = result(1.5, status)
        assert res.status == status and res.success is False
        assert res.message == _result.MESSAGES[status]


@pytest.mark.parametrize("fun", [np.nan, np.inf, -np.inf])
def test_a_non_finite_fun_is_never_success(fun):
    res = result(fun, _result.SUCCESS, message="ignored")
    assert res.status == _result.NAN and res.success is False
    assert res.message == "NaN result encountered."
    # other statuses stand: the non-finite value is their business
    res = result(fun, _result.MAXITER)
    assert res.status == _result.MAXITER
    assert res.message == _result.MESSAGES[_result.MAXITER]


def test_a_message_replaces_the_status_message_when_the_status_stands():
    res = result(1.0, _result.SUCCESS, message="Plateau reached.")
    assert res.success and res.message == "Plateau reached."
    res = result(1.0, _result.MAXITER, message="All 3 epochs done.")
    assert res.status == 1 and res.message == "All 3 epochs done."


def test_interrupted_result():
    res = _result.interrupted_result(np.ones(2), np.zeros(2), 7, 1, 8, {})
    assert res.status == _result.INTERRUPTED == 98
    assert np.isnan(res.fun) and res.success is False
    assert (res.nit, res.nfev, res.njev) == (7, 1, 8)
    assert res.message == _result.MESSAGES[_result.INTERRUPTED]


# -- scipy's messages ----------------------------------------------------------------

def test_messages_are_scipys():
    success = so.minimize(rosen, X0, jac=rosen_der, method="BFGS")
    assert success.success and success.status == _result.SUCCESS
    assert _result.MESSAGES[_result.SUCCESS] == success.message
    maxiter = so.minimize(rosen, X0, jac=rosen_der, method="BFGS",
                          options={"maxiter": 2})
    assert maxiter.status == _result.MAXITER
    assert _result.MESSAGES[_result.MAXITER] == maxiter.message

    def stop(intermediate_result):
        raise StopIteration
    stopped = so.minimize(rosen, X0, jac=rosen_der, method="BFGS",
                          callback=stop)
    assert stopped.status == _result.CALLBACK
    assert _result.MESSAGES[_result.CALLBACK] == stopped.message
    nan = so.minimize(lambda x: float(x @ x), np.ones(2),
                      jac=lambda x: np.full(2, np.nan), method="CG")
    assert nan.status == _result.NAN
    assert _result.MESSAGES[_result.NAN] == nan.message


def test_kernel_codes_map_to_statuses():
    codes = {name: getattr(_layout, name) for name in (
        "STEPPED", "CONVERGED", "NONFINITE_GRAD", "OVERFLOW",
        "BAD_GRAD_SHAPE", "LARGE_X")}
    # every code that ends a run, and only those
    ending = set(codes.values()) - {_layout.STEPPED, _layout.BAD_GRAD_SHAPE}
    assert set(_result.KERNEL_TO_STATUS) == ending
    assert _result.KERNEL_TO_STATUS[_layout.CONVERGED] == _result.SUCCESS
    for name in ("NONFINITE_GRAD", "OVERFLOW", "LARGE_X"):
        assert _result.KERNEL_TO_STATUS[codes[name]] == _result.NAN
    assert set(_result.KERNEL_TO_STATUS.values()) <= set(_result.MESSAGES)


# -- report: scipy's summary -------------------------------------------------------------

def test_report_prints_bfgs_summary(capsys):
    theirs = so.minimize(rosen, X0, jac=rosen_der, method="BFGS",
                         options={"disp": True})
    expected = capsys.readouterr().out
    _result.report(theirs)
    assert capsys.readouterr().out == expected


def test_report_warns_on_failure_as_bfgs_does(capsys):
    with pytest.warns(OptimizeWarning) as theirs_warned:
        theirs = so.minimize(rosen, X0, jac=rosen_der, method="BFGS",
                             options={"disp": True, "maxiter": 2})
    expected = capsys.readouterr().out
    with pytest.warns(OptimizeWarning) as ours_warned:
        _result.report(theirs)
    assert capsys.readouterr().out == expected
    assert [str(w.message) for w in ours_warned] == \
        [str(w.message) for w in theirs_warned]
    assert ours_warned[0].filename == __file__


# -- warn_user: the first frame outside rmsopt ---------------------------------------------

def test_warn_user_points_at_the_caller():
    with pytest.warns(UserWarning, match="here") as record:
        _result.warn_user("here", UserWarning)
    assert record[0].filename == __file__


def test_warnings_deep_inside_rmsopt_point_at_the_caller():
    with pytest.warns(OptimizeWarning, match="Unknown solver") as record:
        parse_options({"bogus": 1}, 2)
    assert record[0].filename == __file__
    with pytest.warns(OptimizeWarning, match="Unknown solver") as record:
        rmsopt.minimize(rosen, X0, jac=rosen_der,
                        options={"bogus": 1, "maxiter": 1})
    assert record[0].filename == __file__
    with pytest.warns(OptimizeWarning, match="clipped") as record:
        rmsopt.minimize(rosen, X0, jac=rosen_der, bounds=[(0, 1)] * 5,
                        options={"maxiter": 1})
    assert record[0].filename == __file__
    with pytest.warns(OptimizeWarning, match="Maximum") as record:
        rmsopt.minimize(rosen, X0, jac=rosen_der,
                        options={"maxiter": 1, "disp": True})
    assert record[0].filename == __file__


def test_scipys_own_warnings_point_at_the_caller():
    # the oracle for the plug-in below: scipy's unknown-option warning, and
    # rmsprop's own warnings (stacklevel=3), name the caller's line
    with pytest.warns(OptimizeWarning, match="Unknown solver") as record:
        so.minimize(rosen, X0, method="BFGS", options={"bogus": 1})
    assert record[0].filename == __file__
    with pytest.warns(RuntimeWarning, match="Hessian") as record:
        so.minimize(rosen, X0, jac=rosen_der, hess=rosen_der,
                    method=rmsopt.rmsprop, options={"maxiter": 1})
    assert record[0].filename == __file__


def test_warnings_through_the_scipy_plugin_point_at_the_caller():
    # Through scipy.optimize.minimize(method=rmsopt.rmsprop) the warning
    # names the line that passed the unknown option, not scipy's
    # _minimize.py (where the default filter would show it once for every
    # caller).
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        so.minimize(rosen, X0, jac=rosen_der, method=rmsopt.rmsprop,
                    options={"bogus": 1, "maxiter": 1})
    assert [w.filename for w in record] == [__file__]
