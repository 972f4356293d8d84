"""The objective: ``fun``/``jac``/``args`` turned into value and gradient.

Owns the jac forms (callable, ``True``, ``'2-point'``, ``'3-point'``, ``'cs'``,
``None``), ALL the evaluation counts, and the checks on what user code
returns, so that the runs never see a malformed gradient and never decide
what a call counts as.

Counting (as scipy's ``ScalarFunction`` does): ``nfev`` counts calls of
``fun``, finite-difference evaluations included; ``njev`` counts gradient
evaluations. With ``jac=True`` each call of ``fun`` gives both, and counts one
of each. A run that calls the gradient outside :meth:`Objective.grad` (the
python driver's loop, the compiled loop) tells the objective how many calls
it made (:meth:`Objective.record`, :meth:`Objective.counts`).

A gradient function whose second parameter is named ``out``,
``jac(x, out, *args)`` (or ``fun(x, out, *args) -> f`` with ``jac=True``),
writes the gradient into rmsopt's buffer instead of returning a new array:
no allocation per iteration. The name is the signal, as scipy recognises a
new-style callback by its parameter ``intermediate_result``.

Where the arrays live is a :class:`Memory`: host NumPy arrays here
(:data:`HOST`); :mod:`rmsopt._device` gives the device's.
"""

import inspect
import weakref
from typing import Callable, NamedTuple

import numpy as np

FD_METHODS = ("2-point", "3-point", "cs")

# scipy's absolute step for jac=None in BFGS and CG: sqrt(float64 eps).
_ABSOLUTE_STEP = np.sqrt(np.finfo(np.float64).eps)


def scalar(value, allow_complex=False):
    """The objective's value as a Python scalar, or a clear error."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # e.g. a ragged sequence
        raise ValueError("The user-provided objective function must return "
                         "a scalar value.") from exc
    if arr.size != 1 or arr.dtype.kind not in "biufc":
        raise ValueError("The user-provided objective function must return "
                         f"a scalar value, got {type(value).__name__} of "
                         f"shape {arr.shape}.")
    if arr.dtype.kind == "c" and not allow_complex:
        raise TypeError("The user-provided objective function must return a "
                        f"real value, got {arr.dtype}.")
    return arr.reshape(()).item()


def writes_into_out(func):
    """True when ``func``'s second parameter is named ``out``.

    Inspecting a signature costs about 30 us, more than a short run: the
    answer is kept per function, weakly (it goes with the function)."""
    try:
        return _WRITES_INTO_OUT[func]
    except (KeyError, TypeError):  # not known, or not weakly referable
        pass
    target = getattr(func, "py_func", func)  # a numba dispatcher's function
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        answer = False
    else:
        answer = (len(params) >= 2 and params[1].name == "out"
                  and params[1].kind in (params[1].POSITIONAL_ONLY,
                                         params[1].POSITIONAL_OR_KEYWORD))
    try:
        _WRITES_INTO_OUT[func] = answer
    except TypeError:
        pass
    return answer


# func -> writes_into_out(func)
_WRITES_INTO_OUT = weakref.WeakKeyDictionary()


def jac_mode(jac):
    """Normalise the ``jac`` argument; any other value is an error."""
    if callable(jac):
        return "callable"
    if jac is True:
        return "value_and_grad"
    if jac is None or jac is False:
        return "absolute"
    if isinstance(jac, str) and jac in FD_METHODS:
        return jac
    raise ValueError(f"jac must be a callable, True, None, or one of "
                     f"{FD_METHODS}; got {jac!r}")


def split_pair(out):
    """``fun``'s ``(value, gradient)`` with ``jac=True``, or a clear error."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("jac=True requires fun to return a pair "
                        f"(value, gradient), got {type(out).__name__}")
    return out


def _host_gradient(g, n, dtype, source):
    """``g`` as a contiguous ``(n,)`` NumPy array of ``dtype`` (a new one
    where it must be converted), and the dtype it came with."""
    if (type(g) is np.ndarray and g.dtype == dtype and g.shape == (n,)
            and g.flags.c_contiguous and g.flags.writeable):
        return g, g.dtype  # as it is: the common case, kept cheap
    try:
        arr = np.asarray(g)
    except Exception as exc:
        raise TypeError(f"The gradient must be an array of shape ({n},); "
                        f"got {type(g).__name__}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"The gradient must be real; got dtype {arr.dtype} "
                        f"from {source}")
    raw_dtype = arr.dtype
    arr = np.atleast_1d(arr)
    if arr.shape != (n,):
        raise ValueError(f"The gradient must have shape ({n},) like x0; got "
                         f"shape {arr.shape} from {source}")
    out = np.ascontiguousarray(arr, dtype=dtype)
    if not out.flags.writeable:
        out = out.copy()
    return out, raw_dtype


