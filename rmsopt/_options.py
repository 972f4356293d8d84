"""Options: defaults, convention presets, validation with clear messages.

Everything here runs in Python before any compiled code: kernels trust what
leaves this module.
"""

import math
import numbers
from typing import NamedTuple

import numba
import numpy as np
from scipy.optimize import OptimizeWarning

from ._checks import check_state
from ._layout import Flags
from ._result import warn_user
from ._schedules import Schedule

# parallel='auto' considers threads from this many elements. On the 2-core
# development machine (quiet) threads win from about 1e4 elements (1.4x at
# 5e4, benchmarks/crossover.py); a loaded machine delays thread wake-ups,
# hence the margin.
PARALLEL_CROSSOVER = 50_000

# Each library's defaults for the options that differ between them
# (REFERENCE.md section 1). TF1 and optax have no default learning rate; 1e-3
# is ours. Explicit options always win over the preset.
CONVENTIONS = {
    "pytorch": dict(lr=1e-2, alpha=0.99, eps=1e-8, eps_in_sqrt=False,
                    initial_scale=0.0, lr_in_momentum=False,
                    decoupled_weight_decay=False),
    "keras": dict(lr=1e-3, alpha=0.9, eps=1e-7, eps_in_sqrt=True,
                  initial_scale=0.0, lr_in_momentum=True,
                  decoupled_weight_decay=True),
    "tf1": dict(lr=1e-3, alpha=0.9, eps=1e-10, eps_in_sqrt=True,
                initial_scale=1.0, lr_in_momentum=True,
                decoupled_weight_decay=False),
    "optax": dict(lr=1e-3, alpha=0.9, eps=1e-8, eps_in_sqrt=True,
                  initial_scale=0.0, lr_in_momentum=True,
                  decoupled_weight_decay=False),
}

# name -> (default, meaning). Defaults of the preset-dependent options are
# PyTorch's; show_options() prints this table.
OPTIONS = {
    "lr": (1e-2, "learning rate gamma (>= 0), a schedule of "
                 "rmsopt.schedules (run compiled), or a callable lr(t) of "
                 "the step count t = 0, 1, ... (python driver)"),
    "alpha": (0.99, "smoothing constant of the mean square, in [0, 1) "
                    "(Keras `rho`, TF1/optax `decay`)"),
    "eps": (1e-8, "term added to the denominator (> 0)"),
    "momentum": (0.0, "momentum factor mu, in [0, 1)"),
    "centered": (False, "normalise by the estimated variance v - m**2 "
                        "instead of the mean square"),
    "weight_decay": (0.0, "L2 penalty lambda (>= 0)"),
    "maximize": (False, "maximize the objective instead of minimizing it"),
    "nesterov": (False, "Nesterov momentum in optax's form "
                        "(needs momentum > 0)"),
    "eps_in_sqrt": (False, "False: sqrt(v) + eps (PyTorch); "
                           "True: sqrt(v + eps) (Keras, TF1, optax)"),
    "initial_scale": (0.0, "starting value of the mean square v "
                           "(TF1 uses 1)"),
    "lr_in_momentum": (False, "False: the buffer holds g/den and x -= lr*b "
                              "(PyTorch); True: it holds lr*g/den and x -= b "
                              "(Keras, TF1, optax)"),
    "decoupled_weight_decay": (False, "False: g += lambda*x (PyTorch); "
                                      "True: x -= lr*lambda*x (Keras)"),
    "bias_correction": (False, "divide v and m by 1 - alpha**t (optax)"),
    "convention": ("pytorch", "preset of defaults: 'pytorch', 'keras', "
                              "'tf1' or 'optax'"),
    "maxiter": (None, "maximum number of iterations "
                      "(default 200 * len(x0), as scipy's BFGS)"),
    "gtol": (1e-5, "stop with success when the largest absolute "
                   "(projected) gradient component is <= gtol"),
    "disp": (False, "print a convergence summary at the end"),
    "finite_diff_rel_step": (None, "relative step for jac='2-point', "
                                   "'3-point' or 'cs' (scalar or array)"),
    "state": (None, "optimizer state of a previous result (res.state) "
                    "to continue that run exactly"),
    "driver": ("auto", "'auto', 'python' or 'nopython' (the compiled loop, "
                       "needs numba-jitted jac or fun with jac=True)"),
    "batch": (None, "mini-batches: a dict {'args': positions in args of the "
                    "data arrays (split along their first axis), 'size': "
                    "samples per batch, 'shuffle': True, 'seed': 0, "
                    "'epochs': None, 'patience': None (epochs without a "
                    "decrease of the mean batch loss before stopping), "
                    "'min_delta': 0.0}; never converges on a batch "
                    "gradient (see the docs)"),
    "history": (None, "record the loss every k iterations (every k epochs "
                      "with batches) into res.history (nit and fun arrays);"
                      " fun is evaluated there unless jac=True gives it"),
    "progress": (False, "show a tqdm progress bar with the iteration and "
                        "the loss (needs tqdm)"),
    "parallel": ("auto", "run the step on numba's threads: 'auto' (above "
                         "about 5e4 parameters, with more than one thread, "
                         "if a timing at the start shows threads are "
                         "faster), True or False; the same bits either way"),
}

