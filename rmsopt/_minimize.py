"""``minimize`` and the scipy plug-in ``rmsprop``: validate, run a driver, build the result.

Data flow: check ``x0``/``args``/``bounds``/``callback``/options in Python,
wrap ``fun``/``jac`` in an :class:`~rmsopt._objective.Objective`, run the python
or nopython driver over the compiled kernels of ``_cpu``, then build the
``OptimizeResult`` (``_result``).
"""

import inspect
import time
import warnings

import numpy as np
from numba.core.errors import TypingError
from numba.extending import is_jitted
from scipy.optimize import Bounds, OptimizeResult, OptimizeWarning

from . import _batches, _cpu, _cuda, _progress, _result, _schedules
from ._objective import Objective
from ._options import parse_options

# A chunk of the compiled loop aims at this many seconds, so that callbacks
# of the progress kind and Ctrl-C are served promptly.
_CHUNK_SECONDS = 0.05

_KERNEL_TO_STATUS = {
    _cpu.CONVERGED: _result.SUCCESS,
    _cpu.NONFINITE_GRAD: _result.NAN,
    _cpu.OVERFLOW: _result.NAN,
    _cpu.LARGE_X: _result.NAN,
}


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
    return _run(fun, x0, args, jac, bounds, tol, callback, options, "minimize")


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
    return _run(fun, x0, args, jac, bounds, tol, callback, options, "rmsprop")


# -- validation ---------------------------------------------------------------

def _check_x0(x0):
    """``x0`` as a 1-D float32/float64 array (not copied: ``_Run`` copies it
    once, into its work array), and its largest absolute value."""
    try:
        arr = np.asarray(x0)
    except Exception as exc:
        raise TypeError("x0 must be an array of real numbers") from exc
    kind = arr.dtype.kind
    if kind in "iu":
        arr = arr.astype(np.float64)
    elif kind == "c":
        raise TypeError(f"x0 must be real; got dtype {arr.dtype}. Complex "
                        "parameters are not supported: optimise the real "
                        "and imaginary parts as separate variables.")
    elif kind != "f":
        raise TypeError(f"x0 must be an array of real numbers; got dtype "
                        f"{arr.dtype}")
    elif arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"x0 has dtype {arr.dtype}; rmsopt computes in "
                        "float32 or float64: convert x0 to one of them")
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise ValueError("'x0' must only have one dimension.")
    if arr.size == 0:
        raise ValueError("x0 must not be empty")
    # Two reductions, no temporary array (NaN propagates through both).
    absmax = max(float(arr.max()), -float(arr.min()))
    if not np.isfinite(absmax):
        bad = np.flatnonzero(~np.isfinite(arr))[0]
        raise ValueError(f"x0 must be finite; found {arr[bad]} at index "
                         f"{bad}")
    return arr, absmax


def _check_bounds(bounds, x):
    """Bounds as arrays ``(lo, hi)`` of x's dtype, or ``(None, None)``."""
    if bounds is None:
        return None, None
    n = x.shape[0]
    if isinstance(bounds, Bounds):
        lb, ub = bounds.lb, bounds.ub
    else:
        try:
            pairs = [tuple(pair) for pair in bounds]
        except TypeError as exc:
            raise TypeError("bounds must be a scipy.optimize.Bounds or a "
                            "sequence of (min, max) pairs") from exc
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("bounds must be a sequence of (min, max) pairs")
        lb = [-np.inf if lo is None else lo for lo, _ in pairs]
        ub = [np.inf if hi is None else hi for _, hi in pairs]
    try:
        lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), (n,))
        ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), (n,))
    except (ValueError, TypeError) as exc:
        raise ValueError("The number of bounds is not compatible with the "
                         "length of `x0`.") from exc
    if np.isnan(lb).any() or np.isnan(ub).any():
        raise ValueError("bounds must not be NaN")
    if (lb > ub).any():
        raise ValueError("An upper bound is less than the corresponding "
                         "lower bound.")
    if np.isinf(lb).all() and np.isinf(ub).all() and (lb < ub).all():
        return None, None
    lo = np.array(lb, dtype=x.dtype)
    hi = np.array(ub, dtype=x.dtype)
    if ((x < lo) | (x > hi)).any():
        warnings.warn("x0 lies outside the bounds; it was clipped into them",
                      OptimizeWarning, stacklevel=4)
    return lo, hi


