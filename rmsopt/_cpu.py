"""Compiled CPU kernels (njit only): the fused step and the one compiled loop.

The math comes from :mod:`rmsopt._rule` and :mod:`rmsopt._schedules`, compiled
here with ``njit(inline="always")``; the layout and the codes from
:mod:`rmsopt._layout`. Kernels are built by factories keyed on the option
flags and the dtype. Both are closure constants, so numba folds every branch
of the rule away and caches one specialisation per configuration on disk
(numba keys its cache on closure values; the closures hold only plain
constants, never other dispatchers, so the key is the same in every process).
Nothing compiles at import: numba compiles on first call.

- :func:`make_step` / :func:`step_entry_point`: one checked step, called by
  the python driver once per iteration (and to test a final gradient);
- :func:`make_loop` / :func:`loop_entry_point`: the whole loop around a
  jitted gradient, with or without mini-batches, in chunks of iterations.

Kernels never raise: they return status codes, and the Python side turns them
into results or errors. Shapes and dtypes are checked in Python first, because
bounds checking is off here.
"""

import weakref
from functools import lru_cache

import numba
import numpy as np
from numba._dispatcher import compute_fingerprint
from numba.core import types
from numba.core.errors import TypingError
from numba.core.registry import cpu_target
from numba.extending import overload

from . import _rule, _schedules
from ._layout import (ALPHA, BAD_GRAD_SHAPE, BATCH_POS, BATCH_SIZE, CONVERGED,
                      EPS, FVAL, GSAFE, GTOL, JIT_OPTIONS, LARGE_X, LOSS_SUM,
                      LR, LR_NOW, BEST, COOL, MOMENTUM, N_SAMPLES, NGRAD, NIT,
                      NONFINITE_GRAD, NUM_BAD, ONE_MINUS_ALPHA, OVERFLOW,
                      PLATEAU_EACH, SCHED, STEPPED, T, USER_RAISED,
                      WEIGHT_DECAY, cached_njit, work_rows)
from ._schedules import CONSTANT, PLATEAU

_inline = numba.njit(inline="always", **JIT_OPTIONS)
_element = _inline(_rule.rmsprop_element)
_gradient_test = _inline(_rule.gradient_test)
_fits = _inline(_rule.fits)
_clip = _inline(_rule.clip)
_lr_at = _inline(_schedules.lr_at)
_plateau_update = _inline(_schedules.plateau_update)


@_inline
def _schedule_lr(kind, scalars, t):
    """The learning rate (float64) of the step after ``t`` steps."""
    if kind == PLATEAU:
        return scalars[LR_NOW]
    return _lr_at(kind, scalars[SCHED], scalars[SCHED + 1],
                  scalars[SCHED + 2], scalars[SCHED + 3], scalars[SCHED + 4],
                  scalars[SCHED + 5], t)


@_inline
def _observe_loss(scalars, f):
    """Reduce-on-plateau sees the loss ``f`` of the point just left."""
    lr, best, num_bad, cool = _plateau_update(
        scalars[LR_NOW], scalars[BEST], scalars[NUM_BAD], scalars[COOL], f,
        scalars[SCHED + 1], scalars[SCHED + 2], scalars[SCHED + 3],
        scalars[SCHED + 4], scalars[SCHED + 5])
    scalars[LR_NOW] = lr
    scalars[BEST] = best
    scalars[NUM_BAD] = num_bad
    scalars[COOL] = cool