_BOOL_OPTIONS = ("centered", "maximize", "nesterov", "eps_in_sqrt",
                 "lr_in_momentum", "decoupled_weight_decay", "bias_correction",
                 "disp", "progress")


class Settings(NamedTuple):
    """Validated options of one run."""

    lr: float
    alpha: float
    eps: float
    momentum: float
    weight_decay: float
    initial_scale: float
    flags: Flags
    maxiter: int
    gtol: float
    disp: bool
    finite_diff_rel_step: object
    state: object
    driver: str
    convention: str
    parallel: object  # True, False, or "auto" (large enough to try threads)
    schedule: object = None  # a Schedule, a callable lr(t), or None
    batch: object = None  # the raw batch option (checked against args later)
    history: object = None  # None or the recording interval
    progress: bool = False


def _number(name, value, low, high=math.inf, low_open=False, high_open=False,
            what=None):
    """Return ``value`` as a float after checking it lies in the interval."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {what or name}: {name} must be a real number,"
                        f" got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if math.isnan(value) or too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"Invalid {what or name}: {name} must be in "
                         f"{lo}{low}, {high}{hi}, got {value!r}")
    return value


def _boolean(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Option {name} must be True or False, got {value!r}")
    return bool(value)


def parse_options(options, n, tol=None, bounded=False):
    """Validate ``options`` for a problem of size ``n``.

    Unknown options give scipy's ``OptimizeWarning``; ``tol`` fills ``gtol``
    unless ``gtol`` is given, as in scipy.

    Parsing costs tens of microseconds, as much as a short run: the
    :class:`Settings` (immutable) of options whose values are all hashable
    (numbers, strings, schedules, ...; not ``state`` or ``batch`` dicts)
    are kept, keyed by each value *and its type* (``1`` and ``True`` are
    not the same option), ``n``, ``tol``, ``bounded`` and numba's thread
    count (``parallel='auto'`` reads it).
    """
    try:
        key = (tuple((name, type(value), value) for name, value in sorted(
            (options or {}).items())), n, type(tol), tol, bool(bounded),
            numba.get_num_threads())
        hash(key)
    except TypeError:  # an unhashable value (a dict, an array): no memo
        return _parse_options(options, n, tol, bounded)
    settings = _PARSED.get(key)
    if settings is None:
        settings = _parse_options(options, n, tol, bounded)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        if not set(options or {}) - set(OPTIONS):  # warnings each time
            _PARSED[key] = settings
    return settings


# the memo of parse_options: key -> Settings
_PARSED = {}
_PARSED_MAX = 256


def _parse_options(options, n, tol, bounded):
    """:func:`parse_options` itself."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        warn_user("Unknown solver options: " + ", ".join(unknown),
                  OptimizeWarning)
        for name in unknown:
            del options[name]
    if tol is not None:  # checked even where gtol overrides it
        options.setdefault("gtol", _number("tol", tol, 0.0,
                                           what="tol value"))

    convention = options.get("convention", "pytorch")
    if not isinstance(convention, str) or convention.lower() not in CONVENTIONS:
        raise ValueError(f"Unknown convention {convention!r}: expected one of "
                         + ", ".join(map(repr, CONVENTIONS)))
    convention = convention.lower()
    values = {name: default for name, (default, _) in OPTIONS.items()}
    values.update(CONVENTIONS[convention])
    values.update(options)

    for name in _BOOL_OPTIONS:
        values[name] = _boolean(name, values[name])
    schedule = values["lr"]
    if isinstance(schedule, Schedule):
        lr = schedule.peak  # the overflow proof needs the largest rate
    elif callable(schedule):
        lr = math.inf  # unknown: the kernels guard every step
    else:
        schedule = None
        lr = _number("lr", values["lr"], 0.0, what="learning rate")
    alpha = _number("alpha", values["alpha"], 0.0, 1.0, high_open=True,
                    what="alpha value")
    eps = _number("eps", values["eps"], 0.0, low_open=True,
                  what="epsilon value")
    momentum = _number("momentum", values["momentum"], 0.0, 1.0,
                       high_open=True, what="momentum value")
    weight_decay = _number("weight_decay", values["weight_decay"], 0.0,
                           what="weight_decay value")
    initial_scale = _number("initial_scale", values["initial_scale"], 0.0,
                            what="initial_scale value")
    for name, value in ((("lr", lr),) if schedule is None else ()) + (
                        ("eps", eps),
                        ("weight_decay", weight_decay),
                        ("initial_scale", initial_scale)):
        if math.isinf(value):
            raise ValueError(f"Invalid {name}: must be finite, got {value}")
    if values["nesterov"] and momentum == 0.0:
        raise ValueError("Nesterov momentum requires momentum > 0")

    maxiter = values["maxiter"]
    batch = values["batch"]
    if maxiter is None:
        epochs = batch.get("epochs") if isinstance(batch, dict) else None
        # with epochs, they are the limit (maxiter only when given)
        maxiter = 2 ** 62 if epochs is not None else 200 * n
    if isinstance(maxiter, (bool, np.bool_)) or not isinstance(
            maxiter, numbers.Integral) or maxiter < 0:
        raise ValueError(f"maxiter must be a non-negative integer, "
                         f"got {values['maxiter']!r}")
    gtol = _number("gtol", values["gtol"], 0.0, what="gtol value")

    step = values["finite_diff_rel_step"]
    if step is not None:
        arr = np.asarray(step, dtype=float)
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape != (n,)):
            raise ValueError(f"finite_diff_rel_step must be a scalar or an "
                             f"array of shape ({n},), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr == 0):
            raise ValueError("finite_diff_rel_step must be finite and nonzero")

    state = values["state"]
    check_state(state, {})  # its form, before anything reads it
    driver = values["driver"]
    if driver not in ("auto", "python", "nopython"):
        raise ValueError(f"driver must be 'auto', 'python' or 'nopython', "
                         f"got {driver!r}")
    parallel = values["parallel"]
    if isinstance(parallel, str) and parallel == "auto":
        # A candidate for threads; the run times both ways before choosing.
        if not (n >= PARALLEL_CROSSOVER and numba.get_num_threads() > 1):
            parallel = False
    elif isinstance(parallel, (bool, np.bool_)):
        parallel = bool(parallel)
    else:
        raise ValueError(f"parallel must be 'auto', True or False, got "
                         f"{parallel!r}")

    flags = Flags(
        maximize=values["maximize"], centered=values["centered"],
        use_momentum=momentum > 0.0, nesterov=values["nesterov"],
        eps_in_sqrt=values["eps_in_sqrt"],
        lr_in_momentum=values["lr_in_momentum"],
        decoupled_weight_decay=values["decoupled_weight_decay"],
        bias_correction=values["bias_correction"], bounded=bool(bounded),
        schedule=schedule.kind if isinstance(schedule, Schedule) else 0)
    return Settings(lr=lr, alpha=alpha, eps=eps, momentum=momentum,
                    weight_decay=weight_decay, initial_scale=initial_scale,
                    flags=flags, maxiter=int(maxiter), gtol=gtol,
                    disp=values["disp"], finite_diff_rel_step=step,
                    state=state, driver=driver,
                    convention=convention, parallel=parallel,
                    schedule=schedule, batch=batch,
                    history=check_history(values["history"]),
                    progress=values["progress"])


def check_history(value):
    """None, or the recording interval of ``history`` as an int >= 1."""
    if value is None or value is False:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, numbers.Integral) or value < 1:
        raise ValueError(f"history must be None or an integer >= 1 (record "
                         f"every k iterations), got {value!r}")
    return int(value)


