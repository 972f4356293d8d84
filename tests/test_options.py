"""rmsopt/_options.py called directly: defaults and presets against the
NumPy oracle's (tests/reference.py: OPTION_DEFAULTS, PRESETS, written from
REFERENCE.md), tol and gtol as scipy takes them, unknown options, every
validation error, maxiter, parallel='auto', history, show_options.
(test_validation.py checks the errors through minimize.)"""

import math

import numba
import numpy as np
import pytest
from scipy.optimize import OptimizeWarning

from rmsopt import _options, schedules
from rmsopt._options import (CONVENTIONS, OPTIONS, PARALLEL_CROSSOVER,
                             check_history, parse_options, show_options)
from reference import OPTION_DEFAULTS, PRESETS

HYPER = ("lr", "alpha", "eps", "momentum", "weight_decay", "initial_scale")
FLAGS = ("maximize", "centered", "nesterov", "eps_in_sqrt", "lr_in_momentum",
         "decoupled_weight_decay", "bias_correction")


def values(settings):
    """The settings as the oracle's keyword arguments."""
    out = {name: getattr(settings, name) for name in HYPER}
    out.update({name: getattr(settings.flags, name) for name in FLAGS})
    return out


# -- defaults and presets ------------------------------------------------------------

def test_defaults_are_pytorchs():
    settings = parse_options(None, 4)
    assert values(settings) == OPTION_DEFAULTS
    assert settings.convention == "pytorch"
    assert settings == parse_options({}, 4)
    # the table show_options prints holds the same defaults
    for name, default in OPTION_DEFAULTS.items():
        assert OPTIONS[name][0] == default, name
    assert settings.gtol == 1e-5 and settings.driver == "auto"
    assert settings.disp is False and settings.progress is False
    assert settings.state is None and settings.batch is None
    assert settings.history is None and settings.schedule is None
    assert settings.finite_diff_rel_step is None


@pytest.mark.parametrize("name", PRESETS)
def test_each_convention_sets_the_libraries_defaults(name):
    assert values(parse_options({"convention": name}, 4)) == PRESETS[name]
    assert values(parse_options({"convention": name.upper()}, 4)) == \
        PRESETS[name]
    # the presets name every option that differs between the libraries
    differing = {key for key in OPTION_DEFAULTS
                 if len({repr(p[key]) for p in PRESETS.values()}) > 1}
    assert differing <= set(CONVENTIONS[name])
    for key, value in CONVENTIONS[name].items():
        assert PRESETS[name][key] == value, key


@pytest.mark.parametrize("name", PRESETS)
def test_explicit_options_win_over_the_preset(name):
    explicit = {"lr": 0.123, "alpha": 0.5, "eps": 0.25,
                "eps_in_sqrt": not PRESETS[name]["eps_in_sqrt"],
                "initial_scale": 3.0, "momentum": 0.7,
                "lr_in_momentum": not PRESETS[name]["lr_in_momentum"],
                "decoupled_weight_decay":
                    not PRESETS[name]["decoupled_weight_decay"]}
    got = values(parse_options({"convention": name, **explicit}, 4))
    assert got == {**PRESETS[name], **explicit}


# -- tol, gtol, unknown options --------------------------------------------------------

def test_tol_fills_gtol_unless_gtol_is_given():
    assert parse_options({}, 3, tol=0.25).gtol == 0.25
    assert parse_options({"gtol": 0.5}, 3, tol=0.25).gtol == 0.5
    assert parse_options({"gtol": 0}, 3).gtol == 0.0


@pytest.mark.parametrize("tol, error", [(float("nan"), ValueError),
                                        (-1.0, ValueError),
                                        ("1e-3", TypeError)])
def test_tol_is_checked_even_where_gtol_overrides_it(tol, error):
    for options in ({}, {"gtol": 1e-3}):
        with pytest.raises(error, match="tol"):
            parse_options(options, 3, tol=tol)


def test_unknown_options_warn_and_are_dropped():
    with pytest.warns(OptimizeWarning,
                      match="^Unknown solver options: bogus, rho$"):
        settings = parse_options({"rho": 0.9, "bogus": 1, "lr": 0.5}, 3)
    assert settings.lr == 0.5 and settings.alpha == 0.99


# -- validation --------------------------------------------------------------------------