@_inline
def _fused_step(work, g, rows, lr, alpha, one_minus_alpha, eps, momentum,
                weight_decay, bias_scale, gtol, gsafe, update, big, flags):
    """Check the gradient, then update every row of ``work`` in one pass.

    Returns ``(status, stepped)``. A gradient component above ``gsafe`` (NaN
    and inf included; :func:`rmsopt._rule.gradient_test`) stops the run
    before the step: with every component below it, the hyperparameters and
    the state checked by :func:`rmsopt._layout.overflow_guard`, and
    ``|x| <= max/4``, no new value can overflow, so the update stores
    unconditionally; it reports ``LARGE_X`` if some ``|x|`` passes max/4
    (the next step could overflow). Where the proof does not hold (the
    ``guarded`` flag), the update keeps an element's old values when a new
    one is not finite (:func:`rmsopt._rule.fits`): a select that costs about
    20% of the bandwidth on AMD Zen (it compiles to masked stores).

    Both loops are ``prange``: threads when the caller is compiled with
    ``parallel=True``, plain loops otherwise; the work is elementwise and the
    reductions are integer counts, so both give the same bits. Counting (no
    early exit) lets the loops vectorise.

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
    n_bad = 0
    n_above = 0
    for i in numba.prange(n):
        bad, above = _gradient_test(x[i], g[i], lo[i], hi[i], weight_decay,
                                    gsafe, gtol, maximize,
                                    decoupled_weight_decay, bounded)
        n_bad += bad
        n_above += above
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
            ok = _fits(xi, vi, mi, bi, big, centered, use_momentum)
            x[i] = xi if ok else x[i]
            v[i] = vi if ok else v[i]
            if centered:
                m[i] = mi if ok else m[i]
            if use_momentum:
                b[i] = bi if ok else b[i]
            n_bad += not ok
        return (OVERFLOW if n_bad else STEPPED), True
    xsafe = big / 4
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


@_inline
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
        xi = _clip(xi, lo[i], hi[i])
    return xi, vi, mi, bi


@_inline
def _hyperparameters(real, scalars):
    """The hyperparameters rounded once to the working dtype, as PyTorch
    rounds its Python scalars: ``(lr, alpha, 1 - alpha, eps, momentum,
    weight_decay, gsafe)``."""
    return (real(scalars[LR]), real(scalars[ALPHA]),
            real(scalars[ONE_MINUS_ALPHA]), real(scalars[EPS]),
            real(scalars[MOMENTUM]), real(scalars[WEIGHT_DECAY]),
            real(scalars[GSAFE]))


@_inline
def _bias_scale(real, bias_correction, alpha64, t):
    """``1 - alpha**t`` computed in float64 and rounded, or 1 without bias
    correction."""
    if bias_correction:
        return real(1.0 - alpha64 ** t)
    return real(1.0)


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
    return row_tuple, flag_tuple, real, big


# -- one step ------------------------------------------------------------------

def make_step(flags, dtype_name, parallel=False):
    """Compile the fused RMSProp step for one configuration.

    Parameters
    ----------
    flags : rmsopt._layout.Flags
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
    rows, constant_flags, real, big = _constants(flags, dtype_name, parallel)
    kind, bias_correction = flags.schedule, flags.bias_correction

    @cached_njit(parallel=parallel)
    def step(work, g, scalars, update):
        (lr, alpha, one_minus_alpha, eps, momentum, weight_decay,
         gsafe) = _hyperparameters(real, scalars)
        t = scalars[T] + 1
        if kind != CONSTANT:
            lr = real(_schedule_lr(kind, scalars, scalars[T]))
        status, stepped = _fused_step(
            work, g, rows, lr, alpha, one_minus_alpha, eps, momentum,
            weight_decay, _bias_scale(real, bias_correction, scalars[ALPHA],
                                      t),
            scalars[GTOL], gsafe, update, big, constant_flags)
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
    0.25 us for the step's four); the entry point skips that and trusts its
    arguments, so the caller must pass exactly: a C-contiguous 2-D ``work``
    and 1-D gradient of ``dtype_name``, the float64 ``scalars``, and a bool.
    """
    return _step_entry_point(flags, dtype_name, bool(parallel))


@lru_cache(maxsize=None)
def _step_entry_point(flags, dtype_name, parallel):
    real = numba.from_dtype(np.dtype(dtype_name))
    sig = (types.Array(real, 2, "C"), types.Array(real, 1, "C"),
           types.Array(types.float64, 1, "C"), types.boolean)
    return make_step(flags, dtype_name, parallel).compile(sig)


# -- the loop ------------------------------------------------------------------

@_inline
def _copy(source, target):
    """``target[:] = source``, casting as NumPy does. An explicit loop: the
    slice assignment costs seconds of compilation."""
    for i in range(source.shape[0]):
        target[i] = source[i]


def _batch_args(args, mask, start, stop):
    """``args`` with ``a[start:stop]`` for each position where ``mask``
    holds 0 (compiled code only; see its overload)."""
    raise NotImplementedError


@overload(_batch_args, jit_options=JIT_OPTIONS)
def _batch_args_overload(args, mask, start, stop):
    # One implementation per length and mask type: the tuple is rebuilt
    # from its head and the rest, each a static index, so the types of the
    # slices (C-contiguous like the arrays) keep the call's signature.
    if len(args.types) == 0:
        return lambda args, mask, start, stop: ()
    if isinstance(mask.types[0], types.NoneType):
        def impl(args, mask, start, stop):
            return (args[0],) + _batch_args(args[1:], mask[1:], start, stop)
    else:
        def impl(args, mask, start, stop):
            return (args[0][start:stop],) + _batch_args(args[1:], mask[1:],
                                                         start, stop)
    return impl


def make_loop(flags, dtype_name, returns_value, cast_grad, inplace,
              parallel=False, batched=False):
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
    batched : bool
        Mini-batches: the arguments marked by ``mask`` are the epoch's data,
        sliced into batches (zero-copy), and a chunk ends with the epoch.

    Returns
    -------
    loop : numba dispatcher
        ``loop(grad_fn, work, g, scalars, n_iter, args, mask) -> status``
        runs at most ``n_iter`` iterations (see its docstring). ``mask``
        holds, per argument, 0 (a data array of the batches) or None.
        Cached on disk: compile it for a first-class function type with
        :func:`loop_entry_point`, so that one build serves every user
        function of that signature.
    """
    return _make_loop(flags, dtype_name, bool(returns_value),
                      bool(cast_grad), bool(inplace), bool(parallel),
                      bool(batched))


