"""The anomaly-detection task on synthetic households: data preparation, threshold rule, scoring, failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines.detectors import PCADetector, ZScoreDetector
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.tasks import anomaly
from bench.tasks.anomaly import calibrate_threshold

SMALL = {"n_bootstrap": 3, "scale_min": 0.5, "scale_max": 0.8}


def toy_profiles(n_series: int = 8, days: int = 40, resolution: int = 60, seed: int = 0) -> ProfileSet:
    """Daily sine-shaped loads (kW) of a few households with random amplitude and small noise."""
    rng = np.random.default_rng(seed)
    spd = 1440 // resolution
    t = np.arange(spd) / spd
    starts = pd.date_range("2013-01-01", periods=days, freq="D")
    values, meta = [], []
    for s in range(n_series):
        for day in starts:
            amp = rng.uniform(0.4, 0.6)
            values.append(0.3 + 0.05 * s + amp * np.sin(np.pi * t) ** 2 + 0.03 * rng.random(spd))
            meta.append({"series_id": f"S{s}", "start": day, "month": day.month, "weekday": day.weekday(),
                         "days": 1, "category": "Std"})
    values = np.array(values, dtype=np.float32)
    return ProfileSet(values=values, mask=np.ones(values.shape, dtype=bool), meta=pd.DataFrame(meta),
                      resolution=resolution, period="day", name="toy")


def by_key(rows):
    return {(r["setting"], r["metric"]): r for r in rows}


@pytest.fixture(scope="module", params=[60, 30])
def toy(request):
    cfg = {**anomaly.DEFAULTS, **SMALL}
    return cfg, anomaly.prepare(toy_profiles(resolution=request.param), cfg, seed=0)


class Oracle:
    """Knows the clean profiles: scores 1 for a profile that differs from its clean version, else 0."""

    capabilities = frozenset({"detect"})

    def __init__(self, data: anomaly.TaskData) -> None:
        self.clean = {}
        for profiles in (data.examples, data.real):
            for row, key in enumerate(zip(profiles.meta["series_id"], profiles.meta["start"])):
                self.clean[key] = profiles.values[row]

    def fit(self, train, ctx):
        pass

    def anomaly_score(self, query, ctx):
        keys = zip(query.meta["series_id"], query.meta["start"])
        return np.array([float((query.values[i] != self.clean[k]).any()) for i, k in enumerate(keys)])


class RandomScores(Oracle):
    def __init__(self) -> None:
        pass

    def anomaly_score(self, query, ctx):
        return ctx.rng(99 + len(query)).random(len(query))


class Constant(RandomScores):
    def __init__(self, value) -> None:
        self.value = value

    def anomaly_score(self, query, ctx):
        return np.full(len(query), self.value)


# -- preparation ------------------------------------------------------------------------------------------------
def test_prepare_examples_queries_and_labels(toy):
    cfg, data = toy
    assert data.settings == ["scaling", "ramping"]
    m, n = len(data.examples), len(data.real)
    assert m == len(data.train) and n == len(data.real)  # caps above the toy sizes
    assert data.example_values.shape == (2, m, data.real.length) and data.query_values.shape == (2, n, data.real.length)
    for index in range(2):
        for values, labels, clean in ((data.example_values[index], data.example_labels[index], data.examples.values),
                                      (data.query_values[index], data.query_labels[index], data.real.values)):
            assert labels.sum() == int(np.floor(0.5 * len(labels) + 0.5))
            # clean profiles are passed on bit for bit, attacked ones differ
            assert values[~labels].tobytes() == clean[~labels].tobytes()
            assert (values[labels] != clean[labels]).any(axis=1).all()
        # stratified calibration part: 20% of each class
        cal, lab = data.calibration[index], data.example_labels[index]
        assert cal[lab].sum() == round(0.2 * lab.sum()) and cal[~lab].sum() == round(0.2 * (~lab).sum())
        fit, calib = data.fit_examples(index), data.calibration_examples(index)
        assert len(fit.labels) + len(calib.labels) == m
        np.testing.assert_array_equal(calib.labels, lab[cal])
        np.testing.assert_array_equal(calib.query.values, data.example_values[index][cal])
    # the query households are not training households
    assert not set(data.real.meta["series_id"]) & set(data.train.meta["series_id"])
    # the settings attack different profiles (their own streams)
    assert (data.query_labels[0] != data.query_labels[1]).any()
    # scaling attacks in kW are exact ratios of the clean loads
    kw_clean = data.scaler.inverse(data.real.values).astype(np.float64)
    kw_att = data.scaler.inverse(data.query_values[0]).astype(np.float64)
    row = np.flatnonzero(data.query_labels[0])[0]
    changed = kw_att[row] != kw_clean[row]
    ratio = kw_att[row, changed] / kw_clean[row, changed]
    assert np.ptp(ratio) < 1e-4 and 0.5 <= abs(ratio[0] - 1) <= 0.8 + 1e-4


def test_prepare_is_seeded_and_caps_apply():
    cfg = {**anomaly.DEFAULTS, **SMALL, "max_queries": 50, "max_train_examples": 60}
    a = anomaly.prepare(toy_profiles(), cfg, seed=0)
    b = anomaly.prepare(toy_profiles(), cfg, seed=0)
    c = anomaly.prepare(toy_profiles(), cfg, seed=1)
    assert len(a.real) == 50 and len(a.examples) == 60
    for name in ("example_values", "example_labels", "calibration", "query_values", "query_labels"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.fingerprint() == b.fingerprint() and a.fingerprint() != c.fingerprint()


def test_expected_rows_and_config_errors():
    assert anomaly.expected_rows(anomaly.DEFAULTS) == [(s, m) for s in ("scaling", "ramping")
                                                       for m in ("Accuracy", "Precision", "Recall", "F1", "AUROC")]
    assert anomaly.expected_rows({"attacks": ["ramping"]}, resolution=30)[0] == ("ramping", "Accuracy")
    with pytest.raises(ValueError, match="unknown attack"):
        anomaly.expected_rows({"attacks": ["spike"]})
    for bad in ({"calibration_frac": 1.0}, {"attack_fraction": 0.0}, {"max_queries": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            anomaly.prepare(toy_profiles(n_series=4, days=5), {**anomaly.DEFAULTS, **bad}, seed=0)


# -- threshold rule -----------------------------------------------------------------------------------------------
def test_threshold_rule_by_hand():
    # sorted: 0.1 F, 0.35 F, 0.4 T, 0.8 T -> perfect cut midway between 0.35 and 0.4
    assert calibrate_threshold(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 1, 0, 1], bool)) == pytest.approx(0.375)
    # 1 F, 2 T, 3 F, 4 T: cuts at 1.5 and 3.5 both reach 3/4; the lower one is taken
    assert calibrate_threshold(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 1, 0, 1], bool)) == 1.5
    # tied scores share a label; flagging everything (2/3) beats any cut
    t = calibrate_threshold(np.array([1.0, 1.0, 2.0]), np.array([0, 1, 1], bool))
    assert t < 1.0 and (np.array([1.0, 1.0, 2.0]) > t).all()
    # one class only: flag nothing / everything
    s = np.array([0.3, 0.1, 0.2])
    assert not (s > calibrate_threshold(s, np.zeros(3, bool))).any()
    assert (s > calibrate_threshold(s, np.ones(3, bool))).all()
    # the chosen threshold reaches the best accuracy over a brute-force grid on random data
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 20, 300) / 4.0, rng.random(300) < 0.5
    scores = scores + labels
    best = max(np.mean((scores > g) == labels) for g in np.concatenate([[-1.0], np.unique(scores)]))
    assert np.mean((scores > calibrate_threshold(scores, labels)) == labels) == pytest.approx(best)
    with pytest.raises(ValueError, match="finite"):
        calibrate_threshold(np.array([np.nan, 1.0]), np.array([True, False]))


# -- run and score --------------------------------------------------------------------------------------------------
def scored(model, toy):
    cfg, data = toy
    outcome = anomaly.run(model, data, RunContext(seed=0))
    assert outcome["status"] == "ok", outcome["note"]
    rows = anomaly.score(outcome, data, cfg, seed=0)
    assert [(r["setting"], r["metric"]) for r in rows] == anomaly.expected_rows(cfg)
    return by_key(rows)


def test_oracle_is_perfect_random_is_chance(toy):
    cfg, data = toy
    perfect = scored(Oracle(data), toy)
    chance = scored(RandomScores(), toy)
    for setting in data.settings:
        for metric in anomaly.METRICS:
            assert perfect[(setting, metric)]["value"] == 1.0
        assert abs(chance[(setting, "AUROC")]["value"] - 0.5) < 0.12
        assert chance[(setting, "AUROC")]["std"] > 0
    constant = scored(Constant(3.0), toy)
    for setting in data.settings:
        assert constant[(setting, "AUROC")]["value"] == 0.5
        assert constant[(setting, "Recall")]["value"] == 1.0  # ties: everything flagged (lowest threshold)
        assert constant[(setting, "Accuracy")]["value"] == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize("model", [ZScoreDetector(), PCADetector(n_components=4)], ids=["zscore", "pca"])
def test_detectors_beat_chance_on_strong_scaling_attacks(model, toy):
    rows = scored(model, toy)
    assert rows[("scaling", "Accuracy")]["value"] > 0.7
    assert rows[("scaling", "AUROC")]["value"] > 0.9
    assert rows[("ramping", "AUROC")]["value"] > 0.75


def test_fit_detector_gets_the_fit_part_of_each_setting(toy):
    cfg, data = toy
    seen = []

    class Spy(Oracle):
        def fit_detector(self, examples, ctx):
            seen.append((examples.query.values.copy(), examples.labels.copy()))

    scored(Spy(data), toy)
    assert len(seen) == 2
    for index, (values, labels) in enumerate(seen):
        fit = ~data.calibration[index]
        np.testing.assert_array_equal(values, data.example_values[index][fit])
        np.testing.assert_array_equal(labels, data.example_labels[index][fit])


def test_failures_give_failed_rows(toy):
    cfg, data = toy

    class Broken(Oracle):
        def fit(self, train, ctx):
            raise ModelFitError("diverged")

    class Wrong(RandomScores):
        def anomaly_score(self, query, ctx):
            return np.zeros(len(query) + 1)

    for model, note in ((Constant(np.nan), "non-finite"), (Broken(data), "diverged"), (Wrong(), "shape")):
        outcome = anomaly.run(model, data, RunContext(seed=0))
        assert outcome["status"] == "failed" and note in outcome["note"]
        rows = anomaly.score(outcome, data, cfg, seed=0)
        assert [(r["setting"], r["metric"]) for r in rows] == anomaly.expected_rows(cfg)
        assert all(r["status"] == "failed" and np.isnan(r["value"]) and note in r["note"] for r in rows)


def test_run_and_score_are_deterministic(toy):
    cfg, data = toy
    first = scored(ZScoreDetector(), toy)
    again = scored(ZScoreDetector(), toy)
    assert first == again
    a = anomaly.run(PCADetector(), data, RunContext(seed=0))
    b = anomaly.run(PCADetector(), data, RunContext(seed=0))
    np.testing.assert_array_equal(a["scores"], b["scores"])
    np.testing.assert_array_equal(a["thresholds"], b["thresholds"])