@pytest.mark.parametrize("options, error, match", [
    ({"lr": -1e-3}, ValueError, r"Invalid learning rate: lr must be in "
                                r"\[0.0, inf\], got -0.001"),
    ({"lr": math.inf}, ValueError, "Invalid lr: must be finite, got inf"),
    ({"lr": None}, TypeError, "lr must be a real number, got None"),
    ({"lr": np.bool_(True)}, TypeError, "lr must be a real number"),
    ({"alpha": math.nan}, ValueError, "Invalid alpha value"),
    ({"alpha": 1.0}, ValueError, r"alpha must be in \[0.0, 1.0\), got 1.0"),
    ({"eps": 0}, ValueError, r"eps must be in \(0.0, inf\], got 0.0"),
    ({"eps": math.inf}, ValueError, "Invalid eps: must be finite"),
    ({"momentum": 1}, ValueError, r"momentum must be in \[0.0, 1.0\)"),
    ({"weight_decay": math.inf}, ValueError, "Invalid weight_decay: must be "
                                             "finite"),
    ({"weight_decay": -0.1}, ValueError, "Invalid weight_decay value"),
    ({"initial_scale": math.inf}, ValueError, "Invalid initial_scale: must "
                                              "be finite"),
    ({"initial_scale": "1"}, TypeError, "initial_scale must be a real"),
    ({"nesterov": True}, ValueError, "Nesterov momentum requires "
                                     "momentum > 0"),
    ({"bias_correction": 0}, TypeError, "Option bias_correction must be "
                                        "True or False, got 0"),
    ({"disp": "no"}, TypeError, "Option disp must be True or False"),
    ({"progress": None}, TypeError, "Option progress must be True or False"),
    ({"maxiter": -1}, ValueError, "maxiter must be a non-negative integer, "
                                  "got -1"),
    ({"maxiter": 10.0}, ValueError, "got 10.0"),
    ({"maxiter": np.bool_(True)}, ValueError, "non-negative integer"),
    ({"gtol": -1e-9}, ValueError, "Invalid gtol value"),
    ({"gtol": "0"}, TypeError, "gtol must be a real number"),
    ({"convention": "Adam"}, ValueError, "Unknown convention 'Adam': "
                                         "expected one of 'pytorch', "
                                         "'keras', 'tf1', 'optax'"),
    ({"convention": None}, ValueError, "Unknown convention None"),
    ({"driver": "Python"}, ValueError, "driver must be 'auto', 'python' or "
                                       "'nopython', got 'Python'"),
    ({"finite_diff_rel_step": np.ones((3, 1))}, ValueError,
     r"a scalar or an array of shape \(3,\), got shape \(3, 1\)"),
    ({"finite_diff_rel_step": [1e-3, 0.0, 1e-3]}, ValueError,
     "finite and nonzero"),
    ({"finite_diff_rel_step": math.nan}, ValueError, "finite and nonzero"),
    ({"parallel": "yes"}, ValueError, "parallel must be 'auto', True or "
                                      "False, got 'yes'"),
    ({"parallel": 1}, ValueError, "parallel must be"),
    ({"history": 0}, ValueError, r"history must be None or an integer >= 1 "
                                 r"\(record every k iterations\), got 0"),
])
def test_every_validation_error(options, error, match):
    with pytest.raises(error, match=match):
        parse_options(options, 3)


def test_accepted_forms():
    settings = parse_options({"maxiter": np.int64(5), "lr": np.float32(0.5),
                              "centered": np.bool_(True), "momentum": 0,
                              "finite_diff_rel_step": [1e-3, 2e-3, 3e-3]}, 3)
    assert settings.maxiter == 5 and type(settings.maxiter) is int
    assert settings.lr == 0.5 and type(settings.lr) is float
    assert settings.flags.centered is True
    assert settings.flags.use_momentum is False
    assert parse_options({"momentum": 1e-9}, 3).flags.use_momentum is True
    assert parse_options({}, 3, bounded=True).flags.bounded is True
    assert parse_options({}, 3).flags.bounded is False
    assert parse_options({"lr": 0}, 3).lr == 0.0


# -- maxiter ----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 5, 1000])
def test_maxiter_default_is_200_n_as_bfgs(n):
    assert parse_options({}, n).maxiter == 200 * n
    assert parse_options({"maxiter": 0}, n).maxiter == 0


