"""The python and nopython drivers: same bits, chunking, casts, errors, Ctrl-C."""

import os
import subprocess
import sys
import threading
import _thread

import numba
import numpy as np
import pytest

import rmsopt
from rmsopt import _cpu
from problems import (LSQ_A, LSQ_Y, X0, assert_same, lsq_fun, lsq_grad_jit,
                      rosen, rosen_der, rosen_grad_into_jit, rosen_grad_jit,
                      rosen_jit, rosen_value_and_grad_into_jit,
                      rosen_value_and_grad_jit)

OPTION_SETS = [
    {},
    {"momentum": 0.9, "centered": True, "weight_decay": 0.01},
    {"convention": "tf1", "momentum": 0.5, "nesterov": True,
     "bias_correction": True, "maximize": False, "lr": 1e-3},
]


def both(fun, x0, jac, **kwargs):
    options = kwargs.pop("options", {})
    fast = rmsopt.minimize(fun, x0, jac=jac, options=options, **kwargs)
    slow = rmsopt.minimize(fun, x0, jac=jac,
                           options={**options, "driver": "python"}, **kwargs)
    return fast, slow


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", OPTION_SETS)
def test_drivers_give_identical_bits(dtype, options):
    fast, slow = both(rosen_jit, X0.astype(dtype), rosen_grad_jit,
                      options={"maxiter": 300, "gtol": 0, **options})
    assert fast.x.dtype == dtype
    assert_same(fast, slow)


def test_drivers_identical_with_bounds_args_and_jac_true():
    a, y = LSQ_A, LSQ_Y
    fast, slow = both(lsq_fun, np.zeros(5), lsq_grad_jit, args=(a, y),
                      bounds=[(-0.5, 0.5)] * 5, options={"maxiter": 200})
    assert_same(fast, slow)
    fast, slow = both(rosen_value_and_grad_jit, X0, True,
                      options={"maxiter": 200})
    assert_same(fast, slow)
    assert fast.nfev == fast.njev == 201


def test_chunking_and_callbacks_do_not_change_the_bits():
    plain = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                            options={"maxiter": 5000, "gtol": 0})
    for driver in ("nopython", "auto"):  # chunks of one; the python driver
        seen = []
        stepwise = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                                   callback=seen.append,
                                   options={"maxiter": 5000, "gtol": 0,
                                            "driver": driver})
        assert len(seen) == 5000
        assert_same(plain, stepwise)


def test_auto_takes_the_python_driver_when_there_is_a_callback(monkeypatch):
    def no_loop(*args):
        raise AssertionError("the compiled loop was used")
    monkeypatch.setattr(_cpu, "loop_entry_point", no_loop)
    res = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                          callback=lambda xk: None, options={"maxiter": 20})
    assert res.nit == 20
    with pytest.raises(AssertionError, match="compiled loop"):
        rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                        options={"maxiter": 20})


def test_nopython_stop_iteration_and_nan():
    def callback(intermediate_result):
        if intermediate_result.nit == 7:
            raise StopIteration
    res = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                          callback=callback, options={"driver": "nopython"})
    assert res.status == 99 and res.nit == 7

    @numba.njit
    def nan_after_a_while(x):
        g = 2.0 * x
        if x[0] < 0.5:
            g[0] = np.nan
        return g
    res = rmsopt.minimize(lambda x: float(x @ x), np.ones(2),
                          jac=nan_after_a_while, options={"lr": 0.1})
    slow = rmsopt.minimize(lambda x: float(x @ x), np.ones(2),
                           jac=nan_after_a_while,
                           options={"lr": 0.1, "driver": "python"})
    assert res.status == 3 and np.isfinite(res.x).all()
    assert res.x[0] < 0.5 and res.nit == slow.nit
    np.testing.assert_array_equal(res.x, slow.x)


def test_jitted_gradient_of_another_dtype_is_cast_identically():
    @numba.njit
    def grad64(x):
        return rosen_grad_jit(x.astype(np.float64))
    x0 = X0.astype(np.float32)
    fast, slow = both(rosen, x0, grad64, options={"maxiter": 100})
    assert fast.x.dtype == np.float32
    assert_same(fast, slow)


@numba.njit("float64[:](float64[:])")
def _grad_explicit(x):
    return rosen_grad_jit(x)


@numba.njit("void(float64[:], float64[:])")
def _grad_into_explicit(x, out):
    out[:] = rosen_grad_jit(x)


@pytest.mark.parametrize("grad", [_grad_explicit, _grad_into_explicit])
def test_jitted_gradient_with_an_explicit_signature(grad):
    # compilation is disabled for other types: the loop must call the
    # declared overload (layout 'A'), not ask for a C-contiguous one
    options = {"maxiter": 100, "driver": "nopython"}
    fast = rmsopt.minimize(rosen, X0, jac=grad, options=options)
    plain = rmsopt.minimize(rosen, X0, jac=rosen_grad_jit, options=options)
    assert_same(fast, plain)
    assert fast.nit == 100


