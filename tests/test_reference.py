"""Validate the test oracle ``tests/reference.py`` against independent sources.

* ``torch.optim.RMSprop`` (CPU, single-tensor path) for every combination of
  centered x momentum x weight_decay x maximize, float64 and float32;
* a NumPy replay of PyTorch's CPU rounding order (FMA contractions, ``lerp``)
  that must match torch bit for bit, which shows that the remaining
  reference-vs-torch differences are rounding order only;
* ``optax.rmsprop`` (optional, float64) incl. Nesterov and bias correction;
* closed forms from REFERENCE.md section 1 (Keras docstring example, the
  first-step sizes of section 1.6);
* continuation (state round trip) and float32 dtype preservation.

Tolerances (see the individual tests for details):

* torch, float64: ``rtol=1e-12, atol=1e-14``.  The reference is *not*
  bit-identical to torch, for two reasons (both pinned down by
  ``test_torch_rounding_order_explains_differences``): ATen's CPU kernels
  contract ``a + w*b`` into fused multiply-adds (``addcmul_``,
  ``add(alpha=)``, ``add_(alpha=)``, ``lerp_``; ``lerp_`` also computes
  ``m + w*(g - m)`` rather than ``alpha*m + (1-alpha)*g``), and CPU
  ``torch.sqrt`` (MKL VML) is not correctly rounded (1 ulp off for ~1% of
  float64 inputs).  Per step the two differ by about one ulp; over 50
  iterations the largest difference seen is 2e-15 of the trajectory scale,
  6% of the budget.
* torch, float32: ``rtol=1e-5`` plus ``atol = 1e-5 * max|x|`` over the
  trajectory.  The same one-ulp (6e-8) differences grow to at most 2.1e-6 of
  the trajectory scale in 50 steps (10% of the budget); torch-float32 itself
  is about as far from the float64 trajectory (up to ~8e-7), so both are
  equally accurate.  The atol is needed for coordinates that pass near
  zero, where no relative tolerance can hold.
* optax, float64: ``rtol=1e-12, atol=1e-14``, and ``rtol=1e-11`` for
  centered + bias_correction.  optax evaluates ``rsqrt(nu + eps) * g``,
  ``(1 - decay) * (g*g)``, ``1/(sqrt(nu) + eps) * g`` and multiplies by
  ``-lr`` after scaling; each differs from the reference's order by about an
  ulp (largest seen 1e-13 relative).  With bias correction the centered
  ``v_hat - m_hat**2`` cancels heavily in the first steps (it is exactly 0 on
  step 1 when ``initial_scale=0``), which amplifies that to 1.4e-12.
"""

import inspect
import itertools
from fractions import Fraction

import numpy as np
import pytest

from reference import OPTION_DEFAULTS, PRESETS, reference_rmsprop

N_ITER = 50

# --------------------------------------------------------------------------
# Test problems (gradients in NumPy, dtype-preserving)
# --------------------------------------------------------------------------


def rosen_grad(x):
    """Gradient of the n-dimensional Rosenbrock function."""
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


_rng = np.random.default_rng(0)
_A = _rng.standard_normal((8, 5))
_B = _rng.standard_normal(8)
_D = np.linspace(0.5, 3.0, 37)
_C = _rng.standard_normal(37)


def lstsq_grad(x):
    """Gradient of 0.5*||A x - b||^2 (8 x 5)."""
    A = _A.astype(x.dtype)
    return A.T @ (A @ x - _B.astype(x.dtype))


def diag_quad_grad(x):
    """Gradient of 0.5*sum(d*(x - c)**2), n = 37 (exercises torch's SIMD path)."""
    return _D.astype(x.dtype) * (x - _C.astype(x.dtype))


ROSEN_X0 = np.array([-1.2, 1.0, 0.5, -0.3, 0.8])

