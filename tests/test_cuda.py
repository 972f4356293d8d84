"""The GPU path (rmsopt/_cuda.py) against the CPU path, which is the oracle.

Runs on a CUDA GPU, or without one under numba's CUDA simulator, which must
be enabled before numba is imported, so in a pytest process of its own::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/test_cuda.py

(.ci/run does this). The simulator runs each kernel as Python on NumPy
scalars, the same IEEE operations in the same order as the CPU kernels, so
there the results must be bit-identical. On a real GPU, NVVM fuses
``a * b + c`` into one FMA (one rounding instead of two; numba-cuda has no
switch to turn that off), so there they agree to a few units in the last
place per step: ``assert_same`` then allows a relative 1e-6 (float32: 1e-4)
after the few iterations these tests run.

Where there is neither a GPU nor the simulator, the device tests skip; the
tests of what needs no device (rmsopt never imports numba.cuda on its own;
the error that says CUDA is missing) still run.
"""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from scipy.optimize import Bounds, OptimizeWarning

import rmsopt
from rmsopt import _cuda, _device, _layout
from problems import X0, rosen, rosen_python_grad
from reference import reference_rmsprop

SIMULATED = bool(getattr(numba.config, "ENABLE_CUDASIM", 0))


def _find_cuda():
    try:
        from numba import cuda
        return cuda if cuda.is_available() else None
    except Exception:  # no numba-cuda, no driver
        return None


cuda = _find_cuda()
device = pytest.mark.skipif(
    cuda is None, reason="no CUDA GPU, and the simulator is off "
                         "(NUMBA_ENABLE_CUDASIM=1 before numba is imported)")


@pytest.fixture(autouse=True)
def small_grids(monkeypatch):
    """Two blocks of two threads: the grid-stride loops run several times
    (n = 5 > 4 threads) and the simulator (a Python thread per CUDA thread)
    stays fast."""
    monkeypatch.setattr(_cuda, "THREADS_PER_BLOCK", 2)
    monkeypatch.setattr(_cuda, "MAX_BLOCKS", 2)


# -- helpers ------------------------------------------------------------------

def host(a):
    return None if a is None else a.copy_to_host()


def on_device(grad):
    """A device jac from a host gradient: the same numbers as the CPU run's
    (the test compares the update, not the gradient)."""
    def jac(x, *args):
        return cuda.to_device(grad(x.copy_to_host(), *args))
    return jac


def device_fun(fun):
    def f(x, *args):
        return fun(x.copy_to_host(), *args)
    return f


def rosen_grad(x):
    return rosen_python_grad(x)


def assert_close(a, b):
    if SIMULATED:
        np.testing.assert_array_equal(a, b)
    else:
        rtol = 1e-4 if np.asarray(b).dtype == np.float32 else 1e-6
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


def assert_same(gpu, cpu, njev_slack=0):
    """Every field the same (bit for bit under the simulator). ``njev`` may
    exceed the CPU's by the calls made after a stop the host had not read
    yet (``_device.CHECK_EVERY``)."""
    assert_close(host(gpu.x), cpu.x)
    assert host(gpu.x).dtype == cpu.x.dtype
    if cpu.jac is None:
        assert gpu.jac is None
    else:
        assert_close(host(gpu.jac), cpu.jac)
    for key in ("square_avg", "grad_avg", "momentum_buffer"):
        if cpu.state[key] is None:
            assert gpu.state[key] is None
        else:
            assert_close(host(gpu.state[key]), cpu.state[key])
    for name in ("nit", "status", "message", "success"):
        assert gpu[name] == cpu[name], name
    assert gpu.state["step"] == cpu.state["step"]
    assert_close(gpu.fun, cpu.fun)
    assert cpu.njev <= gpu.njev <= cpu.njev + njev_slack
    # the extra gradient calls count in nfev too when they give the value
    assert gpu.nfev - cpu.nfev in (0, gpu.njev - cpu.njev)


