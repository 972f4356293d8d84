"""Mini-batches: the same bits through both drivers and for the same seed,
trajectories against a plain NumPy loop over the same batches, stopping
rules, user arrays untouched, errors."""

import warnings

import numba
import numpy as np
import pytest

import rmsopt
from rmsopt import schedules
from rmsopt._batches import Epochs, mask_of, parse_batches
from rmsopt.models import least_squares
from problems import (BATCH_A as A, BATCH_Y as Y, assert_same,
                      lsq_grad_jit as lsq_grad, lsq_value, lsq_vg)


def both(fun, x0, args, jac=True, **opts):
    fast = rmsopt.minimize(fun, x0, args=args, jac=jac,
                           options={**opts, "driver": "nopython"})
    slow = rmsopt.minimize(fun, x0, args=args, jac=jac,
                           options={**opts, "driver": "python"})
    assert_same(fast, slow)
    return fast


def numpy_batches(x0, a, y, size, epochs, seed, lr=0.05, alpha=0.99,
                  eps=1e-8, shuffle=True):
    """PyTorch's RMSprop in NumPy over the batches of a shuffled copy."""
    rng = np.random.default_rng(seed)
    x, v = x0.copy(), np.zeros_like(x0)
    for _ in range(epochs):
        order = rng.permutation(len(y)) if shuffle else np.arange(len(y))
        a_e, y_e = a[order], y[order]
        for start in range(0, len(y), size):
            g = lsq_grad(x, a_e[start:start + size], y_e[start:start + size])
            v = alpha * v + (1 - alpha) * g * g
            x = x - lr * g / (np.sqrt(v) + eps)
    return x


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("size", [1, 10, 103])
def test_both_drivers_follow_the_numpy_loop(shuffle, size):
    batch = {"args": (0, 1), "size": size, "epochs": 3, "seed": 5,
             "shuffle": shuffle}
    res = both(lsq_vg, np.zeros(4), (A, Y), lr=0.05, batch=batch)
    per_epoch = -(-103 // size)
    assert res.nit == 3 * per_epoch
    # one gradient per batch, and one on all the data at the end
    assert res.njev == res.nfev == 3 * per_epoch + 1
    expected = numpy_batches(np.zeros(4), A, Y, size, 3, 5, shuffle=shuffle)
    np.testing.assert_allclose(res.x, expected, rtol=1e-12, atol=1e-14)
    # fun and jac are those of all the data at x
    f, g = lsq_vg(res.x, A, Y)
    assert res.fun == f
    np.testing.assert_array_equal(res.jac, g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_separate_jac_in_place_losses_momentum_and_float32(dtype):
    a, y = A.astype(dtype), Y.astype(dtype)
    batch = {"args": (0, 1), "size": 16, "epochs": 2}
    both(lsq_value, np.zeros(4, dtype), (a, y), jac=lsq_grad,
         batch=batch, momentum=0.9, centered=True)
    # the models' in-place losses: loss(w, out, X, y, l2, fit_intercept)
    res = both(least_squares, np.zeros(5), (A, Y, 0.1, True), batch=batch)
    assert res.success is False and res.status == 1


def test_the_same_seed_gives_the_same_bits_another_seed_does_not():
    def run(seed):
        return rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                               options={"batch": {"args": (0, 1), "size": 8,
                                                  "epochs": 2,
                                                  "seed": seed}})
    assert_same(run(1), run(1))
    assert not np.array_equal(run(1).x, run(2).x)


def test_user_arrays_are_not_modified_and_other_args_pass_through():
    a, y = A.copy(), Y.copy()

    @numba.njit
    def scaled(w, a, scale, y):
        f, g = lsq_vg(w, a, y)
        return scale * f, scale * g
    both(scaled, np.zeros(4), (a, 2.0, y),
         batch={"args": (0, 2), "size": 7, "epochs": 2})
    np.testing.assert_array_equal(a, A)
    np.testing.assert_array_equal(y, Y)


def test_a_small_batch_gradient_is_not_success():
    # Every gradient is below this gtol: a full-batch run stops at once,
    # the mini-batch run does all its epochs and then checks all the data.
    full = rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                           options={"gtol": 1e6})
    assert full.nit == 0 and full.success
    res = both(lsq_vg, np.zeros(4), (A, Y), gtol=1e6,
               batch={"args": (0, 1), "size": 10, "epochs": 2})
    assert res.nit == 22 and res.success
    res = both(lsq_vg, np.zeros(4), (A, Y), gtol=0.0,
               batch={"args": (0, 1), "size": 10, "epochs": 2})
    assert res.status == 1 and "epochs" in res.message


