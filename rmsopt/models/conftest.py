"""pytest only: the doctests of this package (``--doctest-modules``) skip
the estimators' module where scikit-learn, an optional extra, is not
installed (importing it raises an ImportError that says how to install it).
Here, not at the repository root, where a ``conftest`` module would shadow
``tests/conftest.py`` for the tests' subprocesses."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("sklearn") is None:
    collect_ignore.append("_estimators.py")
