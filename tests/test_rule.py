"""rmsopt/_rule.py: the update and the gradient check of one element.

The rule is the single source of truth for the math: `_cpu` compiles it
with ``njit(inline="always")`` and `_cuda` with ``cuda.jit(device=True)``.
So the plain Python functions must give the same bits as their compiled
copies, for every flag and every input a kernel may pass them (NaN, inf,
huge and tiny values, negative zero), in float64 and in float32. Hypothesis
draws the inputs. A float32 run is compared with Python computing on
``np.float32`` scalars (NumPy keeps float32 arithmetic in float32, as the
compiled code does); float64 with plain Python floats.

"The same bits" is bit for bit, the sign of zero included, except that any
NaN matches any NaN: IEEE 754 leaves a NaN's sign and payload to the
hardware and to the order of the operands, which a compiler may swap.

The update is also checked against the plain NumPy oracle
(tests/reference.py), step by step and bit for bit.
"""

import itertools
import math
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from rmsopt import _cpu, _rule

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reference import OPTION_DEFAULTS, reference_rmsprop  # noqa: E402

# The rule compiled here, as numba.njit compiles any scalar function (the
# numpy error model, as every kernel: IEEE inf and NaN, no exceptions), and
# as rmsopt._cpu compiles it. Module level: each compiles once per dtype.
_JIT = dict(error_model="numpy")
COMPILED = {
    "rmsprop_element": (numba.njit(**_JIT)(_rule.rmsprop_element),
                        _cpu._element),
    "gradient_test": (numba.njit(**_JIT)(_rule.gradient_test),
                      _cpu._gradient_test),
    "fits": (numba.njit(**_JIT)(_rule.fits), _cpu._fits),
    "clip": (numba.njit(**_JIT)(_rule.clip), _cpu._clip),
}

DTYPES = [np.float64, np.float32]
FLAG_NAMES = ("maximize", "centered", "use_momentum", "nesterov",
              "eps_in_sqrt", "lr_in_momentum", "decoupled_weight_decay")
SETTINGS = settings(max_examples=1000, deadline=None, database=None,
                    derandomize=True)


# -- comparison -------------------------------------------------------------------

def bits(value):
    """A float's bits as float64 (float32 widens exactly); NaN as None."""
    value = np.float64(value)
    return None if np.isnan(value) else int(value.view(np.uint64))


def assert_same_bits(python, compiled, dtype, what):
    python = python if isinstance(python, tuple) else (python,)
    compiled = compiled if isinstance(compiled, tuple) else (compiled,)
    assert len(python) == len(compiled), what
    for i, (p, c) in enumerate(zip(python, compiled)):
        if isinstance(p, (bool, np.bool_)):
            assert isinstance(c, (bool, np.bool_)), (what, i, c)
            assert bool(p) == bool(c), (what, i, p, c)
            continue
        # Python's float32 arithmetic stays float32 (the rule has no float
        # literals), and the compiled value is a float32 widened to a
        # Python float: equal as float64 means the same float32 bits.
        if dtype is np.float32:
            assert type(p) is np.float32, (what, i, type(p))
            assert bits(np.float32(c)) == bits(c), (what, i, c)
        assert bits(p) == bits(c), (what, i, p, c)


def python(func, args, dtype):
    """The plain Python function on ``dtype`` scalars (IEEE results)."""
    with np.errstate(all="ignore"):
        return func(*args)


def check_all(name, args, dtype):
    """Python, numba.njit and rmsopt._cpu give the same bits."""
    expected = python(getattr(_rule, name), args, dtype)
    for compiled in COMPILED[name]:
        assert_same_bits(expected, compiled(*args), dtype,
                         (name, compiled, args))
    return expected


# -- strategies ---------------------------------------------------------------------

def specials(dtype):
    info = np.finfo(dtype)
    values = [0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf,
              float(info.max), -float(info.max), float(info.tiny),
              -float(info.tiny), float(info.smallest_subnormal),
              -float(info.smallest_subnormal), float(info.max) / 4,
              math.sqrt(float(info.max)), 1e-30, 3.0e38 if dtype is
              np.float32 else 1e300]
    return [dtype(v) if dtype is np.float32 else float(v) for v in values]


