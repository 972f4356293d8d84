"""pytest at the repository root: the doctests of rmsopt/ (--doctest-modules)
skip the estimators' module where scikit-learn, an optional extra, is not
installed (importing it raises an ImportError that says how to install it)."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("sklearn") is None:
    collect_ignore.append("rmsopt/models/_estimators.py")