def test_maxiter_stops_inside_an_epoch():
    res = both(lsq_vg, np.zeros(4), (A, Y), maxiter=25,
               batch={"args": (0, 1), "size": 10})
    assert res.nit == 25 and res.status == 1


def test_the_plateau_test_stops_after_patience_epochs():
    # lr 0: the same mean loss every epoch without shuffling
    res = both(lsq_vg, np.zeros(4), (A, Y), lr=0.0,
               batch={"args": (0, 1), "size": 10, "shuffle": False,
                      "patience": 3, "epochs": 50})
    assert res.success and "stopped decreasing" in res.message
    assert res.nit == 4 * 11  # the first epoch sets the best, 3 more fail
    res = both(lsq_vg, np.zeros(4), (A, Y), lr=0.05,
               batch={"args": (0, 1), "size": 10, "patience": 3,
                      "min_delta": 1e-3, "epochs": 200})
    assert res.success and res.nit < 200 * 11


def test_schedules_with_batches():
    batch = {"args": (0, 1), "size": 10, "epochs": 6}
    both(lsq_vg, np.zeros(4), (A, Y), batch=batch,
         lr=schedules.reduce_on_plateau(0.1, patience=0, factor=0.5))
    cos = both(lsq_vg, np.zeros(4), (A, Y), batch=batch,
               lr=schedules.cosine(0.05, t_max=66))
    res = rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                          options={"batch": batch,
                                   "lr": schedules.cosine(0.05, t_max=66)})
    assert_same(cos, res)
    calls = rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                            options={"batch": batch, "driver": "nopython",
                                     "lr": schedules.cosine(0.05, 66)})
    assert_same(cos, calls)
    by_callable = both(lsq_vg, np.zeros(4), (A, Y), batch=batch,
                       lr=lambda t: schedules.cosine(0.05, 66)(t))
    assert_same(cos, by_callable)


def test_callbacks_see_every_iteration():
    seen = []
    res = rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                          callback=seen.append,
                          options={"batch": {"args": (0, 1), "size": 10,
                                             "epochs": 2},
                                   "driver": "nopython"})
    assert len(seen) == res.nit == 22


@pytest.mark.parametrize("batch, error, match", [
    ([0, 1], TypeError, "must be a dict"),
    ({"args": (0, 1)}, ValueError, "needs 'args'"),
    ({"args": (0, 1), "size": 8, "epoch": 2}, ValueError, "Unknown keys"),
    ({"args": (2,), "size": 8}, ValueError, "not a position"),
    ({"args": (0, 0), "size": 8}, ValueError, "twice"),
    ({"args": (0, 1), "size": 0}, ValueError, "size"),
    ({"args": (0, 1), "size": 200}, ValueError, "larger than"),
    ({"args": (0, 1), "size": 8, "epochs": 0}, ValueError, "epochs"),
    ({"args": (0, 1), "size": 8, "shuffle": 1}, TypeError, "shuffle"),
    ({"args": (0, 1), "size": 8, "seed": "x"}, ValueError, "seed"),
    ({"args": (0, 1), "size": 8, "min_delta": -1}, ValueError, "min_delta"),
])
def test_bad_batch_options_are_errors(batch, error, match):
    with pytest.raises(error, match=match):
        rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                        options={"batch": batch})


def test_data_of_different_lengths_and_patience_without_loss():
    with pytest.raises(ValueError, match="same length"):
        rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y[:50]), jac=True,
                        options={"batch": {"args": (0, 1), "size": 8}})
    with pytest.raises(TypeError, match="NumPy array"):
        rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, 3.0), jac=True,
                        options={"batch": {"args": (0, 1), "size": 8}})
    with pytest.raises(ValueError, match="jac=True"):
        rmsopt.minimize(lsq_value, np.zeros(4), args=(A, Y), jac=lsq_grad,
                        options={"batch": {"args": (0, 1), "size": 8,
                                           "patience": 2}})


