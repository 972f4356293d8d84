"""GPU cases: skipped where no GPU exists.

``DeviceCopy`` is the bandwidth reference: a plain ``numba.cuda`` kernel
copying n floats on the device, and the driver's device-to-device copy of
the same bytes. ``GpuStep`` times one iteration of rmsopt's cuda driver
(the ``check`` and ``step`` kernels of :mod:`rmsopt._cuda`, launched as the
driver launches them) and ``GpuStepBandwidth`` reports its effective
bandwidth against the copy's, measured in the same process: the target
(``shared/PERFORMANCE.md``) is >= 0.8x at n >= 1e8. ``GpuMinimize`` times a
whole ``rmsopt.minimize`` from a numba device array with a gradient kernel
that costs one pass over x.

Every timed function synchronises before returning, so that the time is
the kernels', not the launches'.

CUDA is never touched at import: asv imports every module to discover the
benchmarks, and its forkserver (asv.conf.json) imports them in the process it
forks each benchmark from, where an initialised CUDA would break every child.
The check runs in ``setup``, in the benchmark's own process, and any failure
there (no driver, no device, a broken toolkit, an rmsopt without a GPU path)
means "skip": setup raises NotImplementedError.
"""

import functools
import time

import numpy as np

from .common import LR, Benchmark

# numba.cuda, imported by _cuda() on first use. A module global, not a local:
# kernels must find it in their globals (numba's CUDA simulator,
# NUMBA_ENABLE_CUDASIM=1, swaps it there for its own).
cuda = None

SIZES = [10**6, 10**7, 10**8]
DTYPES = ["float32", "float64"]


@functools.lru_cache(maxsize=None)
def _cuda():
    """``numba.cuda`` when a usable GPU exists, else None."""
    global cuda
    try:
        from numba import cuda as module
        if not module.is_available():
            return None
        from numba import config
        if getattr(config, "ENABLE_CUDASIM", 0):
            return None  # the simulator: nothing to measure
    except Exception:  # CudaSupportError, ImportError, driver errors...
        return None
    cuda = module
    return module


def _require_gpu_path():
    """rmsopt's private pieces the GPU cases drive, or NotImplementedError
    (asv: skipped).

    The only place the suite imports rmsopt's private names (the step cases
    launch the cuda driver's kernels as the driver does): where they move,
    change this function alone.

    Returns
    -------
    rmsopt_cuda : module
        ``rmsopt._cuda``, its kernels loaded.
    layout : module
        ``rmsopt._layout`` (``overflow_guard``).
    parse_options : callable
        ``rmsopt._options.parse_options``.
    """
    if _cuda() is None:
        raise NotImplementedError("no CUDA GPU here")
    try:
        from rmsopt import _cuda as rmsopt_cuda
    except ImportError:
        raise NotImplementedError("this rmsopt has no GPU path") from None
    from rmsopt import _layout
    from rmsopt._options import parse_options
    rmsopt_cuda.load()
    return rmsopt_cuda, _layout, parse_options


@functools.lru_cache(maxsize=None)
def _copy_kernel():
    @cuda.jit
    def copy(src, dst):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, src.shape[0], stride):
            dst[i] = src[i]

    return copy


@functools.lru_cache(maxsize=None)
def _quadratic_grad_kernel():
    @cuda.jit
    def grad(x, out):
        """``out = x``: the gradient of |x|^2 / 2, one pass."""
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            out[i] = x[i]

    return grad