def scalar(dtype, min_value=None, max_value=None, exclude_min=False,
           exclude_max=False, allow_nan=True, allow_infinity=True):
    """A float of ``dtype`` in the given range (a Python float for float64,
    an np.float32 for float32), the special values drawn often."""
    lo = -math.inf if min_value is None else min_value
    hi = math.inf if max_value is None else max_value

    def keep(v):
        if math.isnan(v):
            return allow_nan
        return ((allow_infinity or not math.isinf(v)) and lo <= v <= hi
                and not (exclude_min and v == lo)
                and not (exclude_max and v == hi)
                and not (v == 0 and lo == 0 and math.copysign(1, v) < 0))
    pool = [v for v in specials(dtype) if keep(v)]
    drawn = st.floats(min_value, max_value, exclude_min=exclude_min,
                      exclude_max=exclude_max,
                      allow_nan=None if allow_nan else False,
                      allow_infinity=None if allow_infinity else False,
                      width=32 if dtype is np.float32 else 64)
    convert = np.float32 if dtype is np.float32 else float
    return st.one_of(st.sampled_from(pool), drawn).map(convert)


def mean_square(dtype):
    """A mean square v: >= 0, +-0, inf, NaN."""
    return st.one_of(scalar(dtype, min_value=0.0),
                     st.just(-0.0).map(np.float32 if dtype is np.float32
                                       else float))


def hyperparameters(dtype):
    """What the kernels pass the rule: lr >= 0, alpha and momentum in
    [0, 1), eps > 0, weight_decay >= 0 (all finite; 1 - alpha rounded once
    from float64), bias_scale in (0, 1]."""
    real = np.float32 if dtype is np.float32 else float

    def build(lr, alpha, eps, momentum, weight_decay, bias_scale):
        return (real(lr), real(alpha), real(1.0 - float(alpha)), real(eps),
                real(momentum), real(weight_decay), real(bias_scale))
    finite = dict(allow_infinity=False, allow_nan=False)
    return st.builds(
        build,
        scalar(dtype, min_value=0.0, **finite),
        scalar(dtype, min_value=0.0, max_value=1.0, exclude_max=True,
               allow_nan=False),
        scalar(dtype, min_value=0.0, exclude_min=True, **finite),
        scalar(dtype, min_value=0.0, max_value=1.0, exclude_max=True,
               allow_nan=False),
        scalar(dtype, min_value=0.0, **finite),
        scalar(dtype, min_value=0.0, max_value=1.0, exclude_min=True,
               allow_nan=False))


def element_args(dtype):
    """Arguments of rmsprop_element: any x, g, m, b; v >= 0 (the mean
    square: +0, -0, inf, NaN included), hyperparameters, seven flags."""
    return st.builds(
        lambda x, g, v, m, b, hyper, flags: (x, g, v, m, b) + hyper + flags,
        scalar(dtype), scalar(dtype), mean_square(dtype), scalar(dtype),
        scalar(dtype),
        hyperparameters(dtype),
        st.tuples(*[st.booleans()] * len(FLAG_NAMES)))


# -- rmsprop_element ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_rmsprop_element_is_the_same_compiled(dtype):
    @SETTINGS
    @given(element_args(dtype))
    def check(args):
        check_all("rmsprop_element", args, dtype)
    check()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_rmsprop_element_every_flag_combination(dtype):
    # Every one of the 128 variants on inputs that exercise each branch:
    # ordinary values, a centered variance that rounds below zero, huge
    # and tiny values, NaN and inf, negative zero.
    real = np.float32 if dtype is np.float32 else float
    big = float(np.finfo(dtype).max)
    cases = [
        (0.7, -0.3, 0.2, 0.05, -0.1, 1e-3, 0.9, 1e-8, 0.5, 0.01, 1.0),
        (1.0, 1e-3, 0.0, 0.0, 0.0, 1e-2, 0.99, 1e-8, 0.9, 0.1, 0.01),
        (-0.0, -0.0, 0.0, -0.0, -0.0, 0.0, 0.0, 1e-8, 0.0, 0.0, 1.0),
        (2.0, 3.0, 9.0, 3.0000001, 1.0, 0.1, 0.5, 1e-30, 0.3, 0.0, 1.0),
        (big / 8, big / 8, big, big / 2, big / 2, 1.0, 0.9, 1e-30, 0.9,
         1.0, 1.0),
        (math.nan, 1.0, 0.5, 0.1, 0.1, 0.1, 0.9, 1e-8, 0.5, 0.1, 1.0),
        (1.0, math.inf, 0.5, 0.1, -math.inf, 0.1, 0.9, 1e-8, 0.5, 0.1, 0.1),
        (1e-38, 1e-45, 1e-45, 1e-45, 1e-45, 1e-3, 0.9, 1e-45, 0.5, 1e-3,
         1e-7),
    ]
    for (x, g, v, m, b, lr, alpha, eps, momentum, wd, bias) in cases:
        hyper = (real(lr), real(alpha), real(1.0 - alpha), real(eps),
                 real(momentum), real(wd), real(bias))
        for flags in itertools.product([False, True], repeat=7):
            args = tuple(map(real, (x, g, v, m, b))) + hyper + flags
            check_all("rmsprop_element", args, dtype)


