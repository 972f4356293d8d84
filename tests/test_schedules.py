"""Learning-rate schedules: values against PyTorch's schedulers and closed
forms, trajectories against a NumPy RMSProp loop fed the same rates, the
same bits through both drivers, callables, state, errors."""

import math

import numpy as np
import pytest

import rmsopt
from rmsopt import schedules
from problems import (X0, assert_same, rosen_der, rosen_grad_jit, rosen_jit,
                      rosen_value_and_grad_jit)

T = np.arange(300)

CASES = [
    schedules.constant(0.02),
    schedules.step(0.02, step_size=40, gamma=0.5),
    schedules.exponential(0.02, gamma=0.99),
    schedules.cosine(0.02, t_max=150, eta_min=1e-3),
    schedules.inverse_time(0.02, decay_rate=0.5, decay_steps=20),
    schedules.inverse_time(0.02, decay_rate=0.5, decay_steps=20,
                           staircase=True),
    schedules.linear_warmup(0.02, warmup_steps=50, start_factor=0.1),
    schedules.cosine(0.02, t_max=150, eta_min=1e-3, warmup_steps=30,
                     warmup_start=0.1),
    schedules.step(0.02, step_size=40, gamma=0.5, warmup_steps=25),
]


def closed_form(s, t):
    """Each schedule written out in NumPy (independent of the kernels)."""
    lr, a, b, c, warm, start = s.params
    t = np.asarray(t, dtype=float)
    name = s.name
    if warm and name != "linear_warmup":
        after = closed_form(s._replace(params=s.params[:4] + (0.0, 0.0)),
                            np.maximum(t - warm, 0))
        return np.where(t < warm, lr * (start + (1 - start) * t / warm),
                        after)
    if name == "constant":
        return np.full_like(t, lr)
    if name == "step":
        return lr * b ** np.floor(t / a)
    if name == "exponential":
        return lr * a ** t
    if name == "cosine":
        tt = np.minimum(t, a)
        return b + (lr - b) * (1 + np.cos(np.pi * tt / a)) / 2
    if name == "inverse_time":
        q = np.floor(t / b) if c else t / b
        return lr / (1 + a * q)
    if name == "linear_warmup":
        return lr * (b + (1 - b) * np.minimum(t, a) / a)
    raise AssertionError(name)


@pytest.mark.parametrize("s", CASES, ids=repr)
def test_values_match_the_closed_forms(s):
    got = np.array([s(t) for t in T])
    np.testing.assert_allclose(got, closed_form(s, T), rtol=1e-14, atol=0)


def torch_rates(make, n):
    torch = pytest.importorskip("torch")
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.02)
    sched = make(torch.optim.lr_scheduler, opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


@pytest.mark.parametrize("ours, make, n", [
    (CASES[1], lambda m, o: m.StepLR(o, step_size=40, gamma=0.5), 300),
    (CASES[2], lambda m, o: m.ExponentialLR(o, gamma=0.99), 300),
    (CASES[3], lambda m, o: m.CosineAnnealingLR(o, T_max=150, eta_min=1e-3),
     151),
    (CASES[6], lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=50),
     300),
    (CASES[7], lambda m, o: m.SequentialLR(o, [
        m.LinearLR(o, start_factor=0.1, total_iters=30),
        m.CosineAnnealingLR(o, T_max=150, eta_min=1e-3)], milestones=[30]),
     181),
], ids=["step", "exponential", "cosine", "linear_warmup", "warmup_cosine"])
def test_values_match_pytorch_schedulers(ours, make, n):
    # PyTorch updates its rates recursively (products): a few ulps apart.
    np.testing.assert_allclose([ours(t) for t in range(n)],
                               torch_rates(make, n), rtol=1e-12, atol=1e-17)


def numpy_rmsprop(x0, rates, alpha=0.99, eps=1e-8, on_loss=None):
    """PyTorch's RMSprop in NumPy, the rate of step t from ``rates(t)``;
    ``on_loss(f)`` sees the loss at the point just left."""
    x, v = x0.copy(), np.zeros_like(x0)
    for t in range(len(T)):
        f, g = rosen_value_and_grad_jit(x)
        v = alpha * v + (1 - alpha) * g * g
        x = x - rates(t) * g / (np.sqrt(v) + eps)
        if on_loss is not None:
            on_loss(f)
    return x