def _best_of(fn, repeat=5):
    """Fastest of a few synchronised calls (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


class DeviceCopy(Benchmark):
    """Bandwidth reference: copy n floats on the GPU.

    Moves ``2 * n * itemsize`` bytes (read and write), with a grid-stride
    kernel of rmsopt's launch shape and with the driver's memcpy.
    """

    params = [SIZES, DTYPES]
    param_names = ["n", "dtype"]

    def setup(self, n, dtype):
        if _cuda() is None:
            raise NotImplementedError("no CUDA GPU here")
        self.src = cuda.to_device(np.full(n, 0.5, dtype=dtype))
        self.dst = cuda.device_array_like(self.src)
        self.copy = _copy_kernel()
        self.threads = 256
        self.blocks = min(-(-n // self.threads), 4096)
        self.time_copy(n, dtype)  # compile, and warm the device
        if not np.array_equal(self.dst[:16].copy_to_host(),
                              np.full(16, 0.5, dtype=dtype)):
            raise RuntimeError("the copy kernel copied wrong values")

    def teardown(self, n, dtype):
        # Free the device arrays before the next case's setup.
        self.src = self.dst = None

    def time_copy(self, n, dtype):
        self.copy[self.blocks, self.threads](self.src, self.dst)
        cuda.synchronize()

    def time_memcpy(self, n, dtype):
        self.dst.copy_to_device(self.src)
        cuda.synchronize()


class _StepCase:
    """One iteration of the cuda driver on n elements, ready to launch."""

    def __init__(self, n, dtype):
        rc, layout, parse_options = _require_gpu_path()
        import rmsopt
        self.rc = rc
        settings = parse_options({"lr": LR, "gtol": 0.0}, n)
        self.kernels = rc.make_kernels(settings.flags, dtype)
        real = np.dtype(dtype).type
        self.work = cuda.to_device(np.zeros((2, n), dtype=dtype))
        self.g = cuda.to_device(np.full(n, 1.0, dtype=dtype))
        self.ctrl = cuda.to_device(np.array([-1, 0] + [rc.NEVER] * 4,
                                            dtype=np.int64))
        gsafe, _ = layout.overflow_guard(settings, np.dtype(dtype), 0.0,
                                         None)
        self.check_args = (real(0), np.float64(0.0), real(gsafe))
        self.hyper = (real(LR), real(0.99), real(0.01), real(1e-8), real(0),
                      real(0), real(1))
        self.check = rc.configured(self.kernels[0], n)
        self.step = rc.configured(self.kernels[1], n)
        self.k = 0
        self.rmsopt = rmsopt

    def iterate(self):
        """check + step, as the driver launches them, then synchronise."""
        self.check(self.work, self.g, self.ctrl, self.k, *self.check_args)
        self.step(self.work, self.g, self.ctrl, self.k, *self.hyper, True)
        self.k += 1
        cuda.synchronize()

    def step_only(self):
        self.step(self.work, self.g, self.ctrl, self.k - 1, *self.hyper,
                  True)
        cuda.synchronize()

    def verify(self):
        ctrl = self.ctrl.copy_to_host()
        if ctrl[self.rc.DONE] >= 0:
            raise RuntimeError(f"the run stopped (code {ctrl[1]})")
        x = self.work[0, :4].copy_to_host()
        if not (x < 0).all():
            raise RuntimeError("the step did not move x")


class GpuStep(Benchmark):
    """One iteration of rmsopt's cuda driver: the gradient check (reads g)
    and the step (reads x, g, v; writes x, v), PyTorch's defaults."""

    params = [SIZES, DTYPES]
    param_names = ["n", "dtype"]

    def setup(self, n, dtype):
        self.case = _StepCase(n, dtype)
        self.case.iterate()  # compile, warm
        self.case.verify()

    def teardown(self, n, dtype):
        self.case = None

    def time_iteration(self, n, dtype):
        self.case.iterate()


class GpuStepBandwidth(Benchmark):
    """Effective bandwidth of the step kernel and of a whole iteration over
    that of the copy kernel moving ``2 n itemsize`` bytes, measured in the
    same process (a ratio: no unit). Bytes: the step moves ``5 n itemsize``
    (x, g, v read; x, v written), the check ``n itemsize`` more (g)."""

    params = [SIZES, DTYPES]
    param_names = ["n", "dtype"]
    unit = "ratio"

    def setup(self, n, dtype):
        self.case = _StepCase(n, dtype)
        self.case.iterate()
        self.case.verify()
        src = cuda.to_device(np.full(n, 0.5, dtype=dtype))
        dst = cuda.device_array_like(src)
        copy = _copy_kernel()[min(-(-n // 256), 4096), 256]

        def copy_once():
            copy(src, dst)
            cuda.synchronize()
        copy_once()
        item = np.dtype(dtype).itemsize
        copy_bw = 2 * n * item / _best_of(copy_once, 10)
        self.step_ratio = (5 * n * item / _best_of(self.case.step_only, 10)
                           / copy_bw)
        self.iteration_ratio = (6 * n * item / _best_of(self.case.iterate, 10)
                                / copy_bw)

    def teardown(self, n, dtype):
        self.case = None

    def track_step_vs_copy(self, n, dtype):
        return self.step_ratio

    def track_iteration_vs_copy(self, n, dtype):
        return self.iteration_ratio


class GpuMinimize(Benchmark):
    """A whole ``rmsopt.minimize`` on the device: 50 iterations of |x|^2/2
    from a numba device array, the gradient written in place by a kernel
    (``jac(x, out)``). Synchronised: minimize reads the device's control
    array before it returns."""

    params = [[10**4, 10**6, 10**7], DTYPES]
    param_names = ["n", "dtype"]
    maxiter = 50

    def setup(self, n, dtype):
        _require_gpu_path()
        import rmsopt
        self.rmsopt = rmsopt
        grad = _quadratic_grad_kernel()
        config = grad[min(-(-n // 256), 4096), 256]

        def jac(x, out):
            config(x, out)
        self.jac = jac
        self.x0 = cuda.to_device(np.full(n, 1.0, dtype=dtype))
        res = self.run()
        if res.nit != self.maxiter:
            raise RuntimeError(f"expected {self.maxiter} iterations, got "
                               f"{res.nit} ({res.message})")

    def teardown(self, n, dtype):
        self.x0 = None

    def run(self):
        return self.rmsopt.minimize(
            lambda x: 0.0, self.x0, jac=self.jac,
            options={"lr": LR, "gtol": 0.0, "maxiter": self.maxiter})

    def time_minimize(self, n, dtype):
        self.run()

    def track_nit(self, n, dtype):
        return self.run().nit
