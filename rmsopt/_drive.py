"""The host run: one problem's arrays in host memory, and its two drivers.

:func:`prepare` checks what :func:`rmsopt.minimize` was given and builds a
:class:`HostRun`; :meth:`HostRun.run` picks a driver:

- the **python driver** (Python ``fun``/``jac``, or any): each iteration
  calls the gradient from Python, then the compiled step's entry point
  (:func:`rmsopt._cpu.step_entry_point`);
- the **nopython driver** (numba-jitted functions): the compiled loop
  (:func:`rmsopt._cpu.loop_entry_point`) in chunks of about 50 ms, between
  which the callback, the history and Ctrl-C are served.

Both advance the same arrays, so they give the same bits. Mini-batches are
an optional epoch source (:class:`rmsopt._batches.Epochs`) of both: the
shared outer loop (:func:`_drive`) starts and ends the epochs, and a driver's
``advance`` runs iterations within one (the compiled loop slices the batches
itself). Threads for large problems: :mod:`rmsopt._threads`.
"""

import time

import numpy as np
from numba.core.errors import TypingError
from numba.extending import is_jitted
from scipy.optimize import OptimizeWarning

from . import _cpu, _layout, _schedules
from ._batches import Epochs, mask_of, parse_batches
from ._checks import (CLIPPED, check_bounds, check_state, check_state_array,
                      check_x0, notifier, state_error)
from ._layout import (BATCH_POS, BATCH_SIZE, COOL, FVAL, GTOL, LARGE_X,
                      LOSS_SUM, LR, LR_NOW, N_SAMPLES, NGRAD, NIT, OVERFLOW,
                      PLATEAU_EACH, SCHED, STATE_NAMES, STEPPED, T,
                      BAD_GRAD_SHAPE, BEST, N_SCALARS, USER_RAISED,
                      dtype_name, work_rows)
from ._objective import Objective
from ._options import parse_options
from ._progress import Monitor
from ._result import (CALLBACK, KERNEL_TO_STATUS, MAXITER, SUCCESS,
                      interrupted_result, make_result, warn_user)
from ._threads import faster_threaded, threads

# A chunk of the compiled loop aims at this many seconds, so that callbacks
# of the progress kind and Ctrl-C are served promptly.
CHUNK_SECONDS = 0.05
# The most iterations of a first chunk, before one has been timed.
FIRST_CHUNK = 16


def prepare(fun, x0, args, jac, bounds, tol, callback, options):
    """Check a host problem and build its :class:`HostRun` (nothing runs)."""
    x, x_absmax = check_x0(x0)
    n = x.shape[0]
    lo, hi = check_bounds(bounds, n, x.dtype)
    if lo is not None and ((x < lo) | (x > hi)).any():
        warn_user(CLIPPED, OptimizeWarning)
    settings = parse_options(options, n, tol=tol, bounded=lo is not None)
    obj = Objective(fun, jac, args, n, x.dtype, lo, hi,
                    settings.finite_diff_rel_step)
    if (settings.flags.schedule == _schedules.PLATEAU
            and not obj.gives_value
            and (settings.driver == "nopython"
                 or settings.batch is not None)):
        raise ValueError("reduce_on_plateau watches the loss: in the "
                         "compiled driver and with batches the gradient "
                         "call must give it (fun returning (f, g) with "
                         "jac=True)")
    epochs = None
    if settings.batch is not None:
        spec = parse_batches(settings.batch, args)
        if spec.patience is not None and not obj.gives_value:
            raise ValueError("batch['patience'] watches the mini-batch loss: "
                             "give fun returning (f, g) with jac=True")
        epochs = Epochs(spec, args)
        previous = settings.state.get("batches") if isinstance(
            settings.state, dict) else None
        if previous is not None:
            epochs.resume(previous)
    return HostRun(x, x_absmax, lo, hi, settings, obj, callback, epochs)