def _initial_state(settings, work, rows):
    """Fill the state rows of ``work``, fresh or from ``options['state']``;
    return the step count ``t``."""
    n, dtype = work.shape[1], work.dtype
    state = settings.state
    if state is None:
        work[rows["v"]] = settings.initial_scale
        for name in ("m", "b"):
            if name in rows:
                work[rows[name]] = 0
        return 0
    if not isinstance(state, dict) or not {"step", "square_avg"} <= set(state):
        raise TypeError("options['state'] must be the `state` of a previous "
                        "rmsopt result (a dict with 'step' and 'square_avg')")
    names = {"v": "square_avg", "m": "grad_avg", "b": "momentum_buffer"}
    for row_name, name in names.items():
        if row_name not in rows:
            continue  # this run does not use it (e.g. momentum now off)
        value = state.get(name)
        if value is None:  # e.g. momentum switched on: start from zero
            work[rows[row_name]] = 0
            continue
        arr = np.asarray(value)
        if arr.shape != (n,) or arr.dtype != dtype:
            raise ValueError(f"state[{name!r}] must be a {dtype} array of "
                             f"shape ({n},) like x0; got {arr.dtype} "
                             f"{arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"state[{name!r}] must be finite")
        work[rows[row_name]] = arr
    step = state["step"]
    if isinstance(step, (bool, np.bool_)) or not isinstance(
            step, (int, np.integer)) or step < 0:
        raise ValueError(f"state['step'] must be a non-negative integer, got "
                         f"{step!r}")
    return int(step)


def _callback_style(callback):
    """None, ``'new'`` (intermediate_result) or ``'legacy'`` (xk)."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    try:
        params = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        return "legacy"
    return "new" if params == {"intermediate_result"} else "legacy"


# -- the run ------------------------------------------------------------------

class _Run:
    """Everything a driver changes, readable after a Ctrl-C.

    ``work`` holds x and the state (and the bounds) as rows; ``x`` is a view
    of its first row.
    """

    def __init__(self, x0, gsafe, lo, hi, settings, obj, callback):
        flags = settings.flags
        self.rows = _cpu.work_rows(flags)
        self.work = np.empty((len(self.rows), x0.shape[0]), dtype=x0.dtype)
        self.x = self.work[self.rows["x"]]
        self.x[:] = x0  # the one copy of the user's x0
        if flags.bounded:
            self.work[self.rows["lo"]] = lo
            self.work[self.rows["hi"]] = hi
            np.clip(self.x, lo, hi, out=self.x)  # (warned by _check_bounds)
        t = _initial_state(settings, self.work, self.rows)
        self.settings = settings
        self.obj = obj
        self.callback = callback
        self.style = _callback_style(callback)
        alpha = settings.alpha
        # hyperparameters, then [t, iterations, compiled gradient calls, f]
        self.scalars = np.zeros(_cpu.N_SCALARS)
        self.scalars[:_cpu.T + 1] = [
            settings.lr, alpha, 1.0 - alpha, settings.eps, settings.momentum,
            settings.weight_decay, settings.gtol, gsafe, t]
        self.scalars[_cpu.FVAL] = np.nan
        schedule = settings.schedule
        if isinstance(schedule, _schedules.Schedule):
            self.scalars[_cpu.LR] = schedule.params[0]
            self.scalars[_cpu.SCHED:_cpu.SCHED + _schedules.N_PARAMS] = \
                schedule.params
            self.scalars[_cpu.LR_NOW] = schedule.params[0]
            self.scalars[_cpu.BEST] = np.inf
            self.scalars[_cpu.PLATEAU_EACH] = 1.0
            previous = settings.state.get("plateau") if isinstance(
                settings.state, dict) else None
            if schedule.kind == _schedules.PLATEAU and previous is not None:
                # continue reduce-on-plateau where the previous run left it
                self.scalars[_cpu.LR_NOW:_cpu.COOL + 1] = previous
        # a Python callable lr(t): the drivers set scalars[LR] before a step
        self.lr_function = schedule if callable(schedule) and not isinstance(
            schedule, _schedules.Schedule) else None
        self.watches_loss = flags.schedule == _schedules.PLATEAU
        self.message = None       # replaces the status's message if set
        self.on_iteration = None  # progress: called between chunks
        self.on_epoch = None      # history with mini-batches
        self.history_every = None  # the compiled driver's chunks end there
        self.g = None      # gradient at x
        self._value = None  # (t, fun(x)) once computed at step count t
        self.parallel = False  # set by _run once it holds the lock
        self.probe_threads = False  # 'auto': time both ways first
        self.compiled_value_calls = False

    @property
    def nit(self):
        return int(self.scalars[_cpu.NIT])

    def set_lr(self):
        """Before a step: the rate of a Python callable schedule, and for
        reduce-on-plateau the loss at x (observed after the step)."""
        if self.lr_function is not None:
            t = int(self.scalars[_cpu.T])
            self.scalars[_cpu.LR] = _schedules.check_callable_lr(
                self.lr_function(t), t)
        if self.watches_loss:  # fun is called (and counted) if need be
            self.scalars[_cpu.FVAL] = self.value()

    def per_iteration(self):
        """What the python driver calls after each iteration (True: stop),
        or None."""
        extra = self.on_iteration
        if self.callback is None:
            return None if extra is None else lambda: extra() or False
        if extra is None:
            return self.notify
        notify = self.notify
        return lambda: extra() or notify()

    def counts(self):
        extra = int(self.scalars[_cpu.NGRAD])
        nfev = self.obj.nfev + (extra if self.compiled_value_calls else 0)
        return nfev, self.obj.njev + extra

    def value(self):
        """fun at the current x: from the last gradient call when that gave
        it (the drivers always evaluate the gradient at the current x last),
        else evaluated once per step count and kept."""
        f = self.obj.value_at_grad
        if f is None:
            t = int(self.scalars[_cpu.T])
            if self._value is None or self._value[0] != t:
                self._value = (t, self.obj.value(self.x))
            f = self._value[1]
        return f

    def notify(self):
        """Call the callback at the current x; True if it asked to stop."""
        try:
            if self.style == "new":
                self.callback(intermediate_result=OptimizeResult(
                    x=self.x.copy(), fun=self.value(), nit=self.nit))
            else:
                self.callback(np.copy(self.x))
        except StopIteration:
            return True
        return False

    def choose_threads(self):
        """For parallel='auto': time the gradient check (read-only, one
        parallel region) serially and threaded, alternating, and keep the
        faster. Threads lose badly when another process holds a core (each
        region waits for a descheduled thread), so this is measured, not
        assumed. Same bits either way."""
        if not self.probe_threads:
            return
        self.probe_threads = False
        flags, dtype = self.settings.flags, self.x.dtype.name
        steps = {False: _cpu.step_entry_point(flags, dtype, False),
                 True: _cpu.step_entry_point(flags, dtype, True)}
        times = {False: [], True: []}
        for round_ in range(4):
            for parallel, step in steps.items():
                start = time.perf_counter()
                step(self.work, self.g, self.scalars, False)
                if round_:  # the first round warms up
                    times[parallel].append(time.perf_counter() - start)
        self.parallel = min(times[True]) < min(times[False])

    def final_check(self):
        """Status when maxiter is reached: success if the gradient allows."""
        step = _cpu.step_entry_point(self.settings.flags, self.x.dtype.name,
                                     self.parallel)
        code = step(self.work, self.g, self.scalars, False)
        return _KERNEL_TO_STATUS.get(code, _result.MAXITER)

    def state(self):
        """The optimizer state, for ``options['state']``: rows of the work
        array, handed over without copying (the run no longer uses them)."""
        def row(name):
            return self.work[self.rows[name]] if name in self.rows else None
        state = {"step": int(self.scalars[_cpu.T]), "square_avg": row("v"),
                 "grad_avg": row("m"), "momentum_buffer": row("b")}
        if self.watches_loss:  # rate, best loss, bad steps, cooldown left
            state["plateau"] = tuple(
                float(v) for v in self.scalars[_cpu.LR_NOW:_cpu.COOL + 1])
        return state

    def result(self, status):
        x = self.x.copy()
        fun = self.value()
        nfev, njev = self.counts()
        g = self.g
        if g is not None and g is not self.obj.out:  # our buffer: no copy
            g = g.copy()
        res = _result.make_result(
            x=x, fun=fun, jac=g,
            nit=self.nit, nfev=nfev, njev=njev, status=status,
            state=self.state())
        if self.message is not None and res.status == status:
            res.message = self.message
        return res


def _python_driver(run):
    """Python fun/jac: each iteration calls jac, then one fused compiled step.

    The loop is kept to the bone (about 1 us above the user's jac): the
    step's entry point is called without numba's dispatch, the user's jac
    directly, and gradient calls are counted once at the end.
    """
    obj, x = run.obj, run.x
    work, scalars = run.work, run.scalars
    view = x.view()
    view.flags.writeable = False  # user code may read x, never write it
    if run.g is None:  # else the nopython driver fell back after computing it
        run.g = obj.grad(view)
    run.choose_threads()
    step = _cpu.step_entry_point(run.settings.flags, x.dtype.name,
                                 run.parallel)
    gradient, counts_value = obj.loop_gradient()
    check, ndarray, dtype, shape = obj.check_gradient, np.ndarray, x.dtype, \
        x.shape
    notify = run.per_iteration()
    if run.on_iteration is not None:
        run.on_iteration()  # the starting point
    g, calls = run.g, 0
    set_lr = run.set_lr if (run.lr_function is not None
                            or run.watches_loss) else None
    try:
        for _ in range(run.settings.maxiter - run.nit):
            if set_lr is not None:
                set_lr()
            code = step(work, g, scalars, True)
            if code:
                if code in (_cpu.OVERFLOW, _cpu.LARGE_X):  # x moved
                    g = obj.grad(view)  # rare: the checked, counted path
                return _KERNEL_TO_STATUS[code]
            g = gradient(view)
            calls += 1
            if (type(g) is not ndarray or g.dtype is not dtype
                    or g.shape != shape or not g.flags.c_contiguous):
                g = check(g)
            if notify is not None:
                run.g = g
                obj.njev += calls
                obj.nfev += calls if counts_value else 0
                calls = 0
                if notify():
                    return _result.CALLBACK
        run.g = g
        return run.final_check()
    finally:
        run.g = g
        obj.njev += calls
        obj.nfev += calls if counts_value else 0


def _nopython_driver(run, fn, returns_value):
    """Jitted fun/jac: the whole loop compiled, in chunks of ~50 ms.

    The loop is compiled once per configuration and argument types, and
    cached on disk; the user's function reaches it as a first-class
    function (see :func:`rmsopt._cpu.loop_entry_point`). Passing that
    function costs about 30 us per call, nothing beside a chunk of 50 ms,
    but much beside one iteration: with a callback, ``driver='auto'``
    takes the python driver instead (see :func:`_pick_driver`).
    """
    obj, s = run.obj, run.settings
    x, scalars = run.x, run.scalars
    obj.raw_grad_dtype = x.dtype
    run.g = obj.grad(x)
    run.choose_threads()
    cast_grad = obj.raw_grad_dtype != x.dtype
    g = run.g
    loop = _cpu.loop_entry_point(s.flags, x.dtype.name, returns_value,
                                 cast_grad, obj.inplace, run.parallel, fn,
                                 run.work, g, obj.args)
    if obj.raw_value is not None:
        scalars[_cpu.FVAL] = obj.value_at_grad
    stepwise = run.callback is not None or run.lr_function is not None
    chunk = 1 if stepwise else 16
    run.compiled_value_calls = returns_value
    every = run.history_every
    if run.on_iteration is not None:
        run.on_iteration()  # the starting point
    while run.nit < s.maxiter:
        n_iter = min(chunk, s.maxiter - run.nit)
        if every is not None:  # end the chunk on the next record
            n_iter = min(n_iter, every - run.nit % every)
        if run.lr_function is not None:
            run.set_lr()
        start = time.perf_counter()
        code = loop(fn, run.work, g, scalars, n_iter, obj.args)
        elapsed = time.perf_counter() - start
        if returns_value:
            obj.raw_value = float(scalars[_cpu.FVAL])
        if code == _cpu.BAD_GRAD_SHAPE:
            raise ValueError(f"The gradient must have shape ({x.shape[0]},) "
                             "like x0; the jitted function returned another "
                             "length")
        if code != _cpu.STEPPED:
            if code in (_cpu.OVERFLOW, _cpu.LARGE_X):
                run.g = g = obj.grad(x)  # x moved: keep jac and fun at x
            return _KERNEL_TO_STATUS[code]
        if run.on_iteration is not None:
            run.on_iteration()
        if run.callback is not None:
            if run.notify():
                return _result.CALLBACK
        elif stepwise:
            pass
        elif elapsed < _CHUNK_SECONDS / 2:
            chunk *= 2
        elif elapsed > 2 * _CHUNK_SECONDS and chunk > 1:
            chunk //= 2
    return run.final_check()


def _pick_driver(obj, settings, callback):
    """``(fn, returns_value)`` for the nopython driver, or None.

    With a callback, ``'auto'`` takes the python driver even for jitted
    functions: it returns to Python every iteration anyway, and calling
    the jitted gradient from there (under a microsecond) is cheaper than
    entering the compiled loop once per iteration. Same bits either way.
    """
    if obj.mode == "callable" and is_jitted(obj.jac):
        fn, returns_value = obj.jac, False
    elif obj.mode == "value_and_grad" and is_jitted(obj.fun):
        fn, returns_value = obj.fun, True
    else:
        if settings.driver == "nopython":
            raise ValueError("driver='nopython' needs a numba-jitted jac, or "
                             "a jitted fun with jac=True")
        return None
    python_lr = callable(settings.schedule) and not isinstance(
        settings.schedule, _schedules.Schedule)
    # reduce-on-plateau without the loss from the gradient call: fun is
    # called every step, from Python
    python_lr = python_lr or (settings.flags.schedule == _schedules.PLATEAU
                              and not returns_value)
    if settings.driver == "python" or (settings.driver == "auto" and (
            callback is not None or python_lr)):
        return None
    return fn, returns_value


def _run(fun, x0, args, jac, bounds, tol, callback, options, caller):
    if _cuda.is_device_array(x0):  # a GPU array: the cuda driver (_cuda.py)
        return _cuda.minimize_device(fun, x0, args, jac, bounds, tol,
                                     callback, options)
    x, x_absmax = _check_x0(x0)
    if not isinstance(args, tuple):
        args = (args,)
    lo, hi = _check_bounds(bounds, x)
    settings = parse_options(options, x.shape[0], tol=tol,
                             bounded=lo is not None)
    # Whether the overflow proof holds decides which kernel is compiled.
    gsafe, guarded = _cpu.overflow_guard(settings, x.dtype, x_absmax,
                                         settings.state)
    settings = settings._replace(
        flags=settings.flags._replace(guarded=guarded))
    obj = Objective(fun, x, args, jac, lo, hi, settings.finite_diff_rel_step)
    if (settings.flags.schedule == _schedules.PLATEAU
            and obj.mode != "value_and_grad"
            and (settings.driver == "nopython"
                 or settings.batch is not None)):
        raise ValueError("reduce_on_plateau watches the loss: in the "
                         "compiled driver and with batches the gradient "
                         "call must give it (fun returning (f, g) with "
                         "jac=True)")
    epochs = None
    if settings.batch is not None:
        spec = _batches.parse_batches(settings.batch, args)
        if spec.patience is not None and obj.mode != "value_and_grad":
            raise ValueError("batch['patience'] watches the mini-batch loss: "
                             "give fun returning (f, g) with jac=True")
        epochs = _batches.Epochs(spec, args)
    run = _Run(x, gsafe, lo, hi, settings, obj, callback)
    monitor = None
    if settings.history is not None or settings.progress:
        monitor = _progress.Monitor(run, settings.history, settings.progress,
                                    epochs)
    picked = _pick_driver(obj, settings, callback)
    # Threads only for the run that holds the lock (see _cpu.PARALLEL_LOCK);
    # a concurrent run goes serial, with the same bits.
    locked = (settings.parallel is not False
              and _cpu.PARALLEL_LOCK.acquire(blocking=False))
    run.parallel = bool(locked)
    run.probe_threads = bool(locked) and settings.parallel == "auto"
    try:
        if epochs is not None:  # mini-batches: the epoch loop (_batches)
            def python_driver(run):
                return _batches.python_driver(run, epochs)

            def nopython_driver(run, fn, returns_value):
                return _batches.nopython_driver(run, epochs, fn,
                                                returns_value)
        else:
            python_driver, nopython_driver = _python_driver, _nopython_driver
        if picked is None:
            status = python_driver(run)
        else:
            try:
                status = nopython_driver(run, *picked)
            except TypingError as exc:
                if settings.driver == "nopython" or run.nit > 0:
                    raise
                first = str(exc).strip().splitlines()[0]
                warnings.warn("The compiled driver cannot run these "
                              f"functions ({first}); using the python "
                              "driver.", RuntimeWarning, stacklevel=3)
                if epochs is not None:
                    epochs.restart()
                status = python_driver(run)
    except BaseException as exc:
        if monitor is not None:
            monitor.close()
        if not isinstance(exc, KeyboardInterrupt):
            raise
        nfev, njev = run.counts()
        # The gradient belongs to x only if one was evaluated after the last
        # step (the interrupt may fall between the two): else report none.
        current = njev == run.nit + 1 and run.g is not None
        exc.result = _result.make_result(
            x=run.x.copy(), fun=np.nan,
            jac=run.g.copy() if current else None, nit=run.nit,
            nfev=nfev, njev=njev, status=_result.INTERRUPTED,
            state=run.state())
        raise
    finally:
        if locked:
            _cpu.PARALLEL_LOCK.release()
    res = run.result(status)
    if monitor is not None:
        monitor.finish(res)
    if settings.disp:
        _result.report(res)
    return res
