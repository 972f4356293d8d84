"""Slow, readable plain-NumPy RMSProp used as the test oracle for ``rmsopt``.

This module is deliberately independent of the ``rmsopt`` package: it is
written only from the semantics of PyTorch ``torch.optim.RMSprop``, optax
``rmsprop``, Keras 3 ``RMSprop`` and TensorFlow 1 ``RMSPropOptimizer`` as
summarised in ``REFERENCE.md`` section 1.  There is no numba here: one Python
loop over the iterations, whole-array NumPy operations inside it.

Every option reproduces one library's choice; :data:`PRESETS` collects each
library's defaults.  Per element and per iteration the update is, in this
order (``t`` is the step count after incrementing, 1 on the first iteration):

.. math::

    g &\\leftarrow \\nabla f(x) \\quad (g \\leftarrow -g \\text{ if maximize}) \\\\
    x &\\leftarrow x - x\\,\\lambda\\,\\gamma \\quad \\text{(decoupled weight decay)}
      \\quad\\text{or}\\quad g \\leftarrow g + \\lambda x \\quad \\text{(coupled L2)} \\\\
    v &\\leftarrow \\alpha v + (1 - \\alpha) g^2 \\\\
    m &\\leftarrow \\alpha m + (1 - \\alpha) g \\quad \\text{(centered only)} \\\\
    \\hat v &= v / (1 - \\alpha^t), \\quad \\hat m = m / (1 - \\alpha^t)
      \\quad \\text{(bias correction only)} \\\\
    \\sigma^2 &= \\max(\\hat v - \\hat m^2, 0) \\text{ (centered) or } \\hat v \\\\
    d &= \\sqrt{\\sigma^2} + \\epsilon \\quad\\text{or}\\quad
      \\sqrt{\\sigma^2 + \\epsilon} \\text{ (eps\\_in\\_sqrt)} \\\\
    x &\\leftarrow x - \\gamma g / d \\quad \\text{(no momentum)}

With momentum :math:`\\mu > 0` and buffer :math:`b` (starts at 0):
``lr_in_momentum=False`` (PyTorch) uses :math:`s = g/d,\\ b \\leftarrow \\mu b + s,\\
x \\leftarrow x - \\gamma b` (Nesterov: :math:`x \\leftarrow x - \\gamma (s + \\mu b)`);
``lr_in_momentum=True`` (Keras, TF1, optax ``trace``) uses
:math:`s = \\gamma g/d,\\ b \\leftarrow \\mu b + s,\\ x \\leftarrow x - b`
(Nesterov, optax form: :math:`x \\leftarrow x - (s + \\mu b)`).
"""

import numpy as np

__all__ = ["OPTION_DEFAULTS", "PRESETS", "reference_rmsprop"]

#: Defaults of :func:`reference_rmsprop` (the PyTorch convention).
OPTION_DEFAULTS = {
    "lr": 1e-2,
    "alpha": 0.99,
    "eps": 1e-8,
    "momentum": 0.0,
    "centered": False,
    "weight_decay": 0.0,
    "maximize": False,
    "nesterov": False,
    "eps_in_sqrt": False,
    "initial_scale": 0.0,
    "lr_in_momentum": False,
    "decoupled_weight_decay": False,
    "bias_correction": False,
}

#: Per-library defaults (every option named), from REFERENCE.md section 1.
#: ``tf1`` and ``optax`` have no default learning rate upstream; 1e-3 is ours.
PRESETS = {
    # torch/optim/rmsprop.py: lr=1e-2, alpha=0.99, eps=1e-8 outside the sqrt,
    # square_avg = zeros, lr applied outside the momentum buffer, coupled L2.
    "pytorch": dict(OPTION_DEFAULTS),
    # keras/src/optimizers/rmsprop.py: lr=1e-3, rho=0.9, epsilon=1e-7 inside
    # the sqrt, velocity = zeros, lr inside the momentum buffer, decoupled
    # weight decay (theta -= theta * wd * lr, before the update step).
    "keras": dict(
        OPTION_DEFAULTS,
        lr=1e-3,
        alpha=0.9,
        eps=1e-7,
        eps_in_sqrt=True,
        initial_scale=0.0,
        lr_in_momentum=True,
        decoupled_weight_decay=True,
    ),
    # tensorflow/python/training/rmsprop.py: decay=0.9, epsilon=1e-10 inside
    # the sqrt, rms slot initialised to ONES, lr inside the momentum buffer.
    "tf1": dict(
        OPTION_DEFAULTS,
        lr=1e-3,
        alpha=0.9,
        eps=1e-10,
        eps_in_sqrt=True,
        initial_scale=1.0,
        lr_in_momentum=True,
        decoupled_weight_decay=False,
    ),
    # optax/_src/alias.py rmsprop: decay=0.9, eps=1e-8, eps_in_sqrt=True,
    # initial_scale=0, trace (momentum) after scale_by_learning_rate, weight
    # decay via add_decayed_weights (coupled), bias_correction=False.
    "optax": dict(
        OPTION_DEFAULTS,
        lr=1e-3,
        alpha=0.9,
        eps=1e-8,
        eps_in_sqrt=True,
        initial_scale=0.0,
        lr_in_momentum=True,
        decoupled_weight_decay=False,
        bias_correction=False,
    ),
}


