"""The jitted losses of rmsopt.models: values against plain NumPy formulas,
gradients against central finite differences, stability at extreme inputs,
the size checks, and both drivers.

Tolerances: central differences with step 1e-6 have an error of about
1e-10 on these smooth, O(1) problems; gradients must agree to 1e-7
absolute plus 1e-6 relative. Values agree with NumPy to 1e-12 relative.
"""

import numpy as np
import pytest

import rmsopt
from rmsopt.models import huber, least_squares, logistic, multinomial, poisson

RNG = np.random.default_rng(42)
N, P, K = 40, 4, 3
X = RNG.standard_normal((N, P))
Y_REAL = X @ RNG.standard_normal(P) + 0.3 * RNG.standard_normal(N)
Y_BIN = (Y_REAL > 0).astype(float)
Y_CLASS = RNG.integers(0, K, N)
Y_COUNT = RNG.poisson(np.exp(0.3 * X[:, 0] + 0.5)).astype(float)
L2_VEC = np.array([0.1, 0.2, 0.0, 0.5])


def ref_linear(w, p, fit_intercept):
    b = w[p] if fit_intercept else 0.0
    return X @ w[:p] + b


def penalty(coef, l2):
    return 0.5 * float(np.sum(np.asarray(l2) * coef ** 2))


def ref_least_squares(w, y, l2, fi):
    r = ref_linear(w, P, fi) - y
    return 0.5 * float(r @ r) / N + penalty(w[:P], l2)


def ref_logistic(w, y, l2, fi):
    z = ref_linear(w, P, fi)
    return float(np.mean(np.logaddexp(0.0, z) - y * z)) + penalty(w[:P], l2)


def ref_multinomial(w, y, l2, fi):
    W = w[:K * P].reshape(K, P)
    b = w[K * P:] if fi else np.zeros(K)
    Z = X @ W.T + b
    data = np.mean(np.logaddexp.reduce(Z, axis=1) - Z[np.arange(N), y])
    return float(data) + penalty(W, l2)


def ref_poisson(w, y, l2, fi):
    z = ref_linear(w, P, fi)
    return float(np.mean(np.exp(z) - y * z)) + penalty(w[:P], l2)


def ref_huber(w, y, l2, fi, epsilon=1.35):
    sigma = w[-1]
    t = np.abs(ref_linear(w, P, fi) - y) / sigma
    H = np.where(t < epsilon, t * t, 2 * epsilon * t - epsilon ** 2)
    return float(np.mean(sigma + H * sigma)) + penalty(w[:P], l2)


def start(name, fi):
    """A point where every branch of the loss is exercised."""
    rng = np.random.default_rng(1)
    if name == "multinomial":
        return 0.5 * rng.standard_normal(K * (P + fi))
    w = 0.5 * rng.standard_normal(P + fi)
    if name == "huber":  # sigma small enough for some outliers
        w = np.append(w, 0.4)
    return w


CASES = {
    "least_squares": (least_squares, ref_least_squares, Y_REAL, ()),
    "logistic": (logistic, ref_logistic, Y_BIN, ()),
    "multinomial": (multinomial, ref_multinomial, Y_CLASS, ()),
    "poisson": (poisson, ref_poisson, Y_COUNT, ()),
    "huber": (huber, ref_huber, Y_REAL, (1.35,)),
}
L2S = {"scalar": 0.3, "vector": L2_VEC, "none": 0.0}


def central_difference(fun, w, h=1e-6):
    g = np.empty_like(w)
    for j in range(w.size):
        up, down = w.copy(), w.copy()
        up[j] += h
        down[j] -= h
        g[j] = (fun(up) - fun(down)) / (2 * h)
    return g


