r"""The GPU kernels (cuda.jit only) and device-array interop.

When ``x0`` is a device array (a numba device array, or any object exposing
``__cuda_array_interface__``: CuPy arrays, PyTorch CUDA tensors), the device
run (:mod:`rmsopt._device`) keeps x, the optimizer state and the bounds in
one 2-D device array ``work`` (rows as in :func:`rmsopt._layout.work_rows`)
and launches the kernels built here: ``check`` and ``step``, compiled from
:mod:`rmsopt._rule` with ``cuda.jit(device=True)``, the twins of
:mod:`rmsopt._cpu`'s fused step, and a few utilities (fill, cast, absmax,
clip).

Nothing here imports ``numba.cuda`` at module import: :func:`is_device_array`
is plain Python, and ``numba.cuda`` is imported (and CUDA initialised) only
when a device ``x0`` arrives (:func:`load`). Under numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` before numba is imported) the same code runs the
kernels as Python on the host: that is how the tests run without a GPU.

One iteration is two launches, in stream order, with no host synchronisation:

1. ``check`` reads the gradient (and x, and the bounds when they matter) and
   records in the control array ``ctrl`` that iteration ``k`` found a
   gradient component that is NaN, inf or above ``gsafe``
   (``ctrl[BAD_AT] = k``), or one above ``gtol`` (``ctrl[ABOVE_AT] = k``);
2. ``step`` reads those two words: if the gradient was bad, or none of it
   was above gtol, it records the end of the run (``ctrl[DONE] = k``, the
   reason in ``ctrl[CODE]``) and changes nothing; otherwise it updates every
   element. Every later launch sees ``ctrl[DONE] >= 0`` and returns at once.

So the run stops on the device at exactly the iteration the CPU path stops
at. Stops after a step (an overflow, or ``|x|`` past max/4; see
:func:`rmsopt._layout.overflow_guard`) are recorded by ``step`` as
``ctrl[OVERFLOW_AT] = k`` or ``ctrl[LARGE_AT] = k`` and end the run at the
next launch, after the gradient at the new x, as on the CPU.

Flags are written by every thread that finds the condition, with the
iteration number as the value: no reset between iterations, no atomics, and
no ``syncthreads`` (which the simulator makes very slow).
"""

import math
import sys
import warnings
from functools import lru_cache
from typing import NamedTuple

import numba
import numpy as np

from . import _rule
from ._layout import (CONVERGED, LARGE_X, NONFINITE_GRAD, OVERFLOW, STEPPED,
                      work_rows)

# numba.cuda once loaded by load(). A module global, not a local: the
# simulator finds the module in a kernel's globals and swaps in its own.
cuda = None

# Launch shape: grid-stride loops over at most MAX_BLOCKS blocks. Tests
# shrink both so that the simulator (one Python thread per CUDA thread)
# stays fast and the grid-stride loops run more than once.
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 4096

# The control array (int64): the run's end and the per-iteration flags.
DONE, CODE, BAD_AT, ABOVE_AT, OVERFLOW_AT, LARGE_AT = range(6)
N_CTRL = 6
NEVER = -2  # no iteration k >= 0 has k or k - 1 equal to it

_NEEDS = ("rmsopt's GPU path needs numba-cuda and a CUDA GPU: x0 is a device "
          "array, but {why}. Install numba-cuda (pip install 'rmsopt[cuda]') "
          "on a machine with an NVIDIA GPU and driver, or copy x0 to the "
          "host (x0.copy_to_host(), cupy.asnumpy(x0), x0.cpu().numpy()) to "
          "run on the CPU.")


# -- device arrays ------------------------------------------------------------

def is_device_array(obj):
    """True when ``obj`` lives on a GPU: it exposes
    ``__cuda_array_interface__``, or it is a numba device array.

    Plain Python: imports nothing and never touches CUDA.

    Examples
    --------
    >>> import numpy as np
    >>> is_device_array(np.zeros(3)), is_device_array([1.0, 2.0])
    (False, False)
    >>> from numba import cuda                       # doctest: +SKIP
    >>> is_device_array(cuda.to_device(np.zeros(3)))  # doctest: +SKIP
    True
    """
    if isinstance(obj, (np.ndarray, np.generic, list, tuple, int, float)):
        return False
    # numba's device arrays, the simulator's included (those expose no
    # interface); read on the type so that no __getattr__ runs.
    if getattr(type(obj), "__cuda_ndarray__", False):
        return True
    try:
        obj.__cuda_array_interface__
    except AttributeError:  # e.g. a PyTorch CPU tensor
        return False
    except Exception:  # e.g. a CUDA tensor that requires grad: say so later
        return True
    return True


