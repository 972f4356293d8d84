r"""Mini-batches: which ``args`` are data, the epochs, both drivers' loops.

``options={"batch": {"args": (0, 1), "size": 32}}`` says that ``args[0]``
and ``args[1]`` hold samples along their first axis. Each iteration then
calls the gradient on the next ``size`` samples of every one of them
(the other ``args`` unchanged); an epoch is one pass over the samples, the
last batch possibly smaller, as PyTorch's ``DataLoader``. With ``shuffle``
each epoch draws a permutation from ``numpy.random.default_rng(seed)`` and
the data arrays are copied once in that order (the user's arrays are never
touched): every batch is then a contiguous slice of the copy, zero-copy in
both drivers, so the same seed gives the same bits through either.

RMSProp never converges on a mini-batch gradient: the kernels run with the
gradient test off, and after the last iteration the gradient and the value
are computed on all the data, once; ``res.jac`` and ``res.fun`` are those,
and ``success`` means that full gradient is within ``gtol`` or that the
plateau test stopped the run.

The plateau test (``patience``) watches the mean mini-batch loss of each
epoch (the objective must return it: ``jac=True``), and stops after
``patience`` epochs without a decrease of more than ``min_delta`` below the
best, like Keras' ``EarlyStopping``.
"""

import math
import numbers
import weakref
from functools import lru_cache
from typing import NamedTuple

import numba
import numpy as np
from numba._dispatcher import compute_fingerprint
from numba.core import types
from numba.core.errors import TypingError
from numba.core.registry import cpu_target
from numba.extending import overload

from . import _cpu
from ._cpu import (ALPHA, BATCH_POS, BATCH_SIZE, CONSTANT, EPS, FVAL, GSAFE,
                   GTOL, JIT_OPTIONS, LOSS_SUM, LR, MOMENTUM, N_SAMPLES, NGRAD,
                   NIT, ONE_MINUS_ALPHA, PLATEAU_EACH, STEPPED, T,
                   BAD_GRAD_SHAPE, WEIGHT_DECAY, _constants, _copy,
                   _fused_step, _schedule_lr)

_KEYS = ("args", "size", "shuffle", "seed", "epochs", "patience",
         "min_delta")


class Batches(NamedTuple):
    """A validated ``batch`` option."""

    positions: tuple   # indices into args of the data arrays
    size: int
    shuffle: bool
    seed: object
    epochs: object     # int or None
    patience: object   # int or None
    min_delta: float
    n_samples: int

    @property
    def per_epoch(self):
        return -(-self.n_samples // self.size)


def _count(name, value, low, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, numbers.Integral) or value < low:
        raise ValueError(f"batch[{name!r}] must be an integer >= {low}"
                         f"{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def parse_batches(spec, args):
    """Check the ``batch`` option against ``args``; a :class:`Batches`."""
    if not isinstance(spec, dict):
        raise TypeError("options['batch'] must be a dict such as "
                        "{'args': (0, 1), 'size': 32}, got "
                        f"{type(spec).__name__}")
    unknown = sorted(set(spec) - set(_KEYS))
    if unknown:
        raise ValueError(f"Unknown keys in options['batch']: "
                         f"{', '.join(map(repr, unknown))}; expected "
                         f"{', '.join(_KEYS)}")
    if "args" not in spec or "size" not in spec:
        raise ValueError("options['batch'] needs 'args' (the positions in "
                         "args of the data arrays) and 'size'")
    positions = spec["args"]
    if isinstance(positions, numbers.Integral):
        positions = (positions,)
    try:
        positions = tuple(positions)
    except TypeError as exc:
        raise TypeError("batch['args'] must be a tuple of positions in args"
                        ) from exc
    if not positions:
        raise ValueError("batch['args'] must name at least one argument")
    for p in positions:
        if isinstance(p, (bool, np.bool_)) or not isinstance(
                p, numbers.Integral) or not 0 <= p < len(args):
            raise ValueError(f"batch['args'] holds {p!r}, not a position in "
                             f"args (which has {len(args)} items)")
    if len(set(positions)) != len(positions):
        raise ValueError("batch['args'] names a position twice")
    positions = tuple(sorted(int(p) for p in positions))
    lengths = set()
    for p in positions:
        a = args[p]
        if not isinstance(a, np.ndarray) or a.ndim == 0:
            raise TypeError(f"args[{p}] is a data argument of the batches: "
                            "it must be a NumPy array with a first axis, got "
                            f"{type(a).__name__}")
        lengths.add(a.shape[0])
    if len(lengths) != 1:
        raise ValueError("the data arrays of the batches must have the same "
                         f"length along their first axis, got "
                         f"{sorted(lengths)}")
    n_samples = lengths.pop()
    if n_samples == 0:
        raise ValueError("the data arrays of the batches are empty")
    size = _count("size", spec["size"], 1, allow_none=False)
    if size > n_samples:
        raise ValueError(f"batch['size']={size} is larger than the "
                         f"{n_samples} samples")
    shuffle = spec.get("shuffle", True)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"batch['shuffle'] must be True or False, got "
                        f"{shuffle!r}")
    seed = spec.get("seed", 0)
    try:
        np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"batch['seed'] must be what numpy.random."
                         f"default_rng accepts, got {seed!r}") from exc
    min_delta = spec.get("min_delta", 0.0)
    if isinstance(min_delta, bool) or not isinstance(
            min_delta, numbers.Real) or not (math.isfinite(min_delta)
                                             and min_delta >= 0):
        raise ValueError(f"batch['min_delta'] must be a finite number >= 0,"
                         f" got {min_delta!r}")
    return Batches(positions, size, bool(shuffle), seed,
                   _count("epochs", spec.get("epochs"), 1),
                   _count("patience", spec.get("patience"), 1),
                   float(min_delta), n_samples)


