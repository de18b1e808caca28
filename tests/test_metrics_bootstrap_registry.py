"""Repeated-subsample bootstrap and the metric registry."""

from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
import pytest

import metrics
from metrics import GENERATION_METRICS, METRICS, MetricInputError, Metric, bootstrap, goal
from metrics import privacy, utility


def test_bootstrap_is_seeded_and_matches_its_documented_draws():
    rng = np.random.default_rng(0)
    gen, real = rng.normal(size=(21, 3)), rng.normal(size=(30, 3))

    def fn(r, g):
        return float(g.mean() - r.mean())

    assert bootstrap(fn, real, gen, seed=3) == bootstrap(fn, real, gen, seed=3)
    assert bootstrap(fn, real, gen, seed=3) != bootstrap(fn, real, gen, seed=4)
    draws = np.random.default_rng(3)
    values = []
    for _ in range(10):
        g = draws.choice(21, size=10, replace=False)  # generated rows first, then real rows
        r = draws.choice(30, size=15, replace=False)
        values.append(fn(real[r], gen[g]))
    mean, std = bootstrap(fn, real, gen, n_repeats=10, frac=0.5, seed=3)
    assert mean == pytest.approx(np.mean(values), abs=1e-15)
    assert std == pytest.approx(np.std(values, ddof=1), abs=1e-15)


def test_bootstrap_std_is_the_sample_std_ddof_1():
    # the metric returns 1, 2, 3 on the three repeats: mean 2, sample std sqrt((1 + 0 + 1) / 2) = 1
    # (the population std would be sqrt(2/3))
    counter = itertools.count(1)
    mean, std = bootstrap(lambda r, g: float(next(counter)), np.zeros((4, 2)), np.zeros((4, 2)), n_repeats=3)
    assert (mean, std) == (2.0, 1.0)


def test_bootstrap_refuses_nan_and_reports_infinite_values():
    good = np.zeros((6, 2))
    bad = good.copy()
    bad[2, 1] = np.nan
    for real, gen in ((bad, good), (good, bad)):
        with pytest.raises(MetricInputError, match="NaN"):
            bootstrap(lambda r, g: 0.0, real, gen)
    with pytest.raises(MetricInputError, match="NaN"):
        bootstrap(lambda g, r: float("nan"), good, good)
    mean, std = bootstrap(lambda g, r: math.inf, good, good, n_repeats=3)
    assert mean == math.inf and math.isnan(std)


def test_bootstrap_subsets_without_replacement():
    gen = np.arange(40).reshape(20, 2)
    real = np.arange(100, 130).reshape(15, 2)
    seen = []

    def fn(r, g):
        seen.append((g.copy(), r.copy()))
        return 1.0

    mean, std = bootstrap(fn, real, gen, n_repeats=6, frac=0.4, seed=1)
    assert (mean, std) == (1.0, 0.0)
    assert len(seen) == 6
    for g, r in seen:
        assert len(g) == 8 and len(r) == 6
        assert len({tuple(row) for row in g}) == 8 and len({tuple(row) for row in r}) == 6
        assert all(row[0] % 2 == 0 and 0 <= row[0] < 40 for row in g)
    # frac = 1 draws every row exactly once
    bootstrap(fn, real, gen, n_repeats=2, frac=1.0)
    g, r = seen[-1]
    assert sorted(g[:, 0]) == list(range(0, 40, 2)) and sorted(r[:, 0]) == list(range(100, 130, 2))


def test_bootstrap_rejects_bad_arguments():
    x = np.zeros((4, 2))
    with pytest.raises(MetricInputError, match="frac"):
        bootstrap(lambda g, r: 0.0, x, x, frac=0.0)
    with pytest.raises(MetricInputError, match="frac"):
        bootstrap(lambda g, r: 0.0, x, x, frac="half")
    with pytest.raises(MetricInputError, match="empty subset"):
        bootstrap(lambda g, r: 0.0, x, x, frac=0.1)
    for bad in (0, 1, 2.5):
        with pytest.raises(MetricInputError, match="n_repeats"):
            bootstrap(lambda g, r: 0.0, x, x, n_repeats=bad)