def test_estimators_fit_on_mini_batches_reproducibly():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_diabetes
    from rmsopt.models import Ridge
    X, y = load_diabetes(return_X_y=True)
    from sklearn.exceptions import ConvergenceWarning
    full = Ridge(alpha=0.1).fit(X, y)
    # mini-batch noise leaves a full gradient of about 7e-3: a fit to the
    # default tol=1e-6 stalls (and says so); tol=1e-2 converges
    with pytest.warns(ConvergenceWarning, match="stalled"):
        Ridge(alpha=0.1, batch_size=32).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        first = Ridge(alpha=0.1, batch_size=32, tol=1e-2).fit(X, y)
        again = Ridge(alpha=0.1, batch_size=32, tol=1e-2).fit(X, y)
    np.testing.assert_array_equal(first.coef_, again.coef_)
    # the same problem: the scores agree closely with the full-batch fit
    assert abs(first.score(X, y) - full.score(X, y)) < 1e-3
    with pytest.raises(ValueError, match="batch_size"):
        Ridge(batch_size=0).fit(X, y)


def test_a_new_process_loads_the_batch_loop_from_the_disk_cache(tmp_path):
    import os
    import subprocess
    import sys
    script = tmp_path / "run.py"
    script.write_text(
        "import sys; sys.path.insert(0, %r)\n"
        "import numpy as np, rmsopt\n"
        "from rmsopt import _cpu\n"
        "from rmsopt._options import parse_options\n"
        "from problems import lsq_vg, BATCH_A as A, BATCH_Y as Y\n"
        "rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,\n"
        "    options={'batch': {'args': (0, 1), 'size': 10, 'epochs': 1}})\n"
        "d = _cpu.make_loop(parse_options({}, 4).flags, 'float64',"
        " True, False, False, False, True)\n"
        "print(sum(d.stats.cache_hits.values()),"
        " sum(d.stats.cache_misses.values()))\n"
        % os.path.dirname(__file__))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    outs = [subprocess.run([sys.executable, str(script)], env=env, text=True,
                           capture_output=True, check=True).stdout.split()
            for _ in range(2)]
    assert outs[0] == ["0", "1"]  # compiled, and written to disk
    assert outs[1] == ["1", "0"]  # loaded: nothing compiled


@pytest.mark.parametrize("style", ["legacy", "new"])
def test_the_callback_sees_every_iteration_in_both_drivers(style):
    """One call per iteration, the epochs' last ones included, at the same
    points through either driver; StopIteration at an epoch's end stops
    both there."""
    opts = {"lr": 0.05, "batch": {"args": (0, 1), "size": 25, "epochs": 2}}
    seen = {}
    for driver in ("nopython", "python"):
        xs = seen[driver] = []
        if style == "legacy":
            def callback(xk):
                xs.append(xk)
        else:
            def callback(intermediate_result):
                xs.append(intermediate_result.x)
        res = rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                              callback=callback,
                              options={**opts, "driver": driver})
        assert res.nit == 2 * 5 == len(xs)  # 103 samples: 5 batches
    np.testing.assert_array_equal(seen["nopython"], seen["python"])
    np.testing.assert_array_equal(seen["python"][-1], res.x)

    def stop_at_first_epoch_end(xk):
        if len(stops) == 4:
            raise StopIteration
        stops.append(xk)
    for driver in ("nopython", "python"):
        stops = []
        res = rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                              callback=stop_at_first_epoch_end,
                              options={**opts, "driver": driver})
        assert res.status == 99 and res.nit == 5


# -- rmsopt/_batches.py directly: parse_batches and Epochs -----------------------

def test_parse_batches_normalises_the_option():
    spec = parse_batches({"args": (2, 0), "size": 10}, (A, 3.0, Y))
    assert spec.positions == (0, 2) and spec.size == 10
    assert spec.shuffle is True and spec.seed == 0
    assert spec.epochs is None and spec.patience is None
    assert spec.min_delta == 0.0 and spec.n_samples == 103
    assert spec.per_epoch == 11  # the last batch holds 3 samples
    spec = parse_batches({"args": np.int64(1), "size": np.int32(103),
                          "shuffle": np.False_, "seed": None, "epochs": 2,
                          "patience": 4, "min_delta": 1}, (3.0, Y))
    assert spec.positions == (1,) and spec.size == 103 and spec.per_epoch == 1
    assert spec.shuffle is False and type(spec.shuffle) is bool
    assert (spec.epochs, spec.patience, spec.min_delta) == (2, 4, 1.0)
    assert mask_of(spec, 3) == (None, 0, None)


