"""Repeated-subsample bootstrap and the metric registry."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import metrics
from metrics import ALL_METRICS, GENERATION_METRICS, MetricSpec, bootstrap, direction


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
    assert std == pytest.approx(np.std(values, ddof=0), abs=1e-15)


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
    bootstrap(fn, gen, real, n_repeats=1, frac=1.0)
    g, r = seen[-1]
    assert sorted(g[:, 0]) == list(range(0, 40, 2)) and sorted(r[:, 0]) == list(range(100, 130, 2))


def test_bootstrap_rejects_bad_arguments():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="frac"):
        bootstrap(lambda g, r: 0.0, x, x, frac=0.0)
    with pytest.raises(ValueError, match="empty subset"):
        bootstrap(lambda g, r: 0.0, x, x, frac=0.1)
    with pytest.raises(ValueError, match="n_repeats"):
        bootstrap(lambda g, r: 0.0, x, x, n_repeats=0)


def test_generation_metrics_table():
    assert list(GENERATION_METRICS) == ["MMD", "GFD", "KL", "WD", "KS"]
    assert all(spec.direction == "lower" for spec in GENERATION_METRICS.values())
    assert GENERATION_METRICS["MMD"].fn is metrics.mmd_rbf
    assert GENERATION_METRICS["KL"].fn is metrics.kl_pooled
    assert GENERATION_METRICS["WD"].fn is metrics.wasserstein_pooled
    assert GENERATION_METRICS["KS"].fn is metrics.ks_pooled
    assert GENERATION_METRICS["GFD"].fn is metrics.frechet_distance
    assert "bandwidth" in inspect.signature(GENERATION_METRICS["MMD"].fn).parameters


def test_generation_metrics_run_under_bootstrap_as_the_task_calls_them():
    rng = np.random.default_rng(0)
    gen, real = rng.normal(size=(40, 6)), rng.normal(0.5, 1.0, size=(40, 6))
    bandwidth = metrics.rbf_bandwidth(real)
    for name, spec in GENERATION_METRICS.items():
        params = inspect.signature(spec.fn).parameters
        fn = (lambda g, r, f=spec.fn: f(g, r, bandwidth=bandwidth)) if "bandwidth" in params else spec.fn
        mean, std = bootstrap(fn, gen, real, n_repeats=3)
        assert np.isfinite(mean) and std >= 0, name
        assert mean > 0, name  # the shift is visible to every metric


def test_all_metrics_directions():
    assert set(GENERATION_METRICS) <= set(ALL_METRICS)
    for name, spec in ALL_METRICS.items():
        assert spec.name == name
        assert spec.direction in ("lower", "higher")
        assert callable(spec.fn) and spec.description
        assert direction(name) == spec.direction
    assert direction("F1") == "higher" and direction("MMD_p") == "higher" and direction("CRPS") == "lower"
    exported = {getattr(metrics, n) for n in metrics.__all__ if callable(getattr(metrics, n))}
    assert {spec.fn for spec in ALL_METRICS.values()} <= exported
    with pytest.raises(KeyError, match="unknown metric"):
        direction("nope")
    with pytest.raises(ValueError, match="direction"):
        MetricSpec("X", metrics.rmse, "smaller", "bad direction")