# Every registered name: the function it must call, its goal, range and what its ``pred`` is.
REGISTRY = {
    "MMD": (metrics.mmd_rbf, "lower", (-2.0, 2.0), "samples"),
    "GFD": (metrics.frechet_distance, "lower", (0.0, math.inf), "samples"),
    "KL": (metrics.kl_pooled, "lower", (0.0, math.inf), "samples"),
    "WD": (metrics.wasserstein_pooled, "lower", (0.0, math.inf), "samples"),
    "KS": (metrics.ks_pooled, "lower", (0.0, 1.0), "samples"),
    "MMD_paper": (metrics.mmd_rbf_paper, "lower", (0.0, 4.0), "samples"),
    "MMD_p": (metrics.mmd_p_value, "higher", (0.0, 1.0), "samples"),
    "MMD_pass": (metrics.mmd_pass, "higher", (0.0, 1.0), "samples"),
    "KL_step": (metrics.kl_per_step, "lower", (0.0, math.inf), "samples"),
    "WD_step": (metrics.wasserstein_per_step, "lower", (0.0, math.inf), "samples"),
    "KS_step": (metrics.ks_per_step, "lower", (0.0, 1.0), "samples"),
    "DCR_ratio": (privacy.dcr_ratio, "ignore", (0.0, math.inf), "samples"),
    "Memorised": (privacy.memorisation_rate, "ignore", (0.0, 1.0), "samples"),
    "TSTR": (utility.tstr_ratio, "lower", (0.0, math.inf), "samples"),
    "TSTR_class": (utility.tstr_class_ratio, "lower", (0.0, math.inf), "samples"),
    "CRPS": (metrics.crps_ensemble, "lower", (0.0, math.inf), "ensemble"),
    "Cov90": (metrics.interval_coverage, "ignore", (0.0, 1.0), "ensemble"),
    "CovErr90": (metrics.coverage_error, "lower", (0.0, 0.9), "ensemble"),
    "PeakCRPS": (metrics.peak_load_error, "lower", (0.0, math.inf), "ensemble"),
    "PeakAE": (metrics.peak_abs_error, "lower", (0.0, math.inf), "point"),
    "PeakRMSE": (metrics.peak_rmse, "lower", (0.0, math.inf), "point"),
    "MeanRMSE": (metrics.mean_rmse, "lower", (0.0, math.inf), "point"),
    "RMSE": (metrics.rmse, "lower", (0.0, math.inf), "point"),
    "MSE": (metrics.mse, "lower", (0.0, math.inf), "point"),
    "MAE": (metrics.mae, "lower", (0.0, math.inf), "point"),
    "MAPE": (metrics.mape, "lower", (0.0, math.inf), "point"),
    "MAPE_scaled": (metrics.mape, "lower", (0.0, math.inf), "point"),
    "Accuracy": (metrics.accuracy, "higher", (0.0, 1.0), "labels"),
    "Precision": (metrics.precision, "higher", (0.0, 1.0), "labels"),
    "Recall": (metrics.recall, "higher", (0.0, 1.0), "labels"),
    "F1": (metrics.f1, "higher", (0.0, 1.0), "labels"),
    "AUROC": (metrics.auroc, "higher", (0.0, 1.0), "scores"),
}

_LABELS_TRUE = np.array([1, 1, 1, 1, 0, 0, 0, 0])
_LABELS_PRED = np.array([1, 1, 0, 0, 1, 0, 0, 0])  # TP 2, FP 1, FN 2, TN 3
_CLASS_TRAIN = np.array([[0.0, 0.1], [0.2, 0.0], [1.0, 1.1], [1.2, 0.9]])
_CLASS_TEST = np.array([[0.1, 0.0], [0.0, 0.2], [1.1, 1.0], [0.9, 1.2]])  # two of four labelled against the side
_DECILES = np.arange(10, dtype=float).reshape(10, 1, 1) * np.ones((1, 1, 4))
_PROFILES_REAL = np.array([[1.0, 3.0, 2.0], [0.0, 0.5, 4.0]])
_PROFILES_PRED = np.array([[2.5, 1.0, 0.0], [4.0, 0.0, 0.0]])