def test_rmsprop_element_first_step_has_pytorchs_size():
    # PyTorch's first step from v = 0 is lr * g / (sqrt(0.01) * |g|).
    for g in (1e-3, 1.0, 1e3):
        x, v, m, b = _rule.rmsprop_element(
            1.0, g, 0.0, 0.0, 0.0, 0.01, 0.99, 1.0 - 0.99, 1e-8, 0.0, 0.0,
            1.0, False, False, False, False, False, False, False)
        assert v == (1.0 - 0.99) * g * g
        assert (m, b) == (0.0, 0.0)  # their options are off: unchanged
        assert x == 1.0 - 0.01 * g / (math.sqrt(v) + 1e-8)
        assert 1.0 - x == pytest.approx(0.1, rel=2e-4)  # eps / sqrt(v)


# -- against the NumPy oracle -----------------------------------------------------------

def _oracle_cases():
    out = []
    for centered, maximize, eps_in_sqrt, lr_in_momentum, decoupled, bias in \
            itertools.product([False, True], repeat=6):
        for momentum, nesterov in ((0.0, False), (0.5, False), (0.5, True)):
            for weight_decay in (0.0, 0.05):
                out.append(dict(
                    centered=centered, maximize=maximize,
                    eps_in_sqrt=eps_in_sqrt, lr_in_momentum=lr_in_momentum,
                    decoupled_weight_decay=decoupled,
                    bias_correction=bias, momentum=momentum,
                    nesterov=nesterov, weight_decay=weight_decay,
                    initial_scale=1.0 if bias and not centered else 0.0,
                    # centered + bias correction: the first variance is 0
                    eps=0.1 if centered and bias else 1e-8))
    return out


def _quadratic_grad(x):
    """A gradient whose size differs per element (dtype-preserving)."""
    return x * x.dtype.type(3.0) - x.dtype.type(0.5)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_rmsprop_element_steps_like_the_numpy_oracle(dtype):
    # Every combination of the boolean options, with and without momentum,
    # Nesterov and weight decay: 10 steps of reference_rmsprop against the
    # rule applied element by element, bit for bit.
    x0 = np.array([1.5, -0.25, 0.0], dtype=dtype)
    n_iter, lr, alpha = 10, 0.01, 0.9
    real = dtype
    convert = (lambda a: a) if dtype is np.float32 else float
    for options in _oracle_cases():
        opts = {**OPTION_DEFAULTS, **options, "lr": lr, "alpha": alpha}
        xs, state = reference_rmsprop(_quadratic_grad, x0, n_iter, **opts)
        x = [convert(e) for e in x0]
        v = [convert(real(opts["initial_scale"]))] * 3
        m = [convert(real(0.0))] * 3
        b = [convert(real(0.0))] * 3
        for t in range(1, n_iter + 1):
            g = _quadratic_grad(np.array(x, dtype=dtype))
            bias = (real(1.0 - alpha ** t) if opts["bias_correction"]
                    else real(1.0))
            for i in range(3):
                x[i], v[i], m[i], b[i] = python(_rule.rmsprop_element, (
                    x[i], convert(g[i]), v[i], m[i], b[i], convert(real(lr)),
                    convert(real(alpha)), convert(real(1 - alpha)),
                    convert(real(opts["eps"])),
                    convert(real(opts["momentum"])),
                    convert(real(opts["weight_decay"])), convert(bias),
                    opts["maximize"], opts["centered"],
                    opts["momentum"] > 0, opts["nesterov"],
                    opts["eps_in_sqrt"], opts["lr_in_momentum"],
                    opts["decoupled_weight_decay"]), dtype)
            np.testing.assert_array_equal(np.array(x, dtype), xs[t],
                                          err_msg=str((options, t)))
        assert np.isfinite(xs).all(), options
        np.testing.assert_array_equal(np.array(v, dtype), state["square_avg"])
        if options["centered"]:
            np.testing.assert_array_equal(np.array(m, dtype),
                                          state["grad_avg"])
        if options["momentum"]:
            np.testing.assert_array_equal(np.array(b, dtype),
                                          state["momentum_buffer"])