@lru_cache(maxsize=None)
def _make_loop(flags, dtype_name, returns_value, cast_grad, inplace,
               parallel, batched):
    rows, flags_tuple, real, big = _constants(flags, dtype_name, parallel)
    bias_correction, kind = flags.bias_correction, flags.schedule

    # The body is written here, not in an inline helper: inlining a body
    # this size costs numba ~1.5 s more compilation per configuration.
    @cached_njit(parallel=parallel)
    def loop(grad_fn, work, x, g, scalars, n_iter, args, mask):
        """At most ``n_iter`` iterations of one problem: each a fused step
        at ``work[0]`` with the gradient ``g``, then ``grad_fn`` at the new
        x, which it gets as ``x``: a read-only view of ``work[0]`` (or
        ``work[0]`` itself for a function compiled only for writable
        arrays). With ``batched``, ``args`` hold the epoch's data (``mask``
        marks them) and ``g`` the gradient of batch ``scalars[BATCH_POS]``:
        each iteration moves to the next batch and adds its loss to
        ``scalars[LOSS_SUM]``; the chunk ends with the epoch, before the
        gradient of a batch past its end.

        Results go to the arrays passed in, never only to the return value,
        so that a Ctrl-C caught on return loses nothing: ``g`` holds the
        gradient at ``x``, ``scalars[FVAL]`` the value there (when
        ``returns_value``), and the counters in ``scalars`` are up to
        date. Returns the status; an exception of ``grad_fn`` is caught and
        returned as ``USER_RAISED`` (numba would not release the arrays of
        a frame it unwinds: every call that failed would leak them).
        """
        # Hyperparameters and counters live in locals for the whole chunk
        # (scalars might alias work as far as the compiler knows, so keeping
        # them in the array would reload them every iteration).
        (lr, alpha, one_minus_alpha, eps, momentum, weight_decay,
         gsafe) = _hyperparameters(real, scalars)
        alpha64, gtol = scalars[ALPHA], scalars[GTOL]
        t, nit, ngrad, f = scalars[T], scalars[NIT], scalars[NGRAD], \
            scalars[FVAL]
        # the epoch's position and loss, with mini-batches
        loss_sum, pos = scalars[LOSS_SUM], int(scalars[BATCH_POS])
        size, n_samples = int(scalars[BATCH_SIZE]), int(scalars[N_SAMPLES])
        per_epoch = (n_samples + size - 1) // size if batched else 0
        plateau_each = scalars[PLATEAU_EACH] != 0
        n = x.shape[0]
        grad = g
        status = STEPPED
        batch = args
        for _ in range(n_iter):
            if kind != CONSTANT:
                lr = real(_schedule_lr(kind, scalars, t))
            status, stepped = _fused_step(
                work, grad, rows, lr, alpha, one_minus_alpha, eps, momentum,
                weight_decay,
                _bias_scale(real, bias_correction, alpha64, t + 1), gtol,
                gsafe, True, big, flags_tuple)
            if stepped:
                t += 1
                nit += 1
                if kind == PLATEAU and plateau_each:
                    _observe_loss(scalars, f)
            if status != STEPPED:
                break
            if batched:
                pos += 1
                if pos >= per_epoch:
                    break
                start = pos * size
                batch = _batch_args(args, mask, start,
                                    min(start + size, n_samples))
            ngrad += 1  # counted when made
            # the arguments as one tuple: numba cannot start a block of a
            # try with building them
            if inplace:
                call = (x, g) + batch
            else:
                call = (x,) + batch
            raised = False
            bad_shape = False
            try:
                if inplace:
                    if returns_value:
                        f = grad_fn(*call)
                    else:
                        grad_fn(*call)
                else:
                    if returns_value:
                        f, new = grad_fn(*call)
                    else:
                        new = grad_fn(*call)
                    if new.ndim != 1 or new.shape[0] != n:
                        bad_shape = True
                    elif cast_grad:
                        _copy(new, g)
                    else:
                        grad = new
            except Exception:  # the run raises it again from Python
                raised = True
            if raised:
                status = USER_RAISED
                break
            if bad_shape:
                status = BAD_GRAD_SHAPE
                break
            if batched:
                loss_sum += f
        if not cast_grad and not inplace and status != BAD_GRAD_SHAPE:
            _copy(grad, g)  # (grad is g unless a gradient came back)
        scalars[T] = t
        scalars[NIT] = nit
        scalars[NGRAD] = ngrad
        scalars[FVAL] = f
        scalars[LOSS_SUM] = loss_sum
        scalars[BATCH_POS] = pos
        return status

    return loop


