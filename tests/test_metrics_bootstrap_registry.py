"""Repeated-subsample bootstrap and the metric registry."""

from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
import pytest

import metrics
from metrics import ALL_METRICS, GENERATION_METRICS, MetricInputError, Metric, bootstrap, goal


def test_bootstrap_is_seeded_and_matches_its_documented_draws():
    rng = np.random.default_rng(0)
    gen, real = rng.normal(size=(21, 3)), rng.normal(size=(30, 3))

    def fn(g, r):
        return float(g.mean() - r.mean())

    assert bootstrap(fn, gen, real, seed=3) == bootstrap(fn, gen, real, seed=3)
    assert bootstrap(fn, gen, real, seed=3) != bootstrap(fn, gen, real, seed=4)
    draws = np.random.default_rng(3)
    values = []
    for _ in range(10):
        g = draws.choice(21, size=10, replace=False)
        r = draws.choice(30, size=15, replace=False)
        values.append(fn(gen[g], real[r]))
    mean, std = bootstrap(fn, gen, real, n_repeats=10, frac=0.5, seed=3)
    assert mean == pytest.approx(np.mean(values), abs=1e-15)
    assert std == pytest.approx(np.std(values, ddof=1), abs=1e-15)


def test_bootstrap_std_is_the_sample_std_ddof_1():
    # the metric returns 1, 2, 3 on the three repeats: mean 2, sample std sqrt((1 + 0 + 1) / 2) = 1
    # (the population std would be sqrt(2/3))
    counter = itertools.count(1)
    mean, std = bootstrap(lambda g, r: float(next(counter)), np.zeros((4, 2)), np.zeros((4, 2)), n_repeats=3)
    assert (mean, std) == (2.0, 1.0)


def test_bootstrap_refuses_nan_and_reports_infinite_values():
    good = np.zeros((6, 2))
    bad = good.copy()
    bad[2, 1] = np.nan
    for gen, real in ((bad, good), (good, bad)):
        with pytest.raises(MetricInputError, match="NaN"):
            bootstrap(lambda g, r: 0.0, gen, real)
    with pytest.raises(MetricInputError, match="NaN"):
        bootstrap(lambda g, r: float("nan"), good, good)
    mean, std = bootstrap(lambda g, r: math.inf, good, good, n_repeats=3)
    assert mean == math.inf and math.isnan(std)


def test_bootstrap_subsets_without_replacement():
    gen = np.arange(40).reshape(20, 2)
    real = np.arange(100, 130).reshape(15, 2)
    seen = []

    def fn(g, r):
        seen.append((g.copy(), r.copy()))
        return 1.0

    mean, std = bootstrap(fn, gen, real, n_repeats=6, frac=0.4, seed=1)
    assert (mean, std) == (1.0, 0.0)
    assert len(seen) == 6
    for g, r in seen:
        assert len(g) == 8 and len(r) == 6
        assert len({tuple(row) for row in g}) == 8 and len({tuple(row) for row in r}) == 6
        assert all(row[0] % 2 == 0 and 0 <= row[0] < 40 for row in g)
    # frac = 1 draws every row exactly once
    bootstrap(fn, gen, real, n_repeats=2, frac=1.0)
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


