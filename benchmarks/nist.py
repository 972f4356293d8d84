#!/usr/bin/env python
"""rmsopt.curve_fit against scipy.optimize.curve_fit on NIST's StRD
nonlinear regression problems (27 problems, two starting points each).

For every fit: the correct digits of the parameters (the StRD's log
relative error, the least over the parameters; 0 when nothing agrees),
whether the fit claimed success, and its time. A *false success* is a fit
that returns (no exception) with fewer than 2 correct digits: the worst
outcome, since a user would take it for an answer. The data and the models
are ``tests/nist.py``'s.

    python benchmarks/nist.py [--no-polish] [--maxiter N] [--names A,B]
"""

import argparse
import pathlib
import sys
import time
import warnings

import numpy as np
import scipy.optimize as so

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tests"))
import nist  # noqa: E402

import rmsopt  # noqa: E402


def attempt(fit, problem, start):
    """``(correct digits or None when it raised, seconds)``."""
    t = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            popt, _ = fit(problem.model, problem.x, problem.y, p0=start)
        digits = nist.correct_digits(popt, problem)
    except (RuntimeError, ValueError, OverflowError, np.linalg.LinAlgError):
        digits = None
    return digits, time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-polish", action="store_true")
    parser.add_argument("--maxiter", type=int, default=None,
                        help="RMSProp's budget (curve_fit's default if "
                             "omitted)")
    parser.add_argument("--names", default=",".join(nist.NAMES))
    options = parser.parse_args()
    extra = {"polish": not options.no_polish}
    if options.maxiter is not None:
        extra["maxiter"] = options.maxiter

    def ours(*args, **kwargs):
        return rmsopt.curve_fit(*args, **kwargs, **extra)
    fits = {"rmsopt": ours, "scipy": so.curve_fit}
    rows, tally = [], {name: {"good": 0, "raised": 0, "false": 0, "weak": 0,
                              "times": []} for name in fits}
    for name in options.names.split(","):
        problem = nist.load(name)
        for k, start in enumerate(problem.starts, 1):
            row = [f"{name} start {k}"]
            for who, fit in fits.items():
                digits, seconds = attempt(fit, problem, start)
                t = tally[who]
                t["times"].append(seconds)
                if digits is None:
                    t["raised"] += 1
                    row.append("raised")
                else:
                    kind = ("good" if digits >= 4 else "weak" if digits >= 2
                            else "false")
                    t[kind] += 1
                    row.append(f"{digits:.1f}")
                row.append(f"{seconds * 1e3:.0f}")
            rows.append(row)
            print(" | ".join(row), flush=True)
    print()
    print("| fit | >= 4 digits | 2-4 digits | raised | false success "
          "(< 2 digits) | median time |")
    print("|---|---|---|---|---|---|")
    for who, t in tally.items():
        print(f"| {who} | {t['good']} | {t['weak']} | {t['raised']} | "
              f"{t['false']} | {np.median(t['times']) * 1e3:.0f} ms |")


if __name__ == "__main__":
    main()