def both(x0, grad=rosen_grad, fun=rosen, **kwargs):
    """The same problem on the device and on the host."""
    gpu = rmsopt.minimize(device_fun(fun), cuda.to_device(x0),
                          jac=on_device(grad), **kwargs)
    cpu = rmsopt.minimize(fun, x0, jac=grad, **kwargs)
    return gpu, cpu


OPTION_SETS = [
    {},
    {"maximize": True, "lr": 1e-3},
    {"momentum": 0.9, "centered": True, "weight_decay": 0.01},
    {"momentum": 0.5, "nesterov": True, "eps_in_sqrt": True},
    {"convention": "keras", "momentum": 0.9, "weight_decay": 0.1},
    {"convention": "tf1", "momentum": 0.5, "nesterov": True,
     "bias_correction": True, "lr": 1e-3},
    {"convention": "optax", "centered": True, "bias_correction": True,
     "lr_in_momentum": False, "momentum": 0.3},
]


# -- the update ---------------------------------------------------------------

@device
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", OPTION_SETS)
def test_every_option_matches_the_cpu(options, dtype):
    gpu, cpu = both(X0.astype(dtype),
                    options={"maxiter": 12, "gtol": 0, **options})
    assert type(gpu.x) is type(cuda.to_device(np.zeros(1)))
    assert_same(gpu, cpu)


@device
def test_matches_the_numpy_reference():
    xs, state = reference_rmsprop(rosen_grad, X0, 15, momentum=0.9,
                                  centered=True)
    res = rmsopt.minimize(device_fun(rosen), cuda.to_device(X0),
                          jac=on_device(rosen_grad),
                          options={"maxiter": 15, "gtol": 0, "momentum": 0.9,
                                   "centered": True})
    assert_close(host(res.x), xs[-1])
    assert_close(host(res.state["square_avg"]), state["square_avg"])
    assert_close(host(res.state["momentum_buffer"]),
                 state["momentum_buffer"])


@device
def test_more_elements_than_threads_and_launch_shapes(monkeypatch):
    x0 = np.linspace(-1.0, 1.2, 37)
    cpu = rmsopt.minimize(rosen, x0, jac=rosen_grad,
                          options={"maxiter": 6, "gtol": 0})
    for threads, blocks in ((2, 2), (8, 1), (4, 16)):
        monkeypatch.setattr(_cuda, "THREADS_PER_BLOCK", threads)
        monkeypatch.setattr(_cuda, "MAX_BLOCKS", blocks)
        gpu = rmsopt.minimize(device_fun(rosen), cuda.to_device(x0),
                              jac=on_device(rosen_grad),
                              options={"maxiter": 6, "gtol": 0})
        assert_same(gpu, cpu)


# -- stopping on the device ---------------------------------------------------

def quad(x):
    return 0.5 * float(x @ x)


def quad_grad(x):
    return x.copy()


@device
@pytest.mark.parametrize("every", [1, 4, 32])
def test_gtol_stops_at_the_cpu_iteration(monkeypatch, every):
    # Stops by gtol at an iteration that is no multiple of `every`: the
    # kernels must skip every launch after it, or x would move on.
    monkeypatch.setattr(_device, "CHECK_EVERY", every)
    x0 = np.array([0.3, -0.2, 0.25])
    options = {"lr": 1e-2, "gtol": 0.05, "maxiter": 100}
    gpu, cpu = both(x0, grad=quad_grad, fun=quad, options=options)
    assert cpu.status == 0 and 0 < cpu.nit < 100 and cpu.nit % 4 != 0
    assert_same(gpu, cpu, njev_slack=every - 1)
    if every == 1:
        assert gpu.njev == cpu.njev


@device
def test_gtol_uses_the_projected_gradient_with_bounds():
    x0 = np.array([0.5, -0.5, 0.2])
    options = {"lr": 1e-2, "gtol": 1e-3, "maxiter": 60}
    bounds = [(0.4, 1.0), (-1.0, -0.45), (None, None)]
    gpu, cpu = both(x0, grad=quad_grad, fun=quad, bounds=bounds,
                    options=options)
    assert cpu.status == 0 and cpu.nit < 60
    assert_same(gpu, cpu, njev_slack=_device.CHECK_EVERY - 1)
    assert host(gpu.x)[0] == 0.4