def load():
    """``numba.cuda``, or the error that says what is missing."""
    global cuda
    if cuda is not None:
        return cuda
    try:
        from numba import cuda as module
    except ImportError as exc:
        raise RuntimeError(_NEEDS.format(why="numba.cuda cannot be "
                                             f"imported ({exc})")) from exc
    try:
        available = module.is_available()
    except Exception as exc:  # a broken driver or toolkit
        raise RuntimeError(_NEEDS.format(why=f"CUDA failed ({exc})")) from exc
    if not available:
        raise RuntimeError(_NEEDS.format(why="no usable CUDA GPU or driver "
                                             "was found"))
    cuda = module
    return module


def simulated():
    return bool(getattr(numba.config, "ENABLE_CUDASIM", 0))


class _HostInterface:
    """Exposes a simulated device array's memory to NumPy: under the
    simulator a ``__cuda_array_interface__`` pointer is a host pointer."""

    def __init__(self, desc, owner):
        self.__array_interface__ = {
            "shape": tuple(desc["shape"]), "typestr": desc["typestr"],
            "data": tuple(desc["data"]), "strides": desc.get("strides"),
            "version": 3}
        self.owner = owner  # keeps the memory alive


def _interface(obj, what):
    """``obj.__cuda_array_interface__``, or a clear error."""
    try:
        return obj.__cuda_array_interface__
    except Exception as exc:
        raise TypeError(f"{what} could not be read as a device array: "
                        f"{exc}") from exc


def as_numba(obj, what):
    """A numba device array viewing ``obj``'s memory (no copy).

    Work queued by the producer on another stream (the interface's
    ``stream``, CAI v3) is ordered before our kernels with an event, not
    a host synchronisation.
    """
    if getattr(type(obj), "__cuda_ndarray__", False):
        return obj
    desc = _interface(obj, what)
    if desc.get("mask") is not None:
        raise TypeError(f"{what}: masked device arrays are not supported")
    if simulated():
        from numba.cuda.cudadrv.devicearray import FakeCUDAArray
        return FakeCUDAArray(np.asarray(_HostInterface(desc, obj)))
    stream = desc.get("stream")
    # None: ready now; 1 and 2: the legacy and per-thread default streams,
    # both ordered with numba's default stream.
    if stream not in (None, 1, 2):
        event = cuda.event(timing=False)
        event.record(cuda.external_stream(stream))
        event.wait(cuda.default_stream())
    return cuda.from_cuda_array_interface(desc, owner=obj, sync=False)


def array_layout(obj, what):
    """``(shape, dtype, contiguous)`` from metadata only (no device access)."""
    if getattr(type(obj), "__cuda_ndarray__", False):
        shape = tuple(obj.shape)
        return shape, np.dtype(obj.dtype), (
            obj.is_c_contiguous() or len(shape) != 1 or shape[0] <= 1)
    desc = _interface(obj, what)
    shape = tuple(desc["shape"])
    dtype = np.dtype(desc["typestr"])
    strides = desc.get("strides")
    contiguous = (strides is None or len(shape) != 1 or shape[0] <= 1
                  or tuple(strides) == (dtype.itemsize,))
    return shape, dtype, contiguous


def kind_of(x0):
    """The function that turns our numba device arrays into ``x0``'s kind.

    CuPy arrays and PyTorch tensors get views of their own kind (both
    import the CUDA array interface without copying); numba device arrays,
    and any other object exposing the interface, get numba device arrays
    (which expose it too).
    """
    if getattr(type(x0), "__cuda_ndarray__", False):
        return lambda a: a
    package = type(x0).__module__.split(".")[0]
    if package == "cupy" and "cupy" in sys.modules:
        return sys.modules["cupy"].asarray
    if package == "torch" and "torch" in sys.modules:
        torch, device = sys.modules["torch"], x0.device
        return lambda a: torch.as_tensor(a, device=device)
    return lambda a: a


# -- kernels ------------------------------------------------------------------