def test_jitted_gradient_of_wrong_length_is_an_error():
    @numba.njit
    def grad(x):
        return np.zeros(x.size + 1) if x[0] > -1.1 else 2 * x
    with pytest.raises(ValueError, match=r"gradient must have shape \(5,\)"):
        rmsopt.minimize(rosen, X0, jac=grad, options={"driver": "nopython"})


def test_untypable_arguments_fall_back_to_the_python_driver():
    @numba.njit
    def grad(x):
        return (2 * x[0], 2 * x[1])  # a tuple: fine from Python, not in-loop
    with pytest.warns(RuntimeWarning, match="using the python driver"):
        res = rmsopt.minimize(lambda x: float(x @ x), np.ones(2), jac=grad,
                              options={"maxiter": 3})
    ref = rmsopt.minimize(lambda x: float(x @ x), np.ones(2),
                          jac=lambda x: 2 * x, options={"maxiter": 3})
    np.testing.assert_array_equal(res.x, ref.x)
    assert res.nit == 3 and res.njev == 4


def test_second_call_compiles_nothing_new():
    options = {"maxiter": 10, "momentum": 0.3}
    rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit, options=options)
    rmsopt.minimize(rosen, X0, jac=rosen_grad_jit,
                    options={**options, "driver": "python"})
    flags = rmsopt._options.parse_options(options, 5).flags
    step = _cpu.make_step(flags, "float64")
    loop = _cpu.make_loop(flags, "float64", False, False, False)
    counts = [len(d.signatures) for d in (step, loop)]
    rmsopt.minimize(rosen_jit, X0 + 1, jac=rosen_grad_jit, options=options)
    rmsopt.minimize(rosen, X0 + 1, jac=rosen_grad_jit,
                    options={**options, "driver": "python"})
    assert [len(d.signatures) for d in (step, loop)] == counts
    # a new jitted function of the same signature reuses the compiled loop
    new_grad = numba.njit(rosen_grad_jit.py_func)
    res = rmsopt.minimize(rosen_jit, X0, jac=new_grad, options=options)
    assert res.nit == 10
    assert [len(d.signatures) for d in (step, loop)] == counts


_CACHE_PROBE = '''
import numpy as np, rmsopt
from rmsopt import _cpu
from rmsopt._options import parse_options
options = {"maxiter": 3, "centered": True, "lr": 0.123}
rmsopt.minimize(lambda x: 0.0, np.ones(3), jac=lambda x: x, options=options)
step = _cpu.make_step(parse_options(options, 3).flags, "float64")
print(sum(step.stats.cache_hits.values()), sum(step.stats.cache_misses.values()))
'''


def test_a_new_process_loads_the_step_from_the_disk_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    counts = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _CACHE_PROBE], env=env,
                             capture_output=True, text=True, check=True)
        counts.append(out.stdout.split())
    assert counts[0][1] != "0"             # the first process compiled
    assert counts[1][1] == "0", counts     # the second compiled nothing
    assert counts[1][0] != "0"
    # one cache entry per configuration, not one per process
    assert len(list(tmp_path.rglob("*step*.nbc"))) == 1


_LOOP_CACHE_PROBE = '''
import numba, numpy as np, rmsopt
from rmsopt import _cpu
from rmsopt._options import parse_options

@numba.njit  # a function new to this process
def grad(x, out, a):
    for i in range(x.size):
        out[i] = a * x[i]

options = {"maxiter": 3, "momentum": 0.25, "lr": 0.0123}
res = rmsopt.minimize(lambda x, a: 0.0, np.ones(3), jac=grad, args=(2.0,),
                      options=options)
assert res.nit == 3
loop = _cpu.make_loop(parse_options(options, 3).flags, "float64", False,
                      False, True)
print(sum(loop.stats.cache_hits.values()), sum(loop.stats.cache_misses.values()))
'''


def test_a_new_jitted_function_in_a_new_process_compiles_no_loop(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    counts = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _LOOP_CACHE_PROBE],
                             env=env, capture_output=True, text=True,
                             check=True)
        counts.append(out.stdout.split())
    assert counts[0][1] != "0"             # the first process compiled it
    assert counts[1] == ["1", "0"], counts  # the second loaded it


def test_ctrl_c_interrupts_the_compiled_loop_with_the_result():
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                            options={"maxiter": 10**12, "gtol": 0,
                                     "lr": 1e-6})
    finally:
        timer.cancel()
    res = info.value.result
    assert res.status == 98 and res.nit > 0
    assert res.njev == res.nit + 1
    assert res.state["step"] == res.nit
    np.testing.assert_array_equal(res.jac, rosen_grad_jit(res.x))