def loop_entry_point(config, grad_fn, work, x, g, args, mask):
    """The loop compiled for ``grad_fn``'s signature, not for ``grad_fn``.

    ``config`` is the tuple of :func:`make_loop`'s arguments. ``grad_fn`` (a
    numba dispatcher, already compiled for these arguments by the run's
    first gradient call) is passed as a first-class function: the loop
    calls it through a pointer, as it would call any dispatcher that is not
    inlined, and is compiled, and cached on disk, once per configuration
    and argument types. A new user function then compiles nothing here
    (inlining the rule into a loop specialised on each user function took
    about 2 s of numba's front end per function).

    Raises numba's ``TypingError`` when the loop cannot call ``grad_fn``,
    with a first line that says what the function must return where it
    returns something else (a tuple or list for an array, an optional
    array, ...).

    Typing the call costs about 300 us, more than a short run: the answer
    is kept per function (weakly: it goes with the function) under numba's
    own type fingerprint of the arguments, which costs about 1 us.
    """
    config = tuple(config)
    try:
        key = config + (mask,) + tuple(
            compute_fingerprint(a) for a in (work, x, g) + tuple(args))
    except NotImplementedError:  # a type without a fingerprint: no memo
        return _typed_loop(config, grad_fn, work, x, g, args, mask)
    known = _ENTRY_POINTS.setdefault(grad_fn, {})
    if key not in known:
        known[key] = _typed_loop(config, grad_fn, work, x, g, args, mask)
    return known[key]


# grad_fn -> {configuration and argument fingerprints: entry point}
_ENTRY_POINTS = weakref.WeakKeyDictionary()


def accepts(grad_fn, arguments):
    """The signature numba would pick to call ``grad_fn`` with these
    values (compiling it if it can), or None."""
    typing = cpu_target.typing_context
    typing.refresh()
    try:
        return typing.resolve_function_type(
            numba.typeof(grad_fn), tuple(map(numba.typeof, arguments)), {})
    except TypingError:
        return None


def _typed_loop(config, grad_fn, work, x, g, args, mask):
    """The loop's entry point for ``grad_fn``'s signature (see above)."""
    returns_value, inplace = config[2], config[4]
    # The gradient sees the first batch's slices: typed like the arrays.
    grad_args = ((x, g) if inplace else (x,)) + tuple(args)
    # The overload numba itself would pick for this call (an explicit
    # signature included), compiled by the run's first gradient call.
    grad_sig = accepts(grad_fn, grad_args)
    if grad_sig is None:
        raise TypingError(f"{grad_fn} has no implementation for "
                          f"{tuple(map(numba.typeof, grad_args))}")
    _check_return(grad_sig.return_type, returns_value, inplace)
    typeof = numba.typeof
    sig = (types.FunctionType(grad_sig), typeof(work), typeof(x), typeof(g),
           types.Array(types.float64, 1, "C"), types.intp,
           typeof(tuple(args)), typeof(mask))
    return _compiled_loop(config, sig)


def _check_return(returned, returns_value, inplace):
    """A ``TypingError`` that says what the function must return, unless
    ``returned`` (its numba return type) is that."""
    def gradient(t):
        return isinstance(t, types.Array) and t.ndim == 1 and isinstance(
            t.dtype, (types.Float, types.Integer))
    if inplace:
        ok = not returns_value or isinstance(returned, types.Number)
        want = "the value (a number), the gradient written into out"
    elif returns_value:
        ok = (isinstance(returned, types.BaseTuple) and len(returned) == 2
              and isinstance(returned[0], types.Number)
              and gradient(returned[1]))
        want = "a pair (value, gradient as a 1-D array)"
    else:
        ok = gradient(returned)
        want = "the gradient as a 1-D array of numbers"
    if not ok:
        raise TypingError(f"the jitted function returns {returned}; the "
                          f"compiled loop needs {want}")


@lru_cache(maxsize=None)
def _compiled_loop(config, sig):
    return make_loop(*config).compile(sig)
