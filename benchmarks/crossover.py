"""Where the threaded step starts to beat the serial one.

Times ``rmsopt.minimize`` with an in-place jitted gradient that leaves the
gradient unchanged (so the step dominates), serial and threaded, interleaved,
medians over rounds; prints the ratio per size. The crossover chosen in
``rmsopt._cpu.PARALLEL_CROSSOVER`` comes from this script.

    python benchmarks/crossover.py [--rounds 7] [sizes ...]
"""

import argparse
import statistics
import time

import numba
import numpy as np

import rmsopt


@numba.njit
def constant_gradient(x, out):
    """In-place form: a constant gradient, written on the first call only."""
    if out[0] != 1.0:
        out[:] = 1.0


def run(n, parallel, iterations):
    x0 = np.linspace(-1.0, 1.0, n)
    start = time.perf_counter()
    res = rmsopt.minimize(lambda x: 0.0, x0, jac=constant_gradient,
                          options={"maxiter": iterations, "gtol": 0.0,
                                   "parallel": parallel, "lr": 1e-6})
    elapsed = time.perf_counter() - start
    assert res.nit == iterations, res.message
    return elapsed / iterations


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int,
                        default=[2000, 5000, 10000, 20000, 50000, 100000,
                                 1000000, 10000000])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"numba threads: {numba.get_num_threads()}, layer "
          f"{numba.config.THREADING_LAYER}")
    print("| n | serial µs/step | threaded µs/step | serial/threaded |")
    print("|---|---|---|---|")
    for n in args.sizes:
        iterations = max(5, int(2e7 // n))
        for parallel in (False, True):  # compile / load from the cache
            run(n, parallel, 2)
        times = {False: [], True: []}
        for _ in range(args.rounds):
            for parallel in (False, True):
                times[parallel].append(run(n, parallel, iterations))
        serial = statistics.median(times[False])
        threaded = statistics.median(times[True])
        print(f"| {n:,} | {serial * 1e6:.1f} | {threaded * 1e6:.1f} | "
              f"{serial / threaded:.2f} |")


if __name__ == "__main__":
    main()
