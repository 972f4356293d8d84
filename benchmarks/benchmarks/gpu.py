"""GPU cases: skipped where no GPU exists.

rmsopt has no GPU path yet. Until it has, the one benchmark here is a
placeholder reference: a plain ``numba.cuda`` kernel copying n floats on the
device, the bandwidth the future step kernel will be compared with (target in
``shared/PERFORMANCE.md``: the step at >= 0.8x the device's copy bandwidth at
n >= 1e8). When rmsopt gains its GPU driver, time it here beside the copy.

CUDA is never touched at import: asv imports every module to discover the
benchmarks, and its forkserver (asv.conf.json) imports them in the process it
forks each benchmark from, where an initialised CUDA would break every child.
The check runs in ``setup``, in the benchmark's own process, and any failure
there (no driver, no device, a broken toolkit) means "no GPU": the case is
skipped.
"""

import functools

import numpy as np

from .common import Benchmark

# numba.cuda, imported by _cuda() on first use. A module global, not a local:
# kernels must find it in their globals (numba's CUDA simulator,
# NUMBA_ENABLE_CUDASIM=1, swaps it there for its own).
cuda = None


@functools.lru_cache(maxsize=None)
def _cuda():
    """``numba.cuda`` when a usable GPU exists, else None."""
    global cuda
    try:
        from numba import cuda as module
        if not module.is_available():
            return None
    except Exception:  # CudaSupportError, ImportError, driver errors...
        return None
    cuda = module
    return module


@functools.lru_cache(maxsize=None)
def _copy_kernel():
    @cuda.jit
    def copy(src, dst):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, src.shape[0], stride):
            dst[i] = src[i]

    return copy


class DeviceCopy(Benchmark):
    """Placeholder bandwidth reference: copy n floats on the GPU.

    Moves ``2 * n * itemsize`` bytes (read and write). Synchronises inside
    the timed function, so that the time is the kernel's, not the launch's.
    """

    params = [[10**6, 10**7, 10**8], ["float32", "float64"]]
    param_names = ["n", "dtype"]

    def setup(self, n, dtype):
        if _cuda() is None:
            raise NotImplementedError("no CUDA GPU here")
        self.src = cuda.to_device(np.full(n, 0.5, dtype=dtype))
        self.dst = cuda.device_array_like(self.src)
        self.copy = _copy_kernel()
        # one element per thread up to 2**28 threads, a grid-stride loop
        # beyond
        self.threads = 256
        self.blocks = min(-(-n // self.threads), 2**20)
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