@pytest.mark.parametrize("fi", [True, False], ids=["intercept", "none"])
@pytest.mark.parametrize("l2", L2S, ids=list(L2S))
@pytest.mark.parametrize("name", CASES)
def test_value_and_gradient(name, l2, fi):
    loss, ref, y, extra = CASES[name]
    l2 = L2S[l2]
    w = start(name, fi)
    args = (X, y, l2, fi, *extra)
    out = np.full_like(w, np.nan)
    f = loss(w, out, *args)
    assert f == pytest.approx(ref(w, y, l2, fi, *extra), rel=1e-12)
    fd = central_difference(lambda v: loss(v, np.empty_like(v), *args), w)
    np.testing.assert_allclose(out, fd, rtol=1e-6, atol=1e-7)
    if name == "huber":
        t = np.abs(ref_linear(w, P, fi) - y) / w[-1]
        assert (t < 1.35).any() and (t >= 1.35).any()  # both branches


@pytest.mark.parametrize("name", CASES)
def test_inputs_not_modified(name):
    loss, _, y, extra = CASES[name]
    w = start(name, True)
    copies = [a.copy() for a in (w, X, y, L2_VEC)]
    loss(w, np.empty_like(w), X, y, L2_VEC, True, *extra)
    for before, after in zip(copies, (w, X, y, L2_VEC)):
        assert np.array_equal(before, after)


def test_logistic_stable_at_huge_scores():
    """log1p(exp(-|z|)): no overflow at |z| = 1e3, exact limits."""
    Xb = np.array([[1.0], [-1.0]])
    g = np.empty(1)
    f = logistic(np.array([1000.0]), g, Xb, np.array([1.0, 0.0]), 0.0,
                 False)
    assert f == 0.0 and g[0] == 0.0
    f = logistic(np.array([1000.0]), g, Xb, np.array([0.0, 1.0]), 0.0,
                 False)
    assert f == pytest.approx(1000.0) and g[0] == pytest.approx(1.0)


def test_multinomial_stable_at_huge_scores():
    w = np.array([800.0, -800.0])  # K=2, one feature, no intercept
    g = np.empty(2)
    f = multinomial(w, g, np.array([[1.0]]), np.array([1]), 0.0, False)
    assert f == pytest.approx(1600.0) and np.isfinite(g).all()
    f = multinomial(w, g, np.array([[1.0]]), np.array([0]), 0.0, False)
    assert f == 0.0


@pytest.mark.parametrize("name", CASES)
def test_wrong_sizes_give_nan(name):
    loss, _, y, extra = CASES[name]
    w = start(name, True)[:-1]  # one parameter short
    out = np.zeros_like(w)
    assert np.isnan(loss(w, out, X, y, 0.0, True, *extra))
    assert np.isnan(out).all()
    w = start(name, True)
    out = np.zeros_like(w)
    assert np.isnan(loss(w, out, X, y[:-1], 0.0, True, *extra))
    assert np.isnan(loss(w, out, X, y, np.ones(P + 1), True, *extra))


def test_bad_labels_and_scale_give_nan():
    w = start("multinomial", True)
    out = np.zeros_like(w)
    for bad in (K, -1):
        y = Y_CLASS.copy()
        y[3] = bad
        assert np.isnan(multinomial(w, out, X, y, 0.0, True))
    y = Y_CLASS.astype(float)
    y[0] = 0.5
    assert np.isnan(multinomial(w, out, X, y, 0.0, True))
    w = start("huber", True)
    w[-1] = 0.0
    assert np.isnan(huber(w, np.zeros_like(w), X, Y_REAL, 0.0, True, 1.35))


@pytest.mark.parametrize("name", CASES)
def test_both_drivers_same_bits(name):
    """The losses run inside the compiled loop, bit for bit as in Python's."""
    loss, ref, y, extra = CASES[name]
    w0 = start(name, True)
    args = (X, y, 0.1, True, *extra)
    bounds = None
    if name == "huber":
        bounds = [(None, None)] * (P + 1) + [(1e-6, None)]
    runs = [rmsopt.minimize(loss, w0, args=args, jac=True, bounds=bounds,
                            options={"maxiter": 300, "driver": driver})
            for driver in ("nopython", "python")]
    assert np.array_equal(runs[0].x, runs[1].x)
    assert runs[0].fun == runs[1].fun
    assert runs[0].fun < ref(w0, y, 0.1, True, *extra)
