"""pytest set-up only: the shared problems live in problems.py, which the
tests (and the scripts they run in subprocesses) import.

Hypothesis keeps files (its example database, a cache of the constants it
finds in local modules) in ``.hypothesis`` under the working directory; its
pytest plugin writes the cache while collecting, before any fixture runs.
The tests never write into the repository, so these hooks point it at a
temporary folder for the session and remove that afterwards.
"""

import shutil
import tempfile

_HYPOTHESIS_HOME = []


def pytest_configure(config):
    try:
        from hypothesis import configuration
    except ImportError:
        return
    home = tempfile.mkdtemp(prefix="rmsopt-tests-hypothesis-")
    _HYPOTHESIS_HOME.append(home)
    configuration.set_hypothesis_home_dir(home)


def pytest_unconfigure(config):
    while _HYPOTHESIS_HOME:
        shutil.rmtree(_HYPOTHESIS_HOME.pop(), ignore_errors=True)
