"""rmsopt's trajectories against torch.optim.RMSprop itself, for every
combination of PyTorch's options, in float32 and float64.

torch's CPU kernels fuse multiply-adds and its sqrt is not always correctly
rounded (see test_reference.py), so agreement is to a few ulps per step, not
bit for bit. Skips cleanly where PyTorch is not installed.
"""

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose

import rmsopt
from problems import X0, rosen_der

torch = pytest.importorskip("torch")

N_ITER = 50
GRID = list(itertools.product([False, True], [0.0, 0.9], [0.0, 0.1],
                              [False, True]))


def torch_trajectory(x0, grad, n_iter, **options):
    p = torch.tensor(x0, requires_grad=True)
    opt = torch.optim.RMSprop([p], **options)
    out = []
    for _ in range(n_iter):
        opt.zero_grad()
        x = p.detach().numpy().copy()
        p.grad = torch.tensor(np.asarray(grad(x), dtype=x0.dtype))
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


_RNG = np.random.default_rng(1)
_A = _RNG.standard_normal((20, 5))
_Y = _RNG.standard_normal(20)


def lsq_grad(x):
    return _A.T @ (_A @ x - _Y) / len(_Y)


# Rosenbrock at alpha=0.9 (centered) amplifies rounding differences about
# 3x per step, so torch's FMA rounding would grow past any fixed tolerance:
# compare there at alpha=0.99, and on a convex least-squares problem.
PROBLEMS = {"rosenbrock": (rosen_der, 0.99), "least_squares": (lsq_grad, 0.9)}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("centered, momentum, weight_decay, maximize", GRID)
def test_trajectory_matches_torch(centered, momentum, weight_decay, maximize,
                                  dtype, problem):
    grad, alpha = PROBLEMS[problem]
    options = dict(lr=1e-3, alpha=alpha, eps=1e-8, momentum=momentum,
                   centered=centered, weight_decay=weight_decay,
                   maximize=maximize)
    x0 = X0.astype(dtype)
    ours = []
    rmsopt.minimize(lambda x: 0.0, x0, jac=grad, callback=ours.append,
                    options={**options, "maxiter": N_ITER, "gtol": 0})
    theirs = torch_trajectory(x0, grad, N_ITER, **options)
    ours = np.array(ours)
    assert ours.dtype == theirs.dtype == dtype
    if dtype == np.float64:
        assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    else:
        assert_allclose(ours, theirs, rtol=1e-5,
                        atol=1e-5 * np.abs(theirs).max())


def test_torch_defaults_are_the_pytorch_convention():
    from rmsopt._options import CONVENTIONS, OPTIONS
    import inspect
    defaults = inspect.signature(torch.optim.RMSprop).parameters
    for name in ("lr", "alpha", "eps"):
        assert CONVENTIONS["pytorch"][name] == defaults[name].default
    for name in ("momentum", "weight_decay", "centered", "maximize"):
        assert OPTIONS[name][0] == defaults[name].default
