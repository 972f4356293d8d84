r"""The GPU path: device-array detection, kernels compiled from the rule, the driver.

When ``x0`` is a device array (a numba device array, or any object exposing
``__cuda_array_interface__``: CuPy arrays, PyTorch CUDA tensors),
:func:`rmsopt.minimize` sends it here and the whole run stays on the device:
x, the optimizer state and the bounds live in one 2-D device array ``work``
(rows as in :func:`rmsopt._cpu.work_rows`), the step is a ``numba.cuda``
kernel compiled from :func:`rmsopt._rule.rmsprop_element` with
``cuda.jit(device=True)``, and the stopping tests are device reductions.

Nothing here imports ``numba.cuda`` at module import: :func:`is_device_array`
is plain Python, and ``numba.cuda`` is imported (and CUDA initialised) only
when a device ``x0`` arrives. Under numba's CUDA simulator
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
at, and ``nit`` is exact: it is ``ctrl[DONE]`` when the run ended there, the
number of steps launched otherwise. The host reads ``ctrl`` (one small copy,
which waits for the queued work) after 1, 2, 4, ... steps, then every
:data:`CHECK_EVERY` steps, at the end, and after every step when there is a
callback (it gets the current x, so it must know whether the run is over).
Between two reads the host keeps calling ``jac`` at the final x after a
stop it has not seen yet: those calls are real and counted, so ``njev`` (and
``nfev`` with ``jac=True``) can exceed the CPU path's by less than
``CHECK_EVERY`` (and less than the number of steps) when the run ends by
gtol or NaN; everything else (``x``, ``fun``, ``nit``, ``status``, the
state) is the CPU path's, and ``jac`` is the latest gradient, at the same
final x.

Stops after a step (an overflow, or ``|x|`` past max/4; see
:func:`rmsopt._cpu.overflow_guard`) are recorded by ``step`` as
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

import numba
import numpy as np
from scipy.optimize import OptimizeResult, OptimizeWarning

from . import _cpu, _result
from ._objective import _scalar, jac_mode, writes_into_out
from ._options import parse_options
from ._rule import rmsprop_element

# numba.cuda once loaded by _load(). A module global, not a local: the
# simulator finds the module in a kernel's globals and swaps in its own.
cuda = None

# Launch shape: grid-stride loops over at most MAX_BLOCKS blocks. Tests
# shrink both so that the simulator (one Python thread per CUDA thread)
# stays fast and the grid-stride loops run more than once.
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 4096

# The host reads the control array every CHECK_EVERY iterations (each read
# waits for the queued work: the GPU idles while the host refills the queue).
CHECK_EVERY = 32

# The control array (int64): the run's end and the per-iteration flags.
DONE, CODE, BAD_AT, ABOVE_AT, OVERFLOW_AT, LARGE_AT = range(6)
N_CTRL = 6
NEVER = -2  # no iteration k >= 0 has k or k - 1 equal to it

_KERNEL_TO_STATUS = {
    _cpu.CONVERGED: _result.SUCCESS,
    _cpu.NONFINITE_GRAD: _result.NAN,
    _cpu.OVERFLOW: _result.NAN,
    _cpu.LARGE_X: _result.NAN,
}

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


def _load():
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


def _simulated():
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


def _as_numba(obj, what):
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
    if _simulated():
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


def _layout(obj, what):
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


def _kind(x0):
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
    if _simulated():
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
    if _simulated():
        threads, blocks = min(threads, 8), min(blocks, 2)
    return max(1, min(blocks, -(-n // threads))), threads


@lru_cache(maxsize=None)
def _utility_kernels():
    """Kernels that do not depend on the options: ``fill``, ``cast``,
    ``absmax`` and ``clip``."""

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
        """``x = min(max(x, lo), hi)`` (``np.clip``); ``moved[0] = 1`` if
        that changed some element."""
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            xi = x[i]
            c = min(max(xi, lo[i]), hi[i])
            if c != xi:
                x[i] = c
                moved[0] = 1

    return fill, cast, absmax, clip


@lru_cache(maxsize=None)
def _device_rule():
    """The rule compiled for the device: the same function as on the CPU."""
    return cuda.jit(device=True, inline="always")(rmsprop_element)


@lru_cache(maxsize=None)
def make_kernels(flags, dtype_name):
    r"""Compile the ``check`` and ``step`` kernels of one configuration.

    The flags and the row layout are closure constants, so the compiler
    folds every branch of the rule away, as on the CPU.

    Parameters
    ----------
    flags : rmsopt._options.Flags
        Which variant of the rule (``guarded`` included).
    dtype_name : {'float32', 'float64'}
        Precision of ``work`` and the gradient.

    Returns
    -------
    check, step : numba.cuda kernels
        ``check(work, g, ctrl, k, weight_decay, gtol, gsafe)`` tests the
        gradient the rule follows at iteration ``k``,

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
    rows = _cpu.work_rows(flags)
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
    element = _device_rule()
    stepped, converged = _cpu.STEPPED, _cpu.CONVERGED
    nonfinite, overflow, large_x = (_cpu.NONFINITE_GRAD, _cpu.OVERFLOW,
                                    _cpu.LARGE_X)

    @_kernel
    def check(work, g, ctrl, k, weight_decay, gtol, gsafe):
        # Over, or over at the next step (the last step overflowed).
        if (ctrl[DONE] >= 0 or ctrl[OVERFLOW_AT] == k - 1
                or ctrl[LARGE_AT] == k - 1):
            return
        bad = False
        above = False
        for i in range(cuda.grid(1), g.shape[0], cuda.gridsize(1)):
            gi = g[i]
            if maximize:
                gi = -gi
            if not decoupled and weight_decay != 0:
                gi = gi + weight_decay * work[X, i]
            if not abs(gi) <= gsafe:  # NaN included
                bad = True
            if bounded:
                xi = work[X, i]
                gi = min(max(xi - gi, work[LO, i]), work[HI, i]) - xi
            if abs(gi) > gtol:
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
                xi = min(max(xi, work[LO, i]), work[HI, i])
            if guarded:
                # The overflow proof does not hold: keep an element's old
                # values when a new one is not finite.
                ok = abs(xi) <= big and vi <= big
                if centered:
                    ok = ok and abs(mi) <= big
                if use_momentum:
                    ok = ok and abs(bi) <= big
                if not ok:
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


