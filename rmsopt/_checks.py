"""Checks of what the user hands to a run: x0, bounds, state, callback.

Every run (on the host or on the device) calls these before any compiled
code: kernels trust what leaves this module. A device array is checked from
its metadata (shape, dtype, strides) so that nothing is read on the device.
"""

import inspect

import numpy as np
from scipy.optimize import Bounds, OptimizeResult

from ._layout import STATE_NAMES


def check_layout(shape, dtype):
    """``x0``'s dtype and shape as rmsopt computes them: ``(n, dtype)``.

    Integers become float64; float32 and float64 stay; anything else is a
    ``TypeError`` that says what to pass. A 0-d ``x0`` is one parameter.
    """
    dtype = np.dtype(dtype)
    kind = dtype.kind
    if kind == "c":
        raise TypeError(f"x0 must be real; got dtype {dtype}. Complex "
                        "parameters are not supported: optimise the real "
                        "and imaginary parts as separate variables.")
    if kind not in "iuf":
        raise TypeError(f"x0 must be an array of real numbers; got dtype "
                        f"{dtype}")
    if kind == "f" and dtype not in (np.float32, np.float64):
        raise TypeError(f"x0 has dtype {dtype}; rmsopt computes in float32 "
                        "or float64: convert x0 to one of them")
    if len(shape) > 1:
        raise ValueError("'x0' must only have one dimension.")
    n = shape[0] if shape else 1
    if n == 0:
        raise ValueError("x0 must not be empty")
    return n, (np.dtype(np.float64) if kind in "iu" else dtype)


def check_x0(x0):
    """A host ``x0`` as a 1-D float32/float64 array (not copied: the run
    copies it once, into its work array), and its largest absolute value."""
    try:
        arr = np.asarray(x0)
    except Exception as exc:
        raise TypeError("x0 must be an array of real numbers") from exc
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"x0 must be an array of real numbers; got dtype "
                        f"{arr.dtype}")
    _, dtype = check_layout(arr.shape, arr.dtype)
    arr = np.atleast_1d(arr).astype(dtype, copy=False)
    # Two reductions, no temporary array (NaN propagates through both).
    absmax = max(float(arr.max()), -float(arr.min()))
    if not np.isfinite(absmax):
        bad = np.flatnonzero(~np.isfinite(arr))[0]
        raise ValueError(f"x0 must be finite; found {arr[bad]} at index "
                         f"{bad}")
    return arr, absmax


def check_bounds(bounds, n, dtype):
    """Bounds as arrays ``(lo, hi)`` of ``dtype``, or ``(None, None)`` when
    there are none (or all are infinite)."""
    if bounds is None:
        return None, None
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
    return np.array(lb, dtype=dtype), np.array(ub, dtype=dtype)


CLIPPED = "x0 lies outside the bounds; it was clipped into them"


def check_state(state, rows):
    """``options['state']`` of a previous result: ``(step, arrays)``.

    ``arrays`` maps each state row this run uses (``'v'``, ``'m'``, ``'b'``
    of ``rows``) to the previous run's array, or None where that run did
    not have it (e.g. momentum switched on: start from zero). The arrays'
    shapes, dtypes and values are checked where they live, by the run,
    with :func:`check_state_array`. ``state=None`` is a fresh start:
    ``(0, None)``.
    """
    if state is None:
        return 0, None
    if not isinstance(state, dict) or not {"step", "square_avg"} <= set(state):
        raise TypeError("options['state'] must be the `state` of a previous "
                        "rmsopt result (a dict with 'step' and 'square_avg')")
    step = state["step"]
    if isinstance(step, (bool, np.bool_)) or not isinstance(
            step, (int, np.integer)) or step < 0:
        raise ValueError(f"state['step'] must be a non-negative integer, got "
                         f"{step!r}")
    arrays = {row: state.get(name) for row, name in STATE_NAMES.items()
              if row in rows}
    return int(step), arrays


def check_state_array(row, shape, dtype, contiguous, n, want, device=False):
    """An error unless a state array has x0's shape and dtype (and, on the
    device, is contiguous)."""
    if shape != (n,) or dtype != want or not contiguous:
        where = "contiguous " if device else ""
        raise ValueError(f"state[{STATE_NAMES[row]!r}] must be a {where}"
                         f"{want} array of shape ({n},) like x0; got "
                         f"{dtype} {shape}")


def state_error(row):
    """The error for a state array that is not finite."""
    return ValueError(f"state[{STATE_NAMES[row]!r}] must be finite")


def callback_style(callback):
    """None, ``'new'`` (``callback(intermediate_result)``) or ``'legacy'``
    (``callback(xk)``), as scipy tells them apart."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    try:
        params = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        return "legacy"
    return "new" if params == {"intermediate_result"} else "legacy"


def notifier(callback):
    """None, or ``notify(copy_x, value, nit) -> stop`` that calls the
    callback in its style: ``copy_x()`` gives a copy of the current x and
    ``value()`` fun there (called only for a new-style callback); True when
    the callback raised ``StopIteration``."""
    style = callback_style(callback)
    if style is None:
        return None

    def notify(copy_x, value, nit):
        try:
            if style == "new":
                callback(intermediate_result=OptimizeResult(
                    x=copy_x(), fun=value(), nit=nit))
            else:
                callback(copy_x())
        except StopIteration:
            return True
        return False
    return notify