def test_with_epochs_the_epochs_are_the_limit():
    batch = {"args": (0,), "size": 2, "epochs": 3}
    assert parse_options({"batch": batch}, 5).maxiter >= 2 ** 62
    assert parse_options({"batch": batch, "maxiter": 7}, 5).maxiter == 7
    # batches without epochs: the usual default
    assert parse_options({"batch": {"args": (0,), "size": 2}},
                         5).maxiter == 1000


# -- schedules -----------------------------------------------------------------------------

def test_a_schedule_gives_its_peak_and_kind():
    cosine = schedules.cosine(0.1, t_max=10)
    settings = parse_options({"lr": cosine}, 3)
    assert settings.schedule is cosine and settings.lr == cosine.peak
    assert settings.flags.schedule == cosine.kind != 0
    growing = schedules.exponential(0.1, gamma=1.5)
    assert parse_options({"lr": growing}, 3).lr == math.inf
    settings = parse_options({"lr": lambda t: 0.1}, 3)
    assert settings.lr == math.inf and callable(settings.schedule)
    assert settings.flags.schedule == 0
    assert parse_options({"lr": 0.1}, 3).schedule is None


# -- parallel='auto' -------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 4])
def test_parallel_auto_is_a_candidate_only_for_large_problems(
        monkeypatch, threads):
    monkeypatch.setattr(numba, "get_num_threads", lambda: threads)
    assert parse_options({}, PARALLEL_CROSSOVER - 1).parallel is False
    large = parse_options({}, PARALLEL_CROSSOVER).parallel
    assert large == ("auto" if threads > 1 else False)
    # explicit choices stand whatever the size
    assert parse_options({"parallel": True}, 2).parallel is True
    assert parse_options({"parallel": np.bool_(False)},
                         10 ** 6).parallel is False


# -- history -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (None, None), (False, None), (1, 1), (7, 7), (np.int32(3), 3)])
def test_check_history_accepts(value, expected):
    got = check_history(value)
    assert got == expected and (got is None or type(got) is int)


@pytest.mark.parametrize("value", [0, -2, 2.0, True, np.bool_(True), "5"])
def test_check_history_rejects(value):
    with pytest.raises(ValueError, match="history must be None or an "
                                         "integer >= 1"):
        check_history(value)


# -- show_options ----------------------------------------------------------------------------

def test_show_options_lists_every_option_and_preset(capsys):
    text = show_options(disp=False)
    lines = text.splitlines()
    for name, (default, meaning) in OPTIONS.items():
        at = lines.index(f"{name} : default {default!r}")
        assert lines[at + 1].strip() == meaning
    for name, preset in CONVENTIONS.items():
        line = next(ln for ln in lines if ln.startswith(f"{name}: "))
        for key, value in preset.items():
            assert f"{key}={value!r}" in line
    assert show_options() is None
    assert capsys.readouterr().out == text + "\n"
    for solver, method in ((None, None), ("minimize", "rmsprop"),
                           (None, "RMSProp")):
        assert show_options(solver, method, disp=False) == text
    with pytest.raises(ValueError, match="Unknown solver 'root'"):
        show_options("root")
    with pytest.raises(ValueError, match="Unknown method 'adam'"):
        show_options(method="adam")


def test_every_option_has_a_meaning():
    assert set(_options._BOOL_OPTIONS) <= set(OPTIONS)
    for name, (default, meaning) in OPTIONS.items():
        assert isinstance(meaning, str) and meaning, name


def test_parsed_settings_are_kept_and_keyed_by_value_and_type():
    """The memo of parse_options: the same options give the same Settings
    object; a value of another type is parsed (and checked) again."""
    options = {"lr": 0.01, "maximize": True, "maxiter": 10}
    first = parse_options(options, 3)
    assert parse_options(dict(options), 3) is first
    assert parse_options(options, 4) is not first  # n is part of the key
    with pytest.raises(TypeError, match="maximize must be True or False"):
        parse_options({**options, "maximize": 1}, 3)  # 1 == True, not bool
    with pytest.raises(ValueError, match="maxiter"):
        parse_options({**options, "maxiter": 10.0}, 3)
    # unhashable values are parsed each time, and still checked
    state = {"step": 0}
    with pytest.raises((TypeError, ValueError)):
        parse_options({"state": state, "lr": -1.0}, 3)


def test_unknown_options_warn_at_every_call():
    for _ in range(2):
        with pytest.warns(OptimizeWarning, match="Unknown solver options"):
            parse_options({"lr": 0.01, "bogus": 1}, 3)