# Every registered name: the function it must call and whether lower or higher is better.
REGISTRY = {
    "MMD": (metrics.mmd_rbf, "lower"),
    "GFD": (metrics.frechet_distance, "lower"),
    "KL": (metrics.kl_pooled, "lower"),
    "WD": (metrics.wasserstein_pooled, "lower"),
    "KS": (metrics.ks_pooled, "lower"),
    "MMD_paper": (metrics.mmd_rbf_paper, "lower"),
    "MMD_p": (metrics.mmd_p_value, "higher"),
    "KL_step": (metrics.kl_per_step, "lower"),
    "WD_step": (metrics.wasserstein_per_step, "lower"),
    "KS_step": (metrics.ks_per_step, "lower"),
    "CRPS": (metrics.crps_ensemble, "lower"),
    "CovErr90": (metrics.coverage_error, "lower"),
    "PeakCRPS": (metrics.peak_load_error, "lower"),
    "PeakAE": (metrics.peak_abs_error, "lower"),
    "RMSE": (metrics.rmse, "lower"),
    "MAE": (metrics.mae, "lower"),
    "MAPE": (metrics.mape, "lower"),
    "Accuracy": (metrics.accuracy, "higher"),
    "Precision": (metrics.precision, "higher"),
    "Recall": (metrics.recall, "higher"),
    "F1": (metrics.f1, "higher"),
    "AUROC": (metrics.auroc, "higher"),
}

_LABELS_TRUE = np.array([1, 1, 1, 1, 0, 0, 0, 0])
_LABELS_PRED = np.array([1, 1, 0, 0, 1, 0, 0, 0])  # TP 2, FP 1, FN 2, TN 3
_DECILES = np.arange(10, dtype=float).reshape(10, 1, 1) * np.ones((1, 1, 4))

# A small case per name, called as the tasks call it, and its value worked out by hand.
HAND_CASES = {
    # MMD_u of {0, 1} with itself, bandwidth 1: 2 e^-1 - (1 + e^-1)
    "MMD": (lambda f: f(np.array([[0.0], [1.0]]), np.array([[0.0], [1.0]]), bandwidth=1.0), math.exp(-1) - 1),
    # 1-D Gaussians with means 1 and 2 and equal variances: only the mean term is left
    "GFD": (lambda f: f(np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])), 1.0),
    # the 199-bin case of tests/test_metrics_marginal.py
    "KL": (lambda f: f(np.array([[0.0, 0.999, 0.999, 199.0]]), np.array([[0.0, 0.5, 199.0, 199.0]])),
           0.75 * math.log(1.5) + 0.25 * math.log(0.5)),
    "WD": (lambda f: f(np.array([[0.0, 0.0]]), np.array([[0.0, 2.0]])), 1.0),
    "KS": (lambda f: f(np.array([[0.0, 1.0, 2.0, 3.0]]), np.array([[2.0, 3.0, 4.0, 5.0]])), 0.5),
    # bandwidth from real {0, 1} only: 1.5 + e^-4 / 2
    "MMD_paper": (lambda f: f(np.array([[0.0], [2.0]]), np.array([[0.0], [1.0]])), 1.5 + 0.5 * math.exp(-4)),
    # regular simplex: every permutation ties with the observed statistic, p = 1
    "MMD_p": (lambda f: f(np.eye(4)[:2], np.eye(4)[2:], bandwidth=1.0, n_permutations=20), 1.0),
    # 0 and 1 sit in the first and last of 199 bins: p = (3/4, 1/4), q = (1/4, 3/4)
    "KL_step": (lambda f: f(np.array([[0.0], [0.0], [0.0], [1.0]]), np.array([[0.0], [1.0], [1.0], [1.0]])),
                0.5 * math.log(3)),
    "WD_step": (lambda f: f(np.zeros((2, 2)), np.array([[1.0, 3.0], [1.0, 3.0]])), 2.0),
    "KS_step": (lambda f: f(np.zeros((2, 2)), np.array([[0.0, 1.0], [0.0, 1.0]])), 0.5),
    # members {1, 3} at 0: mean |x - y| = 2, fair spread term 4 / (2 * 2 * 1) = 1
    "CRPS": (lambda f: f(np.zeros((1, 1)), np.array([[[1.0]], [[3.0]]])), 1.0),
    # linear 90 % interval of 0..9 is [0.45, 8.55]: two of four inside, |0.5 - 0.9|
    "CovErr90": (lambda f: f(np.array([[0.44, 0.46, 8.54, 8.56]]), _DECILES), 0.4),
    "PeakCRPS": (lambda f: f(np.array([[1.0, 0.0]]), np.array([[[3.0, 0.0]]])), 2.0),
    "PeakAE": (lambda f: f(np.array([[1.0, 3.0, 2.0]]), np.array([[2.5, 1.0, 0.0]])), 0.5),
    "RMSE": (lambda f: f(np.zeros(4), np.array([1.0, 1.0, 1.0, 3.0])), math.sqrt(3.0)),
    "MAE": (lambda f: f(np.zeros(4), np.array([1.0, 1.0, 1.0, 3.0])), 1.5),
    "MAPE": (lambda f: f(np.array([1.0, 2.0]), np.array([1.5, 1.0])), 0.5),
    "Accuracy": (lambda f: f(_LABELS_TRUE, _LABELS_PRED), 5 / 8),
    "Precision": (lambda f: f(_LABELS_TRUE, _LABELS_PRED), 2 / 3),
    "Recall": (lambda f: f(_LABELS_TRUE, _LABELS_PRED), 1 / 2),
    "F1": (lambda f: f(_LABELS_TRUE, _LABELS_PRED), 4 / 7),
    # pairs (pos, neg): 0.3 > 0.1, 0.3 = 0.3, 0.2 > 0.1, 0.2 < 0.3 -> 2.5 / 4
    "AUROC": (lambda f: f(np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.3, 0.2])), 0.625),
}


