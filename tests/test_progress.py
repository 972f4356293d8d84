"""History, progress bar, plot_convergence, disp: the same records through
both drivers, values against fun itself, clear errors when tqdm or
matplotlib are missing."""

import sys

import numpy as np
import pytest

import rmsopt
from problems import (BATCH_A as A, BATCH_Y as Y, X0, assert_same, lsq_vg,
                      rosen_grad_jit, rosen_jit, rosen_value_and_grad_jit)


@pytest.mark.parametrize("jac, fun", [(True, rosen_value_and_grad_jit),
                                      (rosen_grad_jit, rosen_jit)])
def test_history_is_the_loss_every_k_iterations_in_both_drivers(jac, fun):
    runs = [rmsopt.minimize(fun, X0, jac=jac,
                            options={"history": 7, "maxiter": 50,
                                     "gtol": 0, "driver": driver})
            for driver in ("nopython", "python")]
    fast, slow = runs
    assert_same(fast, slow)
    np.testing.assert_array_equal(fast.history.nit,
                                  [0, 7, 14, 21, 28, 35, 42, 49, 50])
    np.testing.assert_array_equal(fast.history.fun, slow.history.fun)
    assert fast.history.fun[-1] == fast.fun
    assert fast.history.fun[0] == rosen_jit(X0)
    # the recorded values are fun at those iterates
    for k in (7, 21):
        part = rmsopt.minimize(fun, X0, jac=jac,
                               options={"maxiter": k, "gtol": 0})
        assert fast.history.fun[list(fast.history.nit).index(k)] == part.fun
    # recording does not change the trajectory
    plain = rmsopt.minimize(fun, X0, jac=jac, options={"maxiter": 50,
                                                       "gtol": 0})
    np.testing.assert_array_equal(plain.x, fast.x)


def test_history_with_batches_is_per_epoch():
    batch = {"args": (0, 1), "size": 10, "epochs": 6}
    runs = [rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                            options={"history": 2, "batch": batch,
                                     "driver": driver})
            for driver in ("nopython", "python")]
    h = runs[0].history
    np.testing.assert_array_equal(h.epoch, [2, 4, 6])
    np.testing.assert_array_equal(h.nit, [22, 44, 66])
    np.testing.assert_array_equal(h.fun, runs[1].history.fun)
    assert np.isfinite(h.fun).all() and h.fun[-1] < h.fun[0]


def test_progress_bar_reaches_the_end(capsys):
    pytest.importorskip("tqdm")
    for driver in ("nopython", "python"):
        res = rmsopt.minimize(rosen_value_and_grad_jit, X0, jac=True,
                              options={"progress": True, "maxiter": 300,
                                       "driver": driver})
        err = capsys.readouterr().err
        assert "300/300" in err and "loss=" in err
        assert res.nit == 300


def test_progress_without_tqdm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match="pip install tqdm"):
        rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                        options={"progress": True})


def test_plot_convergence_draws_the_history():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    res = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                          options={"history": 10, "maxiter": 100})
    fig, ax = plt.subplots()
    assert rmsopt.plot_convergence(res, ax=ax) is ax
    x, y = ax.lines[0].get_data()
    np.testing.assert_array_equal(x, res.history.nit)
    np.testing.assert_array_equal(y, res.history.fun)
    assert ax.get_yscale() == "log"
    plt.close(fig)
    with pytest.raises(ValueError, match="history"):
        rmsopt.plot_convergence(rmsopt.minimize(
            rosen_jit, X0, jac=rosen_grad_jit, options={"maxiter": 3}))


def test_plot_convergence_without_matplotlib(monkeypatch):
    res = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                          options={"history": 10, "maxiter": 20})
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        rmsopt.plot_convergence(res)


@pytest.mark.parametrize("value", [0, -3, 2.5, "10", True])
def test_bad_history_is_an_error(value):
    with pytest.raises(ValueError, match="history"):
        rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                        options={"history": value})


def test_disp_prints_scipy_summary(capsys):
    rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                    options={"disp": True, "gtol": 1e3})
    out = capsys.readouterr().out
    assert "Optimization terminated successfully." in out
    assert "Iterations: 0" in out


def test_new_options_are_listed():
    text = rmsopt.show_options(disp=False)
    for name in ("batch", "history", "progress", "lr"):
        assert f"{name} : default" in text


def test_history_with_a_callback_and_a_continued_run():
    seen = []
    res = rmsopt.minimize(rosen_jit, X0, jac=rosen_grad_jit,
                          callback=seen.append,
                          options={"history": 4, "maxiter": 10, "gtol": 0})
    assert len(seen) == 10
    np.testing.assert_array_equal(res.history.nit, [0, 4, 8, 10])
    more = rmsopt.minimize(rosen_jit, res.x, jac=rosen_grad_jit,
                           options={"history": 4, "maxiter": 10, "gtol": 0,
                                    "state": res.state})
    np.testing.assert_array_equal(more.history.nit, [0, 4, 8, 10])
    assert more.history.fun[0] == res.fun
