#!/usr/bin/env python
"""Time per iteration of rmsopt's two drivers against a Python floor and the
compiled limit, on Rosenbrock (n=2 and the chained n=100).

One RMSProp everywhere (PyTorch's): ``v = alpha*v + (1-alpha)*g*g;
x -= lr*g/(sqrt(v)+eps)``, lr=1e-3, alpha=0.99, eps=1e-8, float64, gtol=0 (no
early stop).

Cases
-----
a  rmsopt, python driver, NumPy jac (``scipy.optimize.rosen_der``)
b  the same NumPy jac called alone in a Python loop (floor for a Python jac)
c  rmsopt, nopython driver (auto), njit jac returning a new array
d  rmsopt, python driver (``driver="python"``), the same njit jac
e  compiled limit: the whole loop in one @njit function, gradient written
   into a preallocated buffer
f  plain NumPy loop (Python loop, NumPy update, NumPy gradient)

Method (see shared/PERFORMANCE.md): the machine is shared and noisy, so
trajectories are checked first, JIT compilation is warmed up, each case gets
an iteration count calibrated to about ``--target-ms`` per run, and every
round times all (problem, case) pairs once in a fresh random order. Reported:
medians over rounds of the time per iteration (run time / iterations, the
whole ``minimize`` call included), the median over rounds of the per-round
ratio to (e), and for (a) the median per-round difference (a) - (b).

Run::

    NUMBA_CACHE_DIR=/tmp/nbcache_bench PYTHONPATH=/work/main \\
        /work/venv/bin/python benchmarks/compare_drivers.py [--rounds 7]
    ... benchmarks/compare_drivers.py --quick      # smoke run, a few seconds
"""

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
import warnings

import numba
import numpy as np
import scipy
from scipy.optimize import rosen, rosen_der

import rmsopt

LR, ALPHA, EPS = 1e-3, 0.99, 1e-8
OPTIONS = dict(lr=LR, alpha=ALPHA, eps=EPS, gtol=0.0)
CHECK_ITERS = 1000

CASES = {
    "a": "rmsopt python driver, NumPy jac",
    "b": "NumPy jac alone (floor)",
    "c": "rmsopt nopython driver, njit jac",
    "d": "rmsopt python driver, njit jac",
    "e": "hand-written numba loop (compiled limit)",
    "f": "plain NumPy loop",
    "g": "rmsopt nopython driver, njit jac(x, out)",
}


# -- gradients ------------------------------------------------------------------

@numba.njit(error_model="numpy", cache=True)
def _rosen_der_into(x, der):
    """scipy's rosen_der, element by element, same operations in the same order."""
    n = x.shape[0]
    for i in range(1, n - 1):
        xm = x[i]
        der[i] = (200.0 * (xm - x[i - 1] ** 2)
                  - 400.0 * (x[i + 1] - xm ** 2) * xm - 2.0 * (1.0 - xm))
    der[0] = -400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0])
    der[n - 1] = 200.0 * (x[n - 1] - x[n - 2] ** 2)


@numba.njit(error_model="numpy", cache=True)
def rosen_der_nb(x):
    """scipy-style jitted jac: returns a new array."""
    der = np.empty_like(x)
    _rosen_der_into(x, der)
    return der


@numba.njit(error_model="numpy", cache=True)
def rosen_der_into_nb(x, out):
    """rmsopt's in-place form: the second parameter is named ``out``."""
    _rosen_der_into(x, out)


@numba.njit(error_model="numpy", cache=True)
def rmsprop_loop(x, v, g, lr, alpha, one_minus_alpha, eps, n_iter):
    """The compiled limit: the whole RMSProp loop, gradient into a buffer."""
    for _ in range(n_iter):
        _rosen_der_into(x, g)
        for i in range(x.shape[0]):
            gi = g[i]
            vi = alpha * v[i] + one_minus_alpha * gi * gi
            v[i] = vi
            x[i] = x[i] - lr * gi / (np.sqrt(vi) + eps)


# -- the cases: each maker returns run(n_iter) -> final x (or last gradient) ---

