r"""Learning-rate schedules: small immutable descriptions the kernels evaluate.

A schedule is a :class:`Schedule`: a kind code and six float parameters.
``options={"lr": rmsopt.schedules.cosine(0.1, t_max=1000)}`` hands it to
:func:`rmsopt.minimize`; the kind is a compile-time constant of the kernels
(so every other kind's branch folds away) and the parameters travel in the
kernels' ``scalars`` vector, so the built-in schedules run inside the
compiled driver. :func:`lr_at` and :func:`plateau_update` are plain scalar
functions, like the rule (:mod:`rmsopt._rule`): the kernels compile them,
and Python calls them as they are. ``lr`` may also be any Python callable ``lr(t) -> float``
of the step count; that runs the python driver.

``t`` counts the steps already taken: the first step uses ``lr(0)``, as
PyTorch's schedulers start, and a run continued from ``res.state`` resumes
the schedule where it stopped.
"""

import math
import numbers
from typing import NamedTuple

from ._docs import filled

CONSTANT, STEP, EXPONENTIAL, COSINE, INVERSE_TIME, WARMUP, PLATEAU = range(7)
_NAMES = ("constant", "step", "exponential", "cosine", "inverse_time",
          "linear_warmup", "reduce_on_plateau")
N_PARAMS = 6
_PARAMETERS = (("lr",), ("lr", "step_size", "gamma"), ("lr", "gamma"),
               ("lr", "t_max", "eta_min"),
               ("lr", "decay_rate", "decay_steps", "staircase"),
               ("lr", "warmup_steps", "start_factor"),
               ("lr", "factor", "patience", "threshold", "cooldown",
                "min_lr"))


class Schedule(NamedTuple):
    """A built-in learning-rate schedule: ``kind`` code and ``params``.

    Build one with the functions of :mod:`rmsopt.schedules`; calling it
    gives the learning rate of step ``t`` (for ``reduce_on_plateau``, the
    initial one: that schedule depends on the losses seen).
    """

    kind: int
    params: tuple

    def __call__(self, t):
        p = self.params
        return float(lr_at(self.kind, p[0], p[1], p[2], p[3], p[4], p[5],
                           float(t)))

    @property
    def name(self):
        """The constructor's name: ``'step'``, ``'cosine'``, ..."""
        return _NAMES[self.kind]

    def __repr__(self):
        names = _PARAMETERS[self.kind]
        items = ", ".join(f"{k}={v!r}" for k, v in zip(names, self.params))
        if self.kind in (STEP, EXPONENTIAL, COSINE, INVERSE_TIME) and \
                self.params[4] > 0:
            items += (f", warmup_steps={self.params[4]!r}, "
                      f"warmup_start={self.params[5]!r}")
        return f"rmsopt.schedules.{self.name}({items})"

    @property
    def peak(self):
        """The largest learning rate the schedule can give (inf if it
        grows without bound): the overflow proof of the kernels uses it."""
        lr, a, b = self.params[:3]
        if self.kind in (STEP, EXPONENTIAL):
            gamma = b if self.kind == STEP else a
            return lr if gamma <= 1.0 else math.inf
        if self.kind == COSINE:
            return max(lr, b)
        return lr


def _real(name, value, low=0.0, low_open=False, high=math.inf):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    bad = (not math.isfinite(value) or value > high
           or (value <= low if low_open else value < low))
    if bad:
        rel = ">" if low_open else ">="
        upper = "" if high == math.inf else f" and <= {high}"
        raise ValueError(f"{name} must be finite and {rel} {low}{upper}, "
                         f"got {value!r}")
    return value