@device
@pytest.mark.parametrize("every", [1, 32])
def test_a_nan_gradient_stops_before_the_step(monkeypatch, every):
    monkeypatch.setattr(_device, "CHECK_EVERY", every)

    def grad(x):
        calls.append(1)
        g = rosen_grad(x)
        if len(calls) == 6:
            g[2] = np.nan
        return g
    calls = []
    cpu = rmsopt.minimize(rosen, X0, jac=grad, options={"maxiter": 50})
    calls = []
    gpu = rmsopt.minimize(device_fun(rosen), cuda.to_device(X0),
                          jac=on_device(grad), options={"maxiter": 50})
    assert cpu.status == 3 and cpu.nit == 5
    # The host may call jac again at the same x before it reads the stop:
    # those gradients are finite, and the result's jac is the latest.
    np.testing.assert_array_equal(host(gpu.x), cpu.x)
    assert gpu.nit == 5 and gpu.status == 3
    if every == 1:
        assert_same(gpu, cpu)


@device
def test_a_gradient_too_large_to_square_stops_the_run():
    x0 = np.ones(3, dtype=np.float32)
    gpu, cpu = both(x0, grad=lambda x: np.full(3, 1e30, np.float32),
                    fun=lambda x: 0.0, options={"maxiter": 5})
    assert cpu.status == 3 and cpu.nit == 0
    assert_same(gpu, cpu, njev_slack=4)


@device
def test_the_guarded_step_keeps_overflowing_elements():
    x0 = np.array([3e38, 1.0], dtype=np.float32)
    gpu, cpu = both(x0, grad=lambda x: np.array([-1.0, 1.0], np.float32),
                    fun=lambda x: 0.0, options={"lr": 1e37, "maxiter": 5})
    assert cpu.status == 3 and cpu.nit == 1 and cpu.x[0] == x0[0]
    assert_same(gpu, cpu, njev_slack=_device.CHECK_EVERY - 1)


@device
def test_an_unguarded_step_past_a_quarter_of_the_maximum_stops(monkeypatch):
    # Unreachable while the overflow proof holds; force the unguarded kernel
    # on both paths to check that the device reports it as the CPU does.
    real = _layout.overflow_guard
    monkeypatch.setattr(_layout, "overflow_guard",
                        lambda *a: (real(*a)[0], False))
    x0 = np.array([8.0e37, 1.0], dtype=np.float32)
    gpu, cpu = both(x0, grad=lambda x: np.array([-1.0, 1.0], np.float32),
                    fun=lambda x: 0.0, options={"lr": 1e37, "maxiter": 5})
    assert cpu.status == 3 and cpu.nit == 1 and cpu.x[0] > 8.5e37
    assert_same(gpu, cpu, njev_slack=_device.CHECK_EVERY - 1)


@device
def test_maxiter_zero_and_an_optimal_x0():
    gpu, cpu = both(X0, options={"maxiter": 0})
    assert cpu.nit == 0 and cpu.status == 1
    assert_same(gpu, cpu)
    gpu, cpu = both(np.zeros(3), grad=quad_grad, fun=quad)
    assert cpu.nit == 0 and cpu.success
    assert_same(gpu, cpu)


# -- bounds, state, callbacks, jac forms --------------------------------------

@device
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bounds_are_projected_on_the_device(dtype):
    x0 = X0.astype(dtype)
    bounds = Bounds([-1.3, 0.95, 0.75, -np.inf, 0.55], [0.0, 1.1, 1.0, 1.4, 0.7])
    gpu, cpu = both(x0, bounds=bounds, options={"maxiter": 15, "gtol": 0})
    assert_same(gpu, cpu)
    assert (host(gpu.x) >= bounds.lb.astype(dtype)).all()


