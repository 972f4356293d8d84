"""Compiled CPU kernels: the fused step and the whole-loop driver.

Kernels are built by factories keyed on the option flags and the dtype. Both
are closure constants, so numba folds every branch of the rule away and caches
one specialisation per configuration on disk (numba keys its cache on closure
values; the closures hold only plain constants, never other dispatchers, so
the key is the same in every process). Nothing compiles at import: numba
compiles on first call.

The parameters, the state and the bounds travel as the rows of one 2-D
``work`` array (see :func:`work_rows`), and the hyperparameters and counters
as one float64 vector ``scalars``: a Python call into numba pays for each
array argument, and this keeps the step at three arrays and a flag.

Kernels never raise: they return status codes, and the Python side turns them
into results or errors. Shapes and dtypes are checked in Python first, because
bounds checking is off here.
"""

import math
import threading
import weakref
from functools import lru_cache

import numba
import numpy as np
from numba._dispatcher import compute_fingerprint
from numba.core.errors import TypingError
from numba.core.registry import cpu_target

from ._rule import rmsprop_element
from ._schedules import CONSTANT, PLATEAU, lr_at, plateau_update

# Status codes returned by the kernels.
STEPPED = 0          # the gradient was finite and above gtol: one step taken
CONVERGED = 1        # largest (projected) gradient component <= gtol
NONFINITE_GRAD = 2   # the gradient holds NaN or inf: no step taken
OVERFLOW = 3         # the step overflowed; those elements kept their values
BAD_GRAD_SHAPE = 4   # a jitted jac returned a gradient of the wrong length
LARGE_X = 5          # |x| passed max/4 after an unguarded step (x finite)

# Layout of ``scalars`` (float64): the user's hyperparameters (rounded to the
# working dtype in the kernel) and the gradient bound of the overflow proof
# (see overflow_guard); then what the kernels update (counts exact in
# float64 up to 2**53): the step count t, this run's iterations, the
# gradient calls made by the compiled loop, and fun's value there.
(LR, ALPHA, ONE_MINUS_ALPHA, EPS, MOMENTUM, WEIGHT_DECAY, GTOL, GSAFE,
 T, NIT, NGRAD, FVAL) = range(12)
# The learning-rate schedule (rmsopt._schedules): its six parameters, and
# the state of reduce-on-plateau (current rate, best loss, steps without
# improvement, cooldown left, and whether the kernels observe the loss after
# every step: 0 with mini-batches, where the driver observes epoch losses).
SCHED = 12  # SCHED .. SCHED + 5
LR_NOW, BEST, NUM_BAD, COOL, PLATEAU_EACH = range(18, 23)
# Mini-batches (rmsopt._batches): the next batch's index within the epoch,
# the batch size, the number of samples, and the sum of this epoch's
# mini-batch losses.
BATCH_POS, BATCH_SIZE, N_SAMPLES, LOSS_SUM = range(23, 27)
N_SCALARS = 27


@numba.njit(inline="always", error_model="numpy", nogil=True)
def _schedule_lr(kind, scalars, t):
    """The learning rate (float64) of the step after ``t`` steps."""
    if kind == PLATEAU:
        return scalars[LR_NOW]
    return lr_at(kind, scalars[SCHED], scalars[SCHED + 1], scalars[SCHED + 2],
                 scalars[SCHED + 3], scalars[SCHED + 4], scalars[SCHED + 5], t)


@numba.njit(inline="always", error_model="numpy", nogil=True)
def _observe_loss(scalars, f):
    """Reduce-on-plateau sees the loss ``f`` of the point just left."""
    lr, best, num_bad, cool = plateau_update(
        scalars[LR_NOW], scalars[BEST], scalars[NUM_BAD], scalars[COOL], f,
        scalars[SCHED + 1], scalars[SCHED + 2], scalars[SCHED + 3],
        scalars[SCHED + 4], scalars[SCHED + 5])
    scalars[LR_NOW] = lr
    scalars[BEST] = best
    scalars[NUM_BAD] = num_bad
    scalars[COOL] = cool

