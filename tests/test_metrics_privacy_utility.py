"""Privacy and downstream-utility metrics against scipy, scikit-learn and closed cases; the generation task
flags a copying model and scores TSTR."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import binom

from metrics import MetricInputError
from metrics.privacy import (dcr_ratio, distance_to_closest_record, memorisation_p_value, memorisation_rate,
                             memorisation_rate_from_distances)


def test_distance_to_closest_record_is_scipys_nearest_euclidean_distance_per_step():
    rng = np.random.default_rng(0)
    query, reference = rng.normal(size=(70, 12)), rng.normal(size=(130, 12))
    expected = cdist(query, reference).min(axis=1) / np.sqrt(12)
    np.testing.assert_allclose(distance_to_closest_record(query, reference, batch=16), expected, rtol=1e-10)
    # copies are at exactly 0, also for large values where the expanded form loses digits
    big = 1e4 + rng.normal(size=(20, 12))
    assert (distance_to_closest_record(big[:5], big) == 0.0).all()


def test_copies_unseen_data_and_ratio():
    rng = np.random.default_rng(1)
    train, held_out, fresh = rng.normal(size=(400, 16)), rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    assert dcr_ratio(held_out, train[:300], train=train) == 0.0
    assert memorisation_rate(held_out, train[:300], train=train) == 1.0
    # data from the same distribution as the held-out set: ratio near 1, rate near the quantile
    assert dcr_ratio(held_out, fresh, train=train) == pytest.approx(1.0, abs=0.08)
    assert memorisation_rate(held_out, fresh, train=train) == pytest.approx(0.05, abs=0.03)
    # profiles further away than unseen data
    assert dcr_ratio(held_out, 3 * fresh, train=train) > 2


def test_memorisation_p_value_is_the_binomial_tail():
    held_out = np.linspace(1.0, 2.0, 101)  # 5 % quantile = 1.05
    generated = np.r_[np.zeros(12), np.full(88, 1.5)]  # 12 of 100 below it
    assert memorisation_rate_from_distances(held_out, generated) == pytest.approx(0.12)
    # P(X >= 12) for X ~ Binomial(100, 0.05)
    assert memorisation_p_value(held_out, generated) == pytest.approx(binom.sf(11, 100, 0.05), rel=1e-9)
    assert memorisation_p_value(held_out, np.full(100, 1.5)) == pytest.approx(1.0)


def test_bad_input_is_a_clear_error():
    with pytest.raises(MetricInputError, match="steps"):
        distance_to_closest_record(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(MetricInputError, match="quantile"):
        memorisation_rate_from_distances(np.ones(3), np.ones(3), quantile=1.0)
    with pytest.raises(MetricInputError):
        distance_to_closest_record(np.full((2, 3), np.nan), np.zeros((2, 3)))


def test_generation_task_flags_the_copying_reference_only():
    from baselines.naive import IndependentMarginals, ResampleTrain
    from bench.context import RunContext
    from bench.tasks import generation
    from tests.model_contract import tiny_profiles

    cfg = {**generation.DEFAULTS, "split": "pooled", "fractions": [0.5, 0.25, 0.25], "n_bootstrap": 3}
    data = generation.prepare(tiny_profiles(n_households=10, n_days=40), cfg, seed=0)
    rows = {}
    for model in (ResampleTrain(), IndependentMarginals()):
        outcome = generation.run(model, data, RunContext(seed=0))
        rows[type(model).__name__] = {r["metric"]: r for r in generation.score(outcome, data, cfg, seed=0)}
    copy, marginals = rows["ResampleTrain"], rows["IndependentMarginals"]
    assert copy["Memorised"]["value"] == 1.0 and copy["DCR_ratio"]["value"] == 0.0
    assert copy["Memorised"]["note"].startswith("memorising")
    assert marginals["Memorised"]["note"].startswith("not memorising"), marginals["Memorised"]
    assert marginals["DCR_ratio"]["value"] > 0.8
    assert list(copy) == [metric for _, metric in generation.expected_rows(cfg)]
    off = generation.score(outcome, data, {**cfg, "privacy": False, "tstr": False}, seed=0)
    assert {r["metric"] for r in off} == set(cfg["metrics"])


def test_tstr_ratio_against_a_direct_ridge_fit():
    from sklearn.linear_model import Ridge

    from metrics.utility import forecast_errors, tstr_ratio

    rng = np.random.default_rng(3)
    t = np.linspace(0, 2 * np.pi, 24)
    days = lambda n, noise: np.sin(t) * rng.uniform(0.5, 1.5, (n, 1)) + noise * rng.normal(size=(n, 24))
    train, test = days(200, 0.05), days(100, 0.05)
    errors = forecast_errors(train, test)
    direct = np.abs(Ridge(alpha=1.0).fit(train[:, :18], train[:, 18:]).predict(test[:, :18]) - test[:, 18:]).mean(1)
    np.testing.assert_allclose(errors, direct, rtol=1e-10)
    # the training profiles themselves: exactly 1; pure noise: much worse
    assert tstr_ratio(test, train, train=train) == pytest.approx(1.0)
    assert tstr_ratio(test, rng.normal(size=(200, 24)), train=train) > 3


def test_generation_task_tstr_of_the_copying_reference_is_about_one():
    from baselines.naive import IndependentMarginals, ResampleTrain
    from bench.context import RunContext
    from bench.tasks import generation
    from tests.model_contract import tiny_profiles

    cfg = {**generation.DEFAULTS, "split": "pooled", "fractions": [0.5, 0.25, 0.25], "n_bootstrap": 3}
    data = generation.prepare(tiny_profiles(n_households=10, n_days=40), cfg, seed=0)
    tstr = {}
    for model in (ResampleTrain(), IndependentMarginals()):
        rows = generation.score(generation.run(model, data, RunContext(seed=0)), data, cfg, seed=0)
        tstr[type(model).__name__] = next(r for r in rows if r["metric"] == "TSTR")
    # replayed training days train (nearly) the same forecaster: ratio about 1 by construction
    assert tstr["ResampleTrain"]["value"] == pytest.approx(1.0, abs=0.05)
    # independent steps carry no link between the day and its evening: a worse forecaster
    assert tstr["IndependentMarginals"]["value"] > 1.2


def test_tstr_classifier_ratio_is_one_for_real_profiles_and_high_for_wrong_labels():
    """Two classes of daily curves (morning vs evening peak): generated profiles that carry their class score about
    1; the same profiles under shuffled labels teach the classifier nothing and score far above 1."""
    from metrics.utility import classification_errors, tstr_class_ratio

    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 24)

    def days(n, label):
        centre = 0.45 if label == 0 else 0.55
        return np.exp(-((t - centre) / 0.1) ** 2) + 0.8 * rng.standard_normal((n, 24))

    def labelled(n):
        x = np.concatenate([days(n, 0), days(n, 1)])
        return x, np.repeat([0, 1], n)

    train, train_y = labelled(60)
    test, test_y = labelled(60)
    good, good_y = labelled(60)
    base = classification_errors(train, train_y, test, test_y).mean()
    assert 0.1 < base < 0.35  # the classes can be told apart, not perfectly
    ratio_good = tstr_class_ratio(test, good, real_labels=test_y, pred_labels=good_y, train=train, train_labels=train_y)
    shuffled = rng.permutation(good_y)
    ratio_bad = tstr_class_ratio(test, good, real_labels=test_y, pred_labels=shuffled, train=train,
                                 train_labels=train_y)
    assert 0.7 < ratio_good < 1.4 and ratio_bad > 1.5 * ratio_good
    with pytest.raises(MetricInputError, match="one label only"):
        classification_errors(train, np.zeros(len(train)), test, test_y)
