r"""The device run: x0, the state and the loop on a GPU (the host run's twin).

When ``x0`` is a device array (a numba device array, or any object exposing
``__cuda_array_interface__``: CuPy arrays, PyTorch CUDA tensors),
:func:`rmsopt.minimize` builds a :class:`DeviceRun` with :func:`prepare`
instead of :class:`rmsopt._drive.HostRun`; both give the same result fields
through the same methods (``run``, ``result``, ``interrupted_result``).
Everything stays on the device: ``work`` (x, the state and the bounds as
rows, :func:`rmsopt._layout.work_rows`) and the gradient; the kernels are
:mod:`rmsopt._cuda`'s, compiled from the same rule as the CPU's. The user's
functions get x as x0's kind and return device arrays, checked from their
metadata by the same :class:`rmsopt._objective.Objective` as on the host,
with the device's :class:`rmsopt._objective.Memory`.

The update is the CPU path's, in the same order:

.. math::

    v \leftarrow \alpha v + (1 - \alpha) g^2, \qquad
    x \leftarrow x - \gamma \, g / (\sqrt{v} + \epsilon)

(every option of :func:`rmsopt.minimize`; see
:func:`rmsopt._rule.rmsprop_element`), with these differences: ``jac`` must
be a callable or ``True`` (no finite differences) and return device arrays
of x0's dtype (not converted), contiguous, of shape ``(n,)``; ``fun`` may
return a device scalar; schedules, batches, history and progress are CPU
options so far; ``parallel`` does not apply.

The run stops on the device at exactly the iteration the CPU path stops at
(:mod:`rmsopt._cuda` explains the control array), and ``nit`` is exact: it
is ``ctrl[DONE]`` when the run ended there, the number of steps launched
otherwise. The host reads ``ctrl`` (one small copy, which waits for the
queued work) after 1, 2, 4, ... steps, then every :data:`CHECK_EVERY`
steps, at the end, and after every step when there is a callback (it gets
the current x, so it must know whether the run is over). Between two reads
the host keeps calling ``jac`` at the final x after a stop it has not seen
yet: those calls are real and counted, so ``njev`` (and ``nfev`` with
``jac=True``) can exceed the CPU path's by less than ``CHECK_EVERY`` (and
less than the number of steps) when the run ends by gtol or NaN; everything
else (``x``, ``fun``, ``nit``, ``status``, the state) is the CPU path's, and
``jac`` is the latest gradient, at the same final x.

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

import numpy as np
from scipy.optimize import OptimizeWarning

from . import _cuda, _layout
from ._checks import (CLIPPED, check_bounds, check_layout, check_state,
                      check_state_array, notifier, state_error)
from ._layout import STATE_NAMES, work_rows
from ._objective import Memory, Objective, jac_mode, scalar
from ._options import parse_options
from ._result import (CALLBACK, KERNEL_TO_STATUS, MAXITER,
                      interrupted_result, make_result, warn_user)

# The host reads the control array every CHECK_EVERY iterations (each read
# waits for the queued work: the GPU idles while the host refills the queue).
CHECK_EVERY = 32

# The control array's initial words (int64; see rmsopt._cuda).
_CTRL = [-1, 0] + [_cuda.NEVER] * 4


def prepare(fun, x0, args, jac, bounds, tol, callback, options):
    """Check a device problem and build its :class:`DeviceRun`; nothing is
    compiled or allocated on the device before the host-side checks."""
    cuda = _cuda.load()
    shape, dtype, contiguous = _cuda.array_layout(x0, "x0")
    n, work_dtype = check_layout(shape, dtype)
    if not contiguous:
        raise ValueError("x0 must be contiguous on the device; got a strided "
                         "view: pass a contiguous copy (rmsopt refuses strides "
                         "rather than read the wrong elements)")
    lo, hi = check_bounds(bounds, n, work_dtype)
    settings = parse_options(options, n, tol=tol, bounded=lo is not None)
    if settings.driver == "nopython":
        raise ValueError("driver='nopython' is a CPU driver; a device x0 "
                         "runs the cuda driver (use driver='auto')")
    unsupported = [name for name, value in (
        ("lr (a schedule)", settings.schedule), ("batch", settings.batch),
        ("history", settings.history), ("progress", settings.progress))
        if value not in (None, False)]
    if unsupported:
        raise ValueError(f"The GPU driver does not support "
                         f"{', '.join(unsupported)} yet; use a host "
                         "(NumPy) x0 for these options")
    notify = notifier(callback)
    if jac_mode(jac) not in ("callable", "value_and_grad"):
        raise ValueError(
            "With a device x0, jac must be a callable returning a device "
            "array, or True (fun returns (f, g)): finite differences "
            f"(jac={jac!r}) evaluate fun one point at a time on the host.")
    kind = _cuda.kind_of(x0)
    obj = Objective(fun, jac, args, n, work_dtype, memory=_memory(kind))
    x = _cuda.as_numba(x0, "x0").reshape((n,))
    if x.dtype != work_dtype:  # integers: converted on the device
        cast = cuda.device_array(n, dtype=work_dtype)
        _cuda.configured(_cuda.utility_kernels()[1], n)(x, cast)
        x = cast
    return DeviceRun(x, kind, lo, hi, settings, obj, notify)


def _memory(kind):
    """The objective's :class:`rmsopt._objective.Memory` on the device."""
    cuda = _cuda.cuda

    def buffer(n, dtype):
        out = cuda.device_array(n, dtype=dtype)
        _cuda.configured(_cuda.utility_kernels()[0], n)(out, dtype.type(0))
        return out, kind(out)

    return Memory(buffer=buffer, gradient=_device_gradient,
                  to_float=_host_float, check_value=lambda value: None)