def _configured(kernel, n):
    """``kernel[blocks, threads]``, made once per run. numba warns about
    grids under 128 blocks, which small problems need: not the user's
    doing, so not shown."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Grid size")
        return kernel[_grid(n)]


# -- reductions ---------------------------------------------------------------

def _absmax(a):
    """``(max |a_i| over the finite entries, index of the first non-finite
    entry or None)``: one device reduction, one small copy to the host."""
    fill, cast, absmax, clip = _utility_kernels()
    n = a.shape[0]
    out = cuda.to_device(np.array([0.0, float(n)]))
    _configured(absmax, n)(a, out)
    largest, first = out.copy_to_host()
    return float(largest), (None if first >= n else int(first))


# -- the objective on the device ----------------------------------------------

def _host_scalar(value):
    """fun's value as a Python float; a device scalar is copied over."""
    if is_device_array(value):
        arr = _as_numba(value, "fun's value").copy_to_host()
        return float(_scalar(arr))
    return float(_scalar(value))


class _DeviceObjective:
    """``fun`` and ``jac`` on device arrays, counted, the gradient checked.

    ``jac`` gets x as ``x0``'s kind and returns a device array (or writes
    into ``out``: the in-place form of :class:`rmsopt._objective.Objective`);
    :meth:`grad` returns it as a numba device array, after checking its
    metadata on the host, so no kernel ever reads a wrong gradient.
    """

    def __init__(self, fun, jac, args, n, dtype, kind):
        if not callable(fun):
            raise TypeError(f"fun must be callable, got {fun!r}")
        self.mode = jac_mode(jac)
        if self.mode not in ("callable", "value_and_grad"):
            raise ValueError(
                "With a device x0, jac must be a callable returning a device "
                "array, or True (fun returns (f, g)): finite differences "
                f"(jac={jac!r}) evaluate fun one point at a time on the host.")
        self.fun, self.jac, self.args = fun, jac, args
        self.n, self.dtype = n, np.dtype(dtype)
        self.nfev = self.njev = 0
        self.raw_value = None  # fun at the last gradient's x (jac=True)
        self.inplace = writes_into_out(jac if self.mode == "callable"
                                       else fun)
        self.out = self.out_kind = None
        if self.inplace:
            fill = _utility_kernels()[0]
            self.out = cuda.device_array(n, dtype=self.dtype)
            _configured(fill, n)(self.out, self.dtype.type(0))
            self.out_kind = kind(self.out)

    def grad(self, x):
        """The gradient at ``x`` (x0's kind) as a checked numba array."""
        args = self.args
        if self.mode == "callable":
            if self.inplace:
                self.jac(x, self.out_kind, *args)
                g = self.out
            else:
                g = self.jac(x, *args)
            self.njev += 1
        else:
            if self.inplace:
                self.raw_value = self.fun(x, self.out_kind, *args)
                g = self.out
            else:
                out = self.fun(x, *args)
                if not isinstance(out, (tuple, list)) or len(out) != 2:
                    raise TypeError("jac=True requires fun to return a pair "
                                    f"(value, gradient), got "
                                    f"{type(out).__name__}")
                self.raw_value, g = out
            self.nfev += 1
            self.njev += 1
        if g is self.out:
            return g
        return self.check_gradient(g)

    def check_gradient(self, g):
        """``g`` as a numba device array, or an error that says what is
        wrong with it (metadata only: nothing is read on the device)."""
        source = "jac" if self.mode == "callable" else "fun"
        if not is_device_array(g):
            raise TypeError(
                f"{source} returned a {type(g).__module__}."
                f"{type(g).__qualname__} (host memory) for a device x0: it "
                "must return a device array (a numba device array or an "
                "object with __cuda_array_interface__, such as a CuPy "
                f"array) of shape ({self.n},) and dtype {self.dtype}")
        shape, dtype, contiguous = _layout(g, f"The gradient from {source}")
        if shape != (self.n,):
            raise ValueError(f"The gradient must have shape ({self.n},) like "
                             f"x0; got shape {shape} from {source}")
        if dtype != self.dtype:
            raise TypeError(f"The gradient must have dtype {self.dtype} like "
                            f"x0 (device gradients are not converted); got "
                            f"{dtype} from {source}")
        if not contiguous:
            raise ValueError(f"The gradient must be contiguous on the "
                             f"device; {source} returned a strided view: "
                             "return a contiguous array (a copy)")
        return _as_numba(g, f"The gradient from {source}")

    @property
    def value_at_grad(self):
        if self.raw_value is None:
            return None
        return _host_scalar(self.raw_value)

    def value(self, x):
        self.nfev += 1
        if self.mode == "value_and_grad" and self.inplace:
            out = self.fun(x, self.out_kind, *self.args)  # rewrites g at x
        else:
            out = self.fun(x, *self.args)
            if self.mode == "value_and_grad":
                out = out[0]
        return _host_scalar(out)