# -- gradient_test, fits, clip ------------------------------------------------------------

def bounds_pair(dtype):
    """``(lo, hi)`` as checked bounds are: not NaN, ``lo <= hi``, infinite
    where there is no bound."""
    side = scalar(dtype, allow_nan=False)
    return st.tuples(side, side).map(lambda pair: tuple(sorted(pair)))


def gradient_test_args(dtype):
    """As the kernels call it: x, g, the bounds and the hyperparameters in
    the working dtype, gsafe finite (the overflow proof's bound), gtol a
    float64 (read from the scalars vector: an np.float64 here, so that
    NumPy compares a float32 with it in float64, as compiled code does; a
    Python float would be rounded to float32 first)."""
    gtol = scalar(np.float64, min_value=0.0, allow_nan=False)
    if dtype is np.float32:
        gtol = gtol.map(np.float64)
    return st.builds(
        lambda x, g, bounds, wd, gsafe, gtol, flags: (
            x, g) + bounds + (wd, gsafe, gtol) + flags,
        scalar(dtype), scalar(dtype), bounds_pair(dtype),
        scalar(dtype, min_value=0.0, allow_infinity=False,
               allow_nan=False),
        scalar(dtype, min_value=0.0, exclude_min=True, allow_nan=False,
               allow_infinity=False),
        gtol,
        st.tuples(st.booleans(), st.booleans(), st.booleans()))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_gradient_test_is_the_same_compiled(dtype):
    @SETTINGS
    @given(gradient_test_args(dtype))
    @example(tuple(map(np.float32 if dtype is np.float32 else float,
                       (1.0, -3.0, 0.0, 1.0, 0.0, 1e30))) + (
        np.float64(1e-5), False, False, True))
    def check(args):
        bad, above = check_all("gradient_test", args, dtype)
        x, g, lo, hi, wd, gsafe, gtol, maximize, decoupled, bounded = args
        # The docstring's statement, with NumPy's tests and projection
        with np.errstate(all="ignore"):
            gt = np.array(-g if maximize else g, dtype)
            if wd != 0 and not decoupled:
                gt = gt + wd * np.array(x, dtype)
            assert bool(bad) == bool(~np.isfinite(gt) | (np.abs(gt) > gsafe))
            if bounded:
                gt = np.clip(x - gt, lo, hi) - np.array(x, dtype)
            assert bool(above) == bool(np.abs(gt) > gtol)
    check()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_fits_is_the_same_compiled(dtype):
    real = np.float32 if dtype is np.float32 else float
    big = real(np.finfo(dtype).max)

    @SETTINGS
    @given(scalar(dtype), mean_square(dtype), scalar(dtype), scalar(dtype),
           st.booleans(), st.booleans())
    def check(x, v, m, b, centered, use_momentum):
        ok = check_all("fits", (x, v, m, b, big, centered, use_momentum),
                       dtype)
        # NumPy's statement of it: finite and at most big in magnitude,
        # the state rows only where the options use them
        values = [x, v] + ([m] if centered else []) + (
            [b] if use_momentum else [])
        expected = bool(np.all(np.abs(np.array(values, dtype)) <= big))
        assert bool(ok) == expected
    check()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_clip_is_the_same_compiled(dtype):
    @SETTINGS
    @given(scalar(dtype), bounds_pair(dtype))
    def check(x, bounds):
        lo, hi = bounds
        y = check_all("clip", (x, lo, hi), dtype)
        if not math.isnan(x):  # NumPy's clip, the oracle
            assert y == np.clip(np.array(x, dtype), lo, hi)
    check()


def test_the_rule_imports_no_numba():
    # _rule is plain Python: run it as a file of its own (not through the
    # package, which imports numba) and check numba was never imported.
    path = os.path.abspath(_rule.__file__)
    code = ("import runpy, sys\n"
            f"ns = runpy.run_path({path!r})\n"
            "assert 'numba' not in sys.modules, 'numba imported'\n"
            "x, v, m, b = ns['rmsprop_element'](1.0, 2.0, 0.0, 0.0, 0.0, "
            "0.1, 0.9, 0.1, 1e-8, 0.0, 0.0, 1.0, *[False] * 7)\n"
            "print(x < 1.0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr
