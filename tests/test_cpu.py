"""rmsopt/_cpu.py's kernels called directly, with the layout of
rmsopt/_layout.py filled in here.

The step against the NumPy oracle (tests/reference.py), bit for bit, in
both dtypes; each status code with the state it must leave untouched; the
compiled loop against repeated steps (and, with mini-batches, against the
batches replayed step by step); the entry points compiled once.
"""

import numba
import numpy as np
import pytest

from rmsopt import _cpu, _layout
from rmsopt._layout import (BATCH_POS, BATCH_SIZE, CONVERGED, FVAL, GSAFE,
                            GTOL, LOSS_SUM, N_SAMPLES, N_SCALARS,
                            NGRAD, NIT, NONFINITE_GRAD, OVERFLOW, STEPPED, T,
                            overflow_guard, work_rows)
from rmsopt._options import parse_options
from problems import (BATCH_A, BATCH_Y, X0, lsq_vg, rosen_grad_into_jit,
                      rosen_grad_jit, rosen_jit, rosen_value_and_grad_jit)
from reference import OPTION_DEFAULTS, PRESETS, reference_rmsprop

DTYPES = ["float64", "float32"]

# Options in the oracle's terms (every one named), as parse_options takes
# them too.
CONFIGS = [
    dict(OPTION_DEFAULTS, lr=1e-3),
    dict(OPTION_DEFAULTS, lr=1e-3, momentum=0.9, centered=True,
         weight_decay=0.01),
    dict(PRESETS["tf1"], momentum=0.5, nesterov=True, bias_correction=True),
    dict(PRESETS["keras"], weight_decay=0.05, maximize=True, momentum=0.3),
]


def prepare(options, x0, bounds=None):
    """What a run hands the kernels: flags (with the proof's verdict), the
    work rows and the scalars."""
    n, dtype = x0.shape[0], x0.dtype
    settings = parse_options(options, n, bounded=bounds is not None)
    gsafe, guarded = overflow_guard(settings, dtype,
                                    float(np.max(np.abs(x0))), None)
    flags = settings.flags._replace(guarded=guarded)
    rows = work_rows(flags)
    work = np.zeros((len(rows), n), dtype)
    work[rows["x"]] = x0
    work[rows["v"]] = settings.initial_scale
    if bounds is not None:
        work[rows["lo"]], work[rows["hi"]] = bounds
    scalars = np.zeros(N_SCALARS)
    scalars[:GSAFE + 1] = [settings.lr, settings.alpha, 1.0 - settings.alpha,
                           settings.eps, settings.momentum,
                           settings.weight_decay, settings.gtol, gsafe]
    scalars[FVAL] = np.nan
    return flags, rows, work, scalars


# -- the step -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
def test_step_is_the_numpy_oracle_bit_for_bit(config, dtype):
    n_iter = 25
    x0 = X0.astype(dtype)
    flags, rows, work, scalars = prepare({**config, "gtol": 0}, x0)
    assert not flags.guarded
    xs, state = reference_rmsprop(rosen_grad_jit, x0, n_iter, **config)
    for step in (_cpu.step_entry_point(flags, dtype),
                 _cpu.make_step(flags, dtype)):
        w, s = work.copy(), scalars.copy()
        for k in range(n_iter):
            code = step(w, rosen_grad_jit(w[0]), s, True)
            assert code == STEPPED
            np.testing.assert_array_equal(w[rows["x"]], xs[k + 1])
        assert s[T] == s[NIT] == n_iter
        for row, name in _layout.STATE_NAMES.items():
            if row in rows:
                np.testing.assert_array_equal(w[rows[row]], state[name])
            else:
                assert state[name] is None


def test_bounds_project_each_step():
    x0 = np.array([-1.2, 1.0, 0.8])
    lo, hi = np.array([-1.1, -5.0, 0.79]), np.array([5.0, 1.0, 5.0])
    flags, rows, work, scalars = prepare({"lr": 0.05}, np.clip(x0, lo, hi),
                                         (lo, hi))
    step = _cpu.step_entry_point(flags, "float64")
    x, v = np.clip(x0, lo, hi), np.zeros(3)
    for _ in range(10):  # PyTorch's rule in NumPy, projected
        g = rosen_grad_jit(work[0])
        assert step(work, g, scalars, True) == STEPPED
        v = 0.99 * v + (1 - 0.99) * g * g  # 1 - alpha, rounded once
        x = np.clip(x - 0.05 * g / (np.sqrt(v) + 1e-8), lo, hi)
        np.testing.assert_array_equal(work[rows["x"]], x)
    assert (work[rows["x"]] == lo).any() or (work[rows["x"]] == hi).any()


# -- the codes, and what each leaves untouched ---------------------------------------------

def check_untouched(step, work, g, scalars, update, expected):
    before, counters = work.copy(), scalars.copy()
    assert step(work, g, scalars, update) == expected
    np.testing.assert_array_equal(work, before)
    np.testing.assert_array_equal(scalars, counters)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_non_finite_or_too_large_gradient_takes_no_step(dtype):
    flags, _, work, scalars = prepare({"momentum": 0.5, "centered": True},
                                      X0.astype(dtype))
    step = _cpu.step_entry_point(flags, dtype)
    for bad in (np.nan, np.inf, -np.inf, 2 * scalars[GSAFE]):
        g = rosen_grad_jit(work[0])
        g[3] = bad
        check_untouched(step, work, g, scalars, True, NONFINITE_GRAD)


