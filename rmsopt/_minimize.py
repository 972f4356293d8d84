"""``minimize`` and the scipy plug-in ``rmsprop``: normalise, pick a run.

Data flow: the host run (:func:`rmsopt._drive.prepare`) or, for a GPU
``x0``, the device run (:func:`rmsopt._device.prepare`) checks ``x0``,
``bounds``, the options and the callback (``_checks``, ``_options``), wraps
``fun``/``jac`` in an :class:`~rmsopt._objective.Objective`, and drives the
loop over kernels compiled from the rule (``_cpu``, ``_cuda``); this module
only picks the run, attaches the last iterate to a ``KeyboardInterrupt``,
and prints the summary ``disp`` asks for.
"""

import warnings

from . import _device, _drive
from ._cuda import is_device_array
from ._result import report


def minimize(fun, x0, args=(), method="rmsprop", jac=None, bounds=None,
             tol=None, callback=None, options=None):
    r"""Minimize a scalar function of one or more variables with RMSProp.

    Mirrors :func:`scipy.optimize.minimize`: same parameters in the same
    order, same result fields, status codes and messages. The update is
    PyTorch's ``torch.optim.RMSprop`` by default, with every PyTorch option
    and the conventions of Keras, TF1 and optax on request:

    .. math::

        v &\leftarrow \alpha v + (1 - \alpha) g^2\\
        x &\leftarrow x - \gamma \, g / (\sqrt{v} + \epsilon)

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float``, with ``x`` of shape ``(n,)``. With
        ``jac=True`` it returns ``(f, g)``.
    x0 : array_like, shape (n,)
        Starting point. float32 stays float32; integers become float64.
        A GPU array (a numba device array, or any object with
        ``__cuda_array_interface__``: CuPy, PyTorch) runs the whole loop on
        the GPU; ``jac`` must then return device arrays (see the GPU page of
        the docs).
    args : tuple, optional
        Extra arguments of ``fun`` and ``jac``.
    method : str, default 'rmsprop'
        Only ``'rmsprop'``; anything else is a ``ValueError``.
    jac : callable, True, {'2-point', '3-point', 'cs'} or None, optional
        The gradient: ``jac(x, *args) -> (n,)``; ``True`` if ``fun`` returns
        ``(f, g)``; a finite-difference scheme; or None for forward
        differences with scipy's absolute step. A numba-jitted ``jac`` (or
        ``fun`` with ``jac=True``) runs the whole loop compiled. A function
        whose second parameter is named ``out``, ``jac(x, out, *args)`` (or
        ``fun(x, out, *args) -> f`` with ``jac=True``), writes the gradient
        into ``out`` instead of returning it: no allocation per iteration,
        the fastest form.
    bounds : scipy.optimize.Bounds or sequence of (min, max), optional
        Box constraints (``None`` for no bound). Iterates are projected onto
        the box; an ``x0`` outside it is clipped with a warning.
    tol : float, optional
        Sets ``gtol`` unless the options give it.
    callback : callable, optional
        ``callback(intermediate_result)`` (detected by that parameter name;
        it gets an ``OptimizeResult`` with ``x``, ``fun``, ``nit``) or the
        legacy ``callback(xk)``. Called once per iteration; raising
        ``StopIteration`` ends the run with status 99.
    options : dict, optional
        RMSProp options (``lr``, ``alpha``, ``eps``, ``momentum``,
        ``centered``, ``weight_decay``, ``maximize``, ``nesterov``,
        ``eps_in_sqrt``, ``initial_scale``, ``lr_in_momentum``,
        ``decoupled_weight_decay``, ``bias_correction``, ``convention``) and
        driver options (``maxiter``, ``gtol``, ``disp``,
        ``finite_diff_rel_step``, ``state``, ``driver``, ``parallel``,
        ``batch``, ``history``, ``progress``). ``lr`` may be a schedule of
        :mod:`rmsopt.schedules` or a callable ``lr(t)``; ``batch`` splits
        data arrays of ``args`` into mini-batches. See
        :func:`rmsopt.show_options`. Unknown options give an
        ``OptimizeWarning``.

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        ``x``, ``fun``, ``jac`` (at ``x``), ``nit``, ``nfev``, ``njev``,
        ``status`` (0 success, 1 maxiter, 3 NaN/inf, 99 callback),
        ``success``, ``message``, and ``state``: pass
        ``options={"state": res.state}`` to continue the run exactly. With
        ``options={"history": k}``, ``history`` holds arrays ``nit`` and
        ``fun`` (see :func:`rmsopt.plot_convergence`).

    Notes
    -----
    RMSProp needs only gradients, so ``fun`` is called only when its value is
    needed: once at the end, at each iteration for a new-style callback, and
    for finite differences. ``nfev`` counts those calls; ``njev`` counts
    gradient evaluations (with ``jac=True`` each call counts in both).
    Success means the largest absolute component of the gradient the rule
    follows (sign-flipped by ``maximize``, plus ``weight_decay * x`` when
    coupled; projected onto the box with bounds) is at most ``gtol``. A NaN
    or inf gradient ends the run with status 3 at the last finite iterate
    (no step is taken). A step that overflows from a finite gradient also
    ends it with status 3; the coordinates that would have become NaN or
    inf keep their previous values, so ``x`` is always finite. A non-finite
    final objective is never reported as success.

    A Ctrl-C raises ``KeyboardInterrupt`` whose ``result`` attribute holds
    the last iterate and the true counts (status 98).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import rosen, rosen_der
    >>> import rmsopt
    >>> res = rmsopt.minimize(rosen, np.array([-1.0, 1.5]), jac=rosen_der,
    ...                       options={"lr": 1e-3, "maxiter": 20000})
    >>> bool(np.allclose(res.x, [1.0, 1.0], atol=1e-2))
    True
    """
    if not (method is rmsprop or (isinstance(method, str)
                                   and method.lower() == "rmsprop")):
        raise ValueError(f"Unknown solver {method}")
    return _run(fun, x0, args, jac, bounds, tol, callback, options)