@pytest.mark.parametrize("s", CASES, ids=repr)
def test_trajectories_follow_the_rates_in_both_drivers(s):
    opts = {"lr": s, "maxiter": len(T), "gtol": 0}
    fast = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                           options={**opts, "driver": "nopython"})
    slow = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                           options={**opts, "driver": "python"})
    assert_same(fast, slow)
    expected = numpy_rmsprop(X0, lambda t: closed_form(s, t))
    np.testing.assert_allclose(fast.x, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_schedule_differs_from_its_constant_and_float32_runs(dtype):
    x0 = X0.astype(dtype)
    base = rmsopt.minimize(rosen_value_and_grad_jit, x0, jac=True,
                           options={"lr": 0.02, "maxiter": 100})
    same = rmsopt.minimize(rosen_value_and_grad_jit, x0, jac=True,
                           options={"lr": schedules.constant(0.02),
                                    "maxiter": 100})
    decayed = rmsopt.minimize(rosen_value_and_grad_jit, x0, jac=True,
                              options={"lr": CASES[2], "maxiter": 100})
    np.testing.assert_array_equal(base.x, same.x)
    assert decayed.x.dtype == dtype and not np.array_equal(base.x, decayed.x)


def test_reduce_on_plateau_matches_pytorch():
    torch = pytest.importorskip("torch")
    s = schedules.reduce_on_plateau(0.05, factor=0.5, patience=5,
                                    threshold=1e-3, cooldown=2, min_lr=1e-4)
    opts = {"lr": s, "maxiter": len(T), "gtol": 0}
    fast = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                           options={**opts, "driver": "nopython"})
    slow = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                           options={**opts, "driver": "python"})
    assert_same(fast, slow)
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.05)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=5, threshold=1e-3, cooldown=2, min_lr=1e-4)
    rates = []
    expected = numpy_rmsprop(
        X0, lambda t: opt.param_groups[0]["lr"],
        on_loss=lambda f: (rates.append(opt.param_groups[0]["lr"]),
                           sched.step(f)))
    assert len(set(rates)) > 2  # the rate did drop, several times
    np.testing.assert_allclose(fast.x, expected, rtol=1e-10, atol=1e-12)
    assert fast.state["plateau"][0] == opt.param_groups[0]["lr"]


def test_continuing_from_state_resumes_the_schedule():
    for s in (CASES[3], schedules.reduce_on_plateau(0.05, patience=3)):
        opts = {"lr": s, "gtol": 0}
        whole = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                                options={**opts, "maxiter": 200})
        half = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                               options={**opts, "maxiter": 120})
        rest = rmsopt.minimize(rosen_value_and_grad_jit, half.x, jac=True,
                               options={**opts, "maxiter": 80,
                                        "state": half.state})
        np.testing.assert_array_equal(whole.x, rest.x)


def test_a_callable_gives_the_built_in_bits_in_both_drivers():
    def rate(t):
        return 0.02 * 0.5 ** (t // 40)
    opts = {"maxiter": 200, "gtol": 0}
    built_in = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                               options={**opts, "lr": CASES[1]})
    for driver in ("auto", "python", "nopython"):
        res = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                              options={**opts, "lr": rate, "driver": driver})
        assert_same(built_in, res)
    # a Python objective too, and the schedule sees t = 0, 1, 2, ...
    seen = []
    rmsopt.minimize(rosen_value_and_grad_jit.py_func, X0, jac=True,
                    options={"maxiter": 5, "gtol": 0,
                             "lr": lambda t: seen.append(t) or 0.01})
    assert seen == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("value, error", [
    (lambda t: float("nan"), ValueError), (lambda t: -1.0, ValueError),
    (lambda t: "fast", TypeError)])
def test_bad_callable_values_are_errors(value, error):
    with pytest.raises(error, match="lr schedule returned"):
        rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                        options={"lr": value, "maxiter": 3})


def test_reduce_on_plateau_with_a_separate_jac_calls_fun():
    s = schedules.reduce_on_plateau(0.05, factor=0.5, patience=5)
    together = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                               options={"lr": s, "maxiter": 300, "gtol": 0})
    for jac in (rosen_der, rosen_grad_jit):  # python driver either way
        apart = rmsopt.minimize(rosen_jit, X0, jac=jac,
                                options={"lr": s, "maxiter": 300, "gtol": 0})
        np.testing.assert_allclose(apart.x, together.x, rtol=1e-13)
        assert apart.nfev == 300 + 1 and apart.njev == 301
    with pytest.raises(ValueError, match="jac=True"):
        rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                        options={"lr": s, "driver": "nopython"})


@pytest.mark.parametrize("make, match", [
    (lambda: schedules.step(0.1, 0), "step_size"),
    (lambda: schedules.step(0.1, 2.5), "step_size"),
    (lambda: schedules.step(-0.1, 10), "lr"),
    (lambda: schedules.exponential(0.1, 0.0), "gamma"),
    (lambda: schedules.cosine(0.1, 100, eta_min=math.nan), "eta_min"),
    (lambda: schedules.inverse_time(0.1, -1.0), "decay_rate"),
    (lambda: schedules.linear_warmup(0.1, 10, start_factor=2.0),
     "start_factor"),
    (lambda: schedules.reduce_on_plateau(0.1, factor=1.0), "factor"),
    (lambda: schedules.reduce_on_plateau(0.1, patience=-1), "patience"),
    (lambda: schedules.constant(math.inf), "lr"),
    (lambda: schedules.cosine(0.1, 10, warmup_steps=-1), "warmup_steps"),
    (lambda: schedules.cosine(0.1, 10, warmup_steps=5, warmup_start=1.5),
     "warmup_start"),
])
def test_bad_schedule_parameters_are_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_a_growing_schedule_runs_guarded_and_keeps_x_finite():
    res = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                          options={"lr": schedules.exponential(0.01, 1.5),
                                   "maxiter": 3000})
    assert np.isfinite(res.x).all()
    assert not res.success


def test_the_options_list_mentions_schedules():
    assert "rmsopt.schedules" in rmsopt.show_options(disp=False)