# error_model="numpy": the default "python" model adds a division check that
# blocks SIMD (3-8x slower, same bits). No fastmath: it changes the bits and
# compiles NaN checks away.
JIT_OPTIONS = dict(error_model="numpy", nogil=True)

_element = numba.njit(inline="always", **JIT_OPTIONS)(rmsprop_element)

# Above this many elements the threaded step is used by default. On the
# 2-core development machine (quiet) threads win from about 1e4 elements
# (1.4x at 5e4, benchmarks/crossover.py); a loaded machine delays thread
# wake-ups, hence the margin.
PARALLEL_CROSSOVER = 50_000

# numba's default "workqueue" threading layer aborts when two threads run
# parallel code at once. A run that cannot take this lock uses the serial
# kernels instead: same bits, never a crash, never a wait.
PARALLEL_LOCK = threading.Lock()


def work_rows(flags):
    """Row of each array in ``work``: only the rows the options need.

    Returns a dict with ``x`` and ``v`` always, ``m`` when centered, ``b``
    with momentum, ``lo`` and ``hi`` with bounds.
    """
    names = ["x", "v"]
    if flags.centered:
        names.append("m")
    if flags.use_momentum:
        names.append("b")
    if flags.bounded:
        names += ["lo", "hi"]
    return {name: row for row, name in enumerate(names)}


@numba.njit(inline="always", **JIT_OPTIONS)
def _fused_step(work, g, rows, lr, alpha, one_minus_alpha, eps, momentum,
                weight_decay, bias_scale, gtol, gsafe, update, big, flags):
    """Check the gradient, then update every row of ``work`` in one pass.

    Returns ``(status, stepped)``. A gradient component above ``gsafe`` (NaN
    and inf included) stops the run before the step: with every component
    below it, the hyperparameters and the state checked by
    :func:`overflow_guard`, and ``|x| <= max/4``, no new value can overflow,
    so the update stores unconditionally; it reports ``LARGE_X`` if some
    ``|x|`` passes max/4 (the next step could overflow). Where the proof
    does not hold (the ``guarded`` flag), the update keeps an element's old
    values when a new one is not finite: a select that costs about 20% of
    the bandwidth on AMD Zen (it compiles to masked stores).

    Both loops are ``prange``: threads when the caller is compiled with
    ``parallel=True``, plain loops otherwise; the work is elementwise and the
    reductions are integer counts, so both give the same bits.

    Generic over the flags and always inlined into a caller that passes
    constants, so the branches fold away. It lives at module level (not in a
    factory's closure) so that the callers' closures hold only plain
    constants, which keeps numba's disk-cache key stable across processes.
    """
    (maximize, centered, use_momentum, nesterov, eps_in_sqrt, lr_in_momentum,
     decoupled_weight_decay, bounded, guarded, parallel) = flags
    X, V, M, B, LO, HI = rows
    # 1-D row views: simpler addressing than work[row, i] in the loops. One
    # statement each: unpacked from one tuple, numba 0.68's parallel build
    # loses the writes through them (tests/test_parallel.py would catch it).
    x = work[X]
    v = work[V]
    m = work[M]
    b = work[B]
    lo = work[LO]
    hi = work[HI]
    n = x.shape[0]
    xsafe = big / 4
    # The gradient the rule follows: sign for maximize, coupled decay; with
    # bounds, L-BFGS-B's projected gradient clip(x - g) - x. Counting (no
    # early exit) lets the loop vectorise.
    n_bad = 0
    n_above = 0
    for i in numba.prange(n):
        gi = g[i]
        if maximize:
            gi = -gi
        if weight_decay != 0 and not decoupled_weight_decay:
            gi = gi + weight_decay * x[i]
        n_bad += not abs(gi) <= gsafe
        if bounded:
            xi = x[i]
            gi = min(max(xi - gi, lo[i]), hi[i]) - xi
        n_above += abs(gi) > gtol
    if n_bad:
        return NONFINITE_GRAD, False
    if not n_above:
        return CONVERGED, False
    if not update:
        return STEPPED, False

    zero = bias_scale - bias_scale
    n_bad = 0
    n_large = 0
    if guarded:
        for i in numba.prange(n):
            xi, vi, mi, bi = _new_values(
                x, g, v, m, b, lo, hi, i, lr, alpha, one_minus_alpha, eps,
                momentum, weight_decay, bias_scale, zero, flags)
            ok = (abs(xi) <= big) & (vi <= big)
            if centered:
                ok = ok & (abs(mi) <= big)
            if use_momentum:
                ok = ok & (abs(bi) <= big)
            x[i] = xi if ok else x[i]
            v[i] = vi if ok else v[i]
            if centered:
                m[i] = mi if ok else m[i]
            if use_momentum:
                b[i] = bi if ok else b[i]
            n_bad += not ok
        return (OVERFLOW if n_bad else STEPPED), True
    else:
        for i in numba.prange(n):
            xi, vi, mi, bi = _new_values(
                x, g, v, m, b, lo, hi, i, lr, alpha, one_minus_alpha, eps,
                momentum, weight_decay, bias_scale, zero, flags)
            x[i] = xi
            v[i] = vi
            if centered:
                m[i] = mi
            if use_momentum:
                b[i] = bi
            n_large += abs(xi) > xsafe
        return (LARGE_X if n_large else STEPPED), True


