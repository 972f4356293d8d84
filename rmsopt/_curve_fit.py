r"""``curve_fit``: scipy's interface; RMSProp on the least-squares cost, then a
local finish with ``scipy.optimize.least_squares``."""

import inspect
import numbers
import warnings

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import Bounds, OptimizeWarning, least_squares

from ._fit import MIN_LR, check_options, rmsprop_fit


def curve_fit(f, xdata, ydata, p0=None, sigma=None, absolute_sigma=False,
              check_finite=True, bounds=(-np.inf, np.inf), jac=None, *,
              full_output=False, polish=True, lr=0.01, momentum=0.9,
              maxiter=None, gtol=1e-8, options=None, **more_options):
    r"""Fit ``f(xdata, *params)`` to ``ydata`` by least squares: RMSProp's
    robust descent, then a local finish.

    Mirrors :func:`scipy.optimize.curve_fit`: same parameters, same
    ``(popt, pcov)``. With :math:`r(p) = L^{-1}(f(x, p) - y)`, where
    :math:`L = \operatorname{diag}(\sigma)` for a 1-D ``sigma`` and the
    Cholesky factor of the covariance for a 2-D one, it minimises

    .. math::

        \tfrac12 \lVert r(p) \rVert^2

    in two phases:

    1. RMSProp on the parameters divided by ``|p0|`` (1 where ``p0`` is 0),
       so ``lr`` is a relative step, in the shared fit loop of
       :mod:`rmsopt._fit`: it keeps the best point seen, goes back to it
       with a smaller rate after a chunk of iterations that does not lower
       the cost, and stops at its convergence test or at a stall. Its
       gradient :math:`J^\top r` uses forward differences (or ``jac``).
    2. With ``polish`` (the default), :func:`scipy.optimize.least_squares`
       from RMSProp's best point: Levenberg-Marquardt without bounds (as
       scipy's ``curve_fit``), the trust-region reflective method with
       them, to the digits the data allow. RMSProp brings the fit into the
       basin of the solution from a poor start; the local method, which
       converges fast there, finishes it.

    Then, with :math:`J` the Jacobian of :math:`r` at the solution
    (``least_squares``' own, or central differences with steps relative
    to each parameter, or ``jac``),

    .. math::

        \mathrm{pcov} = (J^\top J)^{+}
        \cdot \frac{\lVert r \rVert^2}{m - n}
        \quad\text{(the last factor only without ``absolute_sigma``)}

    with the pseudo-inverse from the SVD of :math:`J`, dropping singular
    values below :math:`\epsilon_{mach} \max(m, n) s_0` as scipy does. Where
    the covariance cannot be estimated (``m <= n`` without
    ``absolute_sigma``, or :math:`J` not finite), ``pcov`` is all inf and an
    ``OptimizeWarning`` says so.

    When to use it rather than scipy's: from poor starting points, where
    Levenberg-Marquardt alone wanders off (RMSProp's steps are bounded
    relative to each parameter, and a chunk that raises the cost is taken
    back). Where scipy's converges from your start, it is faster (no
    RMSProp phase) and gives the same answer.

    Parameters
    ----------
    f : callable
        ``f(xdata, *params) -> array`` of ``ydata``'s shape.
    xdata : array_like or object
        Passed to ``f`` as it is (checked for finiteness when it is numeric
        and ``check_finite``).
    ydata : array_like
        The data, ``m`` values (flattened if it has more dimensions).
    p0 : array_like, shape (n,), optional
        Starting point. Default: ones (the count taken from ``f``'s
        signature), or, with bounds, a feasible point as scipy chooses it.
    sigma : array_like, shape (m,) or (m, m), optional
        Standard deviations of ``ydata``, or their covariance matrix.
    absolute_sigma : bool, default False
        True: ``sigma`` is absolute and ``pcov`` is not rescaled by the
        residual variance.
    check_finite : bool, default True
        Raise ``ValueError`` when the data hold NaN or inf.
    bounds : 2-tuple of array_like or scipy.optimize.Bounds, optional
        Lower and upper bounds on the parameters; iterates are projected on
        them.
    jac : callable, optional
        ``jac(xdata, *params) -> (m, n)``, the Jacobian of ``f``. Default:
        finite differences.
    full_output : bool, default False
        Also return ``infodict`` (``nfev``, ``fvec``, ``nit`` of RMSProp,
        ``rmsprop``: its message, ``polish``: ``least_squares``' result or
        None), ``mesg`` and ``ier`` (1 on success).
    polish : bool, default True
        Finish with :func:`scipy.optimize.least_squares`; False gives the
        pure RMSProp result, which must pass RMSProp's own convergence test
        (``gtol``).
    lr : float, Schedule or callable, default 0.01
        RMSProp's initial learning rate, relative to ``|p0|``, or a
        schedule of :mod:`rmsopt.schedules` (or ``lr(t)``): the fit scales
        it down tenfold after each chunk of iterations that does not lower
        the cost, and starts it again from the best point.
    momentum : float, default 0.9
    maxiter : int, optional
        Most RMSProp iterations: by default 2000 with ``polish`` (more
        gained no digit on NIST's problems, ``benchmarks/nist.py``), 20000
        without.
    gtol : float, default 1e-8
        RMSProp's convergence test (it decides without ``polish``):
        :math:`|J_j^\top r| \le \text{gtol} \lVert J_j \rVert
        \lVert r \rVert` for every parameter :math:`j`, the cosine of the
        angle between the residuals and each column of the Jacobian
        (MINPACK's ``gtol``, as scipy's ``leastsq`` and ``least_squares``
        test it). Unlike a plain gradient norm it does not hold on a
        plateau where the model has left the data (the gradient is tiny
        there, but so is :math:`J`).
    options : dict, optional
        Further :func:`rmsopt.minimize` options (``alpha``, ``eps``, ...);
        they may also be given as keyword arguments.

    Returns
    -------
    popt : ndarray, shape (n,)
    pcov : ndarray, shape (n, n)
    infodict, mesg, ier
        Only with ``full_output``.

    Raises
    ------
    RuntimeError
        When the fit does not converge (the local finish fails, or without
        ``polish`` RMSProp stalls, reaches ``maxiter`` or a non-finite
        cost), as scipy raises when its least-squares solver fails; the
        message says which.

    Examples
    --------
    >>> import numpy as np, scipy.optimize, rmsopt
    >>> def decay(x, a, b, c):
    ...     return a * np.exp(-b * x) + c
    >>> x = np.linspace(0, 4, 50)
    >>> rng = np.random.default_rng(0)
    >>> y = decay(x, 2.5, 1.3, 0.5) + 0.02 * rng.standard_normal(50)
    >>> popt, pcov = rmsopt.curve_fit(decay, x, y, p0=[1.0, 1.0, 1.0])
    >>> ref, ref_cov = scipy.optimize.curve_fit(decay, x, y, p0=[1, 1, 1])
    >>> bool(np.allclose(popt, ref, rtol=1e-6))
    True
    >>> bool(np.abs(pcov - ref_cov).max() < 1e-4 * np.abs(ref_cov).max())
    True
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {f!r}")
    if jac is not None and not callable(jac):
        raise ValueError("jac must be a callable jac(xdata, *params) or "
                         f"None; got {jac!r}")
    if not isinstance(polish, (bool, np.bool_)):
        raise TypeError(f"polish must be True or False, got {polish!r}")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict of rmsopt.minimize options "
                        f"or None, got {type(options).__name__}")
    options = check_options({**(options or {}), **more_options},
                            "curve_fit", "its lr, maxiter and gtol")
    if maxiter is None:
        maxiter = 2000 if polish else 20000
    if isinstance(maxiter, (bool, np.bool_)) or not isinstance(
            maxiter, numbers.Integral) or maxiter < 0:
        raise ValueError(f"maxiter must be an integer >= 0 or None, got "
                         f"{maxiter!r}")
    ydata = _as_float_array(ydata, "ydata", check_finite)
    if ydata.size == 0:
        raise ValueError("`ydata` must not be empty!")
    if check_finite and _is_numeric(xdata):
        _as_float_array(xdata, "xdata", True)
    lb, ub = _bounds(bounds)
    p0 = _initial_point(f, p0, lb, ub)
    n = p0.size
    lb = np.broadcast_to(lb, (n,)) if lb.size in (1, n) else _bad_bounds()
    ub = np.broadcast_to(ub, (n,)) if ub.size in (1, n) else _bad_bounds()
    if (lb >= ub).any():
        raise ValueError("Each lower bound must be strictly less than each "
                         "upper bound.")
    if ((p0 < lb) | (p0 > ub)).any():
        raise ValueError("p0 is infeasible: it lies outside the bounds")
    whiten = _whitening(sigma, ydata)

    shape, y = ydata.shape, ydata.ravel()
    nfev = [0]

    def residuals(p):
        nfev[0] += 1
        out = np.asarray(f(xdata, *p), dtype=float)
        if out.shape != shape:
            raise ValueError(f"f(xdata, *params) must return an array of "
                             f"ydata's shape {shape}; got {out.shape}")
        return whiten(out.ravel() - y)

    def jacobian(p, r=None, central=False):
        """J of the whitened residuals, (m, n): the user's, or differences
        with steps relative to each parameter (central: eps^(1/3)|p_j|,
        forward: sqrt(eps)|p_j|; the power of eps itself where p_j = 0),
        stepping inwards at a bound."""
        if jac is not None:
            return whiten(np.asarray(jac(xdata, *p), dtype=float).reshape(
                ydata.size, n))
        J = np.empty((ydata.size, n))
        eps = np.finfo(float).eps
        for j in range(n):
            h = (eps ** (1 / 3) if central else np.sqrt(eps)) * (
                abs(p[j]) if p[j] != 0 else 1.0)
            up, down = p.copy(), p.copy()
            if central and p[j] - h >= lb[j] and p[j] + h <= ub[j]:
                up[j] += h
                down[j] -= h
                with np.errstate(invalid="ignore"):
                    J[:, j] = (residuals(up) - residuals(down)) / (
                        up[j] - down[j])
                continue
            if p[j] + h > ub[j]:
                h = -h  # step inwards at an upper bound
            up[j] += h
            base = residuals(p) if r is None else r
            with np.errstate(invalid="ignore"):  # inf - inf: checked later
                J[:, j] = (residuals(up) - base) / (up[j] - p[j])
        return J

    scale = np.where(p0 != 0, np.abs(p0), 1.0)

    def cost(u, *_):
        p = u * scale
        r = residuals(p)
        g = jacobian(p, r).T @ r * scale
        return 0.5 * float(r @ r), g

    def size(u, _f):
        """|J_j| |r| in the scaled parameters: the convergence test's
        scale for each component of the gradient (see gtol). NaN where
        the model no longer depends on a parameter (a zero column: the
        model has left the data, and the test must not hold by 0 <= 0)."""
        p = u * scale
        r = residuals(p)
        columns = np.linalg.norm(jacobian(p, r) * scale, axis=0)
        return np.where(columns > 0, columns * np.linalg.norm(r), np.nan)

    box = None
    if np.isfinite(lb).any() or np.isfinite(ub).any():
        box = Bounds(lb / scale, ub / scale)
    # With the polish, RMSProp hands over once three rate drops in a row
    # gained nothing: the local method is better from there.
    fit = rmsprop_fit(cost, p0 / scale, (), lr=lr, momentum=momentum,
                      max_iter=maxiter, tol=gtol, options=options,
                      bounds=box, min_lr=1e-3 if polish else MIN_LR,
                      scale=size)
    popt = fit.w * scale
    finished = None
    if polish:
        # differences relative to each parameter (MINPACK's rule, as
        # scipy's curve_fit takes them), or the user's jac
        finished = _finish(residuals, lambda p: jacobian(p), (popt, p0), lb,
                           ub, box is not None or y.size < n)
        popt, message = finished.x.copy(), finished.message
        if finished.method == "trf":  # an active bound: exactly on it
            popt[finished.active_mask < 0] = lb[finished.active_mask < 0]
            popt[finished.active_mask > 0] = ub[finished.active_mask > 0]
    elif not fit.converged:
        raise RuntimeError(f"Optimal parameters not found: {fit.message}")
    else:
        message = "RMSProp met its convergence test"
    r = residuals(popt)
    if not np.isfinite(r).all():
        raise RuntimeError("Optimal parameters not found: the residuals "
                           "are not finite at the solution")
    J = finished.jac if finished is not None else jacobian(popt, r,
                                                           central=True)
    pcov = _covariance(np.asarray(J), r, absolute_sigma, ydata.size, n)
    if full_output:
        infodict = {"nfev": nfev[0], "fvec": r, "nit": fit.n_iter,
                    "rmsprop": fit.message or "converged",
                    "polish": finished}
        return popt, pcov, infodict, message, 1
    return popt, pcov


def _finish(residuals, jacobian, starts, lb, ub, trf):
    """The local finish: :func:`scipy.optimize.least_squares` from RMSProp's
    best point and from the user's start (Levenberg-Marquardt, or the
    trust-region reflective method with bounds); the lower of the two that
    converged below their own start (a finish that ends above where it
    began diverged) where the model depends on every parameter. A
    RuntimeError when neither did."""
    method = "trf" if trf else "lm"
    results, messages = [], []
    for start in starts:
        start_cost = 0.5 * float(np.sum(residuals(start) ** 2))
        try:
            res = least_squares(
                residuals, start, method=method, x_scale="jac",
                jac=jacobian,
                bounds=(lb, ub) if trf else (-np.inf, np.inf))
        except (ValueError, np.linalg.LinAlgError) as exc:
            messages.append(str(exc))
            continue
        messages.append(res.message)
        # a zero column of J: the model no longer depends on a parameter
        # (it has left the data); least_squares' gtol holds there by 0 <= 0
        flat = not np.all(np.linalg.norm(res.jac, axis=0) > 0)
        if flat:
            messages[-1] = ("the model does not depend on every parameter "
                            "at the finish (it may have left the data)")
        if res.success and not flat and np.isfinite(res.cost) and (
                res.cost <= start_cost or not np.isfinite(start_cost)):
            res.method = method
            results.append(res)
    if not results:
        raise RuntimeError("Optimal parameters not found: the local finish "
                           "failed from RMSProp's best point and from p0 ("
                           + "; ".join(dict.fromkeys(messages)) + ")")
    return min(results, key=lambda res: res.cost)


def _covariance(J, r, absolute_sigma, m, n):
    """scipy's pcov: pinv(J^T J) from the SVD, scaled by the residual
    variance unless absolute_sigma; inf (with a warning) when unknown."""
    if not np.isfinite(J).all():
        pcov = np.full((n, n), np.inf)
        warn = True
    else:
        _, s, vt = np.linalg.svd(J, full_matrices=False)
        keep = s > np.finfo(float).eps * max(J.shape) * s[0]
        s, vt = s[keep], vt[keep]
        pcov = (vt.T / s ** 2) @ vt
        warn = False
        if not absolute_sigma:
            if m > n:
                pcov = pcov * (float(r @ r) / (m - n))
            else:
                pcov = np.full((n, n), np.inf)
                warn = True
    if warn:
        warnings.warn("Covariance of the parameters could not be estimated",
                      OptimizeWarning, stacklevel=3)
    return pcov


def _as_float_array(a, name, check_finite):
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers") from exc
    if check_finite and not np.isfinite(arr).all():
        raise ValueError(f"{name} must not contain infs or NaNs (or pass "
                         "check_finite=False)")
    return arr


def _is_numeric(a):
    try:
        return np.asarray(a).dtype.kind in "biuf"
    except Exception:
        return False


def _bad_bounds():
    raise ValueError("bounds must be scalars or arrays of one value per "
                     "parameter")


def _bounds(bounds):
    """``(lb, ub)`` as float arrays (scalars or one per parameter)."""
    if isinstance(bounds, Bounds):
        lb, ub = bounds.lb, bounds.ub
    else:
        try:
            lb, ub = bounds
        except (TypeError, ValueError) as exc:
            raise ValueError("bounds must be a 2-tuple (lb, ub) or a "
                             "scipy.optimize.Bounds") from exc
    lb = np.atleast_1d(np.asarray(lb, dtype=float))
    ub = np.atleast_1d(np.asarray(ub, dtype=float))
    if lb.ndim != 1 or ub.ndim != 1:
        _bad_bounds()
    return lb, ub


def _initial_point(f, p0, lb, ub):
    """``p0`` as a new 1-D float array, or scipy's default."""
    if p0 is not None:
        p0 = np.atleast_1d(np.array(p0, dtype=float))
        if p0.ndim != 1 or p0.size == 0:
            raise ValueError("p0 must be a 1-D array of at least one "
                             "parameter")
        if not np.isfinite(p0).all():
            raise ValueError("p0 must be finite")
        return p0
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError) as exc:
        raise ValueError("Unable to determine number of fit parameters.") \
            from exc
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params) \
            or len(params) < 2:
        raise ValueError("Unable to determine number of fit parameters.")
    n = len(params) - 1
    lb = np.broadcast_to(lb, (n,)) if lb.size in (1, n) else _bad_bounds()
    ub = np.broadcast_to(ub, (n,)) if ub.size in (1, n) else _bad_bounds()
    # scipy's choice: ones, the middle of a finite box, 1 inside a
    # one-sided bound.
    p0 = np.ones(n)
    both = np.isfinite(lb) & np.isfinite(ub)
    p0[both] = 0.5 * (lb[both] + ub[both])
    low = np.isfinite(lb) & ~np.isfinite(ub)
    p0[low] = lb[low] + 1
    high = ~np.isfinite(lb) & np.isfinite(ub)
    p0[high] = ub[high] - 1
    return p0


def _whitening(sigma, ydata):
    """The map r -> L^{-1} r for ``sigma`` (None, 1-D or 2-D)."""
    if sigma is None:
        return lambda r: r
    sigma = np.asarray(sigma, dtype=float)
    m = ydata.size
    if sigma.shape == (m,):
        if not (sigma > 0).all():
            raise ValueError("sigma must be positive")
        inv = 1.0 / sigma
        return lambda r: r * inv if r.ndim == 1 else r * inv[:, None]
    if sigma.shape == (m, m):
        try:
            L = cholesky(sigma, lower=True)
        except np.linalg.LinAlgError as exc:
            raise ValueError("`sigma` must be positive definite.") from exc
        return lambda r: solve_triangular(L, r, lower=True)
    raise ValueError(f"`sigma` has incorrect shape {sigma.shape}: expected "
                     f"({m},) or ({m}, {m})")