# A small case per name, called as the tasks call it (real first, then the model's output), and its value worked
# out by hand.
HAND_CASES = {
    # MMD_u of {0, 1} with itself, bandwidth 1: 2 e^-1 - (1 + e^-1)
    "MMD": (lambda f: f(np.array([[0.0], [1.0]]), np.array([[0.0], [1.0]]), bandwidth=1.0), math.exp(-1) - 1),
    # 1-D Gaussians with means 2 and 1 and equal variances: only the mean term is left
    "GFD": (lambda f: f(np.array([[1.0], [3.0]]), np.array([[0.0], [2.0]])), 1.0),
    # the 199-bin case of tests/test_metrics_marginal.py: KL(generated || real)
    "KL": (lambda f: f(np.array([[0.0, 0.5, 199.0, 199.0]]), np.array([[0.0, 0.999, 0.999, 199.0]])),
           0.75 * math.log(1.5) + 0.25 * math.log(0.5)),
    "WD": (lambda f: f(np.array([[0.0, 2.0]]), np.array([[0.0, 0.0]])), 1.0),
    "KS": (lambda f: f(np.array([[2.0, 3.0, 4.0, 5.0]]), np.array([[0.0, 1.0, 2.0, 3.0]])), 0.5),
    # bandwidth from real {0, 1} only (generated {0, 2}): 1.5 + e^-4 / 2
    "MMD_paper": (lambda f: f(np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])), 1.5 + 0.5 * math.exp(-4)),
    # regular simplex: every permutation ties with the observed statistic, p = 1
    "MMD_p": (lambda f: f(np.eye(4)[2:], np.eye(4)[:2], bandwidth=1.0, n_permutations=20), 1.0),
    # the same: p = 1 > alpha = 0.05, the group passes
    "MMD_pass": (lambda f: f(np.eye(4)[2:], np.eye(4)[:2], bandwidth=1.0, n_permutations=20), 1.0),
    # 0 and 1 sit in the first and last of 199 bins: p = (3/4, 1/4) generated, q = (1/4, 3/4) real
    "KL_step": (lambda f: f(np.array([[0.0], [1.0], [1.0], [1.0]]), np.array([[0.0], [0.0], [0.0], [1.0]])),
                0.5 * math.log(3)),
    "WD_step": (lambda f: f(np.array([[1.0, 3.0], [1.0, 3.0]]), np.zeros((2, 2))), 2.0),
    "KS_step": (lambda f: f(np.array([[0.0, 1.0], [0.0, 1.0]]), np.zeros((2, 2))), 0.5),
    # held-out 2 from the training record 0, generated 1 from it: 1 / 2
    "DCR_ratio": (lambda f: f(np.array([[2.0]]), np.array([[1.0]]), train=np.zeros((1, 1))), 0.5),
    # held-out distances 1..4 (5 % quantile 1.15): the generated 0 is below, the generated 5 is not
    "Memorised": (lambda f: f(np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([[0.0], [5.0]]),
                              train=np.zeros((1, 1))), 0.5),
    # the generated profiles are the training ones: the same forecaster, ratio 1
    "TSTR": (lambda f: f(np.array([[1.0, 2.0], [2.0, 4.0]]), np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]),
                         train=np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]), horizon_frac=0.5), 1.0),
    # generated = training profiles with the same labels: the same classifier, ratio 1 (errors on the test exist)
    "TSTR_class": (lambda f: f(_CLASS_TEST, _CLASS_TRAIN, real_labels=np.array([0, 1, 0, 1]),
                               pred_labels=np.array([0, 0, 1, 1]), train=_CLASS_TRAIN,
                               train_labels=np.array([0, 0, 1, 1])), 1.0),
    # members {1, 3} at 0: mean |x - y| = 2, fair spread term 4 / (2 * 2 * 1) = 1
    "CRPS": (lambda f: f(np.zeros((1, 1)), np.array([[[1.0]], [[3.0]]])), 1.0),
    # linear 90 % interval of 0..9 is [0.45, 8.55]: two of four inside
    "Cov90": (lambda f: f(np.array([[0.44, 0.46, 8.54, 8.56]]), _DECILES), 0.5),
    # the same, |0.5 - 0.9|
    "CovErr90": (lambda f: f(np.array([[0.44, 0.46, 8.54, 8.56]]), _DECILES), 0.4),
    "PeakCRPS": (lambda f: f(np.array([[1.0, 0.0]]), np.array([[[3.0, 0.0]]])), 2.0),
    "PeakAE": (lambda f: f(np.array([[1.0, 3.0, 2.0]]), np.array([[2.5, 1.0, 0.0]])), 0.5),
    # peaks 3, 4 vs 2.5, 4: errors 0.5, 0
    "PeakRMSE": (lambda f: f(_PROFILES_REAL, _PROFILES_PRED), math.sqrt(0.125)),
    # means 2, 1.5 vs 7/6, 4/3: errors 5/6, 1/6
    "MeanRMSE": (lambda f: f(_PROFILES_REAL, _PROFILES_PRED), math.sqrt(13 / 36)),
    "RMSE": (lambda f: f(np.zeros(4), np.array([1.0, 1.0, 1.0, 3.0])), math.sqrt(3.0)),
    "MSE": (lambda f: f(np.zeros(4), np.array([1.0, 1.0, 1.0, 3.0])), 3.0),
    "MAE": (lambda f: f(np.zeros(4), np.array([1.0, 1.0, 1.0, 3.0])), 1.5),
    "MAPE": (lambda f: f(np.array([1.0, 2.0]), np.array([1.5, 1.0])), 0.5),
    # scaled truths -0.5, 0.5: ratios 0.25 / 0.5 and 0.5 / 0.5
    "MAPE_scaled": (lambda f: f(np.array([-0.5, 0.5]), np.array([-0.25, 1.0])), 0.75),
    "Accuracy": (lambda f: f(_LABELS_TRUE, _LABELS_PRED), 5 / 8),
    "Precision": (lambda f: f(_LABELS_TRUE, _LABELS_PRED), 2 / 3),
    "Recall": (lambda f: f(_LABELS_TRUE, _LABELS_PRED), 1 / 2),
    "F1": (lambda f: f(_LABELS_TRUE, _LABELS_PRED), 4 / 7),
    # pairs (pos, neg): 0.3 > 0.1, 0.3 = 0.3, 0.2 > 0.1, 0.2 < 0.3 -> 2.5 / 4
    "AUROC": (lambda f: f(np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.3, 0.2])), 0.625),
}