def _host_float(value):
    """fun's value as a Python float; a device scalar is copied over."""
    if _cuda.is_device_array(value):
        value = _cuda.as_numba(value, "fun's value").copy_to_host()
    return float(scalar(value))


def _device_gradient(g, n, dtype, source):
    """``g`` as a numba device array, or an error that says what is wrong
    with it (metadata only: nothing is read on the device); device
    gradients are not converted."""
    if not _cuda.is_device_array(g):
        raise TypeError(
            f"{source} returned a {type(g).__module__}."
            f"{type(g).__qualname__} (host memory) for a device x0: it "
            "must return a device array (a numba device array or an "
            "object with __cuda_array_interface__, such as a CuPy "
            f"array) of shape ({n},) and dtype {dtype}")
    shape, g_dtype, contiguous = _cuda.array_layout(
        g, f"The gradient from {source}")
    if shape != (n,):
        raise ValueError(f"The gradient must have shape ({n},) like x0; got "
                         f"shape {shape} from {source}")
    if g_dtype != dtype:
        raise TypeError(f"The gradient must have dtype {dtype} like x0 "
                        f"(device gradients are not converted); got "
                        f"{g_dtype} from {source}")
    if not contiguous:
        raise ValueError(f"The gradient must be contiguous on the device; "
                         f"{source} returned a strided view: return a "
                         "contiguous array (a copy)")
    return _cuda.as_numba(g, f"The gradient from {source}"), g_dtype


