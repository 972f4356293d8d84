"""Sphinx configuration for the rmsopt documentation.

Build (warnings are errors, as in CI)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Check the examples in these pages and in the docstrings::

    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest
"""

import os
import sys

# The repository root, so that ``import rmsopt`` works without installing it.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

try:
    from rmsopt import __version__ as release
except Exception:  # not importable yet, or no __version__: build anyway
    release = ""
version = release

project = "rmsopt"
author = "The rmsopt developers"
copyright = "The rmsopt developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
]

# The pages are self-contained: no intersphinx, because the build has no internet.
exclude_patterns = ["_build"]
templates_path = []

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc docstrings already state the types

numpydoc_show_class_members = False

# Code in ``>>>`` blocks (these pages and the docstrings) runs under
# ``-b doctest``; every block starts with these imports.
doctest_global_setup = """
import numpy as np
import scipy.optimize
import rmsopt
"""

# furo when it is installed (the ``docs`` extra), else Sphinx's built-in theme.
try:
    import furo  # noqa: F401
except ImportError:
    html_theme = "alabaster"
else:
    html_theme = "furo"
html_title = "rmsopt"
html_static_path = []
