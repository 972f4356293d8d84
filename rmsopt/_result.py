"""The one status table, scipy's messages, and the OptimizeResult."""

import sys
import warnings

import numpy as np
from scipy.optimize import OptimizeResult, OptimizeWarning

from . import _layout

SUCCESS = 0
MAXITER = 1
NAN = 3
CALLBACK = 99
INTERRUPTED = 98  # ours: only on the result attached to a KeyboardInterrupt

# scipy's strings, copied (scipy keeps them in a private dict that moves).
MESSAGES = {
    SUCCESS: "Optimization terminated successfully.",
    MAXITER: "Maximum number of iterations has been exceeded.",
    NAN: "NaN result encountered.",
    CALLBACK: "`callback` raised `StopIteration`.",
    INTERRUPTED: "Interrupted by the user (KeyboardInterrupt).",
}

# What a kernel's code ends a run with; STEPPED (the run goes on) is not a
# status, and BAD_GRAD_SHAPE and USER_RAISED are errors the run raises.
KERNEL_TO_STATUS = {
    _layout.CONVERGED: SUCCESS,
    _layout.NONFINITE_GRAD: NAN,
    _layout.OVERFLOW: NAN,
    _layout.LARGE_X: NAN,
}


def make_result(x, fun, jac, nit, nfev, njev, status, state, message=None):
    """Build the result; a non-finite objective is never a success.

    ``message`` replaces the status's own message (when the status stands).
    """
    if status == SUCCESS and not np.isfinite(fun):
        status, message = NAN, None
    return OptimizeResult(x=x, fun=fun, jac=jac, nit=nit, nfev=nfev,
                          njev=njev, status=status, success=status == SUCCESS,
                          message=message or MESSAGES[status], state=state)


def interrupted_result(x, jac, nit, nfev, njev, state):
    """The result attached to a ``KeyboardInterrupt`` (status 98): the last
    iterate and the true counts; ``fun`` is not evaluated (NaN)."""
    return make_result(x=x, fun=np.nan, jac=jac, nit=nit, nfev=nfev,
                       njev=njev, status=INTERRUPTED, state=state)


def report(res):
    """Print scipy's summary (a warning on failure), as BFGS does with disp."""
    if res.success:
        print(res.message)
    else:
        warn_user(res.message, OptimizeWarning)
    print(f"         Current function value: {res.fun:f}")
    print(f"         Iterations: {res.nit:d}")
    print(f"         Function evaluations: {res.nfev:d}")
    print(f"         Gradient evaluations: {res.njev:d}")


# Warnings name the first frame outside these packages: the user's call,
# also through scipy's plug-in (scipy.optimize.minimize(method=rmsprop)).
_INSIDE = ("rmsopt.", "scipy.optimize.")


def warn_user(message, category):
    """``warnings.warn`` pointing at the user's call, however deep inside
    rmsopt (or scipy.optimize, for the plug-in) the warning arises."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get(
            "__name__", "").startswith(_INSIDE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
