"""pytest fixtures only. The shared problems live in problems.py, which the
tests (and the scripts they run in subprocesses) import."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def hypothesis_storage(tmp_path_factory):
    """Hypothesis keeps its files (examples, a cache of constants) in
    ``.hypothesis`` under the working directory: the tests never write into
    the repository, so it keeps them in a temporary folder."""
    try:
        from hypothesis import configuration
    except ImportError:
        yield
        return
    configuration.set_hypothesis_home_dir(tmp_path_factory.mktemp(
        "hypothesis"))
    yield
    configuration.set_hypothesis_home_dir(None)
