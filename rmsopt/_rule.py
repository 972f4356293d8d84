"""The RMSProp update of one element, and its gradient test: the single source
of truth for the math.

This module imports nothing from numba: `_cpu` compiles these functions with
``njit(inline="always")`` and `_cuda` with ``cuda.jit(device=True)``, so
every driver runs the same arithmetic in the same order and gives the same
bits, and no formula is written twice.

The boolean parameters (``maximize`` ... ``decoupled_weight_decay``,
``bounded``, ``centered`` ...) are compile-time constants in the compiled
kernels (closed over by a kernel factory), so the branches below cost
nothing at run time. The arithmetic uses only the arguments (no float
literals), so float32 inputs are computed in float32, as PyTorch does.
"""

import math


def rmsprop_element(x, g, v, m, b, lr, alpha, one_minus_alpha, eps, momentum, weight_decay,
                    bias_scale, maximize, centered, use_momentum, nesterov,
                    eps_in_sqrt, lr_in_momentum, decoupled_weight_decay):
    r"""One RMSProp update of a single parameter.

    .. math::

        g &\leftarrow \pm g + \lambda x \quad (\text{coupled weight decay})\\
        v &\leftarrow \alpha v + (1 - \alpha) g^2\\
        m &\leftarrow \alpha m + (1 - \alpha) g \quad (\text{centered})\\
        d &= \sqrt{\hat v - \hat m^2} + \epsilon
             \quad\text{or}\quad \sqrt{\hat v - \hat m^2 + \epsilon}\\
        b &\leftarrow \mu b + s, \quad s = g / d \ (\text{or } \gamma g / d)\\
        x &\leftarrow x - \gamma b \ (\text{or } x - b)

    where :math:`\hat v = v / c` and :math:`\hat m = m / c` with the bias
    correction :math:`c = 1 - \alpha^t` (``bias_scale``; 1 without it).

    Parameters
    ----------
    x, g, v, m, b : float
        Parameter, gradient, mean square, mean gradient (used when
        ``centered``) and momentum buffer (used when ``use_momentum``).
    lr, alpha, eps, momentum, weight_decay : float
        Hyperparameters with PyTorch's names.
    one_minus_alpha : float
        ``1 - alpha``, rounded once to the parameter's precision.
    bias_scale : float
        ``1 - alpha**t`` when bias correction is on, else 1.
    maximize, centered, use_momentum, nesterov, eps_in_sqrt, lr_in_momentum,
    decoupled_weight_decay : bool
        Which variant to run (see ``rmsopt.show_options()``).

    Returns
    -------
    x, v, m, b : float
        The updated parameter and state. ``m`` and ``b`` come back unchanged
        when their option is off.

    Examples
    --------
    PyTorch's first step from a zero average moves by about
    ``lr / sqrt(1 - alpha)`` whatever the gradient's size:

    >>> x, v, m, b = rmsprop_element(1.0, 1e-3, 0.0, 0.0, 0.0, 0.01, 0.99,
    ...     0.01, 1e-8, 0.0, 0.0, 1.0, False, False, False, False, False, False,
    ...     False)
    >>> round(1.0 - x, 4)
    0.1
    """
    if maximize:
        g = -g
    if weight_decay != 0.0:
        if decoupled_weight_decay:
            # Keras: shrink the parameter before the update, gradient untouched.
            x = x - x * weight_decay * lr
        else:
            # PyTorch: L2 penalty added to the (possibly negated) gradient.
            g = g + weight_decay * x
    v = alpha * v + one_minus_alpha * g * g
    if centered:
        m = alpha * m + one_minus_alpha * g
        var = v / bias_scale - (m / bias_scale) * (m / bias_scale)
        # v >= m*m in exact arithmetic; rounding can make it slightly
        # negative, where PyTorch would produce NaN. Clamp (documented).
        if var < 0.0:
            var = var - var  # +0 in the parameter's own dtype
    else:
        var = v / bias_scale
    if eps_in_sqrt:
        den = math.sqrt(var + eps)
    else:
        den = math.sqrt(var) + eps
    if use_momentum:
        if lr_in_momentum:
            s = lr * g / den
            b = momentum * b + s
            if nesterov:
                x = x - (s + momentum * b)
            else:
                x = x - b
        else:
            s = g / den
            b = momentum * b + s
            if nesterov:
                x = x - lr * (s + momentum * b)
            else:
                x = x - lr * b
    else:
        x = x - lr * g / den
    return x, v, m, b


def clip(x, lo, hi):
    """``x`` projected onto ``[lo, hi]``: ``min(max(x, lo), hi)``."""
    return min(max(x, lo), hi)


def gradient_test(x, g, lo, hi, weight_decay, gsafe, gtol, maximize,
                  decoupled_weight_decay, bounded):
    r"""Test one gradient component before a step: ``(bad, above)``.

    The component tested is the one the rule follows,

    .. math::

        \tilde g = \pm g + \lambda x \quad (\text{coupled weight decay}),

    projected onto the box with bounds, as L-BFGS-B does:
    :math:`P(x - \tilde g) - x`.

    Returns
    -------
    bad : bool
        :math:`\tilde g` is NaN, inf or above ``gsafe`` (the bound of the
        overflow proof, :func:`rmsopt._layout.overflow_guard`): no step may
        be taken.
    above : bool
        The (projected) component is above ``gtol``: not converged.

    Examples
    --------
    >>> gradient_test(1.0, 2e-6, 0.0, 0.0, 0.0, 1e150, 1e-5, False, False,
    ...               False)
    (False, False)
    >>> gradient_test(1.0, float("nan"), 0.0, 0.0, 0.0, 1e150, 1e-5, False,
    ...               False, False)
    (True, False)

    At an upper bound a gradient that pushes outwards is projected away:

    >>> gradient_test(1.0, -3.0, 0.0, 1.0, 0.0, 1e150, 1e-5, False, False,
    ...               True)
    (False, False)
    """
    if maximize:
        g = -g
    if weight_decay != 0 and not decoupled_weight_decay:
        g = g + weight_decay * x
    bad = not abs(g) <= gsafe  # NaN included
    if bounded:
        # clip(x - g, lo, hi) - x, spelled out: the compiled copies of
        # these functions cannot call each other by their Python names
        g = min(max(x - g, lo), hi) - x
    return bad, abs(g) > gtol


def fits(x, v, m, b, big, centered, use_momentum):
    """Whether the new values of one element are all finite and at most
    ``big`` in magnitude: the guarded update keeps the old values where
    not. ``&`` rather than ``and``: no branch, so the CPU loop stays
    vectorised (masked stores).

    Examples
    --------
    >>> fits(1.0, float("inf"), 0.0, 0.0, 1e308, False, False)
    False
    """
    ok = (abs(x) <= big) & (v <= big)
    if centered:
        ok = ok & (abs(m) <= big)
    if use_momentum:
        ok = ok & (abs(b) <= big)
    return ok