@numba.njit(inline="always", **JIT_OPTIONS)
def _new_values(x, g, v, m, b, lo, hi, i, lr, alpha, one_minus_alpha, eps,
                momentum, weight_decay, bias_scale, zero, flags):
    """The rule at element ``i``, projected onto the bounds."""
    (maximize, centered, use_momentum, nesterov, eps_in_sqrt, lr_in_momentum,
     decoupled_weight_decay, bounded, guarded, parallel) = flags
    mi = m[i] if centered else zero
    bi = b[i] if use_momentum else zero
    xi, vi, mi, bi = _element(
        x[i], g[i], v[i], mi, bi, lr, alpha, one_minus_alpha, eps, momentum,
        weight_decay, bias_scale, maximize, centered, use_momentum, nesterov,
        eps_in_sqrt, lr_in_momentum, decoupled_weight_decay)
    if bounded:
        xi = min(max(xi, lo[i]), hi[i])
    return xi, vi, mi, bi


def overflow_guard(settings, dtype, x_absmax, state):
    """``(gsafe, guarded)``: the bound and the verdict of the overflow proof.

    With every gradient component (as the rule follows it) at most
    ``gsafe``, the mean square, the mean gradient and their bias-corrected
    forms stay below max/4. The largest move per step is then
    ``lr * gsafe / den_min * 2 / (1 - momentum)``; if it, the momentum
    buffer's bound and the starting state are below max/4 too, and
    ``|x| <= max/4``, no new value can overflow: the update needs no
    per-element guard. ``guarded`` says the hyperparameters, the state or
    ``x_absmax`` (the largest ``|x0|``) break that proof.
    """
    big = float(np.finfo(dtype).max)
    quarter = big / 4
    real = np.dtype(dtype).type
    s = settings
    flags = s.flags
    gsafe = math.sqrt(quarter)
    if flags.bias_correction:
        gsafe *= 1.0 - s.alpha
    eps = float(real(s.eps))
    den_min = math.sqrt(eps) if flags.eps_in_sqrt else eps
    growth = 2.0 / (1.0 - s.momentum)
    bounds = (s.lr * gsafe,
              gsafe / den_min * growth,
              s.lr * gsafe / den_min * growth,
              s.initial_scale if state is None else 0.0)
    safe = (all(bound <= quarter for bound in bounds)
            and s.lr * s.weight_decay <= 1.0
            and s.initial_scale <= gsafe * gsafe)
    if state is not None:  # a continued run: the state must be in range too
        for name, limit in (("square_avg", gsafe * gsafe),
                            ("grad_avg", gsafe),
                            ("momentum_buffer", gsafe / den_min * growth)):
            value = state.get(name)
            if value is not None and np.size(value) and \
                    float(np.max(np.abs(value))) > limit:
                safe = False
    safe = safe and x_absmax <= quarter
    return gsafe, not safe