class HostRun:
    """Everything a driver changes, readable after a Ctrl-C.

    ``work`` holds x and the state (and the bounds) as rows
    (:func:`rmsopt._layout.work_rows`); ``x`` is a view of its first row,
    ``view`` a read-only view of it for user code; ``scalars`` holds the
    hyperparameters and counters (the slots of :mod:`rmsopt._layout`);
    ``g`` is the gradient at x.
    """

    def __init__(self, x0, x_absmax, lo, hi, settings, obj, callback,
                 epochs):
        flags = settings.flags
        self.settings, self.obj, self.epochs = settings, obj, epochs
        self.rows = rows = work_rows(flags)
        self.work = np.empty((len(rows), x0.shape[0]), dtype=x0.dtype)
        self.x = self.work[rows["x"]]
        self.x[:] = x0  # the one copy of the user's x0
        if flags.bounded:
            self.work[rows["lo"]] = lo
            self.work[rows["hi"]] = hi
            np.clip(self.x, lo, hi, out=self.x)  # (warned by prepare)
        self.view = self.x.view()
        self.view.flags.writeable = False  # user code may read x, not write
        self.x_arg = self.view  # what user functions get as x
        self.grad_seconds = 0.0  # the last gradient from Python took this
        t = self._initial_state()
        # Whether the overflow proof holds decides which kernel is compiled
        # (with the state as checked and copied in).
        state = None if settings.state is None else {
            name: self.work[rows[row]] for row, name in STATE_NAMES.items()
            if row in rows}
        gsafe, guarded = _layout.overflow_guard(settings, x0.dtype, x_absmax,
                                                state)
        self.settings = settings = settings._replace(
            flags=flags._replace(guarded=guarded))
        self.scalars = self._initial_scalars(gsafe, t)
        schedule = settings.schedule
        # a Python callable lr(t): the drivers set scalars[LR] before a step
        self.lr_function = schedule if callable(schedule) and not isinstance(
            schedule, _schedules.Schedule) else None
        self.watches_loss = flags.schedule == _schedules.PLATEAU
        self.notify = notifier(callback)
        self.monitor = None
        if settings.history is not None or settings.progress:
            total = settings.maxiter
            if epochs is not None and epochs.spec.epochs is not None:
                total = min(total, epochs.spec.epochs * epochs.spec.per_epoch)
            self.monitor = Monitor(
                settings.history, settings.progress, total,
                epochs is not None,
                lambda: obj.value_at_grad if obj.gives_value else None)
        self.message = None   # replaces the status's message if set
        self.g = None         # the gradient at x
        self._value = None    # (t, fun(x)) once computed at step count t
        self.parallel = False  # set by run() once it holds the lock
        self.probe_threads = False  # parallel='auto': time both ways first

    def _initial_state(self):
        """Fill the state rows, fresh or from ``options['state']``; return
        the step count."""
        s, work, rows = self.settings, self.work, self.rows
        n, dtype = work.shape[1], work.dtype
        t, arrays = check_state(s.state, rows)
        for row in STATE_NAMES:
            if row not in rows:
                continue  # this run does not use it (e.g. no momentum)
            value = None if arrays is None else arrays[row]
            if value is None:  # fresh, or e.g. momentum switched on
                work[rows[row]] = s.initial_scale if (
                    row == "v" and arrays is None) else 0
                continue
            value = np.asarray(value)
            check_state_array(row, value.shape, value.dtype, True, n, dtype)
            if not np.isfinite(value).all():
                raise state_error(row)
            work[rows[row]] = value
        return t

    def _initial_scalars(self, gsafe, t):
        """The ``scalars`` vector: hyperparameters, counters, schedule."""
        s = self.settings
        scalars = np.zeros(N_SCALARS)
        scalars[:T + 1] = [s.lr, s.alpha, 1.0 - s.alpha, s.eps, s.momentum,
                           s.weight_decay, s.gtol, gsafe, t]
        # a mini-batch gradient is never convergence: the test is off until
        # the gradient on all the data (_finish_epochs)
        scalars[GTOL] = s.gtol if self.epochs is None else -1.0
        scalars[FVAL] = np.nan
        schedule = s.schedule
        if isinstance(schedule, _schedules.Schedule):
            scalars[LR] = schedule.params[0]
            scalars[SCHED:SCHED + _schedules.N_PARAMS] = schedule.params
            scalars[LR_NOW] = schedule.params[0]
            scalars[BEST] = np.inf
            # reduce-on-plateau sees the loss after every step, or (with
            # batches) the epochs' losses
            scalars[PLATEAU_EACH] = 1.0 if self.epochs is None else 0.0
            previous = s.state.get("plateau") if isinstance(
                s.state, dict) else None
            if schedule.kind == _schedules.PLATEAU and previous is not None:
                # continue reduce-on-plateau where the previous run left it
                scalars[LR_NOW:COOL + 1] = previous
        return scalars

    # -- running -----------------------------------------------------------

    @property
    def nit(self):
        return int(self.scalars[NIT])

    def run(self):
        """Run the driver that suits the functions; returns the status."""
        s = self.settings
        with threads(s.parallel) as allowed:  # (rmsopt._threads)
            self.parallel = allowed
            self.probe_threads = allowed and s.parallel == "auto"
            return self._run_driver()

    def _run_driver(self):
        try:
            fn = self._compiled_function()
            if fn is None:
                return python_driver(self)
            try:
                return nopython_driver(self, fn)
            except _NoCompiledLoop as exc:
                warn_user("The compiled driver cannot run these functions "
                          f"({exc}); using the python driver.",
                          RuntimeWarning)
                if self.epochs is not None:
                    self.epochs.restart()
                return python_driver(self)
        except BaseException:
            if self.monitor is not None:
                self.monitor.close()
            raise

    def _compiled_function(self):
        """The jitted function for the nopython driver, or None.

        With a callback, ``'auto'`` takes the python driver even for jitted
        functions: it returns to Python every iteration anyway, and calling
        the jitted gradient from there (under a microsecond) is cheaper than
        entering the compiled loop once per iteration (about 30 us to hand
        it the function). Same bits either way.
        """
        obj, s = self.obj, self.settings
        fn = {"callable": obj.jac, "value_and_grad": obj.fun}.get(obj.mode)
        if fn is None or not is_jitted(fn):
            if s.driver == "nopython":
                raise ValueError("driver='nopython' needs a numba-jitted jac,"
                                 " or a jitted fun with jac=True")
            return None
        # reduce-on-plateau without the loss from the gradient call: fun is
        # called every step, from Python
        python_lr = self.lr_function is not None or (
            self.watches_loss and not obj.gives_value)
        if s.driver == "python" or (s.driver == "auto" and (
                self.notify is not None or python_lr)):
            return None
        return fn

    def set_lr(self):
        """Before a step: the rate of a Python callable schedule, and for
        reduce-on-plateau the loss at x (observed after the step)."""
        if self.lr_function is not None:
            t = int(self.scalars[T])
            self.scalars[LR] = _schedules.check_callable_lr(
                self.lr_function(t), t)
        if self.watches_loss:  # fun is called (and counted) if need be
            self.scalars[FVAL] = self.value()

    def after_iteration(self):
        """The history, the bar and the callback, between iterations (or
        chunks); True when the callback asked to stop."""
        if self.monitor is not None:
            self.monitor.after_iteration(self.nit, self.value)
        return self.notify is not None and self.notify(
            self.x.copy, self.value, self.nit)

    def watcher(self):
        """:meth:`after_iteration`, or None when it would do nothing."""
        if self.monitor is None and self.notify is None:
            return None
        return self.after_iteration

    def choose_threads(self):
        """For parallel='auto', once: the faster of the threaded and the
        serial step (:func:`rmsopt._threads.faster_threaded`)."""
        if self.probe_threads:
            self.probe_threads = False
            flags, dtype = self.settings.flags, dtype_name(self.x.dtype)
            self.parallel = faster_threaded(
                _cpu.step_entry_point(flags, dtype, False),
                _cpu.step_entry_point(flags, dtype, True),
                self.work, self.g, self.scalars)

    def final_check(self):
        """Status when the iterations end: success if the gradient allows."""
        step = _cpu.step_entry_point(self.settings.flags,
                                     dtype_name(self.x.dtype), self.parallel)
        code = step(self.work, self.g, self.scalars, False)
        return KERNEL_TO_STATUS.get(code, MAXITER)

    # -- what the run gives back ---------------------------------------------

    def value(self):
        """fun at the current x: from the last gradient call when that gave
        it (the drivers always evaluate the gradient at the current x last),
        else evaluated once per step count and kept."""
        f = self.obj.value_at_grad
        if f is None:
            t = int(self.scalars[T])
            if self._value is None or self._value[0] != t:
                self._value = (t, self.obj.value(self.view))
            f = self._value[1]
        return f

    def counts(self):
        """``(nfev, njev)``: the objective's, and the compiled loop's calls."""
        return self.obj.counts(int(self.scalars[NGRAD]))

    def state(self):
        """The optimizer state, for ``options['state']``: rows of the work
        array, handed over without copying (the run no longer uses them)."""
        state = {"step": int(self.scalars[T])}
        for row, name in STATE_NAMES.items():
            state[name] = self.work[self.rows[row]] if row in self.rows \
                else None
        if self.watches_loss:  # rate, best loss, bad steps, cooldown left
            state["plateau"] = tuple(
                float(v) for v in self.scalars[LR_NOW:COOL + 1])
        epochs = self.epochs
        if epochs is not None:  # (no epoch started: the state it came with)
            state["batches"] = epochs.resumed if epochs.data is None else \
                epochs.snapshot(int(self.scalars[BATCH_POS]),
                                self.scalars[LOSS_SUM])
        return state

    def result(self, status):
        x = self.x.copy()
        fun = self.value()
        nfev, njev = self.counts()
        g = self.g
        if g is not None and g is not self.obj.out:  # our buffer: no copy
            g = g.copy()
        res = make_result(x=x, fun=fun, jac=g, nit=self.nit, nfev=nfev,
                          njev=njev, status=status, state=self.state(),
                          message=self.message)
        if self.monitor is not None:
            self.monitor.finish(res)
        return res

    def interrupted_result(self):
        """The last iterate and the true counts, for a Ctrl-C."""
        nfev, njev = self.counts()
        # The gradient belongs to x only if one was evaluated after the last
        # step (the interrupt may fall between the two): else report none.
        current = njev == self.nit + 1 and self.g is not None
        return interrupted_result(
            x=self.x.copy(), jac=self.g.copy() if current else None,
            nit=self.nit, nfev=nfev, njev=njev, state=self.state())