@device
def test_an_x0_outside_the_bounds_is_clipped_with_a_warning():
    bounds = [(-1.0, 1.0)] * 5
    with pytest.warns(OptimizeWarning, match="clipped"):
        gpu = rmsopt.minimize(device_fun(rosen), cuda.to_device(X0),
                              jac=on_device(rosen_grad), bounds=bounds,
                              options={"maxiter": 5})
    with pytest.warns(OptimizeWarning, match="clipped"):
        cpu = rmsopt.minimize(rosen, X0, jac=rosen_grad, bounds=bounds,
                              options={"maxiter": 5})
    assert_same(gpu, cpu)
    # Inside the box: no warning (warnings are errors in this suite).
    rmsopt.minimize(device_fun(rosen), cuda.to_device(np.clip(X0, -1, 1)),
                    jac=on_device(rosen_grad), bounds=bounds,
                    options={"maxiter": 2})


@device
def test_continuing_from_the_state_matches_the_cpu():
    options = {"maxiter": 6, "gtol": 0, "momentum": 0.9, "centered": True,
               "bias_correction": True}
    gpu, cpu = both(X0, options=options)
    gpu2 = rmsopt.minimize(device_fun(rosen), gpu.x, jac=on_device(rosen_grad),
                           options={**options, "state": gpu.state})
    cpu2 = rmsopt.minimize(rosen, cpu.x, jac=rosen_grad,
                           options={**options, "state": cpu.state})
    assert_same(gpu2, cpu2)
    assert gpu2.state["step"] == 12
    # a host state for a device x0 is copied over
    gpu3 = rmsopt.minimize(device_fun(rosen), gpu.x, jac=on_device(rosen_grad),
                           options={**options, "state": cpu.state})
    assert_same(gpu3, cpu2)


@device
def test_a_bad_state_is_refused():
    x0 = cuda.to_device(X0)
    jac = on_device(rosen_grad)
    for state, match in (
            ({"step": 1, "square_avg": cuda.to_device(np.ones(4))}, "shape"),
            ({"step": 1, "square_avg": np.ones(5, np.float32)}, "float64"),
            ({"step": 1, "square_avg": cuda.to_device(np.full(5, np.inf))},
             "finite"),
            ({"step": -1, "square_avg": np.ones(5)}, "step"),
    ):
        with pytest.raises(ValueError, match=match):
            rmsopt.minimize(rosen, x0, jac=jac, options={"state": state})
    with pytest.raises(TypeError, match="state"):
        rmsopt.minimize(rosen, x0, jac=jac, options={"state": {"step": 1}})


@device
@pytest.mark.parametrize("style", ["new", "legacy"])
def test_callbacks_and_stop_iteration(style):
    def record(x, nit=None):
        seen.append(x)
        if len(seen) == 4:
            raise StopIteration

    if style == "new":
        def callback(intermediate_result):
            record(intermediate_result.x)
            funs.append(intermediate_result.fun)
    else:
        def callback(xk):
            record(xk)
    seen, funs = [], []
    gpu = rmsopt.minimize(device_fun(rosen), cuda.to_device(X0),
                          jac=on_device(rosen_grad), callback=callback)
    gpu_seen, gpu_funs = [host(x) for x in seen], funs
    seen, funs = [], []
    cpu = rmsopt.minimize(rosen, X0, jac=rosen_grad, callback=callback)
    assert cpu.status == 99 and cpu.nit == 4
    assert_same(gpu, cpu)
    for a, b in zip(gpu_seen, seen, strict=True):
        assert_close(a, b)
    assert gpu_funs == funs