def _state_array(state, key, shape, dtype):
    value = state.get(key)
    if value is None:
        raise ValueError(f"state[{key!r}] is required by the chosen options")
    arr = np.array(value, dtype=dtype, copy=True)
    if arr.shape != shape:
        raise ValueError(
            f"state[{key!r}] has shape {arr.shape}, expected {shape}"
        )
    return arr


def reference_rmsprop(
    grad,
    x0,
    n_iter,
    *,
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    momentum=0.0,
    centered=False,
    weight_decay=0.0,
    maximize=False,
    nesterov=False,
    eps_in_sqrt=False,
    initial_scale=0.0,
    lr_in_momentum=False,
    decoupled_weight_decay=False,
    bias_correction=False,
    state=None,
):
    """Run ``n_iter`` RMSProp iterations from ``x0`` and return the trajectory.

    One iteration, element-wise, in this order (``t`` = step count after
    incrementing, so ``t = 1`` on the first iteration)::

        g = grad(x);  g = -g if maximize
        if weight_decay != 0:
            x = x - x*weight_decay*lr      if decoupled_weight_decay  (Keras)
            g = g + weight_decay*x         otherwise                  (PyTorch L2)
        v = alpha*v + (1 - alpha)*g*g                  # v starts at initial_scale
        m = alpha*m + (1 - alpha)*g                    # centered only, m starts at 0
        v_hat, m_hat = v/(1 - alpha**t), m/(1 - alpha**t)  if bias_correction
                       v, m                                otherwise
        var = max(v_hat - m_hat**2, 0)  if centered  else v_hat
        den = sqrt(var + eps)  if eps_in_sqrt  else sqrt(var) + eps
        momentum == 0:          x = x - lr*g/den
        lr_in_momentum=False:   s = g/den;    b = momentum*b + s
                                x = x - lr*b           (nesterov: x - lr*(s + momentum*b))
        lr_in_momentum=True:    s = lr*g/den; b = momentum*b + s
                                x = x - b              (nesterov: x - (s + momentum*b))
        step += 1

    Parameters
    ----------
    grad : callable
        ``grad(x) -> array`` with the shape of ``x``.  It receives a copy of
        the current iterate; its result is copied and cast to the dtype of
        ``x0``.
    x0 : array_like
        Starting point.  Real floating dtypes are kept (float32 in, float32
        arithmetic throughout); integer and boolean inputs become float64.
    n_iter : int
        Number of iterations (>= 0).
    lr : float
        Learning rate :math:`\\gamma`.
    alpha : float
        Decay :math:`\\alpha` of the moving averages (PyTorch ``alpha``,
        optax/TF1 ``decay``, Keras ``rho``).
    eps : float
        :math:`\\epsilon` added to the denominator.
    momentum : float
        Momentum :math:`\\mu >= 0`; 0 disables the momentum buffer.
    centered : bool
        Divide by the estimated standard deviation ``sqrt(v_hat - m_hat**2)``
        instead of ``sqrt(v_hat)``.  The variance is clamped below at 0 (a
        deliberate deviation from PyTorch, which returns NaN when rounding
        makes it negative).
    weight_decay : float
        Weight decay :math:`\\lambda`; see ``decoupled_weight_decay``.
    maximize : bool
        Ascend instead of descend (the gradient is negated first, before
        weight decay, as in PyTorch).
    nesterov : bool
        Nesterov momentum in optax's form (``s + momentum*b`` with the updated
        buffer).  Requires ``momentum > 0``.
    eps_in_sqrt : bool
        ``sqrt(var + eps)`` (Keras, TF1, optax default) instead of
        ``sqrt(var) + eps`` (PyTorch).
    initial_scale : float
        Initial value of ``v`` (0: PyTorch/Keras/optax, 1: TF1).  Ignored when
        ``state`` is given.
    lr_in_momentum : bool
        Put the learning rate inside the momentum buffer (Keras, TF1, optax
        ``trace``) instead of applying it to the buffer (PyTorch).
    decoupled_weight_decay : bool
        Keras-style ``x -= x*weight_decay*lr`` instead of the PyTorch-style
        coupled L2 term ``g += weight_decay*x``.
    bias_correction : bool
        Apply optax-style bias correction of ``v`` and ``m`` by ``1 - alpha**t``.
    state : dict, optional
        A state returned by a previous call, to continue that run.  It is
        copied, never modified.

    Returns
    -------
    xs : ndarray, shape (n_iter + 1,) + x0.shape
        The iterates, ``xs[0]`` being ``x0`` (cast to the working dtype).
    state : dict
        ``{"step": int, "square_avg": ndarray, "grad_avg": ndarray or None,
        "momentum_buffer": ndarray or None}`` after the last iteration;
        ``grad_avg`` is None unless ``centered``, ``momentum_buffer`` is None
        when ``momentum == 0``.

    Raises
    ------
    ValueError
        If ``nesterov`` is requested without momentum, ``momentum < 0``,
        ``n_iter < 0``, or ``state`` / gradient shapes do not match ``x0``.
    TypeError
        If ``x0`` is complex or not numeric.

    See Also
    --------
    PRESETS : Per-library option sets (``pytorch``, ``keras``, ``tf1``, ``optax``).

    Notes
    -----
    All hyperparameters and ``1 - alpha`` (computed in Python double
    precision, as PyTorch does) are cast to the working dtype with
    ``dtype.type(...)`` before use so that NumPy never promotes float32 work
    to float64.  The arithmetic is written in the order above, e.g.
    ``(1 - alpha)*g*g`` evaluates as ``((1 - alpha)*g)*g``.  Floating-point
    exceptions in the update (overflow, invalid, ...) produce IEEE results
    silently, like compiled code; exceptions raised inside ``grad`` are not
    suppressed.

    Examples
    --------
    The Keras docstring example (loss ``theta**2 / 2``, lr 0.1, one step):

    >>> xs, state = reference_rmsprop(lambda x: x, [10.0], 1,
    ...                               **PRESETS["keras"] | {"lr": 0.1})
    >>> print(f"{xs[1, 0]:.6f}", state["step"])
    9.683772 1
    """
    if nesterov and momentum == 0:
        raise ValueError("nesterov=True requires momentum > 0")
    if momentum < 0:
        raise ValueError(f"momentum must be >= 0, got {momentum}")
    if isinstance(n_iter, bool) or int(n_iter) != n_iter or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    n_iter = int(n_iter)

    x = np.array(x0, copy=True)
    if x.dtype.kind in "biu":
        x = x.astype(np.float64)
    if x.dtype.kind != "f":
        raise TypeError(f"x0 must be real floating point, got dtype {x.dtype}")
    dtype = x.dtype
    T = dtype.type
    shape = x.shape

    # Hyperparameters in the working dtype (never float64 for float32 x0).
    lr_ = T(lr)
    alpha_ = T(alpha)
    one_minus_alpha = T(1 - alpha)
    eps_ = T(eps)
    mu = T(momentum)
    wd = T(weight_decay)
    zero = T(0)
    use_momentum = momentum != 0

    if state is None:
        step = 0
        v = np.full(shape, initial_scale, dtype=dtype)
        m = np.zeros(shape, dtype=dtype) if centered else None
        b = np.zeros(shape, dtype=dtype) if use_momentum else None
    else:
        step = int(state["step"])
        v = _state_array(state, "square_avg", shape, dtype)
        m = _state_array(state, "grad_avg", shape, dtype) if centered else None
        b = _state_array(state, "momentum_buffer", shape, dtype) if use_momentum else None

    xs = np.empty((n_iter + 1,) + shape, dtype=dtype)
    xs[0] = x

    for k in range(n_iter):
        # 1. gradient (copied, cast to the working dtype), maximize flip
        g = np.array(grad(x.copy()), dtype=dtype, copy=True)
        if g.shape != shape:
            raise ValueError(f"grad returned shape {g.shape}, expected {shape}")
        t = step + 1
        with np.errstate(all="ignore"):
            if maximize:
                g = -g
            # 2. weight decay
            if weight_decay != 0:
                if decoupled_weight_decay:
                    x = x - x * wd * lr_
                else:
                    g = g + wd * x
            # 3. second moment
            v = alpha_ * v + one_minus_alpha * g * g
            # 4. first moment (centered), bias correction, variance
            if bias_correction:
                # computed in double from the user's alpha, rounded once
                # (as 1 - alpha is): a convention, optax rounds differently
                bc = dtype.type(1.0 - float(alpha) ** t)
                v_hat = v / bc
            else:
                v_hat = v
            if centered:
                m = alpha_ * m + one_minus_alpha * g
                m_hat = m / bc if bias_correction else m
                var = np.maximum(v_hat - m_hat * m_hat, zero)
            else:
                var = v_hat
            # 5. denominator
            if eps_in_sqrt:
                den = np.sqrt(var + eps_)
            else:
                den = np.sqrt(var) + eps_
            # 6. parameter update
            if not use_momentum:
                x = x - lr_ * g / den
            elif not lr_in_momentum:
                s = g / den
                b = mu * b + s
                if nesterov:
                    x = x - lr_ * (s + mu * b)
                else:
                    x = x - lr_ * b
            else:
                s = lr_ * g / den
                b = mu * b + s
                if nesterov:
                    x = x - (s + mu * b)
                else:
                    x = x - b
        # 7. step count
        step = t
        xs[k + 1] = x

    out_state = {
        "step": step,
        "square_avg": v.copy(),
        "grad_avg": None if m is None else m.copy(),
        "momentum_buffer": None if b is None else b.copy(),
    }
    return xs, out_state
