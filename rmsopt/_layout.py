"""The kernel ABI both backends share: flags, work rows, scalar slots, codes.

The CPU kernels (:mod:`rmsopt._cpu`) and the GPU kernels
(:mod:`rmsopt._cuda`) read and write the same layout, and the runs above them
(:mod:`rmsopt._drive`, :mod:`rmsopt._device`) fill it in:

- ``work``, a 2-D array whose rows are x, the optimizer state and the
  bounds, holding only the rows the options need (:func:`work_rows`);
- ``scalars``, one float64 vector of hyperparameters and counters (the
  slot constants below): a call into numba pays for each array argument,
  and this keeps the CPU step at three arrays and a flag;
- the status codes a kernel returns (kernels never raise);
- :class:`Flags`, the compile-time constants a kernel is built for;
- :func:`overflow_guard`, the proof that decides whether the update needs
  a per-element guard;
- :data:`JIT_OPTIONS`, the one place numba's compiler options are spelled,
  and :func:`cached_njit`, the decorator of every kernel numba may cache.

Nothing here compiles; numba is imported only by :func:`cached_njit`.
"""

import math
import warnings
from typing import NamedTuple

import numpy as np

# error_model="numpy": the default "python" model adds a division check that
# blocks SIMD (3-8x slower, same bits). No fastmath: it changes the bits and
# compiles NaN checks away. cache=True is added where a kernel closes over
# no user function.
JIT_OPTIONS = dict(error_model="numpy", nogil=True)


def cached_njit(**options):
    """``numba.njit(cache=True, **JIT_OPTIONS, **options)``, robust to the
    disk cache: where numba finds no writable cache location (a read-only
    install with no writable ``NUMBA_CACHE_DIR`` or home), the function
    compiles in memory (one warning per process); a corrupt cache file (a
    truncated or garbage ``.nbi``/``.nbc``, as a killed process or a full
    disk leaves) is dropped and the function recompiled.

    Examples
    --------
    A function typed at a prompt has no file to cache beside: it compiles
    in memory, with the warning.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     double = cached_njit()(lambda x: 2 * x)
    >>> double(3), "compiles in memory" in str(seen[0].message)
    (6, True)
    """
    import numba

    def decorate(function):
        try:
            dispatcher = numba.njit(cache=True, **JIT_OPTIONS,
                                    **options)(function)
        except RuntimeError as exc:  # "cannot cache ...: no locator ..."
            _warn_no_cache(exc)
            return numba.njit(**JIT_OPTIONS, **options)(function)
        dispatcher._cache = _SafeCache(dispatcher._cache)
        return dispatcher
    return decorate


_WARNED = []


def _warn_no_cache(exc):
    if not _WARNED:
        _WARNED.append(True)
        warnings.warn(f"rmsopt compiles in memory: numba cannot cache here "
                      f"({exc}); set NUMBA_CACHE_DIR to a writable folder "
                      "to keep the compiled code between processes",
                      RuntimeWarning, stacklevel=3)


class _SafeCache:
    """numba's cache of one function, minus its failures: a file that does
    not load is dropped (the index rewritten empty, so that the new build
    overwrites it), a build that does not save is kept in memory."""

    def __init__(self, cache):
        self._cache = cache

    def __getattr__(self, name):
        return getattr(self._cache, name)

    def load_overload(self, sig, target_context):
        try:
            return self._cache.load_overload(sig, target_context)
        except Exception:  # EOFError, UnpicklingError, ...: corrupt files
            try:
                self._cache.flush()
            except Exception:
                pass
            return None

    def save_overload(self, sig, cres):
        try:
            self._cache.save_overload(sig, cres)
        except Exception:  # a full disk, a vanished folder: memory only
            pass

# Status codes returned by the kernels (rmsopt._result maps them to scipy's).
STEPPED = 0          # the gradient was finite and above gtol: one step taken
CONVERGED = 1        # largest (projected) gradient component <= gtol
NONFINITE_GRAD = 2   # the gradient holds NaN or inf: no step taken
OVERFLOW = 3         # the step overflowed; those elements kept their values
BAD_GRAD_SHAPE = 4   # a jitted jac returned a gradient of the wrong length
LARGE_X = 5          # |x| passed max/4 after an unguarded step (x finite)
USER_RAISED = 6      # the user's jitted function raised in the compiled loop

# Layout of ``scalars`` (float64): the user's hyperparameters (rounded to the
# working dtype in the kernels) and the gradient bound of the overflow proof;
# then what the kernels update (counts exact in float64 up to 2**53): the
# step count t, this run's iterations, the gradient calls made by the
# compiled loop, and fun's value there. GTOL < 0 turns the convergence test
# off (mini-batches: a batch gradient is never convergence).
(LR, ALPHA, ONE_MINUS_ALPHA, EPS, MOMENTUM, WEIGHT_DECAY, GTOL, GSAFE,
 T, NIT, NGRAD, FVAL) = range(12)