# -- validation ---------------------------------------------------------------

def _device_x0(x0):
    """``x0`` as a contiguous 1-D numba device array of float32/float64
    (ints converted to float64 on the device: a new array); the dtype."""
    shape, dtype, contiguous = _layout(x0, "x0")
    kind = dtype.kind
    if kind == "c":
        raise TypeError(f"x0 must be real; got dtype {dtype}. Complex "
                        "parameters are not supported: optimise the real "
                        "and imaginary parts as separate variables.")
    if kind not in "iuf":
        raise TypeError(f"x0 must be an array of real numbers; got dtype "
                        f"{dtype}")
    if kind == "f" and dtype not in (np.float32, np.float64):
        raise TypeError(f"x0 has dtype {dtype}; rmsopt computes in float32 "
                        "or float64: convert x0 to one of them")
    if len(shape) == 0:
        shape = (1,)
    if len(shape) != 1:
        raise ValueError("'x0' must only have one dimension.")
    if shape[0] == 0:
        raise ValueError("x0 must not be empty")
    if not contiguous:
        raise ValueError("x0 must be contiguous on the device; got a strided "
                         "view: pass a contiguous copy (rmsopt refuses strides "
                         "rather than read the wrong elements)")
    arr = _as_numba(x0, "x0").reshape(shape)
    if kind in "iu":
        cast = _utility_kernels()[1]
        out = cuda.device_array(shape[0], dtype=np.float64)
        _configured(cast, shape[0])(arr, out)
        return out, np.dtype(np.float64)
    return arr, dtype


