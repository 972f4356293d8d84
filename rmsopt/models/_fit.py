r"""How the estimators fit: standardised data, then RMSProp with a learning
rate that drops when the loss stops falling.

RMSProp with a fixed learning rate :math:`\gamma` ends up circling the
optimum at a distance of about :math:`\gamma`; it never meets a tight
gradient tolerance. So the fit runs :func:`rmsopt.minimize` in chunks of
``CHUNK`` iterations, carrying the optimizer's state across chunks
(``options["state"]``), and divides :math:`\gamma` by ten whenever a chunk
ends with a loss no lower than the best seen. It stops when the largest
gradient component is at most ``tol``, or when no learning rate down to
``lr * MIN_LR`` lowers the loss (both success), or at ``max_iter``.

Features are centred (when there is an intercept to absorb the shift) and
scaled to unit variance first, so that one learning rate suits every
coefficient; the penalty is rewritten for the scaled coefficients and the
estimators map the solution back, so the problem solved is exactly the
unscaled one.

With ``batch_size``, each chunk is one epoch of mini-batches over the
first two arguments (X and y) instead, with a new order each epoch (seeded
by the epoch's number: reproducible); the loss and the gradient that decide
are those on all the data, which :func:`rmsopt.minimize` computes at the end
of each run with batches.
"""

from typing import NamedTuple

import numpy as np

from .._minimize import minimize

CHUNK = 100      # iterations between two looks at the loss
LR_DROP = 0.1    # factor on the learning rate after a chunk without progress
MIN_LR = 1e-10   # below lr * MIN_LR, no step can lower the loss any more

# Options the fit sets itself; the user's ``options`` may not.
_MANAGED = ("lr", "maxiter", "gtol", "state", "disp", "batch")


class Fit(NamedTuple):
    """The fitted parameters (standardised units) and how the run ended."""
    w: np.ndarray
    n_iter: int
    converged: bool
    message: str


class Scaling(NamedTuple):
    """X_std = (X - x_mean) / x_scale and y_std = (y - y_mean) / y_scale."""
    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float
    y_scale: float


def standardize(X, y, *, center, scale, scale_y):
    """``(X_std, y_std, Scaling)``: new arrays, the inputs untouched.

    ``center`` subtracts the means (of X, and of y when ``scale_y``);
    ``scale`` divides by the standard deviations (constant columns keep
    scale 1). Without ``scale_y``, y is returned as it is. X_std is
    C-contiguous float64: the losses read it row by row.
    """
    p = X.shape[1]
    x_mean = X.mean(axis=0) if center else np.zeros(p)
    x_scale = np.ones(p)
    if scale:
        sd = X.std(axis=0)
        x_scale = np.where(sd > 0, sd, 1.0)
    X_std = np.ascontiguousarray((X - x_mean) / x_scale)
    if not scale_y:
        return X_std, y, Scaling(x_mean, x_scale, 0.0, 1.0)
    y_mean = float(y.mean()) if center else 0.0
    sd = float(y.std())
    y_scale = sd if sd > 0 else 1.0
    y_std = (y - y_mean) / y_scale
    return X_std, y_std, Scaling(x_mean, x_scale, y_mean, y_scale)


def check_options(options):
    """The estimator's ``options`` as a new dict, or a clear error."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict of rmsopt.minimize options "
                        f"or None, got {type(options).__name__}")
    managed = sorted(set(options) & set(_MANAGED))
    if managed:
        raise ValueError(f"options may not set {', '.join(managed)}: the "
                         "estimator sets them (use its lr, max_iter and tol)")
    return dict(options)


def rmsprop_fit(loss, w0, args, *, lr, momentum, max_iter, tol, options,
                bounds=None, batch_size=None):
    """Minimise ``loss(w, out, *args)`` from ``w0`` (not modified); with
    ``batch_size``, on mini-batches of ``args[0]`` and ``args[1]``.

    Returns a :class:`Fit`. ``options`` are further :func:`rmsopt.minimize`
    options (already checked by :func:`check_options`).
    """
    opts = {"momentum": momentum, **options, "gtol": tol}
    w, state, n_iter, best = w0, None, 0, np.inf
    gamma = lr
    chunk = CHUNK
    if batch_size is not None:
        batch_size = min(int(batch_size), len(args[1]))
        chunk = -(-len(args[1]) // batch_size)  # one epoch
    epoch = 0
    while True:
        if batch_size is not None:
            opts["batch"] = {"args": (0, 1), "size": batch_size,
                             "seed": epoch, "epochs": 1}
            epoch += 1
        res = minimize(loss, w, args=args, jac=True, bounds=bounds,
                       options={**opts, "lr": gamma, "state": state,
                                "maxiter": min(chunk, max_iter - n_iter)})
        w, state, n_iter = res.x, res.state, n_iter + res.nit
        if res.status == 0:
            return Fit(w, n_iter, True, "")
        if res.status != 1:  # NaN or inf: w is the last finite iterate
            return Fit(w, n_iter, False,
                       f"the loss or its gradient became non-finite "
                       f"({res.message}); try a smaller lr")
        gnorm = float(np.abs(res.jac).max())
        if n_iter >= max_iter:
            return Fit(w, n_iter, False,
                       f"max_iter={max_iter} iterations reached with the "
                       f"largest gradient component {gnorm:.3g} > "
                       f"tol={tol:g}; increase max_iter or tol")
        if not res.fun < best:
            gamma *= LR_DROP
            if gamma < lr * MIN_LR:
                # No step lowers the loss any more: as far as the floating
                # point goes, this is the minimum (scipy's ftol test).
                return Fit(w, n_iter, True, "the loss stopped decreasing")
        best = min(best, res.fun)
