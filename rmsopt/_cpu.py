"""Compiled CPU kernels: the fused step and the whole-loop driver.

Kernels are built by factories keyed on the option flags and the dtype. Both
are closure constants, so numba folds every branch of the rule away and caches
one specialisation per configuration on disk (numba keys its cache on closure
values). Nothing compiles at import: numba compiles on first call.

Kernels never raise: they return status codes, and the Python side turns them
into results or errors. Shapes and dtypes are checked in Python first, because
bounds checking is off here.
"""

from functools import lru_cache

import numba
import numpy as np

from ._rule import rmsprop_element

# Status codes returned by the kernels.
STEPPED = 0          # the gradient was finite and above gtol: one step taken
CONVERGED = 1        # largest (projected) gradient component <= gtol
NONFINITE_GRAD = 2   # the gradient holds NaN or inf: no step taken
OVERFLOW = 3         # the step overflowed; those elements kept their values
BAD_GRAD_SHAPE = 4   # a jitted jac returned a gradient of the wrong length

# error_model="numpy": the default "python" model adds a division check that
# blocks SIMD (3-8x slower, same bits). No fastmath: it changes the bits and
# compiles NaN checks away.
JIT_OPTIONS = dict(error_model="numpy", nogil=True)

_element = numba.njit(inline="always", **JIT_OPTIONS)(rmsprop_element)


@lru_cache(maxsize=None)
def make_step(flags, dtype_name):
    """Compile the fused RMSProp step for one configuration.

    Parameters
    ----------
    flags : rmsopt._options.Flags
        Which variant of the rule; constants in the compiled code.
    dtype_name : {'float32', 'float64'}
        Precision of the parameters, the gradient and the state.

    Returns
    -------
    gradient_status : numba dispatcher
        ``gradient_status(x, g, lo, hi, weight_decay, gtol) -> status``: the
        gradient check alone (``STEPPED`` means "not converged").
    step : numba dispatcher
        ``step(x, g, v, m, b, lo, hi, hyper, counters, gtol) -> status``.
        Checks the gradient (finite; largest projected component against
        ``gtol``), then updates ``x, v, m, b`` in place in one pass and adds
        one to ``counters[0]`` (the step count ``t``) and ``counters[1]``
        (the iterations of this run). ``hyper`` holds
        ``[lr, alpha, 1 - alpha, eps, momentum, weight_decay]`` in float64;
        each is rounded once to the working dtype (so is the bias correction
        ``1 - alpha**t``, computed in float64).
        ``m``, ``b``, ``lo``, ``hi`` may be empty when their option is off.
    """
    (maximize, centered, use_momentum, nesterov, eps_in_sqrt, lr_in_momentum,
     decoupled_weight_decay, bias_correction, bounded) = tuple(flags)
    real = np.dtype(dtype_name).type
    big = real(np.finfo(dtype_name).max)

    @numba.njit(cache=True, **JIT_OPTIONS)
    def gradient_status(x, g, lo, hi, weight_decay, gtol):
        # The gradient the rule follows: sign for maximize, coupled decay;
        # with bounds, L-BFGS-B's projected gradient clip(x - g) - x.
        gmax = 0.0
        for i in range(x.shape[0]):
            gi = g[i]
            if not abs(gi) <= big:
                return NONFINITE_GRAD
            if maximize:
                gi = -gi
            if weight_decay != 0 and not decoupled_weight_decay:
                gi = gi + weight_decay * x[i]
            if bounded:
                gi = min(max(x[i] - gi, lo[i]), hi[i]) - x[i]
            a = abs(gi)
            if a > gmax:
                gmax = a
        return CONVERGED if gmax <= gtol else STEPPED

    @numba.njit(cache=True, **JIT_OPTIONS)
    def update(x, g, v, m, b, lo, hi, hyper, t):
        # hyper is float64 (the user's values); each is rounded once to the
        # working precision, as PyTorch does with its Python scalars.
        lr = real(hyper[0])
        alpha = real(hyper[1])
        one_minus_alpha = real(hyper[2])
        eps = real(hyper[3])
        momentum = real(hyper[4])
        weight_decay = real(hyper[5])
        if bias_correction:
            bias_scale = real(1.0 - hyper[1] ** float(t))
        else:
            bias_scale = real(1.0)
        zero = real(0.0)
        bad = False
        for i in range(x.shape[0]):
            mi = m[i] if centered else zero
            bi = b[i] if use_momentum else zero
            xi, vi, mi, bi = _element(
                x[i], g[i], v[i], mi, bi, lr, alpha, one_minus_alpha, eps,
                momentum, weight_decay, bias_scale, maximize, centered,
                use_momentum, nesterov, eps_in_sqrt, lr_in_momentum,
                decoupled_weight_decay)
            # Keep an element's old values if any new one is not finite, so
            # that x never holds NaN or inf (a select: still vectorises).
            ok = abs(xi) <= big and vi <= big
            if centered:
                ok = ok and abs(mi) <= big
            if use_momentum:
                ok = ok and abs(bi) <= big
            if bounded:
                xi = min(max(xi, lo[i]), hi[i])
            x[i] = xi if ok else x[i]
            v[i] = vi if ok else v[i]
            if centered:
                m[i] = mi if ok else m[i]
            if use_momentum:
                b[i] = bi if ok else b[i]
            bad |= not ok
        return bad

    @numba.njit(cache=True, **JIT_OPTIONS)
    def step(x, g, v, m, b, lo, hi, hyper, counters, gtol):
        status = gradient_status(x, g, lo, hi, real(hyper[5]), gtol)
        if status != STEPPED:
            return status
        counters[0] += 1
        counters[1] += 1
        if update(x, g, v, m, b, lo, hi, hyper, counters[0]):
            return OVERFLOW
        return STEPPED

    return gradient_status, step


@lru_cache(maxsize=None)
def make_loop(flags, dtype_name, returns_value, cast_grad):
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

    Returns
    -------
    loop : numba dispatcher
        ``loop(grad_fn, x, g, v, m, b, lo, hi, hyper, counters, gtol, n_iter,
        fval, args) -> status``. Runs at most ``n_iter`` iterations, each a
        fused step at ``x`` followed by ``grad_fn(x, *args)``. Results go to
        the arrays passed in, never only to the return value, so that a
        Ctrl-C caught on return loses nothing: ``g`` holds the gradient at
        ``x``, ``fval[0]`` the value there (when ``returns_value``),
        ``counters = [t, iterations done, gradient calls]``.
        Not cached on disk: it is specialised on the user's functions.
    """
    step = make_step(flags, dtype_name)[1]

    @numba.njit(**JIT_OPTIONS)
    def loop(grad_fn, x, g, v, m, b, lo, hi, hyper, counters, gtol, n_iter,
             fval, args):
        n = x.shape[0]
        grad = g
        status = STEPPED
        for _ in range(n_iter):
            status = step(x, grad, v, m, b, lo, hi, hyper, counters, gtol)
            if status != STEPPED:
                break
            counters[2] += 1
            if returns_value:
                f, new = grad_fn(x, *args)
                fval[0] = f
            else:
                new = grad_fn(x, *args)
            if new.ndim != 1 or new.shape[0] != n:
                status = BAD_GRAD_SHAPE
                break
            if cast_grad:
                g[:] = new
            else:
                grad = new
        if not cast_grad and status != BAD_GRAD_SHAPE:
            g[:] = grad
        return status

    return loop