def _host_buffer(n, dtype):
    out = np.zeros(n, dtype)
    return out, out


class Memory(NamedTuple):
    """Where the objective's arrays live, and how to read what user code
    returns there."""

    buffer: Callable        # (n, dtype) -> (out, out as user code sees it)
    gradient: Callable      # (g, n, dtype, source) -> (array, g's dtype)
    to_float: Callable      # fun's value -> float
    check_value: Callable   # fail early on a value that is not a scalar


HOST = Memory(buffer=_host_buffer, gradient=_host_gradient,
              to_float=lambda value: float(scalar(value)),
              check_value=scalar)


class Objective:
    """Value and gradient of ``fun(x, *args)`` with counting and checks.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float``, or ``(float, array)`` when ``jac=True``.
    jac : callable, bool, str or None
        See :func:`rmsopt.minimize`.
    args : tuple
        Extra arguments of ``fun`` and ``jac``.
    n : int
        The number of parameters.
    dtype : numpy.dtype
        The parameters' dtype: gradients come back in it.
    lo, hi : ndarray or None
        Bounds the finite-difference points must respect.
    rel_step : float, array or None
        ``finite_diff_rel_step``.
    memory : Memory
        Where the arrays live (:data:`HOST` by default).

    Examples
    --------
    >>> import numpy as np
    >>> obj = Objective(lambda x: float(x @ x), None, (), 2, np.dtype("f8"))
    >>> g = obj.grad(np.array([1.0, 2.0]))       # forward differences
    >>> bool(np.allclose(g, [2.0, 4.0], atol=1e-6)), obj.counts()
    (True, (3, 1))
    """

    def __init__(self, fun, jac, args, n, dtype, lo=None, hi=None,
                 rel_step=None, memory=HOST):
        if not callable(fun):
            raise TypeError(f"fun must be callable, got {fun!r}")
        self.mode = jac_mode(jac)
        self.fun = fun
        self.jac = jac if self.mode == "callable" else None
        self.args = args
        self.n = n
        self.dtype = np.dtype(dtype)
        self.lo, self.hi = lo, hi
        self.rel_step = rel_step
        self.memory = memory
        self.nfev = 0
        self.njev = 0
        # With jac=True every gradient call gives (and counts) the value.
        self.gives_value = self.mode == "value_and_grad"
        gradient_function = {"callable": jac, "value_and_grad": fun}.get(
            self.mode)
        self.inplace = (gradient_function is not None
                        and writes_into_out(gradient_function))
        # The buffer an in-place gradient function writes into, and the
        # same memory as user code sees it (on a device: x0's kind).
        self.out, self.out_view = (memory.buffer(n, self.dtype)
                                   if self.inplace else (None, None))
        # What fun returned at the point of the last gradient, when that
        # gradient gave it for free (jac=True, 2-point differences);
        # converted to float only when needed (value_at_grad).
        self.raw_value = None
        # dtype of the last gradient that needed converting (the nopython
        # driver learns from it whether to cast in compiled code)
        self.raw_grad_dtype = self.dtype
        self._gradient = self.loop_gradient()

    # -- counting -----------------------------------------------------------

    def record(self, calls):
        """Count ``calls`` gradient evaluations made outside :meth:`grad`."""
        self.njev += calls
        if self.gives_value:
            self.nfev += calls

    def counts(self, pending=0):
        """``(nfev, njev)``, with ``pending`` gradient calls not recorded yet
        (the compiled loop's, kept in its counter until the run ends)."""
        return (self.nfev + (pending if self.gives_value else 0),
                self.njev + pending)

    # -- values -------------------------------------------------------------

    @property
    def value_at_grad(self):
        """fun at the point of the last gradient, if that call gave it."""
        if self.raw_value is None:
            return None
        return self.memory.to_float(self.raw_value)

    def value(self, x):
        """``fun(x)``, counted, as a Python float. The run passes a read-only
        view of its iterate (a copy would cost a pass over a large x)."""
        self.nfev += 1
        if not self.gives_value:
            out = self.fun(x, *self.args)
        elif self.inplace:  # rewrites the gradient buffer, at the same x
            out = self.fun(x, self.out_view, *self.args)
        else:
            out = split_pair(self.fun(x, *self.args))[0]
        return self.memory.to_float(out)

    # -- gradients ----------------------------------------------------------

    def grad(self, x, args=None):
        """The gradient at ``x`` (on ``args``, the objective's own by
        default: mini-batches pass a batch's), counted and checked: a
        C-contiguous ``(n,)`` array of x's dtype, which the compiled step's
        entry point trusts."""
        gradient = self._gradient if args is None else \
            self.loop_gradient(args)
        self.record(1)  # counted when made, as scipy counts
        g = gradient(x)
        if self.gives_value:
            self.memory.check_value(self.raw_value)  # fail now, not at the end
        if self.inplace and g is self.out:
            return g
        return self.check_gradient(g)

    def loop_gradient(self, args=None):
        """``gradient(x)`` on ``args`` (the objective's own by default) for a
        run's loop: it is the user's own function where nothing needs
        wrapping, returns the gradient without checking it (the loop checks
        type, dtype, shape and contiguity inline, with
        :meth:`check_gradient` as the slow path) and counts nothing: the
        loop counts its calls and :meth:`record` s them."""
        mode, out, view = self.mode, self.out, self.out_view
        args = self.args if args is None else args
        if mode == "callable":
            jac = self.jac
            if not self.inplace:
                if not args:
                    return jac
                return lambda x: jac(x, *args)

            def gradient(x):
                jac(x, view, *args)
                return out
            return gradient
        if mode == "value_and_grad":
            fun = self.fun
            if self.inplace:
                def gradient(x):
                    self.raw_value = fun(x, view, *args)
                    return out
            else:
                def gradient(x):
                    pair = fun(x, *args)
                    if type(pair) is not tuple or len(pair) != 2:
                        pair = split_pair(pair)
                    self.raw_value, g = pair
                    return g
            return gradient

        def gradient(x):  # finite differences count their fun calls
            return self._finite_difference(x, args)
        return gradient

    def check_gradient(self, g):
        """``g`` as a contiguous ``(n,)`` array of x's dtype, or raise."""
        source = "jac" if self.mode == "callable" else "fun"
        g, self.raw_grad_dtype = self.memory.gradient(g, self.n, self.dtype,
                                                      source)
        return g

    def _finite_difference(self, x, args):
        """Forward, central or complex-step differences, as scipy's."""
        mode = self.mode
        x = np.array(x, dtype=self.dtype)
        sign = np.where(x >= 0, 1.0, -1.0)
        eps = np.finfo(self.dtype).eps
        power = {"2-point": 0.5, "absolute": 0.5, "3-point": 1 / 3,
                 "cs": 0.5}[mode]
        default = eps ** power * sign * np.maximum(1.0, np.abs(x))
        if mode == "absolute" and self.rel_step is None:
            h = np.full(self.n, _ABSOLUTE_STEP)
            # Too small a step to move x (large |x|, float32): fall back to
            # the relative default, as scipy does.
            h = np.where((x + h) - x == 0, default, h)
        elif self.rel_step is not None:
            h = self.rel_step * sign * np.maximum(1.0, np.abs(x))
        else:
            h = default
        lo = np.full(self.n, -np.inf) if self.lo is None else self.lo
        hi = np.full(self.n, np.inf) if self.hi is None else self.hi

        def f(point):
            self.nfev += 1
            return scalar(self.fun(point, *args), allow_complex=mode == "cs")

        g = np.empty(self.n, dtype=self.dtype)
        if mode == "cs":
            self.raw_value = None
            xc = x.astype(np.result_type(self.dtype, np.complex64))
            for i in range(self.n):
                point = xc.copy()
                point[i] += 1j * h[i]
                g[i] = np.imag(f(point)) / h[i]
            return g
        if mode in ("2-point", "absolute"):
            f0 = f(x.copy())
            self.raw_value = f0
            for i in range(self.n):
                step = h[i]
                if not lo[i] <= x[i] + step <= hi[i]:
                    step = -step  # the forward point leaves the box
                point = x.copy()
                point[i] = x[i] + step
                g[i] = (f(point) - f0) / (point[i] - x[i])
            return g
        # 3-point: central where the box allows, one-sided otherwise.
        self.raw_value = f0 = None
        for i in range(self.n):
            step = h[i]
            plus, minus = x.copy(), x.copy()
            if lo[i] <= x[i] - abs(step) and x[i] + abs(step) <= hi[i]:
                plus[i] = x[i] + step
                minus[i] = x[i] - step
                g[i] = (f(plus) - f(minus)) / (plus[i] - minus[i])
                continue
            if x[i] + 2 * abs(step) > hi[i]:
                step = -abs(step)
            else:
                step = abs(step)
            if f0 is None:
                f0 = f(x.copy())
            plus[i] = x[i] + step
            minus[i] = x[i] + 2 * step  # the farther point, same side
            d = plus[i] - x[i]
            g[i] = (-3 * f0 + 4 * f(plus) - f(minus)) / (2 * d)
        return g