@device
def test_value_and_grad_and_the_in_place_forms():
    def value_and_grad(x):
        xh = x.copy_to_host()
        return rosen(xh), cuda.to_device(rosen_grad(xh))

    def jac_out(x, out):
        out.copy_to_device(rosen_grad(x.copy_to_host()))

    def value_and_grad_out(x, out):
        xh = x.copy_to_host()
        out.copy_to_device(rosen_grad(xh))
        return cuda.to_device(np.array([rosen(xh)]))  # a device scalar

    options = {"maxiter": 8, "gtol": 0}
    cpu = rmsopt.minimize(lambda x: (rosen(x), rosen_grad(x)), X0, jac=True,
                          options=options)
    for fun, jac in ((value_and_grad, True), (value_and_grad_out, True),
                     (device_fun(rosen), jac_out)):
        gpu = rmsopt.minimize(fun, cuda.to_device(X0), jac=jac,
                              options=options)
        assert_same(gpu, cpu if jac is True else rmsopt.minimize(
            rosen, X0, jac=rosen_grad, options=options))


@device
def test_args_and_integer_x0():
    def grad(x, scale):
        return scale * x

    def fun(x, scale):
        return 0.5 * scale * float(x.copy_to_host() @ x.copy_to_host())
    x0 = np.array([3, -2, 1])
    cpu = rmsopt.minimize(lambda x, s: 0.5 * s * float(x @ x), x0, args=2.0,
                          jac=grad, options={"maxiter": 5, "gtol": 0})
    gpu = rmsopt.minimize(fun, cuda.to_device(x0), args=2.0,
                          jac=on_device(grad),
                          options={"maxiter": 5, "gtol": 0})
    assert host(gpu.x).dtype == np.float64
    assert_same(gpu, cpu)


@device
def test_a_zero_dimensional_x0_is_one_parameter():
    gpu, cpu = both(np.array(2.0), grad=quad_grad, fun=lambda x: 0.0,
                    options={"maxiter": 4})
    assert host(gpu.x).shape == (1,)
    assert_same(gpu, cpu)


@device
def test_ctrl_c_carries_the_result():
    def jac(x):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(1)
        return cuda.to_device(rosen_grad(x.copy_to_host()))
    calls = []
    with pytest.raises(KeyboardInterrupt) as info:
        rmsopt.minimize(device_fun(rosen), cuda.to_device(X0), jac=jac)
    res = info.value.result
    # the fifth call was made (and interrupted): counted when made
    assert res.status == 98 and res.nit == 4 and res.njev == 5
    assert res.jac is None  # jac was interrupted at the final x
    expected = rmsopt.minimize(rosen, X0, jac=rosen_grad,
                               options={"maxiter": 4})
    assert_close(host(res.x), expected.x)


@device
def test_disp_prints_the_summary(capsys):
    rmsopt.minimize(device_fun(quad), cuda.to_device(np.zeros(2)),
                    jac=on_device(quad_grad), options={"disp": True})
    assert "Optimization terminated successfully." in capsys.readouterr().out


# -- foreign device arrays ----------------------------------------------------

class Exposed:
    """A foreign device array: it only exposes ``__cuda_array_interface__``
    (as CuPy arrays and PyTorch tensors do) over a numba device array's
    memory. Under the simulator that memory is the host's."""

    def __init__(self, dev):
        self.dev = dev

    @property
    def __cuda_array_interface__(self):
        if SIMULATED:
            desc = dict(self.dev.__array_interface__)
            desc.update(version=3, stream=None)
            return desc
        return self.dev.__cuda_array_interface__


def exposed(grad):
    def jac(x, *args):
        return Exposed(cuda.to_device(grad(_cuda.as_numba(
            x, "x").copy_to_host(), *args)))
    return jac


@device
def test_an_object_with_the_interface_runs_and_gets_numba_arrays():
    seen = []

    def fun(x):
        seen.append(type(x))
        return rosen(_cuda.as_numba(x, "x").copy_to_host())
    options = {"maxiter": 6, "gtol": 0}
    gpu = rmsopt.minimize(fun, Exposed(cuda.to_device(X0)),
                          jac=exposed(rosen_grad), options=options)
    cpu = rmsopt.minimize(rosen, X0, jac=rosen_grad, options=options)
    assert_same(gpu, cpu)
    assert _cuda.is_device_array(gpu.x) and hasattr(gpu.x, "copy_to_host")