def rmsprop(fun, x0, args=(), jac=None, hess=None, hessp=None, bounds=None,
            constraints=(), callback=None, tol=None, **options):
    """RMSProp as a custom method for :func:`scipy.optimize.minimize`.

    ``scipy.optimize.minimize(fun, x0, method=rmsopt.rmsprop, jac=...,
    options={...})`` gives the same result as :func:`rmsopt.minimize`.

    Parameters
    ----------
    fun, x0, args, jac, bounds, callback, tol
        As scipy hands them to a custom method (see
        :func:`rmsopt.minimize`). scipy turns ``jac='2-point'`` (and the other
        schemes) into ``None`` before calling, so they arrive as forward
        differences with the absolute step.
    hess, hessp, constraints
        Not used; a warning says so when given.
    **options
        The options of :func:`rmsopt.minimize`.

    Returns
    -------
    res : scipy.optimize.OptimizeResult

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import minimize, rosen, rosen_der
    >>> import rmsopt
    >>> res = minimize(rosen, np.array([-1.0, 1.5]), jac=rosen_der,
    ...                method=rmsopt.rmsprop, options={"maxiter": 10})
    >>> int(res.nit)
    10
    """
    for name, value in (("hess", hess), ("hessp", hessp)):
        if value is not None:
            warnings.warn(f"Method rmsprop does not use Hessian information "
                          f"({name}).", RuntimeWarning, stacklevel=3)
    if constraints is not None and len(constraints) > 0:
        warnings.warn("Method rmsprop cannot handle constraints.",
                      RuntimeWarning, stacklevel=3)
    # scipy turns jac=True into fun=MemoizeJac(fun), jac=fun.derivative;
    # unwrap it so that fun is called once per point, and counted as ours.
    if (callable(jac) and getattr(jac, "__self__", None) is fun
            and getattr(jac, "__name__", "") == "derivative"
            and callable(getattr(fun, "fun", None))):
        fun, jac = fun.fun, True
    return _run(fun, x0, args, jac, bounds, tol, callback, options)


def _run(fun, x0, args, jac, bounds, tol, callback, options):
    """Build the host or the device run, run it, return the result."""
    if not isinstance(args, tuple):
        args = (args,)
    prepare = _device.prepare if is_device_array(x0) else _drive.prepare
    run = prepare(fun, x0, args, jac, bounds, tol, callback, options)
    try:
        status = run.run()
    except KeyboardInterrupt as exc:
        exc.result = run.interrupted_result()
        raise
    res = run.result(status)
    if run.settings.disp:
        report(res)
    return res