@pytest.mark.parametrize("dtype", DTYPES)
def test_converged_and_check_only_take_no_step(dtype):
    flags, _, work, scalars = prepare({}, X0.astype(dtype))
    step = _cpu.step_entry_point(flags, dtype)
    g = rosen_grad_jit(work[0])
    scalars[GTOL] = float(np.max(np.abs(g)))  # every component <= gtol
    check_untouched(step, work, g, scalars, True, CONVERGED)
    scalars[GTOL] = 0.0
    check_untouched(step, work, g, scalars, False, STEPPED)  # a check only
    assert step(work, g, scalars, True) == STEPPED
    assert scalars[T] == scalars[NIT] == 1


def test_the_guarded_step_keeps_the_elements_that_would_overflow():
    x0 = np.array([3e38, 1.0, -2.0], np.float32)
    flags, rows, work, scalars = prepare({"lr": 1e37}, x0)
    assert flags.guarded  # lr * gsafe beyond max/4
    step = _cpu.step_entry_point(flags, "float32")
    g = np.array([-1.0, 1.0, 1.0], np.float32)
    assert step(work, g, scalars, True) == OVERFLOW
    assert work[rows["x"], 0] == x0[0] and work[rows["v"], 0] == 0
    # the others took the step: PyTorch's first step, lr / sqrt(1 - alpha)
    lr, one_minus = np.float32(1e37), np.float32(1 - 0.99)
    v = one_minus * g[1:] * g[1:]
    np.testing.assert_array_equal(work[rows["v"], 1:], v)
    np.testing.assert_array_equal(
        work[rows["x"], 1:],
        x0[1:] - lr * g[1:] / (np.sqrt(v) + np.float32(1e-8)))
    assert np.isfinite(work).all()
    assert scalars[T] == scalars[NIT] == 1  # a step was taken


def test_an_unguarded_step_past_a_quarter_of_the_maximum_stops_the_run():
    # Practically unreachable through minimize (the proof bounds each step
    # far below it), so drive the unguarded kernel directly.
    settings = parse_options({"lr": 1.0}, 2)
    step = _cpu.make_step(settings.flags, "float32")
    work = np.zeros((2, 2), np.float32)
    work[0] = [8.0e37, 1.0]                  # just below max/4 = 8.5e37
    scalars = np.zeros(_layout.N_SCALARS)
    scalars[:_layout.GSAFE + 1] = [1e37, 0.99, 0.01, 1e-8, 0, 0, 0, 1e30]
    code = step(work, np.array([-1.0, 1.0], np.float32), scalars, True)
    assert code == _layout.LARGE_X
    assert np.isfinite(work).all() and work[0, 0] > 8.5e37


# -- the compiled loop --------------------------------------------------------------------

def loop_config(flags, dtype, returns_value=False, inplace=False,
                batched=False):
    return (flags, dtype, returns_value, False, inplace, False, batched)


def x_of(work):
    """What the compiled loop hands the user's function as x: a read-only
    view of the iterate, as the python driver hands it."""
    view = work[0].view()
    view.flags.writeable = False
    return view


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIGS[:2], ids=range(2))
def test_the_loop_is_repeated_steps(config, dtype):
    n_iter = 40
    flags, rows, work, scalars = prepare({**config, "gtol": 0},
                                         X0.astype(dtype))
    # repeated steps, each with the gradient at the new x
    w, s = work.copy(), scalars.copy()
    step = _cpu.step_entry_point(flags, dtype)
    for _ in range(n_iter):
        assert step(w, rosen_grad_jit(w[0]), s, True) == STEPPED
    for fn, returns_value, inplace in (
            (rosen_grad_jit, False, False),
            (rosen_grad_into_jit, False, True),
            (rosen_value_and_grad_jit, True, False)):
        cfg = loop_config(flags, dtype, returns_value, inplace)
        lw, ls = work.copy(), scalars.copy()
        g = rosen_grad_jit(lw[0])
        loop = _cpu.loop_entry_point(cfg, fn, lw, x_of(lw), g, (), ())
        # in chunks, as the driver calls it: the same bits
        for chunk in (1, 7, n_iter - 8):
            assert loop(fn, lw, x_of(lw), g, ls, chunk, (), ()) == STEPPED
        np.testing.assert_array_equal(lw, w)
        assert ls[T] == ls[NIT] == n_iter and ls[NGRAD] == n_iter
        # g is the gradient at the final x, and f fun there
        np.testing.assert_array_equal(g, rosen_grad_jit(lw[0]))
        if returns_value:
            assert ls[FVAL] == rosen_jit(lw[0])


