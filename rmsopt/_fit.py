r"""The fit loop that ``curve_fit`` and the estimators of ``rmsopt.models``
share: RMSProp with a learning rate that drops when the loss stops falling.

RMSProp with a fixed learning rate :math:`\gamma` ends up circling the
optimum at a distance of about :math:`\gamma`; it never meets a tight
gradient tolerance. So the fit runs :func:`rmsopt.minimize` in chunks of
``CHUNK`` iterations, carrying the optimizer's state across chunks
(``options["state"]``), and divides :math:`\gamma` by ten whenever a chunk
ends with a loss no lower than the best seen. It stops when the largest
gradient component is at most ``tol``, or when no learning rate down to
``lr * MIN_LR`` lowers the loss (both success), or at ``max_iter``.

With ``batch_size``, each chunk is one epoch of mini-batches over the
first two arguments (X and y) instead, with a new order each epoch (seeded
by the epoch's number: reproducible); the loss and the gradient that decide
are those on all the data, which :func:`rmsopt.minimize` computes at the end
of each run with batches.
"""

from typing import NamedTuple

import numpy as np

from ._minimize import minimize

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
        # each chunk's epoch has its own seed: new epochs, not continued
        state = {k: v for k, v in res.state.items() if k != "batches"}
        w, n_iter = res.x, n_iter + res.nit
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