def _bounds(bounds, n, dtype):
    """Host ``(lo, hi)`` arrays or ``(None, None)``, validated as on the CPU.

    ``_check_bounds`` also warns when x0 lies outside: it gets a NaN
    stand-in for x0 (free: broadcast; no comparison with NaN is true), and
    the device checks x0 itself (:func:`_set_bounds`).
    """
    from ._minimize import _check_bounds
    probe = np.broadcast_to(np.array(np.nan, dtype=dtype), (n,))
    return _check_bounds(bounds, probe)


def _device_state(settings, work, rows):
    """Fill the state rows of ``work``, fresh or from ``options['state']``
    (host or device arrays); return the step count and the state's
    magnitudes for :func:`rmsopt._cpu.overflow_guard`."""
    fill = _utility_kernels()[0]
    n, dtype = work.shape[1], np.dtype(work.dtype)
    real = dtype.type
    state = settings.state
    if state is None:
        _configured(fill, n)(work[rows["v"]], real(settings.initial_scale))
        for name in ("m", "b"):
            if name in rows:
                _configured(fill, n)(work[rows[name]], real(0))
        return 0, None
    if not isinstance(state, dict) or not {"step", "square_avg"} <= set(state):
        raise TypeError("options['state'] must be the `state` of a previous "
                        "rmsopt result (a dict with 'step' and 'square_avg')")
    names = {"v": "square_avg", "m": "grad_avg", "b": "momentum_buffer"}
    summary = {}
    for row_name, name in names.items():
        if row_name not in rows:
            continue  # this run does not use it (e.g. momentum now off)
        value = state.get(name)
        row = work[rows[row_name]]
        if value is None:  # e.g. momentum switched on: start from zero
            _configured(fill, n)(row, real(0))
            continue
        if is_device_array(value):
            shape, vdtype, contiguous = _layout(value, f"state[{name!r}]")
            value = _as_numba(value, f"state[{name!r}]") if contiguous \
                else None
        else:
            value = np.asarray(value)
            shape, vdtype, contiguous = value.shape, value.dtype, True
            value = np.ascontiguousarray(value)
        if shape != (n,) or vdtype != dtype or not contiguous:
            raise ValueError(f"state[{name!r}] must be a contiguous {dtype} "
                             f"array of shape ({n},) like x0; got {vdtype} "
                             f"{shape}")
        row.copy_to_device(value)
        largest, first = _absmax(row)
        if first is not None:
            raise ValueError(f"state[{name!r}] must be finite")
        summary[name] = np.array([largest])
    step = state["step"]
    if isinstance(step, (bool, np.bool_)) or not isinstance(
            step, (int, np.integer)) or step < 0:
        raise ValueError(f"state['step'] must be a non-negative integer, got "
                         f"{step!r}")
    return int(step), summary


# -- the driver ---------------------------------------------------------------

# Options only the CPU drivers implement so far.
_CPU_ONLY_OPTIONS = ("batch", "history", "progress")