@pytest.mark.parametrize("driver", ["python", "nopython"])
def test_continuing_from_state_is_bit_identical(driver):
    options = {"momentum": 0.9, "centered": True, "bias_correction": True,
               "gtol": 0, "driver": driver}
    whole = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                            options={**options, "maxiter": 70})
    first = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                            options={**options, "maxiter": 30})
    rest = rmsopt.minimize(rosen_jit, first.x, jac=rosen_grad_jit,
                           options={**options, "maxiter": 40,
                                    "state": first.state})
    np.testing.assert_array_equal(rest.x, whole.x)
    assert rest.state["step"] == 70
    for key in ("square_avg", "grad_avg", "momentum_buffer"):
        np.testing.assert_array_equal(rest.state[key], whole.state[key])


# -- gradients written into a buffer: jac(x, out, *args) ---------------------

def rosen_der_into(x, out):
    out[:] = rosen_der(x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_in_place_gradients_give_the_same_bits(dtype):
    x0 = X0.astype(dtype)
    options = {"maxiter": 300, "gtol": 0, "momentum": 0.5}
    returning = rmsopt.minimize(rosen_jit, x0, jac=rosen_grad_jit,
                                options=options)
    for fun, jac in ((rosen_jit, rosen_grad_into_jit),
                     (rosen_value_and_grad_into_jit, True)):
        fast, slow = both(fun, x0, jac, options=options)
        assert_same(fast, slow)
        np.testing.assert_array_equal(fast.x, returning.x)
        np.testing.assert_array_equal(fast.jac, returning.jac)
    plain = rmsopt.minimize(rosen_jit, x0, jac=rosen_der_into,
                            options=options)
    reference = rmsopt.minimize(rosen_jit, x0, jac=rosen_der,
                                options=options)
    np.testing.assert_array_equal(plain.x, reference.x)


def test_in_place_value_and_gradient_counts():
    res = rmsopt.minimize(rosen_value_and_grad_into_jit, X0, jac=True,
                          options={"maxiter": 50})
    assert res.nfev == res.njev == 51
    assert res.fun == rosen_jit(res.x)


def test_a_parameter_merely_called_out_elsewhere_is_not_in_place():
    # only the second parameter counts: here `out` is the third
    res = rmsopt.minimize(lambda x, a, out: 0.0, X0, args=(1.0, 2.0),
                          jac=lambda x, a, out: rosen_der(x),
                          options={"maxiter": 3})
    assert res.nit == 3


_ALLOCATION_PROBE = '''
import numpy as np
from numba.core.runtime import rtsys
import rmsopt
from problems import rosen_jit, rosen_grad_into_jit, rosen_grad_jit
x0 = np.linspace(-1, 1, 50)
for jac in (rosen_grad_into_jit, rosen_grad_jit):  # compile (and start NRT)
    rmsopt.minimize(rosen_jit, x0, jac=jac, options={"maxiter": 2})
for jac in (rosen_grad_into_jit, rosen_grad_jit):
    counts = []
    for n in (1000, 100000):
        before = rtsys.get_allocation_stats().alloc
        rmsopt.minimize(rosen_jit, x0, jac=jac,
                        options={"maxiter": n, "gtol": 0, "lr": 1e-4})
        counts.append(rtsys.get_allocation_stats().alloc - before)
    print(*counts)
'''


def test_compiled_driver_allocates_nothing_per_iteration():
    tests = os.path.dirname(__file__)
    env = {**os.environ, "NUMBA_NRT_STATS": "1",
           "PYTHONPATH": os.pathsep.join([tests, os.environ.get(
               "PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", _ALLOCATION_PROBE], env=env,
                         capture_output=True, text=True, check=True)
    in_place, returning = [list(map(int, line.split()))
                           for line in out.stdout.split("\n")[:2]]
    # per chunk, not per iteration (chunks grow, so there are few)
    assert in_place[1] - in_place[0] < 100, in_place
    # the control: a jac returning a new array allocates every iteration
    assert returning[1] - returning[0] >= 99000, returning


_NO_CACHE_PROBE = '''
import numba, numpy as np, rmsopt
@numba.njit
def jac(x):
    return 2 * x
for jac_ in (jac, lambda x: 2 * x):  # nopython and python drivers
    res = rmsopt.minimize(lambda x: float(x @ x), np.ones(3), jac=jac_,
                          options={"maxiter": 5, "momentum": 0.3})
    assert res.nit == 5 and res.status == 1, res
print("ok")
'''


@pytest.mark.parametrize("unset_home", [False, True])
def test_works_where_the_cache_cannot_be_written(tmp_path, unset_home):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(blocker / "cache")}
    if unset_home:
        env.pop("HOME", None)
    out = subprocess.run([sys.executable, "-W", "error", "-c",
                          _NO_CACHE_PROBE], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    assert not (blocker.parent / "cache").exists()
