"""Status codes, scipy's messages, and the OptimizeResult."""

import warnings

import numpy as np
from scipy.optimize import OptimizeResult, OptimizeWarning

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


def make_result(x, fun, jac, nit, nfev, njev, status, state):
    """Build the result; a non-finite objective is never a success."""
    if status == SUCCESS and not np.isfinite(fun):
        status = NAN
    return OptimizeResult(x=x, fun=fun, jac=jac, nit=nit, nfev=nfev,
                          njev=njev, status=status, success=status == SUCCESS,
                          message=MESSAGES[status], state=state)


def report(res):
    """Print scipy's summary (a warning on failure), as BFGS does with disp."""
    if res.success:
        print(res.message)
    else:
        warnings.warn(res.message, OptimizeWarning, stacklevel=4)
    print(f"         Current function value: {res.fun:f}")
    print(f"         Iterations: {res.nit:d}")
    print(f"         Function evaluations: {res.nfev:d}")
    print(f"         Gradient evaluations: {res.njev:d}")
