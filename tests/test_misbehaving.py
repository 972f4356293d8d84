"""User functions that misbehave, and Ctrl-C: the compiled driver is as safe
as the python one, nothing leaks, the counts on an interrupt are true."""

import _thread
import random
import threading
import tracemalloc

import numba
import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

import rmsopt
from problems import X0

DRIVERS = ["python", "nopython"]


@numba.njit
def raises_below(x, out):
    if x[0] < 0.9:
        raise ValueError("x[0] fell below 0.9")
    for i in range(x.size):
        out[i] = 1.0


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_exception_of_the_jitted_jac_reaches_the_caller(driver):
    with pytest.raises(ValueError, match=r"x\[0\] fell below 0\.9"):
        rmsopt.minimize(lambda x: 0.0, np.ones(3), jac=raises_below,
                        options={"lr": 0.05, "maxiter": 100,
                                 "driver": driver})


def test_a_failing_compiled_run_frees_its_arrays():
    """numba releases nothing of a frame an exception unwinds: the loop
    catches the user's exception, so each failing call frees its work and
    gradient arrays (24 MB at n = 1e6 leaked per call before)."""
    x0 = np.ones(200_000)  # three arrays of 1.6 MB per run
    for _ in range(2):  # compile and warm up outside the measurement
        with pytest.raises(ValueError):
            rmsopt.minimize(lambda x: 0.0, x0, jac=raises_below,
                            options={"lr": 0.05, "maxiter": 100,
                                     "driver": "nopython"})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            with pytest.raises(ValueError):
                rmsopt.minimize(lambda x: 0.0, x0, jac=raises_below,
                                options={"lr": 0.05, "maxiter": 100,
                                         "driver": "nopython"})
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < x0.nbytes, grown  # a leak would be 30 times that


@numba.njit
def raises_on_fifth_call(x, out, calls):
    calls[0] += 1
    if calls[0] == 5:
        raise ValueError("only the fifth call fails")
    for i in range(x.size):
        out[i] = x[i]


def test_an_exception_that_does_not_repeat_is_reported_as_such():
    calls = np.zeros(1, np.int64)
    with pytest.raises(RuntimeError, match="not deterministic"):
        rmsopt.minimize(lambda x, c: 0.0, np.ones(2), args=(calls,),
                        jac=raises_on_fifth_call,
                        options={"maxiter": 50, "driver": "nopython"})
    assert calls[0] == 6  # the failing call, then the one from Python


@numba.njit
def writes_into_x(x):
    x[0] = 5.0
    return 2 * x


@pytest.mark.parametrize("driver", ["python", "nopython", "auto"])
def test_a_jac_that_writes_into_x_fails_in_every_driver(driver):
    x0 = np.ones(2)
    with pytest.raises(numba.core.errors.TypingError, match="readonly"):
        rmsopt.minimize(lambda x: 0.0, x0, jac=writes_into_x,
                        options={"maxiter": 5, "driver": driver})
    np.testing.assert_array_equal(x0, [1.0, 1.0])


@numba.njit
def one_of_its_args(x, c, d):
    return c if x[0] > 0.9 else d


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_jac_returning_its_own_argument_never_sees_it_written(driver):
    c, d = np.array([1.0]), np.array([-0.5])
    res = rmsopt.minimize(lambda x, c, d: 0.0, np.ones(1), args=(c, d),
                          jac=one_of_its_args,
                          options={"lr": 0.05, "maxiter": 50,
                                   "driver": driver})
    assert res.x[0] < 0.9  # it took both branches
    np.testing.assert_array_equal(c, [1.0])
    np.testing.assert_array_equal(d, [-0.5])
    np.testing.assert_array_equal(res.jac, d)
    assert res.jac is not d


@numba.njit
def returns_a_tuple(x):
    return (2 * x[0], 2 * x[1])


@numba.njit
def may_return_none(x):
    if x[0] > 10:
        return None
    return 2 * x


@numba.njit
def returns_value_and_tuple(x):
    return x @ x, (2 * x[0], 2 * x[1])