@pytest.mark.parametrize("spec, args, error, match", [
    ((0, 1), (A, Y), TypeError, "must be a dict such as"),
    ({"args": (0,), "size": 4, "shufle": True}, (A,), ValueError,
     "Unknown keys in options\\['batch'\\]: 'shufle'"),
    ({"size": 4}, (A,), ValueError, "needs 'args'"),
    ({"args": (0,)}, (A,), ValueError, "and 'size'"),
    ({"args": 1.5, "size": 4}, (A,), TypeError, "tuple of positions"),
    ({"args": (), "size": 4}, (A,), ValueError, "at least one argument"),
    ({"args": (True,), "size": 4}, (A,), ValueError, "not a position"),
    ({"args": (-1,), "size": 4}, (A,), ValueError, "has 1 items"),
    ({"args": (0, 0), "size": 4}, (A, Y), ValueError, "twice"),
    ({"args": (0,), "size": 4}, ([1.0, 2.0],), TypeError, "got list"),
    ({"args": (0,), "size": 4}, (np.float64(2.0),), TypeError,
     "NumPy array with a first axis"),
    ({"args": (0, 1), "size": 4}, (A, Y[:-1]), ValueError,
     r"same length along their first axis, got \[102, 103\]"),
    ({"args": (0,), "size": 1}, (np.zeros((0, 2)),), ValueError, "empty"),
    ({"args": (0,), "size": 0}, (A,), ValueError,
     r"batch\['size'\] must be an integer >= 1, got 0"),
    ({"args": (0,), "size": 2.0}, (A,), ValueError, "size"),
    ({"args": (0,), "size": 104}, (A,), ValueError,
     r"batch\['size'\]=104 is larger than the 103 samples"),
    ({"args": (0,), "size": 4, "shuffle": "yes"}, (A,), TypeError,
     "shuffle"),
    ({"args": (0,), "size": 4, "seed": -1}, (A,), ValueError, "default_rng"),
    ({"args": (0,), "size": 4, "epochs": 0}, (A,), ValueError,
     r"batch\['epochs'\] must be an integer >= 1 or None"),
    ({"args": (0,), "size": 4, "patience": True}, (A,), ValueError,
     "patience"),
    ({"args": (0,), "size": 4, "min_delta": np.inf}, (A,), ValueError,
     "min_delta"),
    ({"args": (0,), "size": 4, "min_delta": True}, (A,), ValueError,
     "min_delta"),
])
def test_parse_batches_errors(spec, args, error, match):
    with pytest.raises(error, match=match):
        parse_batches(spec, args)


@pytest.mark.parametrize("shuffle", [True, False])
def test_epochs_draw_the_seeds_orders_into_contiguous_copies(shuffle):
    args, original = (A, 2.5, Y), A.copy()
    spec = parse_batches({"args": (0, 2), "size": 10, "seed": 7,
                          "shuffle": shuffle}, args)
    epochs = Epochs(spec, args)
    rng = np.random.default_rng(7)  # the oracle: numpy's permutations
    orders = []
    for epoch in range(1, 4):
        epochs.start()
        assert epochs.epoch == epoch
        order = rng.permutation(103) if shuffle else np.arange(103)
        orders.append(order)
        a, scale, y = epochs.data
        np.testing.assert_array_equal(a, A[order])
        np.testing.assert_array_equal(y, Y[order])
        assert scale == 2.5
        assert a.flags.c_contiguous and y.flags.c_contiguous
        if shuffle:
            assert not np.shares_memory(a, A)  # a copy, never the user's
    if shuffle:
        assert not np.array_equal(orders[0], orders[1])
    # restart: the same orders again, from the seed
    epochs.restart()
    assert epochs.epoch == 0 and epochs.losses == []
    for order in orders:
        epochs.start()
        np.testing.assert_array_equal(epochs.data[0], A[order])
    np.testing.assert_array_equal(A, original)  # untouched


def test_batch_args_are_views_of_the_epochs_data():
    args = (A, 2.5, Y)
    spec = parse_batches({"args": (0, 2), "size": 10}, args)
    epochs = Epochs(spec, args)
    epochs.start()
    for pos in range(spec.per_epoch):
        a, scale, y = epochs.batch_args(pos)
        start, stop = 10 * pos, min(10 * pos + 10, 103)
        assert a.base is epochs.data[0] or a.base is epochs.data[0].base
        assert np.shares_memory(a, epochs.data[0])
        assert np.shares_memory(y, epochs.data[2])
        np.testing.assert_array_equal(a, epochs.data[0][start:stop])
        np.testing.assert_array_equal(y, epochs.data[2][start:stop])
        assert scale is args[1]
    assert len(epochs.batch_args(spec.per_epoch - 1)[0]) == 3