def _minimize(x0, jac, **extra):
    def run(n_iter):
        res = rmsopt.minimize(rosen, x0, jac=jac,
                              options=dict(OPTIONS, maxiter=n_iter, **extra))
        if res.nit != n_iter or res.status != 1:
            raise RuntimeError(f"unexpected stop: nit={res.nit}, "
                               f"status={res.status}: {res.message}")
        return res.x
    return run


def make_a(x0):
    return _minimize(x0, rosen_der)


def make_b(x0):
    def run(n_iter):
        x = x0.copy()
        jac = rosen_der
        g = None
        for _ in range(n_iter):
            g = jac(x)
        return g
    return run


def make_c(x0):
    return _minimize(x0, rosen_der_nb)


def make_d(x0):
    return _minimize(x0, rosen_der_nb, driver="python")


def make_e(x0):
    def run(n_iter):
        x = x0.copy()
        v = np.zeros_like(x)
        g = np.empty_like(x)
        rmsprop_loop(x, v, g, LR, ALPHA, 1.0 - ALPHA, EPS, n_iter)
        return x
    return run


def make_f(x0):
    def run(n_iter):
        x = x0.copy()
        v = np.zeros_like(x)
        jac, sqrt = rosen_der, np.sqrt
        lr, alpha, oma, eps = LR, ALPHA, 1.0 - ALPHA, EPS
        for _ in range(n_iter):
            g = jac(x)
            v *= alpha
            v += oma * g * g
            x -= lr * g / (sqrt(v) + eps)
        return x
    return run


def make_g(x0):
    return _minimize(x0, rosen_der_into_nb)


MAKERS = dict(a=make_a, b=make_b, c=make_c, d=make_d, e=make_e, f=make_f,
              g=make_g)


def problems():
    """Rosenbrock n=2 and chained n=100, from the classic (-1.2, 1, ...)."""
    out = {}
    for n in (2, 100):
        x0 = np.empty(n)
        x0[0::2] = -1.2
        x0[1::2] = 1.0
        out[f"Rosenbrock n={n}"] = x0
    return out


# -- checks and timing ------------------------------------------------------------

def check(x0, runners):
    """Same final x after CHECK_ITERS iterations; (c) and (d) bit-identical."""
    ref = runners["f"](CHECK_ITERS)
    finals = {k: runners[k](CHECK_ITERS) for k in "acdeg"}
    notes = []
    for k, x in finals.items():
        np.testing.assert_allclose(x, ref, rtol=1e-12, atol=0,
                                   err_msg=f"case {k} vs NumPy loop (f)")
        if not np.array_equal(x, ref):
            rel = np.max(np.abs(x - ref) / np.abs(ref))
            notes.append(f"{k}≠f by max rel {rel:.1e}")
    if not np.array_equal(finals["c"], finals["d"]):
        raise AssertionError("nopython (c) and python (d) drivers differ")
    return "all bit-identical" if not notes else "; ".join(notes)


def timed(run, n_iter):
    # No gc.collect() here: with numba loaded a full collection takes ~0.1 s.
    gc.disable()
    try:
        start = time.perf_counter()
        run(n_iter)
        return time.perf_counter() - start
    finally:
        gc.enable()


def calibrate(run, target_s, pilot):
    """An iteration count (1, 2 or 5 times a power of ten) for ~target_s."""
    n_iter, t = pilot, timed(run, pilot)
    while t < 0.01 and n_iter < 10**8:   # pilot too short to trust
        n_iter *= 10
        t = timed(run, n_iter)
    want = target_s * n_iter / t
    nice = [m * 10**e for e in range(2, 9) for m in (1, 2, 5)]
    return max(100, min(nice, key=lambda k: abs(np.log(k / want))))