def test_the_loop_stops_with_the_steps_code():
    flags, _, work, scalars = prepare({"lr": 0.01}, X0.copy())
    cfg = loop_config(flags, "float64")
    g = rosen_grad_jit(work[0])
    loop = _cpu.loop_entry_point(cfg, rosen_grad_jit, work, x_of(work), g, (), ())
    scalars[GTOL] = 1e9  # converged at x0: no step, no gradient call
    assert loop(rosen_grad_jit, work, x_of(work), g, scalars, 10, (), ()) == CONVERGED
    assert scalars[NIT] == scalars[NGRAD] == 0
    np.testing.assert_array_equal(work[0], X0)
    scalars[GTOL] = 0
    g[2] = np.nan  # no step on a NaN gradient
    assert loop(rosen_grad_jit, work, x_of(work), g, scalars, 10, (), ()) == \
        NONFINITE_GRAD
    assert scalars[NIT] == 0
    np.testing.assert_array_equal(work[0], X0)


def test_batched_loop_ends_with_the_epoch_and_sums_its_losses():
    size, n_samples = 10, BATCH_Y.size
    per_epoch = -(-n_samples // size)
    flags, rows, work, scalars = prepare({"lr": 0.05}, np.zeros(4))
    scalars[GTOL] = -1.0  # a batch gradient is never convergence
    scalars[BATCH_SIZE], scalars[N_SAMPLES] = size, n_samples
    args, mask = (BATCH_A, BATCH_Y), (0, 0)
    f, g = lsq_vg(work[0], BATCH_A[:size], BATCH_Y[:size])
    scalars[FVAL] = scalars[LOSS_SUM] = f
    # the oracle: the batches replayed with the step
    w, s = work.copy(), scalars.copy()
    step = _cpu.step_entry_point(flags, "float64")
    losses, gb = [f], g.copy()
    for k in range(per_epoch):
        assert step(w, gb, s, True) == STEPPED
        if k + 1 < per_epoch:
            start = (k + 1) * size
            fb, gb = lsq_vg(w[0], BATCH_A[start:start + size],
                            BATCH_Y[start:start + size])
            losses.append(fb)
    cfg = loop_config(flags, "float64", returns_value=True, batched=True)
    loop = _cpu.loop_entry_point(cfg, lsq_vg, work, x_of(work), g, args, mask)
    # more iterations asked than the epoch holds: it stops at its end
    assert loop(lsq_vg, work, x_of(work), g, scalars, 1000, args, mask) == STEPPED
    np.testing.assert_array_equal(work, w)
    assert scalars[NIT] == per_epoch and scalars[BATCH_POS] == per_epoch
    assert scalars[NGRAD] == per_epoch - 1  # no gradient past the end
    total = 0.0
    for loss in losses:
        total += loss
    assert scalars[LOSS_SUM] == total and len(losses) == per_epoch
    # within an epoch, a chunk stops where asked, and goes on from there
    flags2, _, work2, scalars2 = prepare({"lr": 0.05}, np.zeros(4))
    scalars2[GTOL] = -1.0
    scalars2[BATCH_SIZE], scalars2[N_SAMPLES] = size, n_samples
    f2, g2 = lsq_vg(work2[0], BATCH_A[:size], BATCH_Y[:size])
    scalars2[FVAL] = scalars2[LOSS_SUM] = f2
    assert loop(lsq_vg, work2, x_of(work2), g2, scalars2, 4, args, mask) == STEPPED
    assert scalars2[BATCH_POS] == 4
    assert loop(lsq_vg, work2, x_of(work2), g2, scalars2, 1000, args, mask) == STEPPED
    np.testing.assert_array_equal(work2, w)
    assert scalars2[LOSS_SUM] == total


# -- compiled once ------------------------------------------------------------------------

def test_entry_points_are_cached_and_compile_nothing_new():
    flags, _, work, scalars = prepare({"momentum": 0.3}, X0.copy())
    step = _cpu.make_step(flags, "float64")
    assert _cpu.make_step(flags, "float64", parallel=0) is step
    entry = _cpu.step_entry_point(flags, "float64")
    count = len(step.signatures)
    assert _cpu.step_entry_point(flags, "float64", False) is entry
    assert len(step.signatures) == count

    cfg = loop_config(flags, "float64")
    g = rosen_grad_jit(work[0])
    loop_entry = _cpu.loop_entry_point(cfg, rosen_grad_jit, work, x_of(work), g, (), ())
    loop = _cpu.make_loop(*cfg)
    count = len(loop.signatures)
    # the same argument types: the same entry point, nothing compiled
    other = work.copy()
    assert _cpu.loop_entry_point(list(cfg), rosen_grad_jit, other, x_of(other),
                                 g.copy(), (), ()) is loop_entry
    assert len(loop.signatures) == count
    # a new jitted function of the same signature: the same compiled loop
    new_grad = numba.njit(rosen_grad_jit.py_func)
    new_grad(work[0])  # compiled by the run's first gradient call
    assert _cpu.loop_entry_point(cfg, new_grad, work, x_of(work), g, (), ()) is \
        loop_entry
    assert len(loop.signatures) == count
    assert loop_entry(new_grad, work, x_of(work), g, scalars, 3, (), ()) == STEPPED
    assert scalars[NIT] == 3
