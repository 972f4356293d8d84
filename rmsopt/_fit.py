r"""The fit loop that ``curve_fit`` and the estimators of ``rmsopt.models``
share: RMSProp in chunks, with a learning rate that drops when the loss
stops falling, and one stopping rule.

RMSProp with a fixed learning rate :math:`\gamma` ends up circling the
optimum at a distance of about :math:`\gamma`; it never meets a tight
gradient tolerance. So the fit runs :func:`rmsopt.minimize` in chunks of
``CHUNK`` iterations, carrying the optimizer's state across chunks
(``options["state"]``), and looks at the full loss :math:`f` and its
gradient :math:`g` at the end of each chunk. It keeps the best point seen
(the lowest :math:`f`; where two losses agree to rounding, the smaller
:math:`\max_j |g_j|`, since near an optimum :math:`f` changes with the
square of the gradient and can no longer tell points apart), and never goes
on from a worse one: a chunk that ends worse than the best goes back to the
best point with :math:`\gamma / 10` and a fresh state (a backtracking line
search over chunks, so that RMSProp's first steps, about
:math:`\gamma / \sqrt{1 - \alpha}` each whatever the gradient, cannot carry
the fit off the data for good).

The stopping rule, the same for every fit:

- **converged**: at the best point, :math:`\max_j |g_j| \le
  \text{tol} \cdot \max(1, |f|)` (a gradient small relative to the
  objective's scale) with :math:`f` finite;
- **failed**, with a message that says which: the loss or the gradient
  became non-finite near the start; ``max_iter`` iterations; or a stall:
  the learning rate fell below ``lr * min_lr`` without a chunk that lowers
  the loss, or three chunks in a row changed nothing but rounding
  (relative changes of :math:`f` and of the parameters both below
  ``16 * eps``), with the gradient still above the test.

The relative changes are only a second condition, for stopping a stall
early: a small change is never taken for convergence, since RMSProp with a
small rate changes little far from any optimum (that is how a fit used to
report success by exhaustion).

``lr`` may be a schedule of :mod:`rmsopt.schedules` or a callable
``lr(t)``: the drops then scale the whole schedule, and a fresh state
starts it again from its step 0.

Whatever the outcome, the fit returns the best point, never a worse later
iterate.

:func:`polished_fit` (the estimators' default with the data in memory)
finishes a short RMSProp phase with scipy's L-BFGS-B (:func:`polish_fit`),
to the same test; ``curve_fit`` finishes with
:func:`scipy.optimize.least_squares` instead (see it).

With ``batch_size``, each chunk is one epoch of mini-batches over the
first two arguments (X and y) instead, with a new order each epoch (seeded
by the epoch's number: reproducible); the loss and the gradient that decide
are those on all the data, which :func:`rmsopt.minimize` computes at the end
of each run with batches.
"""

from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.optimize

from ._minimize import minimize
from ._options import OPTIONS
from ._schedules import COSINE, PLATEAU, Schedule

CHUNK = 100      # iterations between two looks at the loss
LR_DROP = 0.1    # factor on the learning rate after a chunk without progress
MIN_LR = 1e-10   # below lr * MIN_LR, no step can lower the loss any more

POLISH_AFTER = 10  # RMSProp's iterations before L-BFGS-B takes over
POLISH_LR = 1e-3  # RMSProp's rate after L-BFGS-B, relative to lr
NEWTON_STEPS = 50  # most steps of gradient_steps
STALL_CHUNKS = 3  # chunks in a row without a change above rounding: a stall
ROUNDING = 16 * np.finfo(float).eps  # relative changes below: rounding

# Options the fit sets itself; the user's ``options`` may not.
_MANAGED = ("lr", "maxiter", "gtol", "state", "disp", "batch")


class Fit(NamedTuple):
    """The best point (standardised units) and how the run ended."""
    w: np.ndarray
    n_iter: int
    converged: bool
    message: str
    fun: float = np.nan
    gmax: float = np.nan  # the largest gradient component at w


