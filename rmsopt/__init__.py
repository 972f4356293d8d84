"""rmsopt: RMSProp for ``scipy.optimize.minimize``, compiled with numba.

>>> import numpy as np, rmsopt
>>> res = rmsopt.minimize(lambda x: float(x @ x), np.ones(3),
...                       jac=lambda x: 2 * x, options={"maxiter": 5})
>>> res.nit
5
"""

from ._curve_fit import curve_fit
from ._minimize import minimize, rmsprop
from ._options import show_options
from ._progress import plot_convergence
from . import schedules

__all__ = ["curve_fit", "minimize", "plot_convergence", "rmsprop", "schedules", "show_options"]
__version__ = "0.1.0"