def test_registry_names_functions_goals_ranges_and_needs():
    assert set(METRICS) == set(REGISTRY)
    for name, (fn, expected_goal, expected_range, needs) in REGISTRY.items():
        spec = METRICS[name]
        assert spec.name == name
        assert spec.fn is fn, name
        assert spec.goal == expected_goal, name
        assert goal(name) == expected_goal, name
        assert spec.range == expected_range, name
        assert spec.needs == needs, name
        assert spec.description, name


@pytest.mark.parametrize("name", list(HAND_CASES))
def test_every_registered_metric_gives_its_hand_value_inside_its_range(name):
    call, expected = HAND_CASES[name]
    value = call(METRICS[name].fn)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)
    low, high = METRICS[name].range
    assert low <= value <= high


def test_hand_cases_cover_the_registry():
    assert set(HAND_CASES) == set(METRICS)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_metric_has_the_one_signature(name):
    """``fn(real, pred, *, mask=None, ...)``: two positional arrays, then keyword-only arguments, mask first."""
    params = list(inspect.signature(METRICS[name].fn).parameters.values())
    assert [p.name for p in params[:2]] == ["real", "pred"], name
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is inspect.Parameter.empty
               for p in params[:2]), name
    assert params[2].name == "mask" and params[2].default is None, name
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:]), name


def test_ranges_of_bounded_metrics_hold_on_random_input():
    """Random sets at a few shifts: every bounded metric of the generation family stays inside its range."""
    rng = np.random.default_rng(5)
    real = rng.normal(size=(12, 3))
    for shift in (0.0, 0.5, 5.0):
        pred = rng.normal(shift, 1.0, size=(9, 3))
        for name in ("MMD", "MMD_paper", "KS", "KS_step", "MMD_p", "MMD_pass"):
            spec = METRICS[name]
            kwargs = {"bandwidth": 0.1} if "bandwidth" in inspect.signature(spec.fn).parameters else {}
            value = spec.fn(real, pred, **kwargs)
            assert spec.range[0] <= value <= spec.range[1], (name, shift, value)


def test_generation_metrics_table():
    assert list(GENERATION_METRICS) == ["MMD", "GFD", "KL", "WD", "KS"]
    assert all(GENERATION_METRICS[name] is METRICS[name] for name in GENERATION_METRICS)
    assert "bandwidth" in inspect.signature(GENERATION_METRICS["MMD"].fn).parameters
    # the paper MMD computes its own bandwidth from each call's real profiles: the task must not pass one
    assert "bandwidth" not in inspect.signature(METRICS["MMD_paper"].fn).parameters
    assert "199" in METRICS["KL"].description and "generated || real" in METRICS["KL"].description


def test_generation_metrics_run_under_bootstrap_as_the_task_calls_them():
    rng = np.random.default_rng(0)
    gen, real = rng.normal(size=(40, 6)), rng.normal(0.5, 1.0, size=(40, 6))
    bandwidth = metrics.rbf_bandwidth(real)
    for name in [*GENERATION_METRICS, "MMD_paper"]:
        spec = METRICS[name]
        params = inspect.signature(spec.fn).parameters
        fn = (lambda r, g, f=spec.fn: f(r, g, bandwidth=bandwidth)) if "bandwidth" in params else spec.fn
        mean, std = bootstrap(fn, real, gen, n_repeats=3)
        assert np.isfinite(mean) and std >= 0, name
        assert mean > 0, name  # the shift is visible to every metric


def test_all_metrics_exported_unknown_names_and_bad_descriptions():
    exported = {getattr(metrics, n) for n in metrics.__all__ if callable(getattr(metrics, n))}
    assert {spec.fn for spec in METRICS.values()} <= exported
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        goal("nope")
    with pytest.raises(KeyError, match="unknown metric 'nope'; known: .*AUROC"):
        METRICS["nope"]
    with pytest.raises(ValueError, match="goal"):
        Metric("X", metrics.rmse, "smaller", "bad goal")
    with pytest.raises(ValueError, match="needs"):
        Metric("X", metrics.rmse, "lower", "bad needs", needs="profiles")
    with pytest.raises(ValueError, match="range"):
        Metric("X", metrics.rmse, "lower", "bad range", (1.0, 0.0))
    # a name is registered once: another metric under a taken name is an error
    with pytest.raises(ValueError, match="already registered"):
        metrics.register_metric(Metric("RMSE", metrics.mae, "lower", "clash", needs="point"))