# -- the drivers ---------------------------------------------------------------

def python_driver(run):
    """Any fun/jac: each iteration one compiled step, then the gradient.

    The loop is kept to the bone (about 1 us above the user's jac): the
    step's entry point is called without numba's dispatch, the user's jac
    directly, and gradient calls are recorded once per return (counted
    before each call: a Ctrl-C inside the user's function finds it counted).
    """
    obj, x = run.obj, run.x
    work, scalars, epochs = run.work, run.scalars, run.epochs
    fn = {"callable": obj.jac, "value_and_grad": obj.fun}.get(obj.mode)
    run.x_arg = view = _x_for(fn, run) if fn is not None and is_jitted(
        fn) else run.view
    if epochs is None and run.g is None:  # (else a fallback computed it)
        run.g = obj.grad(view)
        run.choose_threads()
    step = _cpu.step_entry_point(run.settings.flags, dtype_name(x.dtype),
                                 run.parallel)
    own_gradient = obj.loop_gradient()
    check, ndarray, dtype, shape = obj.check_gradient, np.ndarray, x.dtype, \
        x.shape
    watch = run.watcher()
    set_lr = run.set_lr if (run.lr_function is not None
                            or run.watches_loss) else None
    batch_loss = epochs is not None and obj.gives_value
    per_epoch = None if epochs is None else epochs.spec.per_epoch

    def advance(budget):
        g, calls, gradient = run.g, 0, own_gradient
        try:
            for _ in range(budget):
                if set_lr is not None:
                    set_lr()
                code = step(work, g, scalars, True)
                if code:
                    if code in (OVERFLOW, LARGE_X) and epochs is None:
                        g = obj.grad(view)  # x moved: the checked path
                    return KERNEL_TO_STATUS[code]
                if epochs is not None:
                    pos = int(scalars[BATCH_POS]) + 1
                    scalars[BATCH_POS] = pos
                    if pos >= per_epoch:
                        return None  # the epoch's end (_drive watches it)
                    gradient = obj.loop_gradient(epochs.batch_args(pos))
                calls += 1  # counted when made, as scipy counts
                g = None  # (until it returns: a Ctrl-C may come inside)
                g = gradient(view)
                if (type(g) is not ndarray or g.dtype is not dtype
                        or g.shape != shape or not g.flags.c_contiguous):
                    g = check(g)
                if batch_loss:
                    scalars[FVAL] = f = obj.value_at_grad
                    scalars[LOSS_SUM] += f
                if watch is not None:
                    run.g = g
                    obj.record(calls)
                    calls = 0
                    if watch():
                        return CALLBACK
            return None
        finally:
            run.g = g
            obj.record(calls)

    return _drive(run, advance)