def fixed_cost(runner, repeats):
    """Median time of a maxiter=1 minimize call (setup + one step + result)."""
    return statistics.median(timed(runner, 1) for _ in range(repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--target-ms", type=float, default=50.0,
                        help="aimed-at duration of one timed run")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 rounds of ~5 ms runs")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.target_ms = min(args.rounds, 2), 5.0
    rng = random.Random(args.seed)
    target = args.target_ms / 1e3

    print(f"# rmsopt drivers: time per iteration "
          f"({'quick' if args.quick else 'full'} run)\n")
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"scipy {scipy.__version__}, numba {numba.__version__}, "
          f"rmsopt {rmsopt.__version__} ({os.path.dirname(rmsopt.__file__)}); "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"NUMBA_CACHE_DIR={os.environ.get('NUMBA_CACHE_DIR', '(unset)')}")
    print(f"RMSProp lr={LR}, alpha={ALPHA}, eps={EPS}, float64, gtol=0; "
          f"{args.rounds} rounds, cases in random order each round, "
          f"runs of ~{args.target_ms:g} ms\n")

    runners, counts, checks = {}, {}, {}
    for name, x0 in problems().items():
        runners[name] = {k: make(x0) for k, make in MAKERS.items()}
        # Warm-up: compiles (or loads from cache) every kernel involved.
        t0 = time.perf_counter()
        for run in runners[name].values():
            run(10)
        warm = time.perf_counter() - t0
        checks[name] = check(x0, runners[name])
        print(f"{name}: warm-up {warm:.2f} s; check after {CHECK_ITERS} "
              f"iterations: a, c, d, e match f (rtol 1e-12), c == d bitwise "
              f"({checks[name]})")
        counts[name] = {
            k: calibrate(run, target, 1000 if k in "abdf" else 10000)
            for k, run in runners[name].items()}
    print()

    pairs = [(name, k) for name in runners for k in MAKERS]
    per_iter = {p: [] for p in pairs}
    ratio = {p: [] for p in pairs}
    overhead = {name: [] for name in runners}
    for _ in range(args.rounds):
        gc.collect()
        rng.shuffle(pairs)
        this = {}
        for name, k in pairs:
            n_iter = counts[name][k]
            this[name, k] = timed(runners[name][k], n_iter) / n_iter
        for (name, k), t in this.items():
            per_iter[name, k].append(t)
            ratio[name, k].append(t / this[name, "e"])
        for name in runners:
            overhead[name].append(this[name, "a"] - this[name, "b"])

    med = statistics.median
    print("| problem | case | iterations per run | time per iteration "
          "(median) | min–max over rounds | × compiled limit (e) |")
    print("|---|---|---|---|---|---|")
    for name in runners:
        for k in MAKERS:
            ts = per_iter[name, k]
            print(f"| {name} | ({k}) {CASES[k]} | {counts[name][k]:,} | "
                  f"{_fmt(med(ts))} | {_fmt(min(ts))} – {_fmt(max(ts))} | "
                  f"{med(ratio[name, k]):.2f}× |")
    print()
    for name in runners:
        ov = overhead[name]
        print(f"- {name}: (a) − (b) = {med(ov) * 1e6:.3f} µs per iteration "
              f"(median of per-round differences; range "
              f"{min(ov) * 1e6:.3f} – {max(ov) * 1e6:.3f} µs); "
              f"(c)/(e) = {med(ratio[name, 'c']):.2f}×, "
              f"(g)/(e) = {med(ratio[name, 'g']):.2f}×, "
              f"(d) − (e) = "
              f"{(med(per_iter[name, 'd']) - med(per_iter[name, 'e'])) * 1e6:.3f}"
              f" µs")

    repeats = 20 if args.quick else 200
    print(f"\nFixed cost of one `minimize` call (maxiter=1: validation, "
          f"setup, one step, final fun, result), median of {repeats}:")
    for name in runners:
        costs = ", ".join(
            f"({k}) {fixed_cost(runners[name][k], repeats) * 1e6:.0f} µs"
            for k in "acd")
        print(f"- {name}: {costs}")
    return 0


def _fmt(seconds):
    us = seconds * 1e6
    if us >= 10:
        return f"{us:.1f} µs"
    if us >= 1:
        return f"{us:.2f} µs"
    return f"{us:.3f} µs"


if __name__ == "__main__":
    warnings.simplefilter("error", RuntimeWarning)
    sys.exit(main())
