"""rmsopt/_layout.py: the kernel ABI both backends share.

The work rows for every flag combination, the scalar slots and the status
codes (distinct, in range), the numba options spelled once, and the
overflow proof: it keeps the fast (unguarded) path for ordinary settings,
it sets ``guarded`` where any of its conditions fails, and where it does
not, a step of the rule itself (rmsopt._rule, in the working dtype) from
the worst inputs the proof admits gives finite values below the bounds its
docstring states.
"""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from rmsopt import _layout, _rule
from rmsopt._layout import Flags, overflow_guard, work_rows
from rmsopt._options import parse_options

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

DTYPES = [np.float64, np.float32]

# -- work rows -----------------------------------------------------------------


def test_work_rows_for_every_flag_combination():
    for values in itertools.product([False, True], repeat=9):
        flags = Flags(*values)
        rows = work_rows(flags)
        # x and v first, then each optional row in this order, when needed
        expected = ["x", "v"] + ["m"] * flags.centered + \
            ["b"] * flags.use_momentum + ["lo", "hi"] * flags.bounded
        assert sorted(rows.values()) == list(range(len(expected))), flags
        assert [name for name, _ in sorted(rows.items(),
                                           key=lambda kv: kv[1])] == expected
        # only these three flags shape the layout
        assert rows == work_rows(Flags(
            False, flags.centered, flags.use_momentum, False, False, False,
            False, False, flags.bounded, guarded=True, schedule=3))


def test_state_names_are_pytorchs_for_the_state_rows():
    assert _layout.STATE_NAMES == {"v": "square_avg", "m": "grad_avg",
                                   "b": "momentum_buffer"}
    every = work_rows(Flags(*[True] * 9))
    assert set(_layout.STATE_NAMES) <= set(every)


# -- scalar slots, codes, numba options ---------------------------------------

SLOTS = ("LR", "ALPHA", "ONE_MINUS_ALPHA", "EPS", "MOMENTUM", "WEIGHT_DECAY",
         "GTOL", "GSAFE", "T", "NIT", "NGRAD", "FVAL", "LR_NOW", "BEST",
         "NUM_BAD", "COOL", "PLATEAU_EACH", "BATCH_POS", "BATCH_SIZE",
         "N_SAMPLES", "LOSS_SUM")


def test_scalar_slots_are_distinct_and_below_n_scalars():
    slots = [getattr(_layout, name) for name in SLOTS]
    # the schedule's six parameters occupy SCHED .. SCHED + 5
    slots += [_layout.SCHED + k for k in range(6)]
    assert all(isinstance(s, int) and 0 <= s < _layout.N_SCALARS
               for s in slots)
    assert len(set(slots)) == len(slots)
    # no slot is wasted: the vector is exactly as long as the slots
    assert sorted(slots) == list(range(_layout.N_SCALARS))


def test_status_codes_are_distinct():
    codes = [_layout.STEPPED, _layout.CONVERGED, _layout.NONFINITE_GRAD,
             _layout.OVERFLOW, _layout.BAD_GRAD_SHAPE, _layout.LARGE_X]
    assert len(set(codes)) == len(codes)
    assert _layout.STEPPED == 0  # "the run goes on": the falsy code


def test_numba_options_are_the_measured_ones():
    # DESIGN.md: the numpy error model, nogil, never fastmath
    assert _layout.JIT_OPTIONS["error_model"] == "numpy"
    assert _layout.JIT_OPTIONS["nogil"] is True
    assert "fastmath" not in _layout.JIT_OPTIONS


# -- overflow_guard: the verdict -----------------------------------------------

def test_overflow_guard_keeps_the_fast_path_for_ordinary_settings():
    for dtype in (np.float32, np.float64):
        for options in ({}, {"convention": "tf1", "momentum": 0.9},
                        {"centered": True, "bias_correction": True,
                         "weight_decay": 0.1, "eps_in_sqrt": True}):
            settings = parse_options(options, 3)
            gsafe, guard = overflow_guard(settings, dtype, 1.0, None)
            assert not guard, (dtype, options)
            assert gsafe * gsafe < np.finfo(dtype).max
    settings = parse_options({"eps": 1e-30}, 3)
    assert overflow_guard(settings, np.float32, 1.0, None)[1]
    settings = parse_options({}, 3)
    assert overflow_guard(settings, np.float32, 1e38, None)[1]  # huge x0