def check_options(options, who="the estimator",
                  own="its lr, max_iter and tol"):
    """``options`` (further :func:`rmsopt.minimize` options) as a new dict,
    or a clear error: a ValueError for a name the fit sets itself
    (``who`` sets it; use ``own``) or one ``minimize`` does not know
    (where ``minimize`` would warn and go on, a fit would silently ignore
    what the user asked for)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict of rmsopt.minimize options "
                        f"or None, got {type(options).__name__}")
    managed = sorted(set(options) & set(_MANAGED))
    if managed:
        raise ValueError(f"options may not set {', '.join(managed)}: "
                         f"{who} sets them (use {own})")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown rmsopt.minimize options: "
                         f"{', '.join(unknown)}; see rmsopt.show_options()")
    return dict(options)


def scaled(lr, factor):
    """The learning rate ``lr`` (a number, a :class:`Schedule` or a
    callable ``lr(t)``) times ``factor``, at every step."""
    if factor == 1.0:
        return lr
    if isinstance(lr, Schedule):
        p = list(lr.params)
        p[0] *= factor
        if lr.kind == COSINE:
            p[2] *= factor       # eta_min
        elif lr.kind == PLATEAU:
            p[5] *= factor       # min_lr
        return lr._replace(params=tuple(p))
    if callable(lr):
        return lambda t: factor * lr(t)
    return lr * factor


def better(res, best_f, best_g):
    """Whether the run ``res`` ended at a better point than the best so far:
    a lower loss; or, where the two losses agree to rounding (near an
    optimum, the loss cannot tell points apart any more: it changes with
    the square of the gradient), a smaller gradient."""
    if res.jac is None or not np.isfinite(res.fun) or \
            not np.isfinite(res.jac).all():
        return False
    if best_g is None:
        return True
    if abs(res.fun - best_f) <= ROUNDING * abs(best_f):
        return float(np.max(np.abs(res.jac))) < float(np.max(np.abs(best_g)))
    return res.fun < best_f


def rmsprop_fit(loss, w0, args, *, lr, momentum, max_iter, tol, options,
                bounds=None, batch_size=None, min_lr=MIN_LR, spent=0,
                scale=None):
    r"""Minimise ``loss(w, out, *args)`` from ``w0`` (not modified); with
    ``batch_size``, on mini-batches of ``args[0]`` and ``args[1]``.

    Returns a :class:`Fit` at the best point, converged or not by the
    module's stopping rule. ``options`` are further :func:`rmsopt.minimize`
    options (already checked by :func:`check_options`); ``min_lr`` is the
    stall's floor, relative to ``lr``; ``spent`` counts iterations an
    earlier phase took from ``max_iter``. ``scale(w, f)`` (a number or one
    per component; NaN where the test cannot hold) replaces the test's
    ``max(1, |f|)``: a problem that knows its gradient's natural size
    (least squares: :math:`\lVert J_j \rVert \lVert r \rVert`) tests it
    relative to that.
    """
    opts = {"momentum": momentum, **options}
    w, state, n_iter = w0, None, spent
    best_w, best_f, best_g = np.array(w0, dtype=float), np.inf, None
    drop = 1.0       # the factor on lr since the last fresh start
    flat = 0         # improving chunks in a row that changed nothing
    chunk = CHUNK
    if batch_size is not None:
        batch_size = min(int(batch_size), len(args[1]))
        chunk = -(-len(args[1]) // batch_size)  # one epoch
    epoch = 0

    def size(w, f):
        """What the gradient is compared with, at a point."""
        return max(1.0, abs(f)) if scale is None else scale(w, f)

    def test(w, f, g):
        """The convergence test at a point (see the module)."""
        return bool(np.isfinite(f) and g is not None and
                    np.all(np.abs(g) <= tol * size(w, f)))

    def unmet():
        """How the test fails at the best point, in words."""
        if best_g is None:
            return "no finite gradient"
        gmax = float(np.max(np.abs(best_g)))
        if scale is None:
            return (f"the largest gradient component {gmax:.3g} > "
                    f"tol={tol:g} x max(1, |f|)")
        ratio = np.abs(best_g) / size(best_w, best_f)
        if np.isnan(ratio).any():
            return ("a parameter the loss no longer depends on (the model "
                    "may have left the data)")
        return (f"the largest gradient component over its scale "
                f"{float(np.max(ratio)):.3g} > tol={tol:g}")

    def end(converged, message):
        gmax = np.nan if best_g is None else float(np.max(np.abs(best_g)))
        return Fit(best_w, n_iter, converged, message, best_f, gmax)

    # The start is the first point visited: the best until a chunk ends
    # lower (a first chunk that leaves the data is then taken back).
    first = minimize(loss, w0, args=args, jac=True, bounds=bounds,
                     options={**opts, "maxiter": 0})
    if first.jac is not None and np.isfinite(first.fun) and \
            np.isfinite(first.jac).all():
        best_w, best_f, best_g = first.x, float(first.fun), first.jac
        if test(best_w, best_f, best_g):
            return end(True, "")
    while True:
        if batch_size is not None:
            opts["batch"] = {"args": (0, 1), "size": batch_size,
                             "seed": epoch, "epochs": 1}
            epoch += 1
        # minimize stops itself where the test would hold at the best point
        # so far (its smallest scale: never before the test)
        gtol = tol * float(np.min(size(best_w, best_f))) if np.isfinite(
            best_f) else tol
        if not gtol >= 0.0:  # NaN: a scale where the test cannot hold
            gtol = 0.0
        res = minimize(loss, w, args=args, jac=True, bounds=bounds,
                       options={**opts, "lr": scaled(lr, drop),
                                "state": state,
                                "gtol": gtol,
                                "maxiter": min(chunk, max_iter - n_iter)})
        n_iter += res.nit
        if better(res, best_f, best_g):
            unchanged = abs(best_f - res.fun) <= ROUNDING * abs(best_f) and \
                np.max(np.abs(res.x - best_w), initial=0.0) <= ROUNDING * \
                np.max(np.abs(best_w), initial=0.0)
            flat = flat + 1 if unchanged else 0
            best_w, best_f, best_g = res.x, float(res.fun), res.jac
            if test(best_w, best_f, best_g):
                return end(True, "")
            # each chunk's epoch has its own seed: new epochs, not continued
            state = {k: v for k, v in res.state.items() if k != "batches"}
            w = res.x
        else:
            # worse than the best (or not finite): back to the best point
            # with a smaller rate and a fresh state
            if res.status == 3 and best_g is None:
                return end(False, f"the loss or its gradient is not finite "
                                  f"near the start ({res.message}); try a "
                                  f"smaller lr")
            w, state = best_w, None
            drop *= LR_DROP
            flat = 0
        if n_iter >= max_iter:
            return end(False, f"max_iter={max_iter} iterations reached with "
                              f"{unmet()}; increase max_iter or tol")
        if drop < min_lr or flat >= STALL_CHUNKS:
            why = (f"the learning rate fell to {drop:.3g} times lr"
                   if drop < min_lr else f"{STALL_CHUNKS} chunks in a row "
                   f"changed the loss and the parameters only by rounding")
            return end(False, f"stalled: no step lowers the loss any more "
                              f"({why}) with {unmet()}")


def polish_fit(loss, fit, args, *, tol, max_iter, bounds=None,
               curvature=None):
    r"""Finish ``fit`` (a :class:`Fit` of :func:`rmsprop_fit`) with
    scipy's L-BFGS-B from its best point: a quasi-Newton method converges
    fast where RMSProp has brought the fit, to the same test.

    ``curvature`` approximates the loss's Hessian :math:`H` (positive
