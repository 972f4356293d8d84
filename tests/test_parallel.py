"""The threaded step: same bits as the serial one, safe from many threads,
and kept apart from the serial build in numba's disk cache."""

import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest

import rmsopt
from rmsopt._options import parse_options
from problems import rosen_grad_into_jit, rosen_grad_jit, rosen_jit

N = 3000
X0 = np.linspace(-1.5, 1.5, N)
OPTIONS = [
    {},
    {"centered": True, "momentum": 0.9, "weight_decay": 0.01},
    {"convention": "tf1", "momentum": 0.5, "nesterov": True,
     "bias_correction": True},
]


def grad(x):
    """A Python jac (python driver) computing the same bits."""
    return rosen_grad_jit(x)


# Threaded builds compile slowly (seconds each): every option set in
# float64, one in float32.
@pytest.mark.parametrize("options, dtype", [
    *((options, np.float64) for options in OPTIONS),
    (OPTIONS[1], np.float32)])
def test_threads_give_the_serial_bits(options, dtype):
    x0 = np.clip(X0, -1.0, 1.2).astype(dtype)
    bounds = [(-1.0, 1.2)] * N
    results = []
    for parallel in (False, True):
        for jac in (rosen_grad_into_jit, grad):  # nopython, python driver
            results.append(rmsopt.minimize(
                rosen_jit, x0, jac=jac, bounds=bounds,
                options={**options, "parallel": parallel, "maxiter": 40,
                         "gtol": 0}))
    for res in results[1:]:
        np.testing.assert_array_equal(res.x, results[0].x)
        np.testing.assert_array_equal(res.state["square_avg"],
                                      results[0].state["square_avg"])
    assert results[0].nit == 40


def test_concurrent_calls_from_threads_are_safe():
    # numba's workqueue layer aborts on concurrent parallel calls: all but
    # one of these runs must go serial, and every one must give the bits.
    expected = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_into_jit,
                               options={"parallel": False, "maxiter": 200})
    out = [None] * 6

    def work(k):
        jac = rosen_grad_into_jit if k % 2 else grad
        out[k] = rmsopt.minimize(rosen_jit, X0, jac=jac,
                                 options={"parallel": True, "maxiter": 200})
    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for res in out:
        np.testing.assert_array_equal(res.x, expected.x)


def test_auto_tries_threads_only_for_large_problems():
    assert parse_options({}, 1000).parallel is False
    big = parse_options({}, 10**6).parallel
    assert big == ("auto" if numba.get_num_threads() > 1 else False)
    assert parse_options({"parallel": True}, 10).parallel is True


def test_auto_times_both_ways_and_keeps_the_bits():
    # Large enough to be a candidate: the run times serial and threaded
    # checks (read-only) before choosing; the result is the same either way.
    x0 = np.linspace(-1.0, 1.0, 60_000)
    results = [rmsopt.minimize(rosen_jit, x0, jac=jac,
                               options={"parallel": parallel, "maxiter": 5,
                                        "gtol": 0})
               for parallel in ("auto", False)
               for jac in (rosen_grad_into_jit, grad)]
    for res in results[1:]:
        np.testing.assert_array_equal(res.x, results[0].x)
        assert res.nit == 5 and res.njev == 6
    with pytest.raises(ValueError, match="parallel must be 'auto', True or"):
        parse_options({"parallel": "yes"}, 10)


_CACHE_PROBE = '''
import numpy as np, rmsopt
from rmsopt import _cpu
from rmsopt._options import parse_options
for parallel in (False, True):
    res = rmsopt.minimize(lambda x: 0.0, np.linspace(-1, 1, 50),
                          jac=lambda x: 2 * x,
                          options={"maxiter": 3, "parallel": parallel})
    step = _cpu.make_step(parse_options({}, 50).flags, "float64", parallel)
    print(parallel, sum(step.stats.cache_hits.values()),
          sum(step.stats.cache_misses.values()), res.x[0])
'''


def test_serial_and_threaded_builds_do_not_share_a_cache_entry(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", _CACHE_PROBE], env=env,
                           capture_output=True, text=True,
                           check=True).stdout.split("\n")[:2]
            for _ in range(2)]
    second = [line.split() for line in runs[1]]
    for parallel, hits, misses, _ in second:
        assert (hits, misses) != ("0", "0")
        assert misses == "0", runs
    assert len(list(tmp_path.rglob("*step*.nbc"))) == 2