def nopython_driver(run, fn):
    """Jitted fun/jac: the whole loop compiled, in chunks of ~50 ms.

    The loop is compiled once per configuration and argument types, and
    cached on disk; the user's function reaches it as a first-class
    function (see :func:`rmsopt._cpu.loop_entry_point`). Passing that
    function costs about 30 us per chunk: nothing beside a chunk of 50 ms,
    much beside one iteration (hence the python driver for callbacks, see
    :meth:`HostRun._compiled_function`).
    """
    obj, s, x, scalars = run.obj, run.settings, run.x, run.scalars
    epochs = run.epochs
    returns_value = obj.gives_value
    obj.raw_grad_dtype = x.dtype
    run.x_arg = _x_for(fn, run)
    own = np.empty_like(x)  # the loop writes its gradients here only
    if epochs is None:
        start = time.perf_counter()
        run.g = obj.grad(run.x_arg)
        run.grad_seconds = time.perf_counter() - start
        if obj.raw_value is not None:
            scalars[FVAL] = obj.value_at_grad
        run.choose_threads()
        mask = (None,) * len(obj.args)
    else:
        mask = mask_of(epochs.spec, len(epochs.args))
    every = None if run.monitor is None else run.monitor.records_iterations
    watch = run.watcher()
    # one iteration per chunk where Python acts between iterations
    stepwise = run.notify is not None or run.lr_function is not None
    chunk = None  # sized at the first chunk, from the first gradient's time
    loop = None

    def advance(budget):
        nonlocal loop, chunk
        args = obj.args if epochs is None else epochs.data
        if run.g is not obj.out and run.g is not own:
            # A gradient from Python may be the user's own array (one of
            # args, say): the loop writes into a copy, never into it.
            own[:] = run.g
            run.g = own
        if loop is None:
            config = (s.flags, dtype_name(x.dtype), returns_value,
                      obj.raw_grad_dtype != x.dtype, obj.inplace,
                      run.parallel, epochs is not None)
            try:
                loop = _cpu.loop_entry_point(config, fn, run.work, run.x_arg,
                                             run.g, args, mask)
            except TypingError as exc:
                if s.driver != "nopython":  # 'auto': the python driver
                    raise _NoCompiledLoop(
                        str(exc).strip().splitlines()[0]) from exc
                raise TypeError("driver='nopython' cannot call the jitted "
                                f"function in its compiled loop: {exc}"
                                ) from exc
        if chunk is None:
            # as many calls as take CHUNK_SECONDS (from the first gradient's
            # time, dispatch included), at most FIRST_CHUNK
            chunk = 1 if stepwise else max(1, min(FIRST_CHUNK, int(
                CHUNK_SECONDS / max(run.grad_seconds, 1e-9))))
        n_iter = min(chunk, budget)
        if every is not None:  # end the chunk on the next record
            n_iter = min(n_iter, every - run.nit % every)
        if run.lr_function is not None:
            run.set_lr()
        start = time.perf_counter()
        code = loop(fn, run.work, run.x_arg, run.g, scalars, n_iter, args,
                    mask)
        elapsed = time.perf_counter() - start
        if returns_value:
            obj.raw_value = float(scalars[FVAL])
        if code == USER_RAISED:
            _raise_again(run, args)
        if code == BAD_GRAD_SHAPE:
            raise ValueError(f"The gradient must have shape ({x.shape[0]},) "
                             "like x0; the jitted function returned another "
                             "length")
        if code != STEPPED:
            if code in (OVERFLOW, LARGE_X) and epochs is None:
                run.g = obj.grad(run.x_arg)  # x moved: keep jac, fun at x
            return KERNEL_TO_STATUS[code]
        if watch is not None and not (  # (an epoch's end: _drive's)
                epochs is not None
                and int(scalars[BATCH_POS]) >= epochs.spec.per_epoch):
            if watch():
                return CALLBACK
        if not stepwise:
            chunk = _next_chunk(chunk, n_iter, elapsed)
        return None

    return _drive(run, advance)


