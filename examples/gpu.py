"""The GPU path: a least-squares fit whose data, parameters and state stay on the GPU.

``x0`` is a numba device array, so ``rmsopt.minimize`` runs its whole loop
on the device: the RMSProp step is a CUDA kernel, the stopping test a device
reduction, and nothing is copied to the host per iteration. The gradient
``A^T (A w - y) / m`` is two small CUDA kernels written into rmsopt's buffer
(``jac(w, out, ...)``: the in-place form); ``fun`` is evaluated only at the
end. The example

* fits with a constant ``lr``, then continues the same run with a smaller one
  through ``options={"state": res.state}`` (the state stays on the device);
* checks the fit against ``numpy.linalg.lstsq``;
* runs the same two fits on the CPU (the same loops, compiled with
  ``numba.njit``) and checks that the GPU gives the same numbers: the same
  bits under the simulator, and on a GPU agreement to rounding (NVVM fuses
  multiply-adds, the CPU does not).

Run: ``python examples/gpu.py``. Without a GPU it runs under numba's CUDA
simulator (the kernels as Python on the host: slow, for trying it out); it
needs numba-cuda (``pip install 'rmsopt[cuda]'``) and says so otherwise.
"""

import importlib.util
import os
import subprocess
import sys


def _gpu_present():
    """Asked in a child process: numba reads NUMBA_ENABLE_CUDASIM when it is
    first imported, so this process must decide before importing it."""
    code = ("from numba import cuda; "
            "raise SystemExit(0 if cuda.is_available() else 1)")
    return subprocess.run([sys.executable, "-c", code],
                          capture_output=True).returncode == 0


# A 64-sample fit is far too small to fill a GPU, and numba would say so
# (NumbaPerformanceWarning) at every launch of the gradient kernels.
os.environ.setdefault("NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS", "0")

if importlib.util.find_spec("numba_cuda") is None:
    print("examples/gpu.py needs numba-cuda: pip install 'rmsopt[cuda]'")
    raise SystemExit(0)
if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _gpu_present():
    print("No CUDA GPU: running under numba's CUDA simulator.")
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np  # noqa: E402
from numba import cuda, njit  # noqa: E402

import rmsopt  # noqa: E402

M, N = 64, 4          # samples, features
# Threads per block of the gradient kernels (grid-stride loops: any number
# works). The simulator runs a Python thread per CUDA thread: fewer there.
THREADS = 4 if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else 64


@cuda.jit
def residual_kernel(a, w, y, r):
    """r = a @ w - y, one row per thread (grid-stride)."""
    for i in range(cuda.grid(1), a.shape[0], cuda.gridsize(1)):
        s = -y[i]
        for j in range(a.shape[1]):
            s += a[i, j] * w[j]
        r[i] = s


@cuda.jit
def gradient_kernel(a, r, out):
    """out = a.T @ r / m, one column per thread."""
    m = a.shape[0]
    for j in range(cuda.grid(1), a.shape[1], cuda.gridsize(1)):
        s = 0.0
        for i in range(m):
            s += a[i, j] * r[i]
        out[j] = s / m


def jac(w, out, a, y, r):
    """The in-place gradient on the device: nothing leaves the GPU."""
    residual_kernel[1, THREADS](a, w, y, r)
    gradient_kernel[1, THREADS](a, r, out)


def fun(w, a, y, r):
    """0.5 |a w - y|^2 / m: copies m numbers to the host, once per call."""
    residual_kernel[1, THREADS](a, w, y, r)
    rh = r.copy_to_host()
    return 0.5 * float(rh @ rh) / a.shape[0]


# The same loops on the CPU, for the comparison.
@njit
def residual_cpu(a, w, y, r):
    for i in range(a.shape[0]):
        s = -y[i]
        for j in range(a.shape[1]):
            s += a[i, j] * w[j]
        r[i] = s


@njit
def jac_cpu(w, out, a, y, r):
    residual_cpu(a, w, y, r)
    m = a.shape[0]
    for j in range(a.shape[1]):
        s = 0.0
        for i in range(m):
            s += a[i, j] * r[i]
        out[j] = s / m


def fun_cpu(w, a, y, r):
    residual_cpu(a, w, y, r)
    return 0.5 * float(r @ r) / a.shape[0]


def main():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, N))
    w_true = np.array([1.5, -2.0, 0.5, 3.0])
    y = a @ w_true + 0.05 * rng.standard_normal(M)

    # Data and scratch space on the device, once.
    a_dev, y_dev = cuda.to_device(a), cuda.to_device(y)
    r_dev = cuda.device_array(M)
    args = (a_dev, y_dev, r_dev)

    first = {"lr": 0.05, "maxiter": 150, "gtol": 1e-8}
    res = rmsopt.minimize(fun, cuda.to_device(np.zeros(N)), args=args,
                          jac=jac, options=first)
    print(f"lr=0.05:  {res.nit} iterations, f = {res.fun:.6f}")
    then = {"lr": 0.002, "maxiter": 150, "gtol": 1e-8, "state": res.state}
    res = rmsopt.minimize(fun, res.x, args=args, jac=jac, options=then)
    print(f"lr=0.002: {res.nit} more, f = {res.fun:.6f}, "
          f"status {res.status}: {res.message}")

    # Results are device arrays like x0: copy to the host to print them.
    w = res.x.copy_to_host()
    w_lstsq = np.linalg.lstsq(a, y, rcond=None)[0]
    print("w (GPU)  :", np.round(w, 4))
    print("w (lstsq):", np.round(w_lstsq, 4))
    assert np.allclose(w, w_lstsq, atol=5e-3), (w, w_lstsq)

    # The same two runs on the CPU.
    r = np.empty(M)
    cpu = rmsopt.minimize(fun_cpu, np.zeros(N), args=(a, y, r), jac=jac_cpu,
                          options=first)
    cpu = rmsopt.minimize(fun_cpu, cpu.x, args=(a, y, r), jac=jac_cpu,
                          options={**then, "state": cpu.state})
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        assert np.array_equal(w, cpu.x), (w, cpu.x)
        print("The CPU run gives the same bits.")
    else:
        assert np.allclose(w, cpu.x, rtol=1e-6, atol=1e-9), (w, cpu.x)
        print("The CPU run agrees to rounding.")
    assert res.nit == cpu.nit


if __name__ == "__main__":
    main()