class Epochs:
    """The epoch loop shared by both drivers: shuffled copies, positions,
    the plateau test. Everything it decides is computed in Python, once per
    epoch, the same way for both drivers."""

    def __init__(self, spec, args):
        self.spec = spec
        self.args = args
        self.restart()

    def restart(self):
        """From the first epoch again (the same orders)."""
        spec = self.spec
        self.rng = np.random.default_rng(spec.seed)
        self.epoch = 0          # epochs started
        self.best = math.inf
        self.wait = 0
        self.plateaued = False
        self.losses = []        # mean mini-batch loss of each epoch
        self.data = None        # this epoch's args (data arrays reordered)

    def start(self, scalars):
        """Draw this epoch's order and reset the position."""
        spec = self.spec
        order = self.rng.permutation(spec.n_samples) if spec.shuffle \
            else None
        data = list(self.args)
        for p in spec.positions:
            a = self.args[p]
            data[p] = (np.ascontiguousarray(a) if order is None
                       else np.ascontiguousarray(a[order]))
        self.data = tuple(data)
        self.epoch += 1
        scalars[BATCH_POS] = 0
        scalars[BATCH_SIZE] = spec.size
        scalars[N_SAMPLES] = spec.n_samples
        scalars[LOSS_SUM] = 0.0

    def batch_args(self, pos):
        """The arguments of batch ``pos`` of this epoch: slices (views)."""
        size = self.spec.size
        start = pos * size
        stop = min(start + size, self.spec.n_samples)
        data = list(self.data)
        for p in self.spec.positions:
            data[p] = data[p][start:stop]
        return tuple(data)

    def epoch_done(self, scalars):
        return int(scalars[BATCH_POS]) >= self.spec.per_epoch

    def end(self, scalars, has_loss):
        """At the end of an epoch: record its loss, run the plateau test.
        Returns True when the run should stop."""
        spec = self.spec
        loss = scalars[LOSS_SUM] / spec.per_epoch if has_loss else math.nan
        self.losses.append(loss)
        if spec.patience is not None:
            if loss < self.best - spec.min_delta:
                self.best, self.wait = loss, 0
            else:
                self.wait += 1
                if self.wait >= spec.patience:
                    self.plateaued = True
                    return True
        return spec.epochs is not None and self.epoch >= spec.epochs


def mask_of(spec, n_args):
    """The data positions encoded in a tuple's type: 0 (slice) or None."""
    return tuple(0 if i in spec.positions else None for i in range(n_args))


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


# -- the compiled loop ---------------------------------------------------------

def batch_loop_entry_point(flags, dtype_name, returns_value, cast_grad,
                           inplace, parallel, grad_fn, work, g, args, mask):
    """The mini-batch loop compiled for ``grad_fn``'s signature (as
    :func:`rmsopt._cpu.loop_entry_point`, remembered per function)."""
    config = (flags, dtype_name, bool(returns_value), bool(cast_grad),
              bool(inplace), bool(parallel))
    try:
        key = config + (mask,) + tuple(
            compute_fingerprint(a) for a in (work, g) + tuple(args))
    except NotImplementedError:
        return _typed_batch_loop(config, grad_fn, work, g, args, mask)
    known = _ENTRY_POINTS.setdefault(grad_fn, {})
    if key not in known:
        known[key] = _typed_batch_loop(config, grad_fn, work, g, args, mask)
    return known[key]


_ENTRY_POINTS = weakref.WeakKeyDictionary()