class _NoCompiledLoop(Exception):
    """numba cannot build the compiled loop around the user's function
    (its message says why): 'auto' runs the python driver instead."""


def _x_for(fn, run):
    """What the jitted ``fn`` gets as x: the read-only view, as in the
    python driver (a function that writes into x fails to compile, in both
    drivers), unless ``fn`` was compiled for writable arrays only (an
    explicit signature), which then gets x itself."""
    if getattr(fn, "_can_compile", True):
        return run.view
    obj = run.obj
    args = obj.args if run.epochs is None else run.epochs.first_batch()
    probe = (run.view, obj.out) if obj.inplace else (run.view,)
    return run.view if _cpu.accepts(fn, probe + tuple(args)) else run.x


def _raise_again(run, args):
    """The jitted function raised inside the compiled loop, which caught
    it (so that numba releases the loop's arrays) and stopped: call it once
    more, from Python, at the same x on the same arguments, to raise its
    exception with its own type and message."""
    if run.epochs is not None:
        args = run.epochs.batch_args(int(run.scalars[BATCH_POS]))
    run.g = None  # not at x
    run.obj.grad(run.x_arg, args)
    raise RuntimeError("the jitted function raised an exception inside the "
                       "compiled loop, but not when called again at the "
                       "same x: it is not deterministic; run it with "
                       "driver='python' to see the exception")