class DeviceRun:
    """A run on the device: its arrays, kernels and counters."""

    def __init__(self, x0, kind, lo, hi, settings, obj, notify):
        cuda = _cuda.cuda
        n, dtype = x0.shape[0], obj.dtype
        self.kind, self.obj, self.notify = kind, obj, notify
        flags = settings.flags
        self.rows = rows = work_rows(flags)
        self.work = cuda.device_array((len(rows), n), dtype=dtype)
        self.x = self.work[rows["x"]]
        self.x.copy_to_device(x0)  # the one copy of the user's x0
        x_absmax, first = _cuda.absmax(self.x)
        if first is not None:
            value = self.x[first:first + 1].copy_to_host()[0]
            raise ValueError(f"x0 must be finite; found {value} at index "
                             f"{first}")
        if flags.bounded:
            self._set_bounds(lo, hi)
        self.t0, summary = self._initial_state(settings)
        gsafe, guarded = _layout.overflow_guard(settings, dtype, x_absmax,
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
        check, step = _cuda.make_kernels(settings.flags, dtype.name)
        self.check = _cuda.configured(check, n)
        self.step = _cuda.configured(step, n)
        self.ctrl = cuda.to_device(np.array(_CTRL, dtype=np.int64))
        self.x_kind = kind(self.x)
        self.g = None       # gradient at x (numba device array)
        self.g_at = -1      # steps launched when g was computed
        self.launched = 0   # steps launched in this run
        self.done = -1      # ctrl[DONE] as last read
        self.code = 0
        self._value = None

    def _set_bounds(self, lo, hi):
        rows, n = self.rows, self.x.shape[0]
        self.work[rows["lo"]].copy_to_device(lo)
        self.work[rows["hi"]].copy_to_device(hi)
        moved = _cuda.cuda.to_device(np.zeros(1, dtype=np.int64))
        _cuda.configured(_cuda.utility_kernels()[3], n)(
            self.x, self.work[rows["lo"]], self.work[rows["hi"]], moved)
        if moved.copy_to_host()[0]:
            warn_user(CLIPPED, OptimizeWarning)

    def _initial_state(self, settings):
        """Fill the state rows of ``work``, fresh or from
        ``options['state']`` (host or device arrays); return the step count
        and the state's magnitudes for the overflow proof."""
        fill = _cuda.configured(_cuda.utility_kernels()[0],
                                self.x.shape[0])
        work, rows = self.work, self.rows
        n, dtype = work.shape[1], np.dtype(work.dtype)
        real = dtype.type
        t, arrays = check_state(settings.state, rows)
        summary = None if arrays is None else {}
        for row in STATE_NAMES:
            if row not in rows:
                continue  # this run does not use it (e.g. no momentum)
            target = work[rows[row]]
            value = None if arrays is None else arrays[row]
            if value is None:  # fresh, or e.g. momentum switched on
                fill(target, real(settings.initial_scale if (
                    row == "v" and arrays is None) else 0))
                continue
            what = f"state[{STATE_NAMES[row]!r}]"
            if _cuda.is_device_array(value):
                shape, v_dtype, contiguous = _cuda.array_layout(value, what)
                check_state_array(row, shape, v_dtype, contiguous, n, dtype,
                                  device=True)
                value = _cuda.as_numba(value, what)
            else:
                value = np.ascontiguousarray(value)
                check_state_array(row, value.shape, value.dtype, True, n,
                                  dtype, device=True)
            target.copy_to_device(value)
            largest, first = _cuda.absmax(target)
            if first is not None:
                raise state_error(row)
            summary[STATE_NAMES[row]] = np.array([largest])
        return t, summary

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
        self.done, self.code = int(ctrl[_cuda.DONE]), int(ctrl[_cuda.CODE])
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
        every = 1 if self.notify is not None else max(1, int(CHECK_EVERY))
        # Reads after 1, 2, 4, ... steps, then every `every`: a run that
        # stops early wastes few gradient calls, a long one syncs rarely.
        interval, next_read = 1, 1
        for k in range(maxiter):
            self.launch(k, True)
            self.launched = k + 1
            if self.launched == next_read or self.launched == maxiter:
                if self.read():
                    return KERNEL_TO_STATUS[self.code]
                interval = min(2 * interval, every)
                next_read = self.launched + interval
            self.gradient()
            if self.notify is not None and self.notify(
                    lambda: self.copy(self.x), self.value, self.nit):
                return CALLBACK
        # The final check: the same two kernels at the last gradient, with
        # no update.
        self.launch(self.launched, False)
        if self.read():
            return KERNEL_TO_STATUS[self.code]
        return MAXITER

    # -- what the run gives back ---------------------------------------------

    def copy(self, a):
        """A fresh device copy of ``a``, as x0's kind."""
        out = _cuda.cuda.device_array(a.shape[0], dtype=a.dtype)
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
        state = {"step": self.t0 + self.nit}
        for row, name in STATE_NAMES.items():
            state[name] = self.kind(self.work[self.rows[row]]) \
                if row in self.rows else None
        return state

    def current_jac(self):
        """The gradient at the final x (after a stop the host had not seen,
        x no longer moves, so a later gradient is at it too), or None."""
        if self.g is None or self.g_at < self.nit:
            return None
        if self.g is self.obj.out:  # our buffer: handed over
            return self.obj.out_view
        return self.copy(self.g)

    def result(self, status):
        x = self.copy(self.x)
        fun = self.value()
        nfev, njev = self.obj.counts()
        return make_result(x=x, fun=fun, jac=self.current_jac(),
                           nit=self.nit, nfev=nfev, njev=njev,
                           status=status, state=self.state())

    def interrupted_result(self):
        """The last iterate and the true counts, for a Ctrl-C."""
        try:
            self.read()
        except Exception:  # keep the interrupt, whatever the device says
            pass
        nfev, njev = self.obj.counts()
        return interrupted_result(x=self.copy(self.x),
                                  jac=self.current_jac(), nit=self.nit,
                                  nfev=nfev, njev=njev, state=self.state())