def _typed_batch_loop(config, grad_fn, work, g, args, mask):
    inplace = config[4]
    typeof = numba.typeof
    grad_args = ((work[0], g) if inplace else (work[0],)) + tuple(args)
    arg_types = tuple(typeof(a) for a in grad_args)
    typing = cpu_target.typing_context
    typing.refresh()
    grad_sig = typing.resolve_function_type(typeof(grad_fn), arg_types, {})
    if grad_sig is None:
        raise TypingError(f"{grad_fn} has no implementation for {arg_types}")
    sig = (types.FunctionType(grad_sig), typeof(work), typeof(g),
           types.Array(types.float64, 1, "C"), types.intp,
           typeof(tuple(args)), typeof(mask))
    return _compiled_batch_loop(config, sig)


@lru_cache(maxsize=None)
def _compiled_batch_loop(config, sig):
    return make_batch_loop(*config).compile(sig)


@lru_cache(maxsize=None)
def make_batch_loop(flags, dtype_name, returns_value, cast_grad, inplace,
                    parallel):
    """Compile the mini-batch loop: ``loop(grad_fn, work, g, scalars, n_iter,
    args, mask) -> status``.

    ``g`` holds the gradient of batch ``scalars[BATCH_POS]`` at ``x``. Each
    iteration steps with it, moves to the next batch and, unless the epoch
    is over, computes that batch's gradient (and adds its loss to
    ``scalars[LOSS_SUM]``); the loop stops at the end of the epoch, where
    the driver draws the next order. Cached on disk like
    :func:`rmsopt._cpu.make_loop`; the closure holds only plain constants.
    """
    rows, constant_flags, real, big, bias_correction = _constants(
        flags, dtype_name, parallel)
    kind = flags.schedule

    @numba.njit(cache=True, parallel=parallel, **JIT_OPTIONS)
    def loop(grad_fn, work, g, scalars, n_iter, args, mask):
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
        loss_sum = scalars[LOSS_SUM]
        pos = int(scalars[BATCH_POS])
        size = int(scalars[BATCH_SIZE])
        n_samples = int(scalars[N_SAMPLES])
        per_epoch = (n_samples + size - 1) // size
        x = work[0]
        n = x.shape[0]
        grad = g
        status = STEPPED
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
            if status != STEPPED:
                break
            pos += 1
            if pos >= per_epoch:
                break
            start = pos * size
            stop = min(start + size, n_samples)
            batch = _batch_args(args, mask, start, stop)
            ngrad += 1
            if inplace:
                if returns_value:
                    f = grad_fn(x, g, *batch)
                else:
                    grad_fn(x, g, *batch)
                loss_sum += f
                continue
            if returns_value:
                f, new = grad_fn(x, *batch)
            else:
                new = grad_fn(x, *batch)
            loss_sum += f
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
        scalars[LOSS_SUM] = loss_sum
        scalars[BATCH_POS] = pos
        return status

    return loop




# -- the drivers ----------------------------------------------------------------

def _first_gradient(run, epochs, view):
    """Start an epoch: draw its order, the gradient of its first batch."""
    scalars, obj = run.scalars, run.obj
    epochs.start(scalars)
    obj.args = epochs.batch_args(0)
    try:
        run.g = obj.grad(view)
    finally:
        obj.args = epochs.args
    if obj.mode == "value_and_grad":
        f = obj.value_at_grad
        scalars[FVAL] = f
        scalars[LOSS_SUM] += f


def _epoch_loop(run, epochs, advance):
    """Epochs until one of the limits; ``advance(view)`` runs iterations
    within the current epoch and returns a status when the run must end
    (NaN, callback), else None."""
    from ._result import MAXITER
    s, scalars = run.settings, run.scalars
    has_loss = run.obj.mode == "value_and_grad"
    view = run.x.view()
    view.flags.writeable = False
    scalars[GTOL] = -1.0  # a mini-batch gradient is never convergence
    scalars[PLATEAU_EACH] = 0.0  # reduce-on-plateau sees epoch losses
    try:
        while True:
            if run.nit >= s.maxiter:
                return MAXITER
            _first_gradient(run, epochs, view)
            while not epochs.epoch_done(scalars):
                if run.nit >= s.maxiter:
                    return MAXITER
                status = advance(view)
                if status is not None:
                    return status
            stop = epochs.end(scalars, has_loss)
            if run.watches_loss:
                lr, best, bad, cool = _plateau_py(
                    scalars[_cpu.LR_NOW], scalars[_cpu.BEST],
                    scalars[_cpu.NUM_BAD], scalars[_cpu.COOL],
                    epochs.losses[-1], *scalars[_cpu.SCHED + 1:_cpu.SCHED + 6])
                scalars[_cpu.LR_NOW:_cpu.COOL + 1] = (lr, best, bad, cool)
            if run.on_epoch is not None:
                run.on_epoch(epochs)
            if stop:
                return MAXITER
    finally:
        scalars[GTOL] = s.gtol