def namespace(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0,
              initial_scale=0.0, bias_correction=False, eps_in_sqrt=False,
              decoupled_weight_decay=False):
    """Settings as overflow_guard reads them (its docstring's form)."""
    return SimpleNamespace(
        lr=lr, alpha=alpha, eps=eps, momentum=momentum,
        weight_decay=weight_decay, initial_scale=initial_scale,
        flags=SimpleNamespace(bias_correction=bias_correction,
                              eps_in_sqrt=eps_in_sqrt,
                              decoupled_weight_decay=decoupled_weight_decay))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_gsafe_keeps_the_mean_square_below_a_quarter_of_the_maximum(dtype):
    quarter = float(np.finfo(dtype).max) / 4
    for alpha in (0.0, 0.9, 0.999):
        gsafe, _ = overflow_guard(namespace(alpha=alpha), dtype, 1.0, None)
        assert gsafe == math.sqrt(quarter)
        gsafe, _ = overflow_guard(namespace(alpha=alpha,
                                            bias_correction=True),
                                  dtype, 1.0, None)
        # the bias-corrected mean square: at most gsafe**2 / (1 - alpha)
        # (one rounding of the square root allowed)
        assert gsafe * gsafe / (1 - alpha) <= quarter * (1 + 1e-15)
        assert gsafe == pytest.approx(math.sqrt(quarter) * (1 - alpha),
                                      rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_each_broken_condition_sets_guarded(dtype):
    big = float(np.finfo(dtype).max)
    quarter = big / 4
    base = dict(lr=0.01, eps=1e-3, momentum=0.5, initial_scale=1.0)
    assert not overflow_guard(namespace(**base), dtype, 1.0, None)[1]
    gsafe = math.sqrt(quarter)
    den = float(dtype(1e-3))  # the smallest denominator: eps in the dtype
    growth = 2 / (1 - 0.5)
    # an eps that puts the buffer's bound at half of max/4 with momentum
    # 0.5: momentum 0.9 multiplies it by 5 (growth 2 / (1 - mu))
    tight = dict(base, lr=1e-40, eps=2 * gsafe * growth / quarter)
    assert not overflow_guard(namespace(**tight), dtype, 1.0, None)[1]
    broken = {
        # lr * gsafe above max/4
        "lr": dict(base, lr=2 * quarter / gsafe),
        # the largest move lr * gsafe / d_min * 2 / (1 - mu)
        "move": dict(base, lr=1.01 * quarter * den / (gsafe * growth)),
        # the momentum buffer's bound gsafe / d_min * 2 / (1 - mu)
        "buffer": dict(base, lr=1e-40, eps=0.99 * gsafe * growth / quarter),
        "momentum": dict(tight, momentum=0.9),
        # decoupled decay shrinks x only while lr * weight_decay <= 1
        "weight_decay": dict(base, weight_decay=101.0),
        # the starting mean square
        "initial_scale": dict(base, initial_scale=1.01 * gsafe * gsafe),
    }
    for name, kwargs in broken.items():
        assert overflow_guard(namespace(**kwargs), dtype, 1.0, None)[1], name
    # x0 beyond a quarter of the maximum
    assert not overflow_guard(namespace(**base), dtype, quarter, None)[1]
    assert overflow_guard(namespace(**base), dtype, 1.01 * quarter, None)[1]
    # a continued run: each state array within its bound, or not
    limits = {"square_avg": gsafe * gsafe, "grad_avg": gsafe,
              "momentum_buffer": gsafe / den * growth}
    state = {name: np.array([0.0, -limit, limit]) for name, limit in
             limits.items()}
    state["square_avg"] = np.abs(state["square_avg"])
    assert not overflow_guard(namespace(**base), dtype, 1.0, state)[1]
    for name, limit in limits.items():
        over = dict(state, **{name: np.array([0.0, 1.01 * limit])})
        assert overflow_guard(namespace(**base), dtype, 1.0, over)[1], name
    # absent or empty arrays (options off, or m, b not kept) are no bound
    assert not overflow_guard(namespace(**base), dtype, 1.0,
                              {"square_avg": np.zeros(3), "grad_avg": None,
                               "momentum_buffer": np.zeros(0)})[1]


def test_an_eps_that_rounds_to_zero_is_guarded():
    # The proof's smallest denominator is eps rounded to the dtype; at 0
    # no step size is bounded, so the update must be guarded (it once
    # divided by zero here). A positive float64 eps never rounds to 0 in
    # float64.
    for eps_in_sqrt in (False, True):
        assert overflow_guard(namespace(eps=1e-50, eps_in_sqrt=eps_in_sqrt),
                              np.float32, 1.0, None)[1]


# -- overflow_guard: soundness, against the rule ----------------------------------

def _finite(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def unguarded_step(draw, dtype):
    """Settings the proof accepts, and the worst step it admits: a state
    at the proof's bounds, |x| = x_absmax, a gradient the kernels' test
    lets through (|g~| <= gsafe)."""
    real = dtype
    big = float(np.finfo(dtype).max)
    quarter = big / 4
    log_uniform = st.floats(-45, 30).map(lambda e: 10.0 ** e)
    s = namespace(
        lr=draw(st.one_of(st.just(0.0), log_uniform)),
        alpha=draw(st.one_of(st.sampled_from([0.0, 0.9, 0.99, 0.999]),
                             _finite(0, 1 - 1e-6))),
        eps=draw(log_uniform),
        momentum=draw(st.one_of(st.sampled_from([0.0, 0.5, 0.9]),
                                _finite(0, 1 - 1e-6))),
        weight_decay=draw(st.one_of(st.just(0.0), log_uniform)),
        initial_scale=draw(st.one_of(st.sampled_from([0.0, 1.0]),
                                     log_uniform)),
        bias_correction=draw(st.booleans()),
        eps_in_sqrt=draw(st.booleans()),
        decoupled_weight_decay=draw(st.booleans()))
    x_absmax = draw(st.one_of(st.sampled_from([1.0, quarter]),
                              _finite(0, quarter)))
    fresh = draw(st.booleans())
    gsafe = math.sqrt(quarter) * ((1 - s.alpha) if s.flags.bias_correction else 1)
    den_min = float(real(s.eps))
    assume(den_min > 0)  # (the guard holds then: see the test above)
    den_min = math.sqrt(den_min) if s.flags.eps_in_sqrt else den_min
    b_limit = gsafe / den_min * 2 / (1 - s.momentum)
    pick = st.sampled_from([0.0, 0.5, 1.0])  # a fraction of each limit
    sign = st.sampled_from([-1.0, 1.0])
    if fresh:
        v, m, b, state = s.initial_scale, 0.0, 0.0, None
    else:
        v = draw(pick) * gsafe * gsafe
        m = draw(sign) * draw(pick) * gsafe
        b = draw(sign) * draw(pick) * min(b_limit, big)
        state = {"square_avg": np.array([v]), "grad_avg": np.array([m]),
                 "momentum_buffer": np.array([b])}
    got_gsafe, guarded = overflow_guard(s, dtype, x_absmax, state)
    assume(not guarded)
    assert got_gsafe == pytest.approx(gsafe, rel=1e-15)
    x = draw(sign) * x_absmax
    g = draw(sign) * draw(pick) * gsafe * draw(st.sampled_from([1.0, 2.0]))
    flags = dict(maximize=draw(st.booleans()), centered=draw(st.booleans()),
                 use_momentum=s.momentum > 0, nesterov=draw(st.booleans())
                 and s.momentum > 0, eps_in_sqrt=s.flags.eps_in_sqrt,
                 lr_in_momentum=draw(st.booleans()),
                 decoupled_weight_decay=s.flags.decoupled_weight_decay)
    t = draw(st.sampled_from([1, 2, 10, 1000]))
    bias = real(1.0 - s.alpha ** t) if s.flags.bias_correction else real(1.0)
    return s, flags, tuple(map(real, (x, g, v, m, b))), real(gsafe), bias


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_no_unguarded_step_overflows(dtype):
    real = dtype
    quarter = float(np.finfo(dtype).max) / 4

    @settings(max_examples=1500, deadline=None, database=None,
              derandomize=True)
    @given(unguarded_step(dtype))
    def check(case):
        s, flags, (x, g, v, m, b), gsafe, bias = case
        with np.errstate(all="ignore"):
            bad, _ = _rule.gradient_test(
                x, g, real(0), real(0), real(s.weight_decay), gsafe,
                0.0, flags["maximize"], flags["decoupled_weight_decay"],
                False)
            assume(not bad)  # the kernels take no step on such a gradient
            new = _rule.rmsprop_element(
                x, g, v, m, b, real(s.lr), real(s.alpha),
                real(1 - s.alpha), real(s.eps), real(s.momentum),
                real(s.weight_decay), bias, flags["maximize"],
                flags["centered"], flags["use_momentum"], flags["nesterov"],
                flags["eps_in_sqrt"], flags["lr_in_momentum"],
                flags["decoupled_weight_decay"])
        x1, v1, m1, b1 = map(float, new)
        # no new value overflows ...
        assert all(math.isfinite(value) for value in new), (case, new)
        # ... and the averages stay within the docstring's bounds
        assert v1 <= quarter and abs(m1) <= quarter, (case, new)
    check()


def test_decoupled_weight_decay_never_makes_x_infinite():
    # The unguarded update once stored x = -inf (float64: x * weight_decay
    # overflows) and NaN (float32, where weight_decay=1e39 rounds to inf
    # and lr = 0: inf * 0); the guarded one keeps the last finite x
    # (status 3), as it does for any other step that overflows.
    import rmsopt
    options = {"decoupled_weight_decay": True, "maxiter": 3}
    cases = [(np.array([4e307, 1.0]), {"weight_decay": 10.0, "lr": 1e-3}),
             (np.ones(2, np.float32), {"weight_decay": 1e39, "lr": 0.0})]
    for x0, extra in cases:
        res = rmsopt.minimize(lambda x: 0.0, x0,
                              jac=lambda x: np.ones_like(x),
                              options={**options, **extra})
        assert np.isfinite(res.x).all(), (extra, res.x)