def _kernel(fn):
    """``cuda.jit(fn)``. Under the simulator the kernel runs with NumPy's
    floating-point warnings off: a GPU computes IEEE results silently (as
    numba's CPU kernels do), where NumPy scalars would warn on overflow."""
    if simulated():
        inner = fn

        def fn(*args):
            with np.errstate(all="ignore"):  # per thread: NumPy's context
                inner(*args)
        fn.__name__ = inner.__name__
    return cuda.jit(fn)


def _grid(n):
    """``(blocks, threads)`` for a grid-stride loop over n elements.

    Under the simulator, at most 2 blocks of 8 threads: it runs a Python
    thread per CUDA thread, and the grid-stride loops cover any n.
    """
    threads, blocks = THREADS_PER_BLOCK, MAX_BLOCKS
    if simulated():
        threads, blocks = min(threads, 8), min(blocks, 2)
    return max(1, min(blocks, -(-n // threads))), threads


class DeviceRule(NamedTuple):
    """The rule's functions (:mod:`rmsopt._rule`) compiled for the device."""

    element: object
    gradient_test: object
    fits: object
    clip: object


@lru_cache(maxsize=None)
def device_rule():
    """:mod:`rmsopt._rule` compiled for the device: the same functions as
    the CPU kernels inline."""
    device = cuda.jit(device=True, inline="always")
    return DeviceRule(device(_rule.rmsprop_element),
                      device(_rule.gradient_test), device(_rule.fits),
                      device(_rule.clip))


@lru_cache(maxsize=None)
def utility_kernels():
    """Kernels that do not depend on the options: ``fill``, ``cast``,
    ``absmax`` and ``clip``."""
    project = device_rule().clip

    @_kernel
    def fill(a, value):
        """``a[:] = value``."""
        for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
            a[i] = value

    @_kernel
    def cast(src, dst):
        """``dst[:] = src``, converting as NumPy's ``astype`` does."""
        for i in range(cuda.grid(1), src.shape[0], cuda.gridsize(1)):
            dst[i] = src[i]

    @_kernel
    def absmax(a, out):
        """``out[0] = max |a_i|`` over the finite entries (out[0] starts at
        0); ``out[1] = min i`` over the non-finite ones (starts at n)."""
        largest = 0.0
        first = -1
        for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
            ai = a[i]
            if math.isfinite(ai):
                largest = max(largest, abs(ai))
            elif first < 0:
                first = i
        cuda.atomic.max(out, 0, largest)
        if first >= 0:
            cuda.atomic.min(out, 1, float(first))

    @_kernel
    def clip(x, lo, hi, moved):
        """``x`` projected onto ``[lo, hi]`` (``np.clip``); ``moved[0] = 1``
        if that changed some element."""
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            xi = x[i]
            c = project(xi, lo[i], hi[i])
            if c != xi:
                x[i] = c
                moved[0] = 1

    return fill, cast, absmax, clip


@lru_cache(maxsize=None)
def make_kernels(flags, dtype_name):
    r"""Compile the ``check`` and ``step`` kernels of one configuration.

    The flags and the row layout are closure constants, so the compiler
    folds every branch of the rule away, as on the CPU.

    Parameters
    ----------
    flags : rmsopt._layout.Flags
        Which variant of the rule (``guarded`` included).
    dtype_name : {'float32', 'float64'}
        Precision of ``work`` and the gradient.

    Returns
    -------
    check, step : numba.cuda kernels
        ``check(work, g, ctrl, k, weight_decay, gtol, gsafe)`` tests the
        gradient the rule follows at iteration ``k``
        (:func:`rmsopt._rule.gradient_test`),

        .. math::

            \tilde g_i = \pm g_i + \lambda x_i, \qquad
            \text{bad: } \lnot(|\tilde g_i| \le g_\text{safe}), \qquad
            \text{above: } |P(x_i - \tilde g_i) - x_i| > \text{gtol}

        (``P`` the projection onto the bounds, the identity without them)
        and records it in ``ctrl``; ``step(work, g, ctrl, k, lr, alpha,
        one_minus_alpha, eps, momentum, weight_decay, bias_scale, update)``
        ends the run or, when ``update``, applies
        :func:`rmsopt._rule.rmsprop_element` to every element and projects
        x onto the bounds. Hyperparameters come rounded to the working
        dtype, ``gtol`` as float64, as in :func:`rmsopt._cpu.make_step`.

    Examples
    --------
    >>> from rmsopt._options import parse_options
    >>> flags = parse_options({}, 4).flags
    >>> check, step = make_kernels(flags, "float64")  # doctest: +SKIP
    """
    rows = work_rows(flags)
    X, V = rows["x"], rows["v"]
    M, B = rows.get("m", 0), rows.get("b", 0)
    LO, HI = rows.get("lo", 0), rows.get("hi", 0)
    maximize, centered = flags.maximize, flags.centered
    use_momentum, nesterov = flags.use_momentum, flags.nesterov
    eps_in_sqrt, lr_in_momentum = flags.eps_in_sqrt, flags.lr_in_momentum
    decoupled = flags.decoupled_weight_decay
    bounded, guarded = flags.bounded, flags.guarded
    real = np.dtype(dtype_name).type
    big = real(np.finfo(dtype_name).max)
    xsafe = big / real(4)
    rule = device_rule()
    element, gradient_test, fits, project = rule
    stepped, converged = STEPPED, CONVERGED
    nonfinite, overflow, large_x = NONFINITE_GRAD, OVERFLOW, LARGE_X

    @_kernel
    def check(work, g, ctrl, k, weight_decay, gtol, gsafe):
        # Over, or over at the next step (the last step overflowed).
        if (ctrl[DONE] >= 0 or ctrl[OVERFLOW_AT] == k - 1
                or ctrl[LARGE_AT] == k - 1):
            return
        bad = False
        above = False
        for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
            bad_i, above_i = gradient_test(
                work[X, i], g[i], work[LO, i], work[HI, i], weight_decay,
                gsafe, gtol, maximize, decoupled, bounded)
            if bad_i:
                bad = True
            if above_i:
                above = True
        if bad:
            ctrl[BAD_AT] = k
        if above:
            ctrl[ABOVE_AT] = k

    @_kernel
    def step(work, g, ctrl, k, lr, alpha, one_minus_alpha, eps, momentum,
             weight_decay, bias_scale, update):
        if ctrl[DONE] >= 0:
            return
        code = stepped
        if ctrl[OVERFLOW_AT] == k - 1:
            code = overflow
        elif ctrl[LARGE_AT] == k - 1:
            code = large_x
        elif ctrl[BAD_AT] == k:
            code = nonfinite
        elif ctrl[ABOVE_AT] != k:
            code = converged
        if code != stepped:
            # Every thread of this launch reaches the same verdict; one
            # records it.
            if cuda.grid(1) == 0:
                ctrl[CODE] = code
                ctrl[DONE] = k
            return
        if not update:
            return
        zero = bias_scale - bias_scale
        overflowed = False
        too_large = False
        for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
            mi = work[M, i] if centered else zero
            bi = work[B, i] if use_momentum else zero
            xi, vi, mi, bi = element(
                work[X, i], g[i], work[V, i], mi, bi, lr, alpha,
                one_minus_alpha, eps, momentum, weight_decay, bias_scale,
                maximize, centered, use_momentum, nesterov, eps_in_sqrt,
                lr_in_momentum, decoupled)
            if bounded:
                xi = project(xi, work[LO, i], work[HI, i])
            if guarded:
                # The overflow proof does not hold: keep an element's old
                # values when a new one is not finite.
                if not fits(xi, vi, mi, bi, big, centered, use_momentum):
                    overflowed = True
                    continue
            elif abs(xi) > xsafe:
                too_large = True
            work[X, i] = xi
            work[V, i] = vi
            if centered:
                work[M, i] = mi
            if use_momentum:
                work[B, i] = bi
        if overflowed:
            ctrl[OVERFLOW_AT] = k
        if too_large:
            ctrl[LARGE_AT] = k

    return check, step


def configured(kernel, n):
    """``kernel[blocks, threads]``, made once per run. numba warns about
    grids under 128 blocks, which small problems need: not the user's
    doing, so not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Grid size")
        return kernel[_grid(n)]


# -- reductions ---------------------------------------------------------------

def absmax(a):
    """``(max |a_i| over the finite entries, index of the first non-finite
    entry or None)``: one device reduction, one small copy to the host."""
    n = a.shape[0]
    out = cuda.to_device(np.array([0.0, float(n)]))
    configured(utility_kernels()[2], n)(a, out)
    largest, first = out.copy_to_host()
    return float(largest), (None if first >= n else int(first))