def _next_chunk(chunk, n_iter, elapsed):
    """The next chunk's iterations: sized from the last chunk's time per
    iteration to take about :data:`CHUNK_SECONDS`, growing at most 16-fold
    at a time. With the first chunk sized from the first gradient's time,
    Ctrl-C and callbacks are served within about CHUNK_SECONDS plus one
    gradient call, however slow the gradient."""
    if n_iter < chunk:  # cut short by a record or the end: no news
        return chunk
    per_iteration = elapsed / n_iter
    if per_iteration <= 0:
        return 16 * chunk
    return max(1, min(16 * chunk, int(CHUNK_SECONDS / per_iteration)))


def _drive(run, advance):
    """The outer loop both drivers share; returns the status.

    ``advance(budget)`` runs at most ``budget`` iterations (within the
    current epoch with mini-batches) and returns a status when the run must
    end there, else None. Without batches the run is one endless epoch.
    """
    maxiter, epochs = run.settings.maxiter, run.epochs
    if epochs is None:
        if run.monitor is not None:
            run.monitor.after_iteration(run.nit, run.value)  # the start
        while run.nit < maxiter:
            status = advance(maxiter - run.nit)
            if status is not None:
                return status
        return run.final_check()
    watch = run.watcher()
    while run.nit < maxiter:
        _start_epoch(run)
        while int(run.scalars[BATCH_POS]) < epochs.spec.per_epoch:
            if run.nit >= maxiter:
                return _finish_epochs(run, MAXITER)
            status = advance(maxiter - run.nit)
            if status is not None:
                return _finish_epochs(run, status)
        # the epoch's last step, which no gradient follows: both drivers
        # leave its callback to this loop
        if watch is not None and watch():
            return _finish_epochs(run, CALLBACK)
        if _end_epoch(run):
            break
    return _finish_epochs(run, MAXITER)


def _start_epoch(run):
    """Draw the epoch's order; the gradient of its first batch."""
    scalars, obj, epochs = run.scalars, run.obj, run.epochs
    # a continued run goes on at the batch where the last one stopped; its
    # loss is in the sum already (the same batch at the same x)
    pos, loss_sum = epochs.resume_at or (0, 0.0)
    epochs.resume_at = None
    epochs.start()
    scalars[BATCH_POS] = pos
    scalars[BATCH_SIZE] = epochs.spec.size
    scalars[N_SAMPLES] = epochs.spec.n_samples
    scalars[LOSS_SUM] = loss_sum
    start = time.perf_counter()
    run.g = obj.grad(run.x_arg, epochs.batch_args(pos))
    run.grad_seconds = time.perf_counter() - start
    if obj.gives_value:
        scalars[FVAL] = f = obj.value_at_grad
        if not pos:
            scalars[LOSS_SUM] += f


def _end_epoch(run):
    """Record the epoch's loss, run the plateau tests; True to stop."""
    scalars, epochs = run.scalars, run.epochs
    stop = epochs.end(scalars[LOSS_SUM] if run.obj.gives_value else np.nan)
    if run.watches_loss:  # reduce-on-plateau sees the epoch's loss
        scalars[LR_NOW:COOL + 1] = _schedules.plateau_update(
            *scalars[LR_NOW:COOL + 1], epochs.losses[-1],
            *scalars[SCHED + 1:SCHED + 6])
    if run.monitor is not None:
        run.monitor.after_epoch(epochs.epoch, run.nit, epochs.losses[-1])
    return stop


def _finish_epochs(run, status):
    """After the last iteration: the gradient (and value) on all the data,
    and the status it gives."""
    run.g = run.obj.grad(run.x_arg)
    if status != MAXITER:
        return status
    run.scalars[GTOL] = run.settings.gtol  # the full gradient can converge
    status = run.final_check()
    epochs = run.epochs
    spec = epochs.spec
    if status == MAXITER and epochs.plateaued:
        run.message = (f"The mean mini-batch loss stopped decreasing "
                       f"(patience={spec.patience} epochs).")
        return SUCCESS
    if (status == MAXITER and spec.epochs is not None
            and run.nit == spec.epochs * spec.per_epoch):
        run.message = (f"The requested {spec.epochs} epochs are done; the "
                       "full gradient is above gtol.")
    return status