class FakeCupyArray(Exposed):
    """Stands for cupy.ndarray (CuPy is not installed here): rmsopt picks
    the kind by the type's package, and calls ``cupy.asarray`` on its own
    arrays."""


FakeCupyArray.__module__ = "cupy._core.core"


class FakeTensor(Exposed):
    device = "cuda:0"


FakeTensor.__module__ = "torch"


@device
@pytest.mark.parametrize("cls", [FakeCupyArray, FakeTensor])
def test_cupy_and_torch_inputs_get_their_own_kind(monkeypatch, cls):
    import types
    calls = []
    if cls is FakeCupyArray:
        module = types.SimpleNamespace(asarray=lambda a: cls(a))
    else:
        def as_tensor(a, device):
            calls.append(device)
            return cls(a)
        module = types.SimpleNamespace(as_tensor=as_tensor)
    monkeypatch.setitem(sys.modules, cls.__module__.split(".")[0], module)
    got = []

    def jac(x):
        got.append(type(x))
        return cls(cuda.to_device(rosen_grad(x.dev.copy_to_host())))
    options = {"maxiter": 5, "gtol": 0, "momentum": 0.5}
    gpu = rmsopt.minimize(lambda x: rosen(x.dev.copy_to_host()),
                          cls(cuda.to_device(X0)), jac=jac, options=options)
    cpu = rmsopt.minimize(rosen, X0, jac=rosen_grad, options=options)
    assert set(got) == {cls}
    for value in (gpu.x, gpu.jac, gpu.state["square_avg"],
                  gpu.state["momentum_buffer"]):
        assert type(value) is cls
    gpu.x, gpu.jac = gpu.x.dev, gpu.jac.dev
    for key in ("square_avg", "momentum_buffer"):
        gpu.state[key] = gpu.state[key].dev
    assert_same(gpu, cpu)
    if cls is FakeTensor:
        assert set(calls) == {"cuda:0"}


# -- errors -------------------------------------------------------------------

@device
def test_a_host_gradient_is_refused_before_any_step():
    x0 = cuda.to_device(X0)
    with pytest.raises(TypeError, match=r"numpy\.ndarray \(host memory\) "
                                        r"for a device x0"):
        rmsopt.minimize(rosen, x0, jac=rosen_der_host)
    np.testing.assert_array_equal(x0.copy_to_host(), X0)


def rosen_der_host(x):
    return rosen_grad(x.copy_to_host())


@device
def test_bad_gradients_are_refused():
    x0 = cuda.to_device(X0)
    for grad, error, match in (
            (lambda x: cuda.to_device(np.zeros(4)), ValueError, "shape"),
            (lambda x: cuda.to_device(np.zeros(5, np.float32)), TypeError,
             "dtype float64"),
            (lambda x: cuda.to_device(np.zeros(10))[::2], ValueError,
             "contiguous"),
            (lambda x: cuda.to_device(np.zeros((5, 1))), ValueError,
             "shape"),
    ):
        with pytest.raises(error, match=match):
            rmsopt.minimize(rosen, x0, jac=grad)
    with pytest.raises(TypeError, match="pair"):
        rmsopt.minimize(lambda x: 1.0, x0, jac=True)


@device
def test_bad_x0_and_options_are_refused():
    jac = on_device(rosen_grad)
    for x0, error, match in (
            (cuda.to_device(np.zeros(10))[::2], ValueError, "contiguous"),
            (cuda.to_device(np.zeros((2, 2))), ValueError, "one dimension"),
            (cuda.to_device(np.zeros(0)), ValueError, "empty"),
            (cuda.to_device(np.zeros(3, np.complex128)), TypeError,
             "must be real"),
            (cuda.to_device(np.zeros(3, np.float16)), TypeError, "float16"),
            (cuda.to_device(np.zeros(3, bool)), TypeError, "real numbers"),
            (cuda.to_device(np.array([1.0, np.nan])), ValueError,
             "finite; found nan at index 1"),
    ):
        with pytest.raises(error, match=match):
            rmsopt.minimize(rosen, x0, jac=jac)
    x0 = cuda.to_device(X0)
    for jac_form in (None, "2-point", "3-point", "cs"):
        with pytest.raises(ValueError, match="finite differences"):
            rmsopt.minimize(rosen, x0, jac=jac_form)
    with pytest.raises(ValueError, match="nopython"):
        rmsopt.minimize(rosen, x0, jac=jac, options={"driver": "nopython"})
    with pytest.raises(ValueError, match="Invalid learning rate"):
        rmsopt.minimize(rosen, x0, jac=jac, options={"lr": -1})