def _plateau_py(*args):
    from ._schedules import plateau_update
    return plateau_update.py_func(*args)


def finish(run, epochs, status):
    """After the last iteration: the gradient (and value) on all the data,
    and the status it gives."""
    from ._minimize import _KERNEL_TO_STATUS
    from ._result import MAXITER, SUCCESS
    run.obj.args = epochs.args
    view = run.x.view()
    view.flags.writeable = False
    run.g = run.obj.grad(view)
    if status != MAXITER:
        return status
    step = _cpu.step_entry_point(run.settings.flags, run.x.dtype.name,
                                 run.parallel)
    code = step(run.work, run.g, run.scalars, False)
    status = _KERNEL_TO_STATUS.get(code, MAXITER)
    if status == MAXITER and epochs.plateaued:
        run.message = (f"The mean mini-batch loss stopped decreasing "
                       f"(patience={epochs.spec.patience} epochs).")
        return SUCCESS
    spec = epochs.spec
    if (status == MAXITER and spec.epochs is not None
            and run.nit == spec.epochs * spec.per_epoch):
        run.message = (f"The requested {spec.epochs} epochs are done; the "
                       "full gradient is above gtol.")
    return status


def python_driver(run, epochs):
    """Mini-batches with Python (or any) functions: one step per call of
    the compiled step, as the plain python driver."""
    from ._minimize import _KERNEL_TO_STATUS
    from ._result import CALLBACK
    obj, scalars, work = run.obj, run.scalars, run.work
    step = _cpu.step_entry_point(run.settings.flags, run.x.dtype.name,
                                 run.parallel)
    has_loss = obj.mode == "value_and_grad"
    per_epoch = epochs.spec.per_epoch

    def advance(view):
        run.set_lr()
        code = step(work, run.g, scalars, True)
        if code:
            return _KERNEL_TO_STATUS[code]
        pos = int(scalars[BATCH_POS]) + 1
        scalars[BATCH_POS] = pos
        if pos < per_epoch:
            obj.args = epochs.batch_args(pos)
            try:
                run.g = obj.grad(view)
            finally:
                obj.args = epochs.args
            if has_loss:
                f = obj.value_at_grad
                scalars[FVAL] = f
                scalars[LOSS_SUM] += f
        if run.callback is not None and run.notify():
            return CALLBACK
        if run.on_iteration is not None:
            run.on_iteration()
        return None

    return finish(run, epochs, _epoch_loop(run, epochs, advance))


def nopython_driver(run, epochs, fn, returns_value):
    """Mini-batches with a jitted function: the epoch's iterations run in
    compiled chunks over slices of the epoch's copy."""
    import time

    from ._minimize import _CHUNK_SECONDS, _KERNEL_TO_STATUS
    from ._result import CALLBACK
    obj, s, scalars = run.obj, run.settings, run.scalars
    x = run.x
    obj.raw_grad_dtype = x.dtype
    mask = mask_of(epochs.spec, len(epochs.args))
    state = {"loop": None, "chunk": 1 if (run.callback is not None
                                          or run.lr_function is not None)
             else 16}
    run.compiled_value_calls = returns_value

    def advance(view):
        g = run.g
        if state["loop"] is None:
            cast_grad = obj.raw_grad_dtype != x.dtype
            state["loop"] = batch_loop_entry_point(
                s.flags, x.dtype.name, returns_value, cast_grad, obj.inplace,
                run.parallel, fn, run.work, g, epochs.data, mask)
        chunk = state["chunk"]
        if run.lr_function is not None:
            run.set_lr()
        n_iter = min(chunk, s.maxiter - run.nit)
        start = time.perf_counter()
        code = state["loop"](fn, run.work, g, scalars, n_iter, epochs.data,
                             mask)
        elapsed = time.perf_counter() - start
        if returns_value:
            obj.raw_value = float(scalars[FVAL])
        if code == BAD_GRAD_SHAPE:
            raise ValueError(f"The gradient must have shape ({x.shape[0]},) "
                             "like x0; the jitted function returned another "
                             "length")
        if code != STEPPED:
            return _KERNEL_TO_STATUS[code]
        if run.callback is not None:
            if run.notify():
                return CALLBACK
        elif run.lr_function is not None:
            pass
        elif elapsed < _CHUNK_SECONDS / 2:
            state["chunk"] = chunk * 2
        elif elapsed > 2 * _CHUNK_SECONDS and chunk > 1:
            state["chunk"] = chunk // 2
        if run.on_iteration is not None:
            run.on_iteration()
        return None

    return finish(run, epochs, _epoch_loop(run, epochs, advance))