def _constants(flags, dtype_name, parallel):
    """The closure constants of a configuration's kernels.

    ``parallel`` is among them although only the decorator uses it: numba's
    cache key holds the closure's values but not ``parallel=``, so without
    it the threaded and serial builds would overwrite each other on disk.
    """
    rows = work_rows(flags)
    # Unused rows point at x; the branches that would read them fold away.
    row_tuple = (rows["x"], rows["v"], rows.get("m", 0), rows.get("b", 0),
                 rows.get("lo", 0), rows.get("hi", 0))
    flag_tuple = (flags.maximize, flags.centered, flags.use_momentum,
                  flags.nesterov, flags.eps_in_sqrt, flags.lr_in_momentum,
                  flags.decoupled_weight_decay, flags.bounded, flags.guarded,
                  parallel)
    real = np.dtype(dtype_name).type
    big = real(np.finfo(dtype_name).max)
    return row_tuple, flag_tuple, real, big, flags.bias_correction


def make_step(flags, dtype_name, parallel=False):
    """Compile the fused RMSProp step for one configuration.

    Parameters
    ----------
    flags : rmsopt._options.Flags
        Which variant of the rule; constants in the compiled code.
    dtype_name : {'float32', 'float64'}
        Precision of the parameters, the gradient and the state.
    parallel : bool
        Split both passes over numba's threads. Elementwise work and integer
        counts: the same bits as the serial step.

    Returns
    -------
    step : numba dispatcher
        ``step(work, g, scalars, update) -> status``. First checks the
        gradient ``g`` at ``x = work[0]``: finite, and its largest projected
        component against ``scalars[GTOL]``. Then, if ``update`` and the
        gradient is finite and above ``gtol``, updates the rows of ``work``
        in one pass and adds one to ``scalars[T]`` (the step count) and
        ``scalars[NIT]``. Each hyperparameter, and the bias correction
        ``1 - alpha**t`` computed in float64, is rounded once to the working
        dtype, as PyTorch rounds its Python scalars.
    """
    # One cache entry per configuration however the arguments are spelled.
    return _make_step(flags, dtype_name, bool(parallel))


@lru_cache(maxsize=None)
def _make_step(flags, dtype_name, parallel):
    rows, constant_flags, real, big, bias_correction = _constants(
        flags, dtype_name, parallel)
    kind = flags.schedule

    @numba.njit(cache=True, parallel=parallel, **JIT_OPTIONS)
    def step(work, g, scalars, update):
        t = scalars[T] + 1
        if bias_correction:
            bias_scale = real(1.0 - scalars[ALPHA] ** t)
        else:
            bias_scale = real(1.0)
        if kind == CONSTANT:
            lr = real(scalars[LR])
        else:
            lr = real(_schedule_lr(kind, scalars, scalars[T]))
        status, stepped = _fused_step(
            work, g, rows, lr, real(scalars[ALPHA]),
            real(scalars[ONE_MINUS_ALPHA]), real(scalars[EPS]),
            real(scalars[MOMENTUM]), real(scalars[WEIGHT_DECAY]), bias_scale,
            scalars[GTOL], real(scalars[GSAFE]), update, big, constant_flags)
        if stepped:
            scalars[T] = t
            scalars[NIT] += 1
            if kind == PLATEAU and scalars[PLATEAU_EACH] != 0:
                _observe_loss(scalars, scalars[FVAL])
        return status

    return step


def step_entry_point(flags, dtype_name, parallel=False):
    """The compiled step for a C-contiguous gradient, without dispatch.

    Calling a numba dispatcher from Python types every argument first (about
    0.25 us for the step's five); the entry point skips that and trusts its
    arguments, so the caller must pass exactly: a C-contiguous 2-D ``work``
    and 1-D gradient of ``dtype_name``, the float64 ``scalars``, and a bool.
    """
    return _step_entry_point(flags, dtype_name, bool(parallel))