@device
def test_missing_cuda_is_a_clear_error(monkeypatch):
    x0 = cuda.to_device(X0)
    monkeypatch.setattr(_cuda, "cuda", None)
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs numba-cuda and a CUDA GPU"):
        rmsopt.minimize(rosen, x0, jac=on_device(rosen_grad))
    monkeypatch.delattr(numba, "cuda")
    monkeypatch.setitem(sys.modules, "numba.cuda", None)
    with pytest.raises(RuntimeError, match="cannot be imported"):
        rmsopt.minimize(rosen, x0, jac=on_device(rosen_grad))


# -- without a device ---------------------------------------------------------

def _python(code):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    return subprocess.run([sys.executable, "-W", "error", "-c",
                           textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_rmsopt_never_imports_numba_cuda_on_its_own():
    out = _python("""
        import sys
        import numpy as np
        import rmsopt
        res = rmsopt.minimize(lambda x: float(x @ x), np.ones(3),
                              jac=lambda x: 2 * x, options={"maxiter": 3})
        assert res.nit == 3
        assert "numba.cuda" not in sys.modules, "numba.cuda imported"
        """)
    assert out.returncode == 0, out.stderr


def test_a_device_x0_without_cuda_is_a_clear_error():
    # An object with the interface and a made-up pointer: nothing reads it,
    # the error comes first. Skipped inside where a GPU is present.
    out = _python("""
        import rmsopt
        try:
            from numba import cuda
            present = cuda.is_available()
        except ImportError:
            present = False
        if present:
            raise SystemExit(0)

        class Device:
            __cuda_array_interface__ = {"shape": (3,), "typestr": "<f8",
                                        "data": (1 << 40, False),
                                        "version": 3, "strides": None}
        try:
            rmsopt.minimize(lambda x: 0.0, Device(), jac=lambda x: x)
        except RuntimeError as exc:
            assert "needs numba-cuda and a CUDA GPU" in str(exc), exc
        else:
            raise AssertionError("no error")
        """)
    assert out.returncode == 0, out.stderr


def test_device_array_detection():
    class CpuTensor:  # as torch: the property exists, and refuses
        @property
        def __cuda_array_interface__(self):
            raise AttributeError("not a CUDA tensor")

    class GradTensor:
        @property
        def __cuda_array_interface__(self):
            raise RuntimeError("requires grad")

    assert not _cuda.is_device_array(np.zeros(2))
    assert not _cuda.is_device_array([1.0])
    assert not _cuda.is_device_array(CpuTensor())
    class Device:
        __cuda_array_interface__ = {"shape": (1,), "typestr": "<f8",
                                    "data": (0, False), "version": 3}

    assert _cuda.is_device_array(GradTensor())
    assert _cuda.is_device_array(Device())


@device
@pytest.mark.parametrize("options", [
    {"lr": rmsopt.schedules.cosine(0.01, 100)},
    {"lr": lambda t: 0.01},
    {"batch": {"args": (0,), "size": 2}},
    {"history": 5},
    {"progress": True},
])
def test_cpu_only_options_are_a_clear_error(options):
    from numba import cuda
    with pytest.raises(ValueError, match="GPU driver does not support"):
        rmsopt.minimize(device_fun(rosen), cuda.to_device(X0),
                        jac=on_device(rosen_grad), options=options)