def test_registry_names_functions_and_directions():
    assert set(ALL_METRICS) == set(REGISTRY)
    for name, (fn, expected_goal) in REGISTRY.items():
        spec = ALL_METRICS[name]
        assert spec.name == name
        assert spec.fn is fn, name
        assert spec.goal == expected_goal, name
        assert goal(name) == expected_goal, name
        assert spec.description, name


@pytest.mark.parametrize("name", list(HAND_CASES))
def test_every_registered_metric_gives_its_hand_value(name):
    call, expected = HAND_CASES[name]
    assert call(ALL_METRICS[name].fn) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_hand_cases_cover_the_registry():
    assert set(HAND_CASES) == set(ALL_METRICS)


def test_generation_metrics_table():
    assert list(GENERATION_METRICS) == ["MMD", "GFD", "KL", "WD", "KS"]
    assert all(GENERATION_METRICS[name] is ALL_METRICS[name] for name in GENERATION_METRICS)
    assert "bandwidth" in inspect.signature(GENERATION_METRICS["MMD"].fn).parameters
    # the paper MMD computes its own bandwidth from each call's real profiles: the task must not pass one
    assert "bandwidth" not in inspect.signature(ALL_METRICS["MMD_paper"].fn).parameters
    assert "199" in ALL_METRICS["KL"].description


def test_generation_metrics_run_under_bootstrap_as_the_task_calls_them():
    rng = np.random.default_rng(0)
    gen, real = rng.normal(size=(40, 6)), rng.normal(0.5, 1.0, size=(40, 6))
    bandwidth = metrics.rbf_bandwidth(real)
    for name in [*GENERATION_METRICS, "MMD_paper"]:
        spec = ALL_METRICS[name]
        params = inspect.signature(spec.fn).parameters
        fn = (lambda g, r, f=spec.fn: f(g, r, bandwidth=bandwidth)) if "bandwidth" in params else spec.fn
        mean, std = bootstrap(fn, gen, real, n_repeats=3)
        assert np.isfinite(mean) and std >= 0, name
        assert mean > 0, name  # the shift is visible to every metric


def test_all_metrics_exported_and_unknown_names():
    exported = {getattr(metrics, n) for n in metrics.__all__ if callable(getattr(metrics, n))}
    assert {spec.fn for spec in ALL_METRICS.values()} <= exported
    with pytest.raises(KeyError, match="unknown metric"):
        goal("nope")
    with pytest.raises(ValueError, match="goal"):
        Metric("X", metrics.rmse, "smaller", "bad goal")
