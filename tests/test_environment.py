"""Hostile environments, each in a process of its own: no writable numba
cache anywhere, a corrupt cache, numba's workqueue threading layer beside
the user's own parallel code. rmsopt imports, runs and gives the same
numbers; it never aborts."""

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

import rmsopt

PACKAGE = pathlib.Path(rmsopt.__file__).parent

# Imports rmsopt and its models, runs both drivers and a loss, prints the
# numbers (the same in every environment).
RUN = textwrap.dedent("""
    import numba, numpy as np, rmsopt
    from rmsopt.models import least_squares

    @numba.njit
    def grad(x, out):
        for i in range(x.size):
            out[i] = 2 * x[i] - 1

    x0 = np.linspace(-1, 1, 5)
    opts = {"maxiter": 50, "momentum": 0.5, "gtol": 0}
    a = rmsopt.minimize(lambda x: 0.0, x0, jac=grad, options=opts)
    b = rmsopt.minimize(lambda x: 0.0, x0, jac=lambda x: 2 * x - 1,
                        options=opts)
    X = np.arange(12.0).reshape(6, 2)
    c = rmsopt.minimize(least_squares, np.zeros(3),
                        args=(X, X @ [1.0, 2.0] + 3, 0.0, True), jac=True,
                        options=opts)
    print(repr(a.x.tolist()), repr(b.x.tolist()), repr(c.x.tolist()))
""")


def run(code, env, cwd=None):
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def base_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    return env


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    out = run(RUN, base_env(tmp_path_factory.mktemp("reference")))
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_no_writable_cache_location_compiles_in_memory(tmp_path, expected):
    """A read-only install, no NUMBA_CACHE_DIR, no usable home: numba has
    no locator at all. (As root, read-only folders are writable, so each
    place numba would write is blocked by a file where it wants a
    folder.)"""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "rmsopt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [site / "rmsopt", site / "rmsopt" / "models"]:
        (folder / "__pycache__").write_text("not a folder")
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(site), HOME=str(blocker),
               XDG_CACHE_HOME=str(blocker / "cache"),
               PYTHONDONTWRITEBYTECODE="1")
    out = run(RUN, env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
    assert out.stderr.count("compiles in memory") == 1, out.stderr


@pytest.mark.parametrize("damage", ["truncated index", "empty data",
                                    "garbage data", "garbage index"])
def test_a_corrupt_cache_is_recompiled(tmp_path, expected, damage):
    env = base_env(tmp_path)
    first = run(RUN, env)
    assert first.returncode == 0 and first.stdout == expected, first.stderr
    kind = "nbi" if "index" in damage else "nbc"
    files = sorted((tmp_path / "cache").rglob(f"*.{kind}"))
    assert files
    for path in files:
        data = path.read_bytes()
        path.write_bytes({"truncated index": data[:len(data) // 2],
                          "empty data": b"",
                          "garbage data": b"\x80\x04garbage" * 10,
                          "garbage index": b"garbage"}[damage])
    for _ in range(2):  # recompiles and repairs, then loads
        again = run(RUN, env)
        assert again.returncode == 0, again.stderr
        assert again.stdout == expected


THREADS = textwrap.dedent("""
    import threading, warnings
    import numba, numpy as np, rmsopt

    @numba.njit(parallel=True)
    def users_parallel_code(a):
        s = 0.0
        for i in numba.prange(a.size):
            s += np.sqrt(a[i])
        return s

    @numba.njit
    def grad(x, out):
        for i in range(x.size):
            out[i] = x[i]

    a = np.ones(10**6)
    users_parallel_code(a)
    stop = []

    def spin():
        while not stop:
            users_parallel_code(a)

    x0 = np.linspace(-1, 1, 200_000)
    runs = {}
    thread = threading.Thread(target=spin)
    thread.start()
    try:
        for parallel in (True, "auto"):
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                runs[parallel] = rmsopt.minimize(
                    lambda x: 0.0, x0, jac=grad,
                    options={"maxiter": 300, "gtol": 0,
                             "parallel": parallel}).x
            print(parallel, [str(w.message)[:30] for w in seen])
    finally:
        stop.append(True)
        thread.join()
    serial = rmsopt.minimize(lambda x: 0.0, x0, jac=grad,
                             options={"maxiter": 300, "gtol": 0,
                                      "parallel": False}).x
    print(all(np.array_equal(x, serial) for x in runs.values()))
""")


def test_the_workqueue_layer_beside_parallel_user_code_never_aborts(
        tmp_path):
    env = base_env(tmp_path)
    env.update(NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="2")
    out = run(THREADS, env)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    lines = out.stdout.splitlines()
    assert lines[-1] == "True"  # the same bits as the serial step
    assert "workqueue threading" in lines[0]  # parallel=True is told
    assert lines[1] == "auto []"  # 'auto' goes serial quietly


def test_a_threadsafe_layer_keeps_the_threads():
    from rmsopt import _threads
    layer = _threads.layer()
    assert layer in ("tbb", "omp", "workqueue")
    # alone in the process, or on a threadsafe layer: threads are allowed
    assert _threads.threadsafe() == (
        layer != "workqueue" or __import__("threading").active_count() == 1)