def show_options(solver=None, method=None, disp=True):
    """Print (or return) every option of ``rmsopt.minimize`` with its default.

    Mirrors :func:`scipy.optimize.show_options`; ``solver`` and ``method`` may
    be ``None``, ``'minimize'`` and ``'rmsprop'``.

    Parameters
    ----------
    solver : str, optional
        ``'minimize'`` or None.
    method : str, optional
        ``'rmsprop'`` or None.
    disp : bool, default True
        Print the text; if False, return it.

    Returns
    -------
    str or None
        The text when ``disp`` is False.

    Examples
    --------
    >>> import rmsopt
    >>> text = rmsopt.show_options(disp=False)
    >>> "lr_in_momentum" in text
    True
    """
    if solver not in (None, "minimize"):
        raise ValueError(f"Unknown solver {solver!r}")
    if method is not None and str(method).lower() != "rmsprop":
        raise ValueError(f"Unknown method {method!r}")
    lines = ["rmsopt.minimize(method='rmsprop') options", ""]
    for name, (default, meaning) in OPTIONS.items():
        lines.append(f"{name} : default {default!r}")
        lines.append(f"    {meaning}")
    lines.append("")
    lines.append("Presets (convention=...), options they set:")
    for name, preset in CONVENTIONS.items():
        items = ", ".join(f"{k}={v!r}" for k, v in preset.items())
        lines.append(f"{name}: {items}")
    text = "\n".join(lines)
    if disp:
        print(text)
        return None
    return text
