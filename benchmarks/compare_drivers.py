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
g  rmsopt, nopython driver (auto), njit jac writing into ``out``
   (``jac(x, out)``, no allocation per iteration)

The problems, gradients, reference loops and the timing harness are
benchmarks/benchmarks/common.py's, shared with peers.py and the asv suite.

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
import os
import platform
import random
import statistics
import sys
import time
import warnings

import numpy as np
from scipy.optimize import rosen, rosen_der

import rmsopt

from benchmarks.common import ALPHA, EPS, LR, Problem, calibrate, fmt_time, \
    grad_alone_runner, interleaved_rounds, limit_runner, minimize_runner, \
    numpy_loop_runner, per_iteration, round_ratios, rosen_der_njit, \
    rosen_der_out, timed, versions

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
PROBLEMS = ("rosen2", "rosen100")


def make_runners(x0):
    """The cases on Rosenbrock from x0: key -> run(n_iter)."""
    return {
        "a": minimize_runner(rosen, x0, rosen_der),
        "b": grad_alone_runner(rosen_der, x0),
        "c": minimize_runner(rosen, x0, rosen_der_njit),
        "d": minimize_runner(rosen, x0, rosen_der_njit, driver="python"),
        "e": limit_runner(rosen_der_out, x0),
        "f": numpy_loop_runner(rosen_der, x0),
        "g": minimize_runner(rosen, x0, rosen_der_out),
    }


# -- checks and timing ------------------------------------------------------------

def check(runners):
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
    print(f"{versions()} ({os.path.dirname(rmsopt.__file__)}); "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"NUMBA_CACHE_DIR={os.environ.get('NUMBA_CACHE_DIR', '(unset)')}")
    print(f"RMSProp lr={LR}, alpha={ALPHA}, eps={EPS}, float64, gtol=0; "
          f"{args.rounds} rounds, cases in random order each round, "
          f"runs of ~{args.target_ms:g} ms\n")

    runners, counts, checks = {}, {}, {}
    for problem in map(Problem, PROBLEMS):
        name = problem.label
        runners[name] = make_runners(problem.x0)
        # Warm-up: compiles (or loads from cache) every kernel involved.
        t0 = time.perf_counter()
        for run in runners[name].values():
            run(10)
        warm = time.perf_counter() - t0
        checks[name] = check(runners[name])
        print(f"{name}: warm-up {warm:.2f} s; check after {CHECK_ITERS} "
              f"iterations: a, c, d, e match f (rtol 1e-12), c == d bitwise "
              f"({checks[name]})")
        counts[name] = {
            k: calibrate(run, target, 1000 if k in "abdf" else 10000)
            for k, run in runners[name].items()}
    print()

    per_iter = interleaved_rounds(
        {(name, k): per_iteration(runners[name][k], counts[name][k])
         for name in runners for k in CASES}, args.rounds, rng, collect=True)
    ratio = round_ratios(per_iter, lambda key: (key[0], "e"))
    overhead = {name: [a - b for a, b in zip(per_iter[name, "a"],
                                             per_iter[name, "b"])]
                for name in runners}

    med = statistics.median
    print("| problem | case | iterations per run | time per iteration "
          "(median) | min–max over rounds | × compiled limit (e) |")
    print("|---|---|---|---|---|---|")
    for name in runners:
        for k in CASES:
            ts = per_iter[name, k]
            print(f"| {name} | ({k}) {CASES[k]} | {counts[name][k]:,} | "
                  f"{fmt_time(med(ts))} | "
                  f"{fmt_time(min(ts))} – {fmt_time(max(ts))} | "
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


if __name__ == "__main__":
    warnings.simplefilter("error", RuntimeWarning)
    sys.exit(main())