def _steps(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return float(value)


def _make(kind, *params):
    return Schedule(kind, tuple(float(p) for p in params)
                    + (0.0,) * (N_PARAMS - len(params)))


# The warm-up parameters the decaying schedules share.
_warmup_doc = filled({"warmup": """\
warmup_steps : int, default 0
    First warm up linearly from ``warmup_start * lr`` to ``lr`` over
    this many steps (as ``linear_warmup``), then run this schedule from
    its step 0: PyTorch's ``SequentialLR`` of ``LinearLR`` and it.
warmup_start : float, default 1/3
    The warm-up's starting factor, in [0, 1]."""})


def _with_warmup(schedule, warmup_steps, warmup_start):
    """The last two parameters of a decaying schedule: its warm-up."""
    if warmup_steps == 0:
        return schedule
    steps = _steps("warmup_steps", warmup_steps)
    start = _real("warmup_start", warmup_start, high=1.0)
    return schedule._replace(params=schedule.params[:4] + (steps, start))


def constant(lr):
    r"""A constant learning rate, :math:`\gamma_t = \gamma`.

    Examples
    --------
    >>> from rmsopt import schedules
    >>> schedules.constant(0.1)(1000)
    0.1
    """
    return _make(CONSTANT, _real("lr", lr))


@_warmup_doc
def step(lr, step_size, gamma=0.1, *, warmup_steps=0,
         warmup_start=1.0 / 3.0):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` steps.

    .. math:: \gamma_t = \gamma \cdot g^{\lfloor t / s \rfloor}

    PyTorch's ``StepLR`` (per iteration).

    Parameters
    ----------
    lr : float
        The initial rate (>= 0).
    step_size : int
        Steps between two decays.
    gamma : float, default 0.1
        The factor (> 0; above 1 the rate grows).
    %(warmup)s

    Examples
    --------
    >>> from rmsopt import schedules
    >>> s = schedules.step(1.0, step_size=10, gamma=0.5)
    >>> s(9), s(10), s(25)
    (1.0, 0.5, 0.25)
    """
    return _with_warmup(_make(STEP, _real("lr", lr),
                              _steps("step_size", step_size),
                              _real("gamma", gamma, low_open=True)),
                        warmup_steps, warmup_start)


@_warmup_doc
def exponential(lr, gamma, *, warmup_steps=0, warmup_start=1.0 / 3.0):
    r"""Multiply the learning rate by ``gamma`` every step.

    .. math:: \gamma_t = \gamma \cdot g^{t}

    PyTorch's ``ExponentialLR``.

    Parameters
    ----------
    lr : float
        The initial rate (>= 0).
    gamma : float
        The factor per step (> 0; above 1 the rate grows).
    %(warmup)s

    Examples
    --------
    >>> from rmsopt import schedules
    >>> schedules.exponential(1.0, 0.5)(3)
    0.125
    """
    return _with_warmup(_make(EXPONENTIAL, _real("lr", lr),
                              _real("gamma", gamma, low_open=True)),
                        warmup_steps, warmup_start)


@_warmup_doc
def cosine(lr, t_max, eta_min=0.0, *, warmup_steps=0,
           warmup_start=1.0 / 3.0):
    r"""Cosine annealing from ``lr`` to ``eta_min`` over ``t_max`` steps.

    .. math::

        \gamma_t = \eta_{min} + \tfrac12 (\gamma - \eta_{min})
                   \left(1 + \cos\left(\pi \min(t, T) / T\right)\right)

    PyTorch's ``CosineAnnealingLR`` up to ``t_max``; after it the rate
    stays at ``eta_min`` (Keras' ``CosineDecay``), instead of rising again.

    Parameters
    ----------
    lr : float
        The initial rate (>= 0).
    t_max : int
        Steps from ``lr`` to ``eta_min``.
    eta_min : float, default 0
        The final rate (>= 0).
    %(warmup)s

    Examples
    --------
    >>> from rmsopt import schedules
    >>> s = schedules.cosine(1.0, t_max=100, eta_min=0.1)
    >>> s(0), round(s(50), 12), s(100), s(500)
    (1.0, 0.55, 0.1, 0.1)

    With a warm-up of 10 steps from 0, then the whole cosine:

    >>> w = schedules.cosine(1.0, t_max=100, warmup_steps=10, warmup_start=0)
    >>> w(0), w(5), w(10), w(110)
    (0.0, 0.5, 1.0, 0.0)
    """
    return _with_warmup(_make(COSINE, _real("lr", lr),
                              _steps("t_max", t_max),
                              _real("eta_min", eta_min)),
                        warmup_steps, warmup_start)


@_warmup_doc
def inverse_time(lr, decay_rate, decay_steps=1, staircase=False, *,
                 warmup_steps=0, warmup_start=1.0 / 3.0):
    r"""Inverse-time decay (Keras' ``InverseTimeDecay``).

    .. math:: \gamma_t = \frac{\gamma}{1 + r \, q}, \quad
              q = t / s \ (\lfloor t / s \rfloor \text{ with staircase})

    Parameters
    ----------
    lr : float
        The initial rate (>= 0).
    decay_rate : float
        ``r`` (>= 0).
    decay_steps : int, default 1
        ``s``.
    staircase : bool, default False
        Decay in steps of ``decay_steps``.
    %(warmup)s

    Examples
    --------
    >>> from rmsopt import schedules
    >>> schedules.inverse_time(1.0, decay_rate=0.5, decay_steps=10)(20)
    0.5
    """
    if not isinstance(staircase, bool):
        raise TypeError(f"staircase must be True or False, got {staircase!r}")
    return _with_warmup(_make(INVERSE_TIME, _real("lr", lr),
                              _real("decay_rate", decay_rate),
                              _steps("decay_steps", decay_steps),
                              float(staircase)),
                        warmup_steps, warmup_start)


def linear_warmup(lr, warmup_steps, start_factor=1.0 / 3.0):
    r"""Linear warm-up from ``start_factor * lr`` to ``lr`` in
    ``warmup_steps`` steps, then constant (PyTorch's ``LinearLR``).

    .. math:: \gamma_t = \gamma \left(f + (1 - f) \min(t, W) / W\right)

    Examples
    --------
    >>> from rmsopt import schedules
    >>> s = schedules.linear_warmup(1.0, warmup_steps=4, start_factor=0.0)
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    return _make(WARMUP, _real("lr", lr), _steps("warmup_steps", warmup_steps),
                 _real("start_factor", start_factor, high=1.0))


def reduce_on_plateau(lr, factor=0.1, patience=10, threshold=1e-4,
                      cooldown=0, min_lr=0.0):
    r"""Divide the learning rate when the loss stops falling (PyTorch's
    ``ReduceLROnPlateau``, mode 'min', relative threshold).

    After each step the loss is compared with the best so far: it counts as
    better if :math:`f < f_{best} (1 - \text{threshold})`. After more than
    ``patience`` steps in a row without a better loss, the rate becomes
    :math:`\max(\gamma \cdot \text{factor}, \text{min\_lr})`, and the count
    pauses for ``cooldown`` steps. The loss watched is the one the gradient
    call returns (``fun`` returning ``(f, g)`` with ``jac=True``): the
    compiled driver and mini-batches need that. With a separate ``jac``,
    the python driver calls ``fun`` at every step (counted in ``nfev``).
    With mini-batches the loss is the mean mini-batch loss of each epoch,
    compared once per epoch.

    Examples
    --------
    >>> import numpy as np, numba, rmsopt
    >>> @numba.njit
    ... def f(x):
    ...     return (x @ x, 2 * x)
    >>> res = rmsopt.minimize(f, np.ones(2), jac=True, options={
    ...     "lr": rmsopt.schedules.reduce_on_plateau(0.1, patience=5),
    ...     "maxiter": 300, "gtol": 1e-10})
    >>> bool(res.fun < 1e-12)
    True
    """
    factor = _real("factor", factor)
    if not factor < 1.0:
        raise ValueError(f"factor must be < 1, got {factor!r}")
    if isinstance(patience, bool) or not isinstance(
            patience, numbers.Integral) or patience < 0:
        raise ValueError(f"patience must be a non-negative integer, got "
                         f"{patience!r}")
    if isinstance(cooldown, bool) or not isinstance(
            cooldown, numbers.Integral) or cooldown < 0:
        raise ValueError(f"cooldown must be a non-negative integer, got "
                         f"{cooldown!r}")
    return _make(PLATEAU, _real("lr", lr), factor, float(patience),
                 _real("threshold", threshold, high=1.0), float(cooldown),
                 _real("min_lr", min_lr))


def lr_at(kind, p0, p1, p2, p3, p4, p5, t):
    """The learning rate of step ``t`` (float64) for the kinds that depend
    on ``t`` alone; PLATEAU and CONSTANT give ``p0``. A decaying kind with
    ``p4 > 0`` warms up linearly over ``p4`` steps from ``p5 * p0`` first,
    then starts from its own step 0."""
    if (kind == STEP or kind == EXPONENTIAL or kind == COSINE
            or kind == INVERSE_TIME) and p4 > 0.0:
        if t < p4:
            return p0 * (p5 + (1.0 - p5) * t / p4)
        t = t - p4
    if kind == STEP:
        return p0 * p2 ** math.floor(t / p1)
    if kind == EXPONENTIAL:
        return p0 * p1 ** t
    if kind == COSINE:
        tt = min(t, p1)
        return p2 + (p0 - p2) * (1.0 + math.cos(math.pi * tt / p1)) / 2.0
    if kind == INVERSE_TIME:
        q = t / p2
        if p3 != 0.0:
            q = math.floor(q)
        return p0 / (1.0 + p1 * q)
    if kind == WARMUP:
        return p0 * (p2 + (1.0 - p2) * min(t, p1) / p1)
    return p0


# Torch's ReduceLROnPlateau ignores changes smaller than this.
PLATEAU_EPS = 1e-8


def plateau_update(lr, best, num_bad, cool, metric, factor, patience,
                   threshold, cooldown, min_lr):
    """One observation of ReduceLROnPlateau; returns the new
    ``(lr, best, num_bad, cool)``. A NaN loss is never better."""
    if metric < best * (1.0 - threshold):
        best = metric
        num_bad = 0.0
    else:
        num_bad += 1.0
    if cool > 0.0:
        cool -= 1.0
        num_bad = 0.0
    if num_bad > patience:
        new = max(lr * factor, min_lr)
        if lr - new > PLATEAU_EPS:
            lr = new
        cool = cooldown
        num_bad = 0.0
    return lr, best, num_bad, cool


def check_callable_lr(value, t):
    """A callable schedule's value at ``t`` as a float, or a clear error."""
    try:
        lr = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the lr schedule returned {value!r} at step {t}; "
                        "it must return a real number") from exc
    if not (math.isfinite(lr) and lr >= 0.0):
        raise ValueError(f"the lr schedule returned {lr!r} at step {t}; it "
                         "must return a finite number >= 0")
    return lr
