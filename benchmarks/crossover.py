"""Where the threaded step starts to beat the serial one.

Times ``rmsopt.minimize`` with an in-place jitted gradient that leaves the
gradient unchanged (so the step dominates), serial and threaded, interleaved
in a random order each round, medians over rounds; prints the ratio per
size. The crossover chosen in ``rmsopt._options.PARALLEL_CROSSOVER`` comes from
this script. The gradient and the timing harness are
benchmarks/benchmarks/common.py's.

    python benchmarks/crossover.py [--rounds 7] [sizes ...]
"""

import argparse

import numba
import numpy as np

from benchmarks.common import constant_grad_out, interleaved_rounds, \
    medians, minimize_runner, per_iteration, zero


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
        x0 = np.linspace(-1.0, 1.0, n)
        runs = {parallel: minimize_runner(zero, x0, constant_grad_out,
                                          lr=1e-6, parallel=parallel)
                for parallel in (False, True)}
        for run in runs.values():
            run(2)  # compile / load from the cache
        times = medians(interleaved_rounds(
            {parallel: per_iteration(run, iterations)
             for parallel, run in runs.items()}, args.rounds))
        serial, threaded = times[False], times[True]
        print(f"| {n:,} | {serial * 1e6:.1f} | {threaded * 1e6:.1f} | "
              f"{serial / threaded:.2f} |")


if __name__ == "__main__":
    main()