definite: a matrix, or its diagonal as a vector; default the identity):
L-BFGS-B runs on :math:`v = L^\top w`, :math:`H = L L^\top`, where
RMSProp's own per-parameter scaling is not there to absorb penalties that
differ by orders of magnitude between parameters, or collinear features.
A bounded parameter must be uncoupled in :math:`H` (its bound is then a
bound on its :math:`v`). Returns a :class:`Fit` at the better of the two
points (by the loss), converged iff the module's test holds there;
``max_iter`` bounds the iterations of both together (L-BFGS-B's counted
in ``n_iter``).
    """
    if not np.isfinite(fit.fun):
        return fit
    L = _factor(curvature, fit.w.size)

    def to_w(v):
        return scipy.linalg.solve_triangular(L, v, trans="T", lower=True)

    def fun(v):
        w = to_w(v)
        g = np.empty_like(w)
        f = loss(w, g, *args)
        return f, scipy.linalg.solve_triangular(L, g, lower=True)

    box = None
    if bounds is not None:
        lb, ub = _limits(bounds, fit.w)
        bounded = np.isfinite(lb) | np.isfinite(ub)
        coupled = np.count_nonzero(L, axis=0) + np.count_nonzero(L, axis=1)
        if np.any(bounded & (coupled > 2)):
            raise ValueError("a bounded parameter must be uncoupled in "
                             "curvature")
        d = np.diag(L)
        box = scipy.optimize.Bounds(np.where(bounded, lb * d, -np.inf),
                                    np.where(bounded, ub * d, np.inf))
    # L-BFGS-B tests g_v = L^-1 g; g = L g_v: |g| <= |L|_inf |g_v|
    gtol = tol * max(1.0, abs(fit.fun)) / float(np.max(np.sum(np.abs(L),
                                                              axis=1)))
    res = scipy.optimize.minimize(
        fun, L.T @ fit.w, jac=True, method="L-BFGS-B", bounds=box,
        options={"maxiter": max(int(max_iter) - fit.n_iter, 1),
                 "gtol": gtol, "ftol": 0.0, "maxls": 50})
    n_iter = fit.n_iter + int(res.nit)
    w = to_w(res.x)
    g = np.empty_like(w)
    f = loss(w, g, *args)
    if not (np.isfinite(f) and np.isfinite(g).all() and f <= fit.fun):
        return fit._replace(n_iter=n_iter)
    gmax = float(np.max(np.abs(_projected(g, w, bounds)), initial=0.0))
    if gmax <= tol * max(1.0, abs(f)):
        return Fit(w, n_iter, True, "", float(f), gmax)
    why = f"max_iter={max_iter} iterations reached" if n_iter >= max_iter \
        else f"L-BFGS-B stopped ({res.message})"
    return Fit(w, n_iter, False,
               f"{why} with the largest gradient component {gmax:.3g} > "
               f"tol={tol:g}", float(f), gmax)


def gradient_steps(loss, fit, args, *, tol, max_iter, curvature=None,
                   bounds=None):
    r"""Preconditioned gradient steps :math:`w - t H^{-1} g` from ``fit``,
    each kept where the loss does not rise beyond rounding and the largest
    gradient component falls (:math:`t` doubles up to 1 after a kept step,
    halves after a refused one): where L-BFGS-B stops because the loss no
    longer falls to rounding, the gradient can still be brought to the
    test. At most ``NEWTON_STEPS`` evaluations, each counted in
    ``n_iter``; a step that leaves ``bounds`` is refused."""
    if not np.isfinite(fit.gmax):
        return fit
    L = _factor(curvature, fit.w.size)
    lb, ub = (-np.inf, np.inf) if bounds is None else _limits(bounds, fit.w)
    w, f, gmax, n_iter = fit.w, fit.fun, fit.gmax, fit.n_iter
    g = np.empty_like(w)
    loss(w, g, *args)
    t = 1.0
    for _ in range(min(NEWTON_STEPS, max_iter - n_iter)):
        step = scipy.linalg.cho_solve((L, True), g)
        trial = w - t * step
        if np.any(trial < lb) or np.any(trial > ub):
            t /= 2
            continue
        g_trial = np.empty_like(w)
        f_trial = loss(trial, g_trial, *args)
        n_iter += 1
        g_max = float(np.max(np.abs(g_trial)))
        if np.isfinite(f_trial) and f_trial <= f + ROUNDING * abs(f) and \
                g_max < gmax:
            w, f, g, gmax = trial, float(f_trial), g_trial, g_max
            if gmax <= tol * max(1.0, abs(f)):
                return Fit(w, n_iter, True, "", f, gmax)
            t = min(1.0, 2 * t)
        else:
            t /= 2
            if t < 1e-8:
                break
    return Fit(w, n_iter, False, f"the loss stopped falling at rounding "
                                 f"with the largest gradient component "
                                 f"{gmax:.3g} > tol={tol:g}", f, gmax)


def _factor(curvature, n):
    """The lower Cholesky factor of ``curvature`` (a matrix, or a vector:
    its diagonal; None: the identity)."""
    H = np.ones(n) if curvature is None else np.asarray(curvature,
                                                         dtype=float)
    return scipy.linalg.cholesky(np.diag(H) if H.ndim == 1 else H,
                                 lower=True)


def _limits(bounds, w):
    """``(lb, ub)`` arrays of ``w``'s shape from a scipy ``Bounds`` or
    ``(low, high)`` pairs (None for no bound)."""
    if isinstance(bounds, scipy.optimize.Bounds):
        lb, ub = bounds.lb, bounds.ub
    else:
        lb = [-np.inf if low is None else low for low, _ in bounds]
        ub = [np.inf if high is None else high for _, high in bounds]
    return (np.broadcast_to(np.asarray(lb, float), w.shape),
            np.broadcast_to(np.asarray(ub, float), w.shape))


def _projected(g, w, bounds):
    """The gradient with the components that push against an active bound
    zeroed (the test of a bounded problem, as L-BFGS-B's)."""
    if bounds is None:
        return g
    lb, ub = _limits(bounds, w)
    return np.where(((w <= lb) & (g > 0)) | ((w >= ub) & (g < 0)), 0.0, g)


def polished_fit(loss, w0, args, *, lr, momentum, max_iter, tol, options,
                 bounds=None, curvature=None):
    """RMSProp for at most ``POLISH_AFTER`` iterations, then
    :func:`polish_fit` (L-BFGS-B, preconditioned by ``curvature``); where
    L-BFGS-B stops at the loss's rounding short of the test,
    :func:`gradient_steps`, then RMSProp with ``lr * POLISH_LR`` (both
    compare gradients where the loss cannot tell points apart).
    ``max_iter`` bounds all phases together; the result is a :class:`Fit`
    by the module's rule."""
    fit = rmsprop_fit(loss, w0, args, lr=lr, momentum=momentum,
                      max_iter=min(max_iter, POLISH_AFTER), tol=tol,
                      options=options, bounds=bounds, min_lr=1e-3)
    if fit.converged:
        return fit
    fit = polish_fit(loss, fit, args, tol=tol, bounds=bounds,
                     max_iter=max_iter, curvature=curvature)
    if not fit.converged and fit.n_iter < max_iter:
        fit = gradient_steps(loss, fit, args, tol=tol, max_iter=max_iter,
                             curvature=curvature, bounds=bounds)
    if fit.converged or fit.n_iter >= max_iter:
        return fit
    tail = lr * POLISH_LR
    return rmsprop_fit(loss, fit.w, args, lr=tail,
                       momentum=momentum, max_iter=max_iter, tol=tol,
                       options=options, bounds=bounds, spent=fit.n_iter)