class _DeviceRun:
    """A run on the device: its arrays, kernels and counters."""

    def __init__(self, x0, fun, jac, args, bounds, tol, callback, options):
        from ._minimize import _callback_style
        x, dtype = _device_x0(x0)
        n = x.shape[0]
        self.kind = _kind(x0)
        lo, hi = _bounds(bounds, n, dtype)
        settings = parse_options(options, n, tol=tol, bounded=lo is not None)
        if settings.driver == "nopython":
            raise ValueError("driver='nopython' is a CPU driver; a device x0 "
                             "runs the cuda driver (use driver='auto')")
        unsupported = [name for name in _CPU_ONLY_OPTIONS
                       if (options or {}).get(name) not in (None, False)]
        if settings.schedule is not None:
            unsupported.insert(0, "lr (a schedule)")
        if unsupported:
            raise ValueError(f"The GPU driver does not support "
                             f"{', '.join(unsupported)} yet; use a host "
                             "(NumPy) x0 for these options")
        self.style = _callback_style(callback)
        self.callback = callback
        # jac's form is checked before anything is compiled or allocated.
        self.obj = _DeviceObjective(fun, jac, args, n, dtype, self.kind)
        flags = settings.flags
        self.rows = rows = _cpu.work_rows(flags)
        self.work = cuda.device_array((len(rows), n), dtype=dtype)
        self.x = self.work[rows["x"]]
        self.x.copy_to_device(x)  # the one copy of the user's x0
        x_absmax, first = _absmax(self.x)
        if first is not None:
            value = self.x[first:first + 1].copy_to_host()[0]
            raise ValueError(f"x0 must be finite; found {value} at index "
                             f"{first}")
        if flags.bounded:
            self._set_bounds(lo, hi)
        self.t0, summary = _device_state(settings, self.work, rows)
        gsafe, guarded = _cpu.overflow_guard(settings, dtype, x_absmax,
                                             summary)
        self.settings = settings = settings._replace(
            flags=flags._replace(guarded=guarded))
        real = dtype.type
        self.real = real
        # Rounded once to the working dtype, as the CPU kernels do.
        self.hyper = (real(settings.lr), real(settings.alpha),
                      real(1.0 - settings.alpha), real(settings.eps),
                      real(settings.momentum), real(settings.weight_decay))
        # gtol stays float64 (compared exactly, as on the CPU).
        self.check_args = (real(settings.weight_decay),
                           np.float64(settings.gtol), real(gsafe))
        check, step = make_kernels(settings.flags, dtype.name)
        self.check, self.step = _configured(check, n), _configured(step, n)
        self.ctrl = cuda.to_device(np.array([-1, 0] + [NEVER] * 4,
                                            dtype=np.int64))
        self.x_kind = self.kind(self.x)
        self.g = None       # gradient at x (numba device array)
        self.g_at = -1      # steps launched when g was computed
        self.launched = 0   # steps launched in this run
        self.done = -1      # ctrl[DONE] as last read
        self.code = 0
        self._value = None

    def _set_bounds(self, lo, hi):
        clip = _utility_kernels()[3]
        rows, n = self.rows, self.x.shape[0]
        self.work[rows["lo"]].copy_to_device(lo)
        self.work[rows["hi"]].copy_to_device(hi)
        moved = cuda.to_device(np.zeros(1, dtype=np.int64))
        _configured(clip, n)(self.x, self.work[rows["lo"]],
                             self.work[rows["hi"]], moved)
        if moved.copy_to_host()[0]:
            # stacklevel: _set_bounds, __init__, minimize_device, _run,
            # minimize, the caller
            warnings.warn("x0 lies outside the bounds; it was clipped into "
                          "them", OptimizeWarning, stacklevel=6)

    # -- the loop ---------------------------------------------------------

    def bias_scale(self, k):
        """``1 - alpha**t`` for the step at iteration k, computed in float64
        on the host as the CPU kernel computes it, then rounded."""
        if not self.settings.flags.bias_correction:
            return self.real(1.0)
        t = float(self.t0 + k + 1)
        return self.real(1.0 - self.settings.alpha ** t)

    def launch(self, k, update):
        self.check(self.work, self.g, self.ctrl, k, *self.check_args)
        self.step(self.work, self.g, self.ctrl, k, *self.hyper,
                  self.bias_scale(k), update)

    def read(self):
        """Wait for the queued work and read the control array."""
        ctrl = self.ctrl.copy_to_host()
        self.done, self.code = int(ctrl[DONE]), int(ctrl[CODE])
        return self.done >= 0

    @property
    def nit(self):
        return self.done if self.done >= 0 else self.launched

    def gradient(self):
        self.g = self.obj.grad(self.x_kind)
        self.g_at = self.launched

    def run(self):
        """The loop; returns the status (``_result`` codes)."""
        self.gradient()
        maxiter = self.settings.maxiter
        every = 1 if self.callback is not None else max(1, int(CHECK_EVERY))
        # Reads after 1, 2, 4, ... steps, then every `every`: a run that
        # stops early wastes few gradient calls, a long one syncs rarely.
        interval, next_read = 1, 1
        for k in range(maxiter):
            self.launch(k, True)
            self.launched = k + 1
            if self.launched == next_read or self.launched == maxiter:
                if self.read():
                    return _KERNEL_TO_STATUS[self.code]
                interval = min(2 * interval, every)
                next_read = self.launched + interval
            self.gradient()
            if self.callback is not None and self.notify():
                return _result.CALLBACK
        # The final check: the same two kernels at the last gradient, with
        # no update.
        self.launch(self.launched, False)
        if self.read():
            return _KERNEL_TO_STATUS[self.code]
        return _result.MAXITER

    def notify(self):
        """Call the callback at the current x; True if it asked to stop."""
        try:
            if self.style == "new":
                self.callback(intermediate_result=OptimizeResult(
                    x=self.copy(self.x), fun=self.value(), nit=self.nit))
            else:
                self.callback(self.copy(self.x))
        except StopIteration:
            return True
        return False

    # -- results ----------------------------------------------------------

    def copy(self, a):
        """A fresh device copy of ``a``, as x0's kind."""
        out = cuda.device_array(a.shape[0], dtype=a.dtype)
        out.copy_to_device(a)
        return self.kind(out)

    def value(self):
        """fun at the current x (from the last gradient call when it gave
        it, else evaluated once per step count)."""
        f = self.obj.value_at_grad if self.g_at >= self.nit else None
        if f is None:
            if self._value is None or self._value[0] != self.nit:
                self._value = (self.nit, self.obj.value(self.x_kind))
            f = self._value[1]
        return f

    def state(self):
        rows, kind = self.rows, self.kind

        def row(name):
            return kind(self.work[rows[name]]) if name in rows else None
        return {"step": self.t0 + self.nit, "square_avg": row("v"),
                "grad_avg": row("m"), "momentum_buffer": row("b")}

    def counts(self):
        return self.obj.nfev, self.obj.njev

    def current_jac(self):
        """The gradient at the final x (after a stop the host had not seen,
        x no longer moves, so a later gradient is at it too), or None."""
        if self.g is None or self.g_at < self.nit:
            return None
        if self.g is self.obj.out:  # our buffer: handed over
            return self.obj.out_kind
        return self.copy(self.g)

    def result(self, status):
        x = self.copy(self.x)
        fun = self.value()
        nfev, njev = self.counts()
        return _result.make_result(x=x, fun=fun, jac=self.current_jac(),
                                   nit=self.nit, nfev=nfev, njev=njev,
                                   status=status, state=self.state())