@lru_cache(maxsize=None)
def _step_entry_point(flags, dtype_name, parallel):
    real = numba.from_dtype(np.dtype(dtype_name))
    sig = (numba.types.Array(real, 2, "C"), numba.types.Array(real, 1, "C"),
           numba.types.Array(numba.float64, 1, "C"), numba.types.boolean)
    return make_step(flags, dtype_name, parallel).compile(sig)


@numba.njit(inline="always", **JIT_OPTIONS)
def _copy(source, target):
    """``target[:] = source``, casting as NumPy does. An explicit loop: the
    slice assignment costs seconds of compilation."""
    for i in range(source.shape[0]):
        target[i] = source[i]


def make_loop(flags, dtype_name, returns_value, cast_grad, inplace,
              parallel=False):
    """Compile the whole optimization loop around a jitted gradient.

    Parameters
    ----------
    flags, dtype_name
        As for :func:`make_step`.
    returns_value : bool
        The jitted function returns ``(f, g)`` (``jac=True``) rather than ``g``.
    cast_grad : bool
        The gradient's dtype differs from ``x``'s: copy it into ``g`` (a cast
        rounding exactly as NumPy's ``astype``) instead of rebinding.
    inplace : bool
        The function writes the gradient into ``g``: ``grad_fn(x, g, *args)``
        (returning the value when ``returns_value``). No allocation at all.
    parallel : bool
        Run the step's two passes on numba's threads (the user's function
        is called as it is).

    Returns
    -------
    loop : numba dispatcher
        ``loop(grad_fn, work, g, scalars, n_iter, args) -> status``. Runs at
        most ``n_iter`` iterations, each a fused step at ``x = work[0]``
        followed by ``grad_fn(x, *args)``. Results go to the arrays passed
        in, never only to the return value, so that a Ctrl-C caught on
        return loses nothing: ``g`` holds the gradient at ``x``,
        ``scalars[FVAL]`` the value there (when ``returns_value``), and the
        counters in ``scalars`` are up to date. Cached on disk: compile it
        for a first-class function type with :func:`loop_entry_point`, so
        that one build serves every user function of that signature.
    """
    return _make_loop(flags, dtype_name, bool(returns_value),
                      bool(cast_grad), bool(inplace), bool(parallel))


def loop_entry_point(flags, dtype_name, returns_value, cast_grad, inplace,
                     parallel, grad_fn, work, g, args):
    """The loop compiled for ``grad_fn``'s signature, not for ``grad_fn``.

    ``grad_fn`` (a numba dispatcher, already compiled for these arguments
    by the driver's first gradient call) is passed as a first-class
    function: the loop calls it through a pointer, as it would call any
    dispatcher that is not inlined, and is compiled, and cached on disk,
    once per configuration and argument types. A new user function then
    compiles nothing here (inlining the rule into a loop specialised on
    each user function took about 2 s of numba's front end per function).

    Raises numba's ``TypingError`` when the loop cannot call ``grad_fn``
    (e.g. it returns a tuple where an array is expected).

    Typing the call costs about 300 us, more than a short run: the answer
    is kept per function (weakly: it goes with the function) under numba's
    own type fingerprint of the arguments, which costs about 1 us.
    """
    config = (flags, dtype_name, bool(returns_value), bool(cast_grad),
              bool(inplace), bool(parallel))
    try:
        key = config + tuple(compute_fingerprint(a) for a in (work, g)
                             + tuple(args))
    except NotImplementedError:  # a type without a fingerprint: no memo
        return _typed_loop(config, grad_fn, work, g, args)
    known = _ENTRY_POINTS.setdefault(grad_fn, {})
    if key not in known:
        known[key] = _typed_loop(config, grad_fn, work, g, args)
    return known[key]


# grad_fn -> {configuration and argument fingerprints: entry point}
_ENTRY_POINTS = weakref.WeakKeyDictionary()