@pytest.mark.parametrize("fun, jac, what", [
    (rosen, returns_a_tuple, "the gradient as a 1-D array"),
    (rosen, may_return_none, "the gradient as a 1-D array"),
    (returns_value_and_tuple, True, "a pair"),
])
def test_what_the_compiled_loop_cannot_call_is_a_clear_error(fun, jac,
                                                              what):
    with pytest.raises(TypeError, match=f"needs {what}"):
        rmsopt.minimize(fun, np.ones(2), jac=jac,
                        options={"maxiter": 5, "driver": "nopython"})
    # 'auto' runs the python driver instead, which converts a tuple
    with pytest.warns(RuntimeWarning, match="using the python driver"):
        auto = rmsopt.minimize(fun, np.ones(2), jac=jac,
                               options={"maxiter": 5})
    python = rmsopt.minimize(fun, np.ones(2), jac=jac,
                             options={"maxiter": 5, "driver": "python"})
    np.testing.assert_array_equal(auto.x, python.x)


# -- Ctrl-C -------------------------------------------------------------------------

def interrupted(run, after):
    """``run()`` interrupted by a Ctrl-C ``after`` seconds: its result."""
    timer = threading.Timer(after, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            run()
    finally:
        timer.cancel()
    return info.value.result


@pytest.mark.parametrize("jac_true", [False, True])
def test_the_counts_after_ctrl_c_are_the_calls_made(jac_true):
    """Counted when made: an interrupt inside the user's function, or
    between its return and the driver's count, finds it counted."""
    rng = random.Random(0)
    for _ in range(12):
        calls = {"fun": 0, "jac": 0}

        def fun(x):
            calls["fun"] += 1
            return (rosen(x), rosen_der(x)) if jac_true else rosen(x)

        def jac(x):
            calls["jac"] += 1
            return rosen_der(x)

        res = interrupted(lambda: rmsopt.minimize(
            fun, X0, jac=True if jac_true else jac,
            options={"maxiter": 10**9, "gtol": 0, "lr": 1e-6}),
            rng.uniform(0.01, 0.08))
        gradient_calls = calls["fun" if jac_true else "jac"]
        assert res.njev == gradient_calls
        assert res.nfev == calls["fun"]
        assert res.nit in (gradient_calls - 1, gradient_calls)
        if res.jac is not None:  # only where it is the gradient at x
            np.testing.assert_array_equal(res.jac, rosen_der(res.x))


@numba.njit
def slow_gradient(x, out, work):
    """The gradient of x @ x, after ``work`` steps of a serial chain of
    arithmetic (a slow gradient, as slow as ``work`` says)."""
    s = 0.0
    for i in range(work):
        s = s * 0.999999 + 1e-9
    for i in range(x.size):
        out[i] = 2 * x[i] + 0.0 * s


def test_ctrl_c_reaches_a_slow_compiled_loop_after_a_few_calls():
    """A chunk starts at one iteration and grows to about 50 ms: with a
    gradient of 50 ms, a Ctrl-C after 0.3 s is served after about six
    calls, not after a first chunk of sixteen. (The gradient's cost is
    measured first; a slower machine only makes fewer calls.)"""
    import time
    x, out = np.ones(2), np.ones(2)
    slow_gradient(x, out, 10)  # compile
    start = time.perf_counter()
    slow_gradient(x, out, 10**6)
    work = int(10**6 * 0.05 / (time.perf_counter() - start))

    def run(maxiter):
        return rmsopt.minimize(
            lambda x, work: 0.0, np.ones(2), jac=slow_gradient, args=(work,),
            options={"maxiter": maxiter, "gtol": 0, "lr": 1e-6,
                     "driver": "nopython"})
    run(1)  # compile the loop for these types first
    res = interrupted(lambda: run(10**6), 0.3)
    assert 0 < res.nit <= 10  # the old first chunk: 16
    assert res.njev == res.nit + 1
    np.testing.assert_array_equal(res.jac, 2 * res.x)


def test_chunks_grow_to_the_target_time_in_few_entries():
    """The chunk policy: sized from the last chunk's time per iteration,
    at most 16-fold larger each time, never below one iteration."""
    from rmsopt._drive import CHUNK_SECONDS, _next_chunk
    per_iteration = 1e-7  # a fast gradient: the target is 5e5 iterations
    chunk, entries = 1, 0
    while chunk < CHUNK_SECONDS / per_iteration / 2:
        chunk = _next_chunk(chunk, chunk, chunk * per_iteration)
        entries += 1
    assert entries <= 5  # doubling from 16 took 15
    assert _next_chunk(chunk, chunk, chunk * per_iteration) == \
        pytest.approx(CHUNK_SECONDS / per_iteration, rel=1e-6)
    assert _next_chunk(64, 64, 64 * 1.0) == 1  # a slow gradient: one
    assert _next_chunk(64, 10, 10.0) == 64  # cut short: no news
