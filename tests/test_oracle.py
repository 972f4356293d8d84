"""rmsopt against the plain NumPy oracle (tests/reference.py), for every
combination of PyTorch's options, a covering set of the other options, and
each convention preset; float32 and float64; both drivers.

The oracle is written independently of rmsopt (and checked against PyTorch
itself in test_reference.py), so agreement here pins rmsopt to PyTorch's,
Keras', TF1's and optax's semantics. Both evaluate the same operations in the
same order with correctly rounded sqrt and no fused multiply-add, so the
agreement is exact: bit for bit.
"""

import itertools

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import rmsopt
from problems import X0, rosen_grad_jit, rosen_jit
from reference import OPTION_DEFAULTS, PRESETS, reference_rmsprop

N_ITER = 60

TORCH_GRID = [
    dict(centered=c, momentum=mu, weight_decay=wd, maximize=mx)
    for c, mu, wd, mx in itertools.product(
        [False, True], [0.0, 0.9], [0.0, 0.1], [False, True])
]


def _covering_set(count=14, seed=3):
    """Random combinations of every option (seeded): covers all pairs of
    boolean options with high probability at a fraction of the full grid."""
    rng = np.random.default_rng(seed)
    flags = ["centered", "maximize", "eps_in_sqrt", "lr_in_momentum",
             "decoupled_weight_decay", "bias_correction"]
    out = []
    for _ in range(count):
        options = {name: bool(rng.integers(2)) for name in flags}
        options["momentum"] = float(rng.choice([0.0, 0.5]))
        options["nesterov"] = options["momentum"] > 0 and bool(rng.integers(2))
        options["weight_decay"] = float(rng.choice([0.0, 0.05]))
        options["initial_scale"] = float(rng.choice([0.0, 1.0]))
        options["alpha"] = float(rng.choice([0.9, 0.99]))
        options["eps"] = float(rng.choice([1e-8, 1e-3]))
        if options["centered"] and options["bias_correction"]:
            # The first variance estimate is exactly 0 (v_hat = g**2,
            # m_hat = g), so the first step is lr*g/eps: keep it finite.
            options["eps"] = 0.1
        out.append(options)
    return out


PRESET_CASES = [
    (name, extra) for name in PRESETS
    for extra in ({}, {"momentum": 0.9}, {"centered": True,
                                          "weight_decay": 0.01})
]


def check(options, dtype, driver, reference_options=None):
    x0 = X0.astype(dtype)
    res = rmsopt.minimize(rosen_jit, x0, jac=rosen_grad_jit,
                          options={"lr": 1e-3, **options, "gtol": 0,
                                   "maxiter": N_ITER, "driver": driver})
    ref_options = {**OPTION_DEFAULTS, "lr": 1e-3,
                   **(reference_options or options)}
    xs, state = reference_rmsprop(rosen_grad_jit, x0, N_ITER, **ref_options)
    assert res.x.dtype == dtype and res.nit == N_ITER
    assert res.status == 1, "the run must stay finite to compare it"
    assert_array_equal(res.x, xs[-1])
    for key in ("square_avg", "grad_avg", "momentum_buffer"):
        if state[key] is None:
            assert res.state[key] is None
        else:
            assert_array_equal(res.state[key], state[key])
    assert res.state["step"] == state["step"] == N_ITER


@pytest.mark.parametrize("driver", ["python", "nopython"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", TORCH_GRID,
                         ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_pytorch_options_grid(options, dtype, driver):
    check(options, dtype, driver)


@pytest.mark.parametrize("driver", ["python", "nopython"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", _covering_set())
def test_every_other_option(options, dtype, driver):
    check(options, dtype, driver)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, extra", PRESET_CASES)
def test_convention_presets(name, extra, dtype):
    # The preset's own learning rate, not the 1e-3 used elsewhere.
    preset = PRESETS[name]
    options = {"convention": name, "lr": preset["lr"], **extra}
    check(options, dtype, "python", reference_options={**preset, **extra})


def test_covering_set_covers_every_pair_of_boolean_options():
    cases = _covering_set()
    names = ["centered", "maximize", "eps_in_sqrt", "lr_in_momentum",
             "decoupled_weight_decay", "bias_correction"]
    for a, b in itertools.combinations(names, 2):
        seen = {(c[a], c[b]) for c in cases}
        assert len(seen) == 4, (a, b, seen)