def minimize_device(fun, x0, args, jac, bounds, tol, callback, options):
    r""":func:`rmsopt.minimize` for a device ``x0``: the cuda driver.

    Parameters and result as :func:`rmsopt.minimize`, with these
    differences: ``jac`` must be a callable or ``True`` (no finite
    differences) and return device arrays of x0's dtype (not converted),
    contiguous, of shape ``(n,)``; ``fun`` may return a device scalar.
    ``res.x``, ``res.jac`` and the state's arrays are device arrays of
    x0's kind (see :func:`_kind`). The ``parallel`` option does not apply.

    The update is the CPU path's, in the same order:

    .. math::

        v \leftarrow \alpha v + (1 - \alpha) g^2, \qquad
        x \leftarrow x - \gamma \, g / (\sqrt{v} + \epsilon)

    (every option of :func:`rmsopt.minimize`; see
    :func:`rmsopt._rule.rmsprop_element`).

    Examples
    --------
    >>> import numpy as np
    >>> from numba import cuda                              # doctest: +SKIP
    >>> import rmsopt
    >>> x0 = cuda.to_device(np.array([1.0, -2.0]))          # doctest: +SKIP
    >>> res = rmsopt.minimize(lambda x: 0.0, x0,
    ...                       jac=lambda x: x)              # doctest: +SKIP
    >>> res.x.copy_to_host()                                # doctest: +SKIP
    """
    _load()
    if not isinstance(args, tuple):
        args = (args,)
    run = _DeviceRun(x0, fun, jac, args, bounds, tol, callback, options)
    try:
        status = run.run()
    except KeyboardInterrupt as exc:
        try:
            run.read()
        except Exception:  # keep the interrupt, whatever the device says
            pass
        nfev, njev = run.counts()
        exc.result = _result.make_result(
            x=run.copy(run.x), fun=np.nan, jac=run.current_jac(),
            nit=run.nit, nfev=nfev, njev=njev,
            status=_result.INTERRUPTED, state=run.state())
        raise
    res = run.result(status)
    if run.settings.disp:
        _result.report(res)
    return res
