"""NIST's Statistical Reference Datasets for nonlinear regression (StRD).

The 27 problems of lower, average and higher difficulty, each with two
published starting points and certified parameters, standard deviations
and residual sum of squares. The data files in ``tests/data/nist_strd`` are
NIST's (National Institute of Standards and Technology, Information
Technology Laboratory, https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml;
a work of the US government, in the public domain), as distributed with the
lmfit-py repository (``NIST_STRD/``). The models below are written from the
formulas in each file's header.

``load(name)`` gives a :class:`Problem`; ``correct_digits`` the log relative
error (LRE) that the StRD uses to grade an answer.
"""

import pathlib
import re
from typing import NamedTuple

import numpy as np

DATA = pathlib.Path(__file__).parent / "data" / "nist_strd"


def _exp(x):
    return np.exp(x)


# name -> model(x, *b); Nelson's response is log(y), x its two predictors.
MODELS = {
    "Bennett5": lambda x, b1, b2, b3: b1 * (b2 + x) ** (-1 / b3),
    "BoxBOD": lambda x, b1, b2: b1 * (1 - _exp(-b2 * x)),
    "Chwirut1": lambda x, b1, b2, b3: _exp(-b1 * x) / (b2 + b3 * x),
    "Chwirut2": lambda x, b1, b2, b3: _exp(-b1 * x) / (b2 + b3 * x),
    "DanWood": lambda x, b1, b2: b1 * x ** b2,
    "ENSO": lambda x, b1, b2, b3, b4, b5, b6, b7, b8, b9: (
        b1 + b2 * np.cos(2 * np.pi * x / 12) + b3 * np.sin(2 * np.pi * x / 12)
        + b5 * np.cos(2 * np.pi * x / b4) + b6 * np.sin(2 * np.pi * x / b4)
        + b8 * np.cos(2 * np.pi * x / b7) + b9 * np.sin(2 * np.pi * x / b7)),
    "Eckerle4": lambda x, b1, b2, b3: (
        (b1 / b2) * _exp(-0.5 * ((x - b3) / b2) ** 2)),
    "Gauss1": lambda x, b1, b2, b3, b4, b5, b6, b7, b8: (
        b1 * _exp(-b2 * x) + b3 * _exp(-(x - b4) ** 2 / b5 ** 2)
        + b6 * _exp(-(x - b7) ** 2 / b8 ** 2)),
    "Hahn1": lambda x, b1, b2, b3, b4, b5, b6, b7: (
        (b1 + b2 * x + b3 * x ** 2 + b4 * x ** 3)
        / (1 + b5 * x + b6 * x ** 2 + b7 * x ** 3)),
    "Kirby2": lambda x, b1, b2, b3, b4, b5: (
        (b1 + b2 * x + b3 * x ** 2) / (1 + b4 * x + b5 * x ** 2)),
    "Lanczos1": lambda x, b1, b2, b3, b4, b5, b6: (
        b1 * _exp(-b2 * x) + b3 * _exp(-b4 * x) + b5 * _exp(-b6 * x)),
    "MGH09": lambda x, b1, b2, b3, b4: (
        b1 * (x ** 2 + x * b2) / (x ** 2 + x * b3 + b4)),
    "MGH10": lambda x, b1, b2, b3: b1 * _exp(b2 / (x + b3)),
    "MGH17": lambda x, b1, b2, b3, b4, b5: (
        b1 + b2 * _exp(-x * b4) + b3 * _exp(-x * b5)),
    "Misra1a": lambda x, b1, b2: b1 * (1 - _exp(-b2 * x)),
    "Misra1b": lambda x, b1, b2: b1 * (1 - (1 + b2 * x / 2) ** (-2)),
    "Misra1c": lambda x, b1, b2: b1 * (1 - (1 + 2 * b2 * x) ** (-0.5)),
    "Misra1d": lambda x, b1, b2: b1 * b2 * x * ((1 + b2 * x) ** (-1)),
    "Nelson": lambda x, b1, b2, b3: b1 - b2 * x[0] * _exp(-b3 * x[1]),
    "Rat42": lambda x, b1, b2, b3: b1 / (1 + _exp(b2 - b3 * x)),
    "Rat43": lambda x, b1, b2, b3, b4: (
        b1 / ((1 + _exp(b2 - b3 * x)) ** (1 / b4))),
    "Roszman1": lambda x, b1, b2, b3, b4: (
        b1 - b2 * x - np.arctan(b3 / (x - b4)) / np.pi),
}
MODELS["Gauss2"] = MODELS["Gauss3"] = MODELS["Gauss1"]
MODELS["Lanczos2"] = MODELS["Lanczos3"] = MODELS["Lanczos1"]
MODELS["Thurber"] = MODELS["Hahn1"]

NAMES = sorted(MODELS)


class Problem(NamedTuple):
    name: str
    model: object
    x: np.ndarray
    y: np.ndarray
    starts: tuple          # the two published starting points
    certified: np.ndarray  # the certified parameters
    std: np.ndarray        # and their standard deviations
    rss: float             # the certified residual sum of squares


def _lines(text, what):
    first, last = re.search(rf"{what}\s+\(lines\s+(\d+)\s+to\s+(\d+)\)",
                            text).groups()
    return text.splitlines()[int(first) - 1:int(last)]


def load(name):
    """The problem ``name`` of the StRD, as its file gives it."""
    text = (DATA / f"{name}.dat").read_text()
    rows = [line.split() for line in _lines(text, "Certified Values")
            if line.strip().startswith("b")]
    starts = (np.array([float(r[2]) for r in rows]),
              np.array([float(r[3]) for r in rows]))
    certified = np.array([float(r[4]) for r in rows])
    std = np.array([float(r[5]) for r in rows])
    rss = float(re.search(r"Residual Sum of Squares:\s+(\S+)", text)[1])
    data = np.array([[float(v) for v in line.split()]
                     for line in _lines(text, "Data") if line.strip()])
    y, x = data[:, 0], data[:, 1:]
    if name == "Nelson":  # log[y] = model(x1, x2)
        y, x = np.log(y), x.T
    else:
        x = x[:, 0]
    return Problem(name, MODELS[name], x, y, starts, certified, std, rss)


def correct_digits(estimate, problem):
    """The StRD's log relative error, the least over the parameters: about
    the number of digits that agree (0 when nothing does, at most 15).
    Where the model is symmetric (Gauss1-3: the two peaks swapped), the
    better ordering counts: it is the same curve."""
    estimate = np.asarray(estimate, dtype=float)
    orders = [np.arange(estimate.size)]
    if problem.name.startswith("Gauss"):
        orders.append(np.array([0, 1, 5, 6, 7, 2, 3, 4]))
    return max(_lre(estimate[order], problem.certified) for order in orders)


def _lre(estimate, certified):
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.abs(estimate - certified) / np.abs(certified)
        lre = -np.log10(error)
    lre = np.where(np.isfinite(lre), lre, np.where(error == 0, 15.0, 0.0))
    return float(np.clip(lre, 0.0, 15.0).min())