# The learning-rate schedule (rmsopt._schedules): its six parameters, and
# the state of reduce-on-plateau (current rate, best loss, steps without
# improvement, cooldown left, and whether the kernels observe the loss after
# every step: 0 with mini-batches, where the run observes epoch losses).
SCHED = 12  # SCHED .. SCHED + 5
LR_NOW, BEST, NUM_BAD, COOL, PLATEAU_EACH = range(18, 23)
# Mini-batches (rmsopt._batches): the next batch's index within the epoch,
# the batch size, the number of samples, and the sum of this epoch's
# mini-batch losses.
BATCH_POS, BATCH_SIZE, N_SAMPLES, LOSS_SUM = range(23, 27)
N_SCALARS = 27


class Flags(NamedTuple):
    """Which variant of the rule a kernel is compiled for (constants)."""

    maximize: bool
    centered: bool
    use_momentum: bool
    nesterov: bool
    eps_in_sqrt: bool
    lr_in_momentum: bool
    decoupled_weight_decay: bool
    bias_correction: bool
    bounded: bool
    guarded: bool = False  # the overflow proof failed (overflow_guard)
    schedule: int = 0  # the learning-rate schedule's kind (_schedules)


def work_rows(flags):
    """Row of each array in ``work``: only the rows the options need.

    Returns a dict with ``x`` and ``v`` always, ``m`` when centered, ``b``
    with momentum, ``lo`` and ``hi`` with bounds.

    Examples
    --------
    >>> flags = Flags(False, True, False, False, False, False, False, False,
    ...               True)
    >>> work_rows(flags)
    {'x': 0, 'v': 1, 'm': 2, 'lo': 3, 'hi': 4}
    """
    names = ["x", "v"]
    if flags.centered:
        names.append("m")
    if flags.use_momentum:
        names.append("b")
    if flags.bounded:
        names += ["lo", "hi"]
    return {name: row for row, name in enumerate(names)}


# The names of the state rows in ``res.state`` (PyTorch's).
STATE_NAMES = {"v": "square_avg", "m": "grad_avg", "b": "momentum_buffer"}


def overflow_guard(settings, dtype, x_absmax, state):
    r"""``(gsafe, guarded)``: the bound and the verdict of the overflow proof.

    With every gradient component (as the rule follows it) at most
    ``gsafe``, the mean square, the mean gradient and their bias-corrected
    forms stay below max/4. The largest move per step is then

    .. math:: \gamma \, g_\text{safe} / d_\text{min} \cdot 2 / (1 - \mu)

    with :math:`d_\text{min}` the smallest denominator (:math:`\epsilon` or
    :math:`\sqrt\epsilon`); if it, the momentum buffer's bound and the
    starting state are below max/4 too, and ``|x| <= max/4``, no new value
    can overflow: the update needs no per-element guard (with decoupled
    weight decay :math:`\lambda`, also :math:`\lambda \le 4`, so that
    :math:`\lambda x` stays finite, and :math:`\gamma\lambda \le 1`).
    ``guarded`` says the hyperparameters (as rounded to the dtype: an
    ``eps`` that rounds to 0 bounds nothing), the state (a dict of arrays
    or of their largest magnitudes, by the names of ``res.state``) or
    ``x_absmax`` (the largest ``|x0|``) break that proof.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> s = SimpleNamespace(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0,
    ...                     weight_decay=0.0, initial_scale=0.0,
    ...                     flags=SimpleNamespace(
    ...                         bias_correction=False, eps_in_sqrt=False,
    ...                         decoupled_weight_decay=False))
    >>> overflow_guard(s, np.float64, 1.0, None)[1]
    False
    """
    big = float(np.finfo(dtype).max)
    quarter = big / 4
    real = np.dtype(dtype).type
    s = settings
    flags = s.flags
    gsafe = math.sqrt(quarter)
    if flags.bias_correction:
        gsafe *= 1.0 - s.alpha
    # the hyperparameters as the kernels see them, rounded to the dtype
    # (past its largest value: inf, without NumPy's overflow warning)
    lr, eps, weight_decay, initial_scale = (
        math.copysign(math.inf, value) if abs(value) > big
        else float(real(value)) for value in (
            s.lr, s.eps, s.weight_decay, s.initial_scale))
    den_min = math.sqrt(eps) if flags.eps_in_sqrt else eps
    if not (den_min > 0 and math.isfinite(lr)
            and math.isfinite(weight_decay)):
        return gsafe, True  # no step size is bounded
    growth = 2.0 / (1.0 - s.momentum)
    bounds = (lr * gsafe,
              gsafe / den_min * growth,
              lr * gsafe / den_min * growth,
              initial_scale if state is None else 0.0)
    safe = (all(bound <= quarter for bound in bounds)
            and lr * weight_decay <= 1.0
            and initial_scale <= gsafe * gsafe)
    if flags.decoupled_weight_decay:
        # Keras' x - (x * weight_decay) * lr: the product stays finite for
        # |x| <= max/4 only with weight_decay <= 4
        safe = safe and weight_decay <= 4.0
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


def dtype_name(dtype):
    """``dtype.name`` ('float32', 'float64'), which numpy builds anew at
    every access (about 7 us: a cost per call of the drivers)."""
    return _DTYPE_NAMES.get(dtype) or dtype.name


_DTYPE_NAMES = {np.dtype(np.float32): "float32",
                np.dtype(np.float64): "float64"}