def keras_early_stopping(losses, patience, min_delta):
    """Keras' EarlyStopping (mode 'min', no baseline): the epoch (1-based)
    after which it stops training, or None. (In mode 'min' Keras negates
    min_delta, then tests ``current - min_delta < best``.)"""
    best, wait = np.inf, 0
    min_delta = -min_delta
    for epoch, current in enumerate(losses, 1):
        wait += 1
        if current - min_delta < best:
            best, wait = current, 0
            continue
        if wait >= patience:
            return epoch
    return None


@pytest.mark.parametrize("losses, patience, min_delta", [
    ([5, 4, 4, 4, 4, 3], 3, 0.0),
    ([5, 4, 4.5, 3.9, 4, 4, 4, 1], 3, 0.0),
    ([5, 4.95, 4.9, 4.85, 4.8, 4.0], 2, 0.1),
    ([3, 2, 1, 0.5, 0.25], 1, 0.0),
    ([1, 1, 1], 1, 0.0),
])
def test_end_records_the_mean_loss_and_stops_as_keras(losses, patience,
                                                      min_delta):
    spec = parse_batches({"args": (0,), "size": 10, "patience": patience,
                          "min_delta": min_delta}, (A,))
    epochs = Epochs(spec, (A,))
    expected = keras_early_stopping(losses, patience, min_delta)
    stopped = None
    for epoch, loss in enumerate(losses, 1):
        epochs.start()
        # end() takes the sum of the epoch's batch losses
        if epochs.end(loss * spec.per_epoch):
            stopped = epoch
            break
    assert stopped == expected
    assert epochs.plateaued is (expected is not None)
    np.testing.assert_allclose(epochs.losses, losses[:len(epochs.losses)],
                               rtol=1e-15)


def test_end_stops_after_the_requested_epochs_and_records_nan():
    spec = parse_batches({"args": (0,), "size": 50, "epochs": 2}, (A,))
    epochs = Epochs(spec, (A,))
    epochs.start()
    assert epochs.end(np.nan) is False
    epochs.start()
    assert epochs.end(np.nan) is True and not epochs.plateaued
    assert np.isnan(epochs.losses).all() and len(epochs.losses) == 2


@pytest.mark.parametrize("driver", ["nopython", "python"])
@pytest.mark.parametrize("first", [28, 33, 11, 1])  # 11 = an epoch's end
def test_a_continued_run_is_the_whole_run(driver, first):
    """The state carries the epochs, the position in the current one and
    the shuffle stream: 28 + 42 iterations give the bits of 70."""
    opts = {"lr": 0.05, "momentum": 0.5, "gtol": 0, "driver": driver,
            "batch": {"args": (0, 1), "size": 10, "seed": 3,
                      "patience": 50}}
    whole = rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                            options={**opts, "maxiter": 70})
    part = rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                           options={**opts, "maxiter": first})
    rest = rmsopt.minimize(lsq_vg, part.x, args=(A, Y), jac=True,
                           options={**opts, "maxiter": 70 - first,
                                    "state": part.state})
    np.testing.assert_array_equal(rest.x, whole.x)
    for key in ("square_avg", "momentum_buffer"):
        np.testing.assert_array_equal(rest.state[key], whole.state[key])
    ours, theirs = rest.state["batches"], whole.state["batches"]
    assert ours.keys() == theirs.keys()
    for key in ours:
        if key == "order" and ours[key] is not None:
            np.testing.assert_array_equal(ours[key], theirs[key])
        else:
            assert ours[key] == theirs[key], key
    assert rest.state["step"] == 70


def test_a_continued_run_needs_the_same_batches():
    opts = {"maxiter": 5, "batch": {"args": (0, 1), "size": 10}}
    part = rmsopt.minimize(lsq_vg, np.zeros(4), args=(A, Y), jac=True,
                           options=opts)
    with pytest.raises(ValueError, match="batches of size 10 over 103"):
        rmsopt.minimize(lsq_vg, part.x, args=(A, Y), jac=True,
                        options={"maxiter": 5, "state": part.state,
                                 "batch": {"args": (0, 1), "size": 20}})
    bad = {**part.state, "batches": {"pos": 1}}
    with pytest.raises(TypeError, match=r"state\['batches'\]"):
        rmsopt.minimize(lsq_vg, part.x, args=(A, Y), jac=True,
                        options={**opts, "state": bad})
