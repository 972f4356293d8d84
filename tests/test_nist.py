"""rmsopt.curve_fit on NIST's certified nonlinear regression problems.

The 27 problems of the StRD (``tests/nist.py``: the data, the certified
values and their source), from both published starting points: 54 fits.
Every fit that returns must be right, to at least 4 correct digits of every
parameter (the StRD's log relative error) and 2 of every standard error;
a fit that cannot reach that must raise. No returned fit may be a false
success. scipy's own curve_fit returns two false successes on this suite
(``benchmarks/nist.py``).
"""

import warnings

import numpy as np
import pytest

import nist
import rmsopt

FITS = [(name, start) for name in nist.NAMES for start in (0, 1)]

# MGH17 from start 1 (b4 = 1, b5 = 2, ten times the certified values) lies
# in the basin of a degenerate local minimum (the two exponentials merge,
# RSS 1000x the certified one), where scipy's curve_fit also ends: rmsopt
# must raise there rather than return it.
MAY_RAISE = {("MGH17", 0)}


@pytest.mark.parametrize("name, start", FITS,
                         ids=[f"{n}-start{s + 1}" for n, s in FITS])
def test_certified_digits(name, start):
    problem = nist.load(name)
    p0 = problem.starts[start]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # exp overflow
            popt, pcov = rmsopt.curve_fit(problem.model, problem.x,
                                          problem.y, p0=p0)
    except RuntimeError as exc:
        assert (name, start) in MAY_RAISE, f"raised: {exc}"
        assert "Optimal parameters not found" in str(exc)
        return
    digits = nist.correct_digits(popt, problem)
    assert digits >= 4, f"a false success: {digits:.1f} correct digits"
    rss = float(np.sum((problem.model(problem.x, *popt) - problem.y) ** 2))
    assert rss <= problem.rss * (1 + 1e-6)
    if name.startswith("Gauss") and nist.correct_digits(
            popt, problem._replace(name="")) < 4:
        return  # the peaks swapped: the same curve, its errors reordered
    std = np.sqrt(np.diag(pcov))
    error = np.abs(std - problem.std) / problem.std
    assert np.all(error <= 1e-2), f"standard errors off by {error.max():.2g}"


def test_no_polish_never_returns_a_wrong_fit():
    """The pure RMSProp result: right or raised, on the lower-difficulty
    problems that RMSProp alone can finish."""
    for name in ("Misra1a", "Chwirut2", "DanWood", "Misra1b"):
        problem = nist.load(name)
        try:
            popt, _ = rmsopt.curve_fit(problem.model, problem.x, problem.y,
                                       p0=problem.starts[1], polish=False,
                                       maxiter=5000)
        except RuntimeError as exc:
            assert "max_iter=5000" in str(exc) or "stalled" in str(exc)
            continue
        assert nist.correct_digits(popt, problem) >= 4, name