# (id, grad, x0, lr, alpha)
PROBLEMS = [
    ("rosen-lr1e-2-a0.9", rosen_grad, ROSEN_X0, 1e-2, 0.9),
    ("rosen-lr1e-3-a0.99", rosen_grad, ROSEN_X0, 1e-3, 0.99),
    ("lstsq-lr1e-2-a0.9", lstsq_grad, np.zeros(5), 1e-2, 0.9),
    ("lstsq-lr1e-3-a0.99", lstsq_grad, np.zeros(5), 1e-3, 0.99),
    ("quad37-lr1e-2-a0.99", diag_quad_grad, np.zeros(37), 1e-2, 0.99),
]

TORCH_OPTIONS = [
    dict(centered=c, momentum=mom, weight_decay=wd, maximize=mx)
    for c, mom, wd, mx in itertools.product(
        [False, True], [0.0, 0.9], [0.0, 0.1], [False, True]
    )
]


def _opt_id(opts):
    return "-".join(f"{k}={v}" for k, v in opts.items())


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def run_torch(torch, grad, x0, n_iter, **kw):
    """Trajectory of torch.optim.RMSprop with p.grad set from NumPy each step."""
    x0 = np.array(x0)
    tdtype = {np.float64: torch.float64, np.float32: torch.float32}[x0.dtype.type]
    p = torch.tensor(x0, dtype=tdtype, requires_grad=True)
    opt = torch.optim.RMSprop([p], foreach=False, **kw)
    xs = [x0.copy()]
    for _ in range(n_iter):
        g = np.array(grad(p.detach().numpy().copy()), dtype=x0.dtype)
        p.grad = torch.from_numpy(g)
        opt.step()
        xs.append(p.detach().numpy().copy())
    return np.array(xs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opts", TORCH_OPTIONS, ids=_opt_id)
@pytest.mark.parametrize("problem", PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_matches_torch(torch, problem, opts, dtype):
    _, grad, x0, lr, alpha = problem
    hyper = dict(lr=lr, alpha=alpha, eps=1e-8, **opts)
    x0 = x0.astype(dtype)
    xt = run_torch(torch, grad, x0, N_ITER, **hyper)
    xr, state = reference_rmsprop(grad, x0, N_ITER, **PRESETS["pytorch"] | hyper)
    # torch would produce NaN if the centered variance rounded negative; the
    # reference would clamp it.  The comparison is only meaningful without that.
    assert np.all(np.isfinite(xt))
    assert xr.dtype == dtype and xr.shape == (N_ITER + 1, x0.size)
    assert state["step"] == N_ITER
    if dtype == np.float64:
        np.testing.assert_allclose(xr, xt, rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_allclose(
            xr, xt, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(xt)))
        )


def test_matches_torch_state(torch):
    """Final buffers equal torch's state (float64, all buffers present)."""
    hyper = dict(lr=1e-2, alpha=0.9, eps=1e-8, centered=True, momentum=0.9,
                 weight_decay=0.1)
    p = torch.tensor(ROSEN_X0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.RMSprop([p], foreach=False, **hyper)
    for _ in range(N_ITER):
        p.grad = torch.from_numpy(rosen_grad(p.detach().numpy().copy()))
        opt.step()
    ts = opt.state[p]
    _, rs = reference_rmsprop(rosen_grad, ROSEN_X0, N_ITER, **hyper)
    assert rs["step"] == int(ts["step"]) == N_ITER
    for key in ("square_avg", "grad_avg", "momentum_buffer"):
        np.testing.assert_allclose(rs[key], ts[key].numpy(), rtol=1e-12, atol=1e-14)


# --- why float64 is not bit-exact: replay torch's CPU rounding order ------


def _fma(a, b, c):
    """Correctly rounded ``a*b + c`` for float64 (exact rational arithmetic)."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c)))
    out = np.empty(a.shape)
    for i in np.ndindex(a.shape):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        out[i] = float(exact)  # int/int true division: correctly rounded
    return out


def _torch_cpu_order_rmsprop(grad, x0, n_iter, *, sqrt, lr, alpha, eps, momentum,
                             centered, weight_decay, maximize):
    """RMSProp in the rounding order of ATen's CPU kernels (float64 only).

    ``sqrt`` must be torch's own: ``torch.sqrt`` on CPU (MKL VML) is faithfully
    but not correctly rounded (about 1% of float64 and 17% of float32 results
    are 1 ulp away from ``np.sqrt``), which no NumPy expression reproduces.

    Observed on x86-64 (AVX2) builds, both in the SIMD body and in the scalar
    tail: ``g.add(x, alpha=wd)`` -> fma(wd, x, g); ``v.mul_(alpha)
    .addcmul_(g, g, value=1-alpha)`` -> fma((1-alpha)*g, g, alpha*v);
    ``m.lerp_(g, w)`` with w < 0.5 -> fma(w, g - m, m);
    ``v.addcmul(m, m, value=-1)`` -> fma(-m, m, v); ``x.add_(b, alpha=-lr)``
    -> fma(-lr, b, x); ``addcdiv`` ends in a division, so it is not fused.
    """
    x = np.array(x0, dtype=np.float64)
    v = np.zeros_like(x)
    m = np.zeros_like(x)
    b = np.zeros_like(x)
    w = 1 - alpha
    xs = [x.copy()]
    for _ in range(n_iter):
        g = np.array(grad(x.copy()), dtype=np.float64)
        if maximize:
            g = -g
        if weight_decay != 0:
            g = _fma(weight_decay, x, g)
        v = _fma(w * g, g, alpha * v)
        if centered:
            m = _fma(w, g - m, m)
            avg = sqrt(_fma(-m, m, v))
        else:
            avg = sqrt(v)
        avg = avg + eps
        if momentum > 0:
            b = momentum * b + g / avg
            x = _fma(-lr, b, x)
        else:
            x = x + (-lr * g) / avg
        xs.append(x.copy())
    return np.array(xs)


@pytest.fixture(scope="module")
def torch_uses_fma(torch):
    rng = np.random.default_rng(42)
    x, g = rng.standard_normal(1000), rng.standard_normal(1000)
    got = torch.from_numpy(g).add(torch.from_numpy(x), alpha=0.1).numpy()
    if not np.array_equal(got, _fma(0.1, x, g)):
        pytest.skip("this torch build does not contract a + alpha*b into an FMA")
    assert not np.array_equal(got, g + 0.1 * x)  # the probe can tell them apart


@pytest.mark.parametrize("opts", TORCH_OPTIONS, ids=_opt_id)
@pytest.mark.parametrize("problem", PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_torch_rounding_order_explains_differences(torch, torch_uses_fma, problem, opts):
    """Replaying torch's operation order reproduces torch bit for bit, so the
    small reference-vs-torch differences are rounding order, not semantics."""
    _, grad, x0, lr, alpha = problem
    hyper = dict(lr=lr, alpha=alpha, eps=1e-8, **opts)
    xt = run_torch(torch, grad, x0, N_ITER, **hyper)
    def torch_sqrt(a):
        return torch.from_numpy(a).sqrt().numpy()

    xe = _torch_cpu_order_rmsprop(grad, x0, N_ITER, sqrt=torch_sqrt, **hyper)
    assert np.array_equal(xe, xt)


def test_centered_clamp_deviates_from_torch(torch):
    """v - m**2 < 0: torch takes sqrt of a negative (NaN), the reference clamps at 0."""
    x0 = np.array([1.0, -2.0, 3.0])
    hyper = dict(lr=1e-2, alpha=0.9, eps=1e-8, centered=True)
    zero_grad = np.zeros_like  # g = 0 keeps m**2 = 0.81 > v = 0
    start = {"step": 3, "square_avg": np.zeros(3), "grad_avg": np.ones(3),
             "momentum_buffer": None}

    p = torch.tensor(x0, requires_grad=True)
    opt = torch.optim.RMSprop([p], foreach=False, **hyper)
    opt.state[p] = {"step": torch.tensor(3.0), "square_avg": torch.zeros(3, dtype=torch.float64),
                    "grad_avg": torch.ones(3, dtype=torch.float64)}
    p.grad = torch.zeros(3, dtype=torch.float64)
    opt.step()
    assert np.all(np.isnan(p.detach().numpy()))

    for eps_in_sqrt in (False, True):
        xs, state = reference_rmsprop(zero_grad, x0, 1, **hyper, eps_in_sqrt=eps_in_sqrt,
                                      state=start)
        assert np.array_equal(xs[1], x0)  # step 0 * 1/(sqrt(0) + eps) = 0
        np.testing.assert_array_equal(state["grad_avg"], 0.9)
        assert state["step"] == 4


# --------------------------------------------------------------------------
# optax (optional)
# --------------------------------------------------------------------------

OPTAX_CASES = [
    dict(),
    dict(initial_scale=1.0),
    dict(eps_in_sqrt=False),
    dict(centered=True),
    dict(momentum=0.9),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, nesterov=True, bias_correction=True),
    dict(bias_correction=True, eps_in_sqrt=False),
    # centered + bias_correction from initial_scale=0 has v_hat - m_hat**2 = 0
    # exactly on the first step (pure rounding noise): start from 1 instead.
    dict(centered=True, bias_correction=True, momentum=0.9, nesterov=True, initial_scale=1.0),
    dict(centered=True, bias_correction=True, eps_in_sqrt=False, initial_scale=1.0),
    dict(weight_decay=0.1, momentum=0.9, nesterov=True),
    dict(weight_decay=0.1, centered=True),
]


@pytest.mark.parametrize("case", OPTAX_CASES, ids=_opt_id)
@pytest.mark.parametrize("problem", PROBLEMS[:4:2], ids=["rosen", "lstsq"])
def test_matches_optax(problem, case):
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    _, grad, x0, _, _ = problem
    opts = dict(PRESETS["optax"], lr=1e-3) | case  # lr=1e-3 keeps Nesterov non-chaotic
    with jax.enable_x64(True):
        tx = optax.rmsprop(
            opts["lr"],
            decay=opts["alpha"],
            eps=opts["eps"],
            initial_scale=opts["initial_scale"],
            eps_in_sqrt=opts["eps_in_sqrt"],
            centered=opts["centered"],
            momentum=opts["momentum"] or None,
            nesterov=opts["nesterov"],
            bias_correction=opts["bias_correction"],
        )
        if opts["weight_decay"]:
            tx = optax.chain(optax.add_decayed_weights(opts["weight_decay"]), tx)

        def step(p, st, g):  # eager: cheaper than compiling each case
            updates, st = tx.update(g, st, p)
            return optax.apply_updates(p, updates), st

        p = jax.numpy.asarray(x0, dtype=jax.numpy.float64)
        st = tx.init(p)
        xo = [np.asarray(p)]
        for _ in range(N_ITER):
            p, st = step(p, st, jax.numpy.asarray(grad(np.array(p))))
            xo.append(np.asarray(p))
    xo = np.array(xo)
    assert xo.dtype == np.float64
    xr, _ = reference_rmsprop(grad, x0, N_ITER, **opts)
    rtol = 1e-11 if opts["centered"] and opts["bias_correction"] else 1e-12
    np.testing.assert_allclose(xr, xo, rtol=rtol, atol=1e-14)


# --------------------------------------------------------------------------
# Closed forms from REFERENCE.md
# --------------------------------------------------------------------------


def test_keras_docstring_example():
    """Keras RMSprop docstring: lr=0.1, theta=10, loss theta**2/2 -> 9.683772."""
    xs, _ = reference_rmsprop(lambda x: x, np.array([10.0]), 1, **PRESETS["keras"] | {"lr": 0.1})
    assert abs(xs[1, 0] - 9.683772) <= 5e-7
    # v = 0.1*100 = 10, step = 0.1*10/sqrt(10 + 1e-7)
    np.testing.assert_allclose(xs[1, 0], 10 - 1 / np.sqrt(10 + 1e-7), rtol=1e-15)


def test_keras_decoupled_weight_decay():
    """Keras: theta -= theta*wd*lr before the (gradient-at-old-theta) step."""
    opts = PRESETS["keras"] | {"lr": 0.1, "weight_decay": 0.1}
    xs, _ = reference_rmsprop(lambda x: x, np.array([10.0]), 1, **opts)
    np.testing.assert_allclose(xs[1, 0], 10 - 10 * 0.1 * 0.1 - 1 / np.sqrt(10 + 1e-7), rtol=1e-15)
    # coupled (PyTorch L2): g = 10 + 0.1*10 = 11
    xs, _ = reference_rmsprop(lambda x: x, np.array([10.0]), 1, **opts | {"decoupled_weight_decay": False})
    np.testing.assert_allclose(xs[1, 0], 10 - 0.1 * 11 / np.sqrt(0.1 * 121 + 1e-7), rtol=1e-15)


# REFERENCE.md 1.6 "Illustration": first step with g = 1e-3, lr = 0.01.
ILLUSTRATION = [
    # preset, extra options, quoted value, exact closed form
    ("pytorch", {}, 9.999e-2, 1e-5 / (np.sqrt(0.01 * 1e-6) + 1e-8)),
    ("optax", {}, 3.015e-2, 1e-5 / np.sqrt(0.1 * 1e-6 + 1e-8)),
    ("optax", {"eps_in_sqrt": False}, 3.162e-2, 1e-5 / (np.sqrt(0.1 * 1e-6) + 1e-8)),
    ("keras", {}, 2.236e-2, 1e-5 / np.sqrt(0.1 * 1e-6 + 1e-7)),
    ("tf1", {}, 1.054e-5, 1e-5 / np.sqrt(0.9 + 0.1 * 1e-6 + 1e-10)),
]


@pytest.mark.parametrize("preset, extra, quoted, exact", ILLUSTRATION,
                         ids=[f"{p}{'-' + '-'.join(e) if e else ''}" for p, e, _, _ in ILLUSTRATION])
def test_first_step_illustration(preset, extra, quoted, exact):
    opts = PRESETS[preset] | {"lr": 0.01} | extra
    xs, _ = reference_rmsprop(lambda x: np.full_like(x, 1e-3), np.zeros(3), 1, **opts)
    step = -xs[1]
    # quoted to 4 significant digits: within half a unit of the last digit
    half_unit = 0.5 * 10.0 ** (np.floor(np.log10(quoted)) - 3)
    assert np.all(np.abs(step - quoted) <= half_unit)
    np.testing.assert_allclose(step, exact, rtol=1e-14)


def test_bias_correction_first_step_is_sign_step():
    """optax: scale_by_rms(eps_in_sqrt=False, bias_correction=True) == Adam(b1=0):
    the first step is lr*g/(|g| + eps)."""
    g = np.array([3.0, -1e-2, 250.0])
    xs, state = reference_rmsprop(lambda x: g, np.zeros(3), 1, **PRESETS["optax"]
                                  | {"bias_correction": True, "eps_in_sqrt": False})
    np.testing.assert_allclose(-xs[1], 1e-3 * g / (np.abs(g) + 1e-8), rtol=1e-15)
    assert state["step"] == 1


def test_nesterov_two_steps_hand_computed():
    """optax form: x -= s + mu*b with b already updated; constant gradient."""
    g, lr, a, mu = 0.5, 0.1, 0.9, 0.9
    v1 = (1 - a) * g * g
    s1 = lr * g / np.sqrt(v1 + 1e-8)
    v2 = a * v1 + (1 - a) * g * g
    s2 = lr * g / np.sqrt(v2 + 1e-8)
    b1, b2 = s1, mu * s1 + s2
    x1 = 1.0 - (s1 + mu * b1)
    x2 = x1 - (s2 + mu * b2)
    for lr_in_momentum, lr_factor in ((True, 1.0), (False, lr)):
        # lr outside the buffer: b holds unscaled steps, x -= lr*(s + mu*b)
        opts = PRESETS["optax"] | dict(lr=lr, alpha=a, momentum=mu, nesterov=True,
                                       lr_in_momentum=lr_in_momentum)
        xs, state = reference_rmsprop(lambda x: np.full_like(x, g), np.ones(1), 2, **opts)
        np.testing.assert_allclose(xs[:, 0], [1.0, x1, x2], rtol=1e-14)
        np.testing.assert_allclose(state["momentum_buffer"], b2 / lr_factor, rtol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("centered", [False, True])
def test_lr_placement_equivalent_for_constant_lr(nesterov, centered):
    """REFERENCE.md 1.2: lr inside vs outside the momentum buffer is the same
    method for a constant lr (up to rounding)."""
    opts = dict(lr=1e-3, alpha=0.9, momentum=0.9, nesterov=nesterov, centered=centered)
    xa, sa = reference_rmsprop(rosen_grad, ROSEN_X0, 30, **opts, lr_in_momentum=False)
    xb, sb = reference_rmsprop(rosen_grad, ROSEN_X0, 30, **opts, lr_in_momentum=True)
    np.testing.assert_allclose(xa, xb, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(1e-3 * sa["momentum_buffer"], sb["momentum_buffer"], rtol=1e-11)


# --------------------------------------------------------------------------
# API, validation, continuation, dtype
# --------------------------------------------------------------------------


def test_signature_defaults_are_option_defaults():
    params = inspect.signature(reference_rmsprop).parameters
    defaults = {k: p.default for k, p in params.items()
                if p.kind is p.KEYWORD_ONLY and k != "state"}
    assert defaults == OPTION_DEFAULTS
    assert params["state"].default is None


def test_presets():
    assert set(PRESETS) == {"pytorch", "keras", "tf1", "optax"}
    for preset in PRESETS.values():
        assert set(preset) == set(OPTION_DEFAULTS)
    assert PRESETS["pytorch"] == OPTION_DEFAULTS
    expect = {
        #        lr,   alpha, eps,   eps_in_sqrt, init, lr_in_mom, decoupled
        "pytorch": (1e-2, 0.99, 1e-8, False, 0.0, False, False),
        "keras": (1e-3, 0.9, 1e-7, True, 0.0, True, True),
        "tf1": (1e-3, 0.9, 1e-10, True, 1.0, True, False),
        "optax": (1e-3, 0.9, 1e-8, True, 0.0, True, False),
    }
    keys = ("lr", "alpha", "eps", "eps_in_sqrt", "initial_scale", "lr_in_momentum",
            "decoupled_weight_decay")
    for name, values in expect.items():
        assert tuple(PRESETS[name][k] for k in keys) == values
        assert PRESETS[name]["momentum"] == 0.0
        assert not any(PRESETS[name][k] for k in
                       ("centered", "maximize", "nesterov", "bias_correction"))


def test_nesterov_without_momentum_raises():
    with pytest.raises(ValueError, match="nesterov"):
        reference_rmsprop(rosen_grad, ROSEN_X0, 1, nesterov=True)
    with pytest.raises(ValueError, match="momentum"):
        reference_rmsprop(rosen_grad, ROSEN_X0, 1, momentum=-0.5)


def test_zero_iterations():
    xs, state = reference_rmsprop(rosen_grad, ROSEN_X0, 0, centered=True, momentum=0.5,
                                  initial_scale=1.0)
    assert xs.shape == (1, 5) and np.array_equal(xs[0], ROSEN_X0)
    assert state["step"] == 0
    np.testing.assert_array_equal(state["square_avg"], 1.0)
    np.testing.assert_array_equal(state["grad_avg"], 0.0)
    np.testing.assert_array_equal(state["momentum_buffer"], 0.0)
    _, state = reference_rmsprop(rosen_grad, ROSEN_X0, 0)
    assert state["grad_avg"] is None and state["momentum_buffer"] is None


CONTINUATION_CASES = [
    PRESETS["pytorch"],
    PRESETS["pytorch"] | dict(centered=True, momentum=0.9, weight_decay=0.1, maximize=True),
    PRESETS["optax"] | dict(momentum=0.9, nesterov=True, bias_correction=True, centered=True,
                            initial_scale=1.0),
    PRESETS["keras"] | dict(momentum=0.5, weight_decay=0.05, centered=True),
    PRESETS["tf1"] | dict(momentum=0.9),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opts", CONTINUATION_CASES, ids=range(len(CONTINUATION_CASES)))
def test_continuation_is_exact(opts, dtype):
    x0 = ROSEN_X0.astype(dtype)
    k, m = 17, 23
    full, s_full = reference_rmsprop(rosen_grad, x0, k + m, **opts)
    first, s1 = reference_rmsprop(rosen_grad, x0, k, **opts)
    saved = {key: (val.copy() if isinstance(val, np.ndarray) else val) for key, val in s1.items()}
    second, s2 = reference_rmsprop(rosen_grad, first[-1], m, **opts, state=s1)
    assert np.array_equal(np.concatenate([first, second[1:]]), full)
    assert s2["step"] == s_full["step"] == k + m
    for key in ("square_avg", "grad_avg", "momentum_buffer"):
        if s_full[key] is None:
            assert s2[key] is None
        else:
            assert np.array_equal(s2[key], s_full[key])
    for key, val in saved.items():  # the input state was not modified
        if isinstance(val, np.ndarray):
            assert np.array_equal(s1[key], val)
        else:
            assert s1[key] == val


def test_inputs_not_modified():
    x0 = ROSEN_X0.copy()
    g_fixed = np.array([1.0, -2.0, 3.0, -4.0, 5.0])

    def grad(x):
        x[:] = 99.0  # a hostile callback must not affect the iterate
        return g_fixed

    xs, _ = reference_rmsprop(grad, x0, 3, momentum=0.9, weight_decay=0.1, maximize=True)
    assert np.array_equal(x0, ROSEN_X0)
    assert np.array_equal(g_fixed, [1.0, -2.0, 3.0, -4.0, 5.0])
    assert np.all(np.abs(xs - ROSEN_X0) < 1.0)


@pytest.mark.parametrize("opts", CONTINUATION_CASES, ids=range(len(CONTINUATION_CASES)))
def test_float32_stays_float32(opts):
    seen = []

    def grad(x):
        seen.append(x.dtype)
        return rosen_grad(x).astype(np.float64)  # a float64 gradient is cast down

    xs, state = reference_rmsprop(grad, ROSEN_X0.astype(np.float32), 20, **opts)
    assert xs.dtype == np.float32
    assert seen == [np.dtype(np.float32)] * 20
    for key in ("square_avg", "grad_avg", "momentum_buffer"):
        assert state[key] is None or state[key].dtype == np.float32
    assert np.all(np.isfinite(xs))


def test_float32_arithmetic_single_step():
    """One step in float32 equals the formula evaluated with float32 scalars,
    1 - alpha being computed in double and then cast (as PyTorch does)."""
    f = np.float32
    x0 = ROSEN_X0.astype(f)
    g = rosen_grad(x0)
    lr, alpha, eps, mu = 1e-3, 0.99, 1e-8, 0.9
    assert f(1 - alpha) != f(1) - f(alpha)  # the cast order is observable
    v = f(1 - alpha) * g * g
    m = f(1 - alpha) * g
    s = g / (np.sqrt(v - m * m) + f(eps))
    expected = x0 - f(lr) * s
    assert expected.dtype == v.dtype == m.dtype == np.float32
    xs, state = reference_rmsprop(rosen_grad, x0, 1, lr=lr, alpha=alpha, eps=eps,
                                  centered=True, momentum=mu)
    assert np.array_equal(xs[1], expected)
    assert np.array_equal(state["square_avg"], v)
    assert np.array_equal(state["grad_avg"], m)
    assert np.array_equal(state["momentum_buffer"], s)


def test_integer_x0_becomes_float64():
    xs, state = reference_rmsprop(lambda x: x, np.array([3, -2]), 2)
    assert xs.dtype == np.float64 and state["square_avg"].dtype == np.float64
