"""When the host run may use numba's threads, and which is faster.

The threaded and the serial kernels give the same bits, so this is only a
question of speed and of safety:

- numba's ``workqueue`` threading layer is not threadsafe: two threads that
  run parallel code at once abort the process. Where it is (or will be)
  the layer and another Python thread is alive (which may run parallel code
  of its own), a run goes serial. The ``tbb`` and ``omp`` layers are
  threadsafe.
- Within rmsopt, one run at a time holds the threads (:data:`LOCK`); a
  concurrent run goes serial: never a crash, never a wait.
- ``parallel='auto'`` times the threaded and the serial gradient check
  before choosing (:func:`faster_threaded`).
"""

import contextlib
import importlib
import threading
import time
from functools import lru_cache

import numba

from ._result import warn_user

LOCK = threading.Lock()


@contextlib.contextmanager
def threads(parallel):
    """``with threads(settings.parallel) as allowed``: whether this run may
    use numba's threads (``parallel`` is True, False or 'auto'), holding
    :data:`LOCK` while it does."""
    allowed = parallel is not False and threadsafe()
    if parallel is True and not allowed:
        warn_user("numba's workqueue threading layer is not threadsafe and "
                  "other threads are running: the step runs serially (the "
                  "same bits); set NUMBA_THREADING_LAYER=omp or tbb to use "
                  "threads", RuntimeWarning)
    locked = allowed and LOCK.acquire(blocking=False)
    try:
        yield bool(locked)
    finally:
        if locked:
            LOCK.release()


def threadsafe():
    """False where numba's threading layer is workqueue while other Python
    threads are alive."""
    return threading.active_count() == 1 or layer() != "workqueue"


def layer():
    """numba's threading layer: the one running, or the one numba will
    choose (from ``NUMBA_THREADING_LAYER`` and what loads here)."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel code has run yet
        return _predicted_layer()


@lru_cache(maxsize=None)
def _predicted_layer():
    config = numba.config
    wanted = str(config.THREADING_LAYER).lower()
    candidates = {
        "default": list(config.THREADING_LAYER_PRIORITY),
        "safe": ["tbb"], "threadsafe": ["tbb", "omp"],
        "forksafe": ["tbb", "omp", "workqueue"],
    }.get(wanted, [wanted])
    for name in candidates:
        if name == "workqueue" or _loads(name):
            return name
    return "workqueue"


def _loads(name):
    module = {"tbb": "tbbpool", "omp": "omppool"}.get(name)
    if module is None:
        return False
    try:
        importlib.import_module(f"numba.np.ufunc.{module}")
    except Exception:  # the library is not installed or does not load
        return False
    return True


def faster_threaded(serial, threaded, *arguments):
    """For parallel='auto': time two entry points of the gradient check
    (read-only, one parallel region) on ``arguments``, alternating, and say
    whether the threaded one is faster. Threads lose badly when another
    process holds a core (each region waits for a descheduled thread), so
    this is measured, not assumed."""
    times = {serial: [], threaded: []}
    for round_ in range(4):
        for step in (serial, threaded):
            start = time.perf_counter()
            step(*arguments, False)
            if round_:  # the first round warms up
                times[step].append(time.perf_counter() - start)
    return min(times[threaded]) < min(times[serial])
