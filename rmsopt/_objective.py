"""The objective: ``fun``/``jac``/``args`` turned into value and gradient.

Owns the jac forms (callable, ``True``, ``'2-point'``, ``'3-point'``, ``'cs'``,
``None``), the evaluation counts, and the checks on what user code returns, so
that the drivers never count and never see a malformed gradient.

Counting (as scipy's ``ScalarFunction`` does): ``nfev`` counts calls of
``fun``, finite-difference evaluations included; ``njev`` counts gradient
evaluations. With ``jac=True`` each call of ``fun`` gives both, and counts one
of each.

A gradient function whose second parameter is named ``out``,
``jac(x, out, *args)`` (or ``fun(x, out, *args) -> f`` with ``jac=True``),
writes the gradient into rmsopt's buffer instead of returning a new array:
no allocation per iteration. The name is the signal, as scipy recognises a
new-style callback by its parameter ``intermediate_result``.
"""

import inspect

import numpy as np

FD_METHODS = ("2-point", "3-point", "cs")

# scipy's absolute step for jac=None in BFGS and CG: sqrt(float64 eps).
_ABSOLUTE_STEP = np.sqrt(np.finfo(np.float64).eps)


def _scalar(value, allow_complex=False):
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
    """True when ``func``'s second parameter is named ``out``."""
    target = getattr(func, "py_func", func)  # a numba dispatcher's function
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return False
    return (len(params) >= 2 and params[1].name == "out"
            and params[1].kind in (params[1].POSITIONAL_ONLY,
                                   params[1].POSITIONAL_OR_KEYWORD))


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


class Objective:
    """Value and gradient of ``fun(x, *args)`` with counting and checks.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float``, or ``(float, array)`` when ``jac=True``.
    x0 : ndarray
        The validated starting point; fixes the size and dtype.
    args : tuple
        Extra arguments of ``fun`` and ``jac``.
    jac : callable, bool, str or None
        See :func:`rmsopt.minimize`.
    lo, hi : ndarray or None
        Bounds the finite-difference points must respect.
    rel_step : float, array or None
        ``finite_diff_rel_step``.
    """

    def __init__(self, fun, x0, args, jac, lo=None, hi=None, rel_step=None):
        if not callable(fun):
            raise TypeError(f"fun must be callable, got {fun!r}")
        self.mode = jac_mode(jac)
        self.fun = fun
        self.jac = jac if self.mode == "callable" else None
        self.args = args
        self.n = x0.shape[0]
        self.dtype = x0.dtype
        self.lo, self.hi = lo, hi
        self.rel_step = rel_step
        self.nfev = 0
        self.njev = 0
        gradient_function = {"callable": jac, "value_and_grad": fun}.get(
            self.mode)
        self.inplace = (gradient_function is not None
                        and writes_into_out(gradient_function))
        # The buffer an in-place gradient function writes into.
        self.out = np.zeros(self.n, self.dtype) if self.inplace else None
        # What fun returned at the point of the last gradient, when that
        # gradient gave it for free (jac=True, 2-point differences);
        # converted to float only when needed (value_at_grad).
        self.raw_value = None
        # dtype of the last gradient that needed converting (the nopython
        # driver learns from it whether to cast in compiled code)
        self.raw_grad_dtype = x0.dtype

    @property
    def value_at_grad(self):
        """fun at the point of the last gradient, if that call gave it."""
        if self.raw_value is None:
            return None
        return float(_scalar(self.raw_value))

    # -- values -----------------------------------------------------------

    def value(self, x):
        """``fun(x)``, counted, as a Python float. ``fun`` gets a read-only
        view (a copy would cost a pass over a large x)."""
        self.nfev += 1
        view = x.view()
        view.flags.writeable = False
        out = self.fun(view, *self.args)
        if self.mode == "value_and_grad":
            out = self._split(out)[0]
        return float(_scalar(out))

    def _split(self, out):
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError("jac=True requires fun to return a pair "
                            f"(value, gradient), got {type(out).__name__}")
        return out

    # -- gradients --------------------------------------------------------

    def grad(self, x):
        """The gradient at ``x`` as an ``(n,)`` array of x's dtype, checked.

        ``x`` is handed to user code as it is (the drivers pass a read-only
        view of their iterate). The result is always a C-contiguous ``(n,)``
        ndarray of x's dtype: the python driver calls the compiled step's
        entry point directly, which trusts that.
        """
        mode, args = self.mode, self.args
        if mode == "callable":
            if self.inplace:
                self.jac(x, self.out, *args)
                g = self.out
            else:
                g = self.jac(x, *args)
            self.njev += 1
        elif mode == "value_and_grad":
            if self.inplace:
                f = self.fun(x, self.out, *args)
                g = self.out
            else:
                f, g = self._split(self.fun(x, *args))
            self.nfev += 1
            self.njev += 1
            _scalar(f)  # fail now, not at the end, if it is not a scalar
            self.raw_value = f
        else:
            g = self._finite_difference(x)
            self.njev += 1
        if (type(g) is not np.ndarray or g.dtype is not self.dtype
                or g.shape != (self.n,) or not g.flags.c_contiguous):
            g = self.check_gradient(g)
        return g

    def loop_gradient(self):
        """The gradient function for the driver's loop, and what it counts.

        Returns ``(gradient, counts_value)``: ``gradient(x)`` returns the
        gradient (not yet checked: the driver checks type, dtype, shape and
        contiguity inline, with :meth:`check_gradient` as the slow path) and
        does no counting; the driver adds one ``njev`` per call, and one
        ``nfev`` too when ``counts_value``. It is the user's own function
        where nothing needs wrapping.
        """
        mode, args, out = self.mode, self.args, self.out
        if mode == "callable":
            jac = self.jac
            if not self.inplace:
                if not args:
                    return jac, False
                return (lambda x: jac(x, *args)), False

            def gradient(x):
                jac(x, out, *args)
                return out
            return gradient, False
        if mode == "value_and_grad":
            fun, split = self.fun, self._split
            if self.inplace:
                def gradient(x):
                    self.raw_value = fun(x, out, *args)
                    return out
            else:
                def gradient(x):
                    pair = fun(x, *args)
                    if type(pair) is not tuple or len(pair) != 2:
                        pair = split(pair)
                    self.raw_value, g = pair
                    return g
            return gradient, True

        def gradient(x):  # finite differences: counted inside
            self.njev -= 1  # grad counts it; the driver will count it too
            return self.grad(x)
        return gradient, False

    def check_gradient(self, g):
        """Convert ``g`` to a contiguous ``(n,)`` array of x's dtype, or raise."""
        try:
            arr = np.asarray(g)
        except Exception as exc:
            raise TypeError(f"The gradient must be an array of shape "
                            f"({self.n},); got {type(g).__name__}") from exc
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"The gradient must be real; got dtype "
                            f"{arr.dtype} from jac")
        self.raw_grad_dtype = arr.dtype
        arr = np.atleast_1d(arr)
        if arr.shape != (self.n,):
            raise ValueError(f"The gradient must have shape ({self.n},) like "
                             f"x0; got shape {arr.shape} from jac")
        out = np.ascontiguousarray(arr, dtype=self.dtype)
        if not out.flags.writeable:
            out = out.copy()
        return out

    def _finite_difference(self, x):
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
            return _scalar(self.fun(point, *self.args),
                           allow_complex=mode == "cs")

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