def _typed_loop(config, grad_fn, work, g, args):
    """The loop's entry point for ``grad_fn``'s signature (see above)."""
    flags, dtype_name, returns_value, cast_grad, inplace, parallel = config
    typeof = numba.typeof
    grad_args = ((work[0], g) if inplace else (work[0],)) + tuple(args)
    arg_types = tuple(typeof(a) for a in grad_args)
    # The overload numba itself would pick for this call (an explicit
    # signature included), compiled by the driver's first gradient call.
    typing = cpu_target.typing_context
    typing.refresh()
    grad_sig = typing.resolve_function_type(typeof(grad_fn), arg_types, {})
    if grad_sig is None:
        raise TypingError(f"{grad_fn} has no implementation for {arg_types}")
    sig = (numba.types.FunctionType(grad_sig), typeof(work), typeof(g),
           numba.types.Array(numba.float64, 1, "C"), numba.intp,
           typeof(tuple(args)))
    return _loop_entry_point(flags, dtype_name, returns_value, cast_grad,
                             inplace, parallel, sig)


@lru_cache(maxsize=None)
def _loop_entry_point(flags, dtype_name, returns_value, cast_grad, inplace,
                      parallel, sig):
    loop = _make_loop(flags, dtype_name, returns_value, cast_grad, inplace,
                      parallel)
    return loop.compile(sig)


@lru_cache(maxsize=None)
def _make_loop(flags, dtype_name, returns_value, cast_grad, inplace,
               parallel):
    rows, constant_flags, real, big, bias_correction = _constants(
        flags, dtype_name, parallel)
    kind = flags.schedule

    @numba.njit(cache=True, parallel=parallel, **JIT_OPTIONS)
    def loop(grad_fn, work, g, scalars, n_iter, args):
        # Hyperparameters and counters live in locals for the whole chunk
        # (scalars might alias work as far as the compiler knows, so keeping
        # them in the array would reload them every iteration).
        lr = real(scalars[LR])
        alpha = real(scalars[ALPHA])
        one_minus_alpha = real(scalars[ONE_MINUS_ALPHA])
        eps = real(scalars[EPS])
        momentum = real(scalars[MOMENTUM])
        weight_decay = real(scalars[WEIGHT_DECAY])
        alpha64 = scalars[ALPHA]
        gtol = scalars[GTOL]
        gsafe = real(scalars[GSAFE])
        t = scalars[T]
        nit = scalars[NIT]
        ngrad = scalars[NGRAD]
        f = scalars[FVAL]
        x = work[0]
        n = x.shape[0]
        grad = g
        status = STEPPED
        plateau_each = scalars[PLATEAU_EACH] != 0
        for _ in range(n_iter):
            if bias_correction:
                bias_scale = real(1.0 - alpha64 ** (t + 1))
            else:
                bias_scale = real(1.0)
            if kind != CONSTANT:
                lr = real(_schedule_lr(kind, scalars, t))
            status, stepped = _fused_step(
                work, grad, rows, lr, alpha, one_minus_alpha, eps, momentum,
                weight_decay, bias_scale, gtol, gsafe, True, big,
                constant_flags)
            if stepped:
                t += 1
                nit += 1
                if kind == PLATEAU and plateau_each:
                    _observe_loss(scalars, f)
            if status != STEPPED:
                break
            ngrad += 1
            if inplace:
                if returns_value:
                    f = grad_fn(x, g, *args)
                else:
                    grad_fn(x, g, *args)
                continue
            if returns_value:
                f, new = grad_fn(x, *args)
            else:
                new = grad_fn(x, *args)
            if new.ndim != 1 or new.shape[0] != n:
                status = BAD_GRAD_SHAPE
                break
            if cast_grad:
                _copy(new, g)
            else:
                grad = new
        if not cast_grad and not inplace and status != BAD_GRAD_SHAPE:
            _copy(grad, g)
        scalars[T] = t
        scalars[NIT] = nit
        scalars[NGRAD] = ngrad
        scalars[FVAL] = f
        return status

    return loop
