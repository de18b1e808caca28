"""The anomaly-detection task on synthetic households: histories, held-out calibration, threshold rule,
scoring, failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines.detectors import PCADetector, ZScoreDetector
from bench.api import Detector, Model, Outcome
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.tasks import anomaly
from bench.tasks.anomaly import calibrate_threshold, holdout_split
from bench.seeds import Stream
from bench.tasks.queries import DetectionQuery
from metrics import auroc
from tests.conftest import rows_by_key

SMALL = {"n_bootstrap": 3, "scale_min": 0.5, "scale_max": 0.8}
DAY = pd.Timedelta(days=1)


def toy_profiles(n_series: int = 8, days: int = 40, resolution: int = 60, seed: int = 0,
                 levels: np.ndarray | None = None) -> ProfileSet:
    """Daily sine-shaped loads (kW) of a few households with random amplitude and small noise; ``levels``
    (one per series) sets each household's base load (default 0.3 + 0.05 s)."""
    rng = np.random.default_rng(seed)
    spd = 1440 // resolution
    t = np.arange(spd) / spd
    starts = pd.date_range("2013-01-01", periods=days, freq="D")
    values, meta = [], []
    for s in range(n_series):
        level = 0.3 + 0.05 * s if levels is None else levels[s]
        for day in starts:
            amp = rng.uniform(0.4, 0.6)
            values.append(level + amp * np.sin(np.pi * t) ** 2 + 0.03 * rng.random(spd))
            meta.append({"series_id": f"S{s}", "start": day, "month": day.month, "weekday": day.weekday(),
                         "days": 1, "category": "Std"})
    values = np.array(values, dtype=np.float32)
    return ProfileSet(values=values, mask=np.ones(values.shape, dtype=bool), meta=pd.DataFrame(meta),
                      resolution=resolution, period="day", name="toy")



def groups(data: anomaly.TaskData):
    """``(name, clean profiles, attacked values [S, n, T], labels [S, n], history)`` of the three groups."""
    return (("examples", data.examples, data.example_values, data.example_labels, data.example_history),
            ("calibration", data.calibration, data.calibration_values, data.calibration_labels,
             data.calibration_history),
            ("queries", data.real, data.query_values, data.query_labels, data.query_history))


def households(profiles: ProfileSet) -> set[str]:
    return set(profiles.meta["series_id"])


@pytest.fixture(scope="module", params=[60, 30])
def toy(request):
    cfg = {**anomaly.DEFAULTS, **SMALL}
    return cfg, anomaly.prepare(toy_profiles(resolution=request.param), cfg, seed=0)


class Oracle(Model, Detector):
    """Knows the clean profiles: scores 1 for a profile that differs from its clean version, else 0."""

    def __init__(self, data: anomaly.TaskData) -> None:
        super().__init__()
        self.clean = {}
        for profiles in (data.examples, data.calibration, data.real):
            for row, key in enumerate(zip(profiles.meta["series_id"], profiles.meta["start"])):
                self.clean[key] = profiles.values[row]

    def fit(self, train, ctx):
        pass

    def anomaly_score(self, query, ctx):
        keys = zip(query.meta["series_id"], query.meta["start"])
        return np.array([float((query.values[i] != self.clean[k]).any()) for i, k in enumerate(keys)])


class RandomScores(Oracle):
    def __init__(self) -> None:
        Model.__init__(self)

    def anomaly_score(self, query, ctx):
        return ctx.rng(Stream.MODEL_SAMPLE, len(query)).random(len(query))


class Constant(RandomScores):
    def __init__(self, value) -> None:
        super().__init__()
        self.value = value

    def anomaly_score(self, query, ctx):
        return np.full(len(query), self.value)


# -- preparation ------------------------------------------------------------------------------------------------
def test_groups_labels_and_attacks(toy):
    cfg, data = toy
    assert data.settings == ["scaling", "ramping"] and data.history_days == 7
    length = data.real.length
    for name, clean, values, labels, history in groups(data):
        n = len(clean)
        assert n > 0 and values.shape == (2, n, length) and labels.shape == (2, n), name
        assert history.shape == (n, 7 * length) and history.dtype == np.float32
        for index in range(2):
            assert labels[index].sum() == int(np.floor(0.5 * n + 0.5))
            # clean profiles are passed on bit for bit, attacked ones differ
            assert values[index][~labels[index]].tobytes() == clean.values[~labels[index]].tobytes()
            assert (values[index][labels[index]] != clean.values[labels[index]]).any(axis=1).all()
        # the settings attack different profiles (their own streams)
        assert (labels[0] != labels[1]).any(), name
    # the examples are every training profile with history (caps above the toy sizes): 4 households x 33 days
    assert len(data.examples) == 4 * 33 and len(data.calibration) == 2 * 33 and len(data.real) == 2 * 33
    # training, calibration and test households are disjoint; calibration and test split the evaluation half
    train, cal, test = households(data.train), households(data.calibration), households(data.real)
    assert households(data.examples) <= train
    assert not (train & cal) and not (train & test) and not (cal & test)
    assert len(cal) == len(test) == 2 and data.holdout_rule.startswith("by household")
    # the groups are attacked on different streams: equal sizes, different attacked positions
    assert (data.calibration_labels[0] != data.query_labels[0]).any()
    # scaling attacks in kW are exact ratios of the clean loads
    kw_clean = data.scaler.inverse(data.real.values).astype(np.float64)
    kw_att = data.scaler.inverse(data.query_values[0]).astype(np.float64)
    row = np.flatnonzero(data.query_labels[0])[0]
    changed = kw_att[row] != kw_clean[row]
    ratio = kw_att[row, changed] / kw_clean[row, changed]
    assert np.ptp(ratio) < 1e-4 and 0.5 <= abs(ratio[0] - 1) <= 0.8 + 1e-4


def test_history_is_the_preceding_clean_days(toy):
    cfg, data = toy
    raw = toy_profiles(resolution=data.real.resolution)
    scaled = data.scaler.apply(raw)
    lookup = {(s, d): scaled.values[i] for i, (s, d) in enumerate(zip(raw.meta["series_id"], raw.meta["start"]))}
    length = data.real.length
    for name, clean, values, labels, history in groups(data):
        for row, (series, start) in enumerate(zip(clean.meta["series_id"], clean.meta["start"])):
            expected = np.concatenate([lookup[(series, start - k * DAY)] for k in range(7, 0, -1)])
            assert history[row].tobytes() == expected.tobytes(), (name, series, start)
        # the scaled split and the history lookup agree bit for bit on the profile itself
        assert clean.values[0].tobytes() == lookup[(clean.meta["series_id"][0], clean.meta["start"][0])].tobytes()
    # every query of every setting carries the same clean history; an attacked day shows up clean in the
    # history of the next day
    for index in range(2):
        query = data.query(index)
        assert query.history_days == 7
        np.testing.assert_array_equal(query.history, data.query_history)
        keys = {(s, d): r for r, (s, d) in enumerate(zip(data.real.meta["series_id"], data.real.meta["start"]))}
        checked = 0
        for row in np.flatnonzero(data.query_labels[index]):
            key = (data.real.meta["series_id"][row], data.real.meta["start"][row] + DAY)
            if key in keys:
                last = query.history[keys[key], 6 * length:]
                assert last.tobytes() == data.real.values[row].tobytes()
                assert (last != query.values[row]).any()
                checked += 1
        assert checked > 10
    assert data.fit_examples(0).query.history_days == data.calibration_examples(1).query.history_days == 7


def test_only_profiles_with_full_history_are_used():
    raw = toy_profiles(n_series=8, days=30)
    # series S0..S7 each lose one step of day 15: days 15..22 have no complete 8-day run ending on them
    broken = raw.mask.copy()
    broken[raw.meta["start"].eq(pd.Timestamp("2013-01-16")).to_numpy(), 5] = False
    raw = ProfileSet(values=np.where(broken, raw.values, 0.0).astype(np.float32), mask=broken, meta=raw.meta,
                     resolution=60, period="day", name="toy")
    cfg = {**anomaly.DEFAULTS, **SMALL, "history_days": 3}
    data = anomaly.prepare(raw, cfg, seed=0)
    first = pd.Timestamp("2013-01-01")
    gap = pd.Timestamp("2013-01-16")
    for name, clean, *_ in groups(data):
        starts = clean.meta["start"]
        assert (starts >= first + 3 * DAY).all(), name  # three earlier days exist
        assert not ((starts >= gap) & (starts <= gap + 3 * DAY)).any(), name  # the gap or a history through it
        assert clean.mask.all()
    per_household = 30 - 3 - 4  # days 0-2 lack history, day 15 is incomplete, days 16-18 see it
    assert len(data.examples) == len(households(data.examples)) * per_household
    assert len(data.calibration) + len(data.real) == 4 * per_household


def test_caps_and_determinism():
    cfg = {**anomaly.DEFAULTS, **SMALL, "max_queries": 20, "max_calibration": 15, "max_train_examples": 30}
    a = anomaly.prepare(toy_profiles(), cfg, seed=0)
    b = anomaly.prepare(toy_profiles(), cfg, seed=0)
    c = anomaly.prepare(toy_profiles(), cfg, seed=1)
    assert len(a.real) == 20 and len(a.calibration) == 15 and len(a.examples) == 30
    for name in ("example_values", "example_labels", "example_history", "calibration_values", "calibration_labels",
                 "calibration_history", "query_values", "query_labels", "query_history"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.fingerprint() == b.fingerprint() and a.fingerprint() != c.fingerprint()
    # the caps draw from the same households as without caps
    full = anomaly.prepare(toy_profiles(), {**anomaly.DEFAULTS, **SMALL}, seed=0)
    assert households(a.real) <= households(full.real) and households(a.calibration) <= households(full.calibration)


def test_no_history_uses_every_profile():
    raw = toy_profiles(n_series=8, days=6)
    cfg = {**anomaly.DEFAULTS, **SMALL, "history_days": 0}
    data = anomaly.prepare(raw, cfg, seed=0)
    assert data.history_days == 0 and data.example_history is None and data.query_history is None
    assert len(data.examples) == len(data.train)
    assert len(data.calibration) + len(data.real) == len(raw) - len(data.train)
    assert data.query(0).history is None and data.calibration_examples(0).query.history is None
    rows = scored(ZScoreDetector(), (cfg, data))
    assert all(r["status"] == "ok" for r in rows.values())
    # with the default 7 days of history, 6-day series cannot be used: a clear error says what is needed
    with pytest.raises(ValueError, match="8 consecutive complete days"):
        anomaly.prepare(raw, {**anomaly.DEFAULTS, **SMALL}, seed=0)


def test_one_household_splits_calibration_by_profile():
    raw = toy_profiles(n_series=1, days=80)
    data = anomaly.prepare(raw, {**anomaly.DEFAULTS, **SMALL, "history_days": 2}, seed=0)
    assert data.split_rule.startswith("by day") and data.holdout_rule.startswith("by profile")
    cal, test = set(data.calibration.meta["start"]), set(data.real.meta["start"])
    assert cal and test and not cal & test and not (cal | test) & set(data.train.meta["start"])
    assert abs(len(cal) - len(test)) <= 1
    # the history of a held-out day may lie in any part of the split: it is found in the full set
    assert len(data.examples) + len(cal) + len(test) == 80 - 2
    # the rule itself
    meta = pd.DataFrame({"series_id": ["a"] * 5})
    mask, rule = holdout_split(meta, np.random.default_rng(0))
    assert mask.sum() == 2 and rule.startswith("by profile")
    mask, rule = holdout_split(pd.DataFrame({"series_id": list("abcdeab")}), np.random.default_rng(0))
    chosen = set(np.array(list("abcdeab"))[mask])
    assert len(chosen) == 2 and set(np.array(list("abcdeab"))[~mask]).isdisjoint(chosen)
    with pytest.raises(ValueError, match="at least 2"):
        holdout_split(pd.DataFrame({"series_id": ["a"]}), np.random.default_rng(0))


def test_expected_rows_and_config_errors():
    assert anomaly.expected_rows(anomaly.DEFAULTS) == [(s, m) for s in ("scaling", "ramping")
                                                       for m in ("Accuracy", "Precision", "Recall", "F1", "AUROC")]
    assert anomaly.expected_rows({"attacks": ["ramping"]}, resolution=30)[0] == ("ramping", "Accuracy")
    with pytest.raises(ValueError, match="unknown attack"):
        anomaly.expected_rows({"attacks": ["spike"]})
    for bad in ({"max_calibration": 0}, {"attack_fraction": 0.0}, {"max_queries": 0}, {"history_days": -1},
                {"history_days": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            anomaly.prepare(toy_profiles(n_series=4, days=5), {**anomaly.DEFAULTS, **bad}, seed=0)
    monthly = toy_profiles(n_series=8, days=12)
    monthly = ProfileSet(values=monthly.values, mask=monthly.mask, meta=monthly.meta, resolution=60, period="month")
    with pytest.raises(ValueError, match="daily profiles"):
        anomaly.prepare(monthly, {**anomaly.DEFAULTS, **SMALL}, seed=0)


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
    assert isinstance(outcome, Outcome) and outcome.status == "ok", outcome.note
    assert outcome.samples is None and outcome.extra["scores"].shape == (len(data.settings), len(data.real))
    rows = anomaly.score(outcome, data, cfg, seed=0)
    assert [(r["setting"], r["metric"]) for r in rows] == anomaly.expected_rows(cfg)
    return rows_by_key(rows)


def test_oracle_is_perfect_random_is_chance(toy):
    cfg, data = toy
    perfect = scored(Oracle(data), toy)
    chance = scored(RandomScores(), toy)
    for setting in data.settings:
        for metric in anomaly.METRIC_NAMES:
            assert perfect[(setting, metric)]["value"] == 1.0
        assert abs(chance[(setting, "AUROC")]["value"] - 0.5) < 0.15
        assert chance[(setting, "AUROC")]["std"] > 0
    constant = scored(Constant(3.0), toy)
    for setting in data.settings:
        assert constant[(setting, "AUROC")]["value"] == 0.5
        assert constant[(setting, "Recall")]["value"] == 1.0  # ties: everything flagged (lowest threshold)
        assert constant[(setting, "Accuracy")]["value"] == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize("model", [ZScoreDetector(), PCADetector(n_components=4)], ids=["zscore", "pca"])
def test_detectors_beat_chance_on_strong_scaling_attacks(model, toy):
    rows = scored(model, toy)
    assert rows[("scaling", "Accuracy")]["value"] > 0.7
    assert rows[("scaling", "AUROC")]["value"] > 0.9
    assert rows[("ramping", "AUROC")]["value"] > 0.75


def test_fit_detector_gets_every_example_and_threshold_uses_calibration(toy):
    cfg, data = toy
    seen, scored_sets = [], []

    class Spy(Oracle):
        def fit_detector(self, examples, ctx):
            seen.append((examples.query.values.copy(), examples.labels.copy(), examples.query.history.copy()))

        def anomaly_score(self, query, ctx):
            scored_sets.append(query.meta.copy())
            return super().anomaly_score(query, ctx)

    scored(Spy(data), toy)
    assert len(seen) == 2
    for index, (values, labels, history) in enumerate(seen):
        np.testing.assert_array_equal(values, data.example_values[index])
        np.testing.assert_array_equal(labels, data.example_labels[index])
        np.testing.assert_array_equal(history, data.example_history)
    # per setting: calibration profiles first, then the test queries
    assert len(scored_sets) == 4
    pd.testing.assert_frame_equal(scored_sets[0], data.calibration.meta)
    pd.testing.assert_frame_equal(scored_sets[1], data.real.meta)
    # the threshold is the calibration rule applied to the calibration scores
    model = ZScoreDetector()
    outcome = anomaly.run(model, data, RunContext(seed=0))
    for index in range(2):
        cal = data.calibration_examples(index)
        expected = calibrate_threshold(model.anomaly_score(cal.query, None), cal.labels)
        assert outcome.extra["thresholds"][index] == expected


def test_history_beats_population_when_households_differ_in_level():
    """Households at 0.2 .. 2 kW, a segment scaled by 1.3: the day looks normal for the population, not for the
    household's own previous days. Three seeds (three household splits), so that no lucky split decides it."""
    raw = toy_profiles(n_series=12, days=30, levels=np.linspace(0.2, 2.0, 12), seed=4)
    cfg = {**anomaly.DEFAULTS, **SMALL, "scale_min": 0.3, "scale_max": 0.3, "attacks": ["scaling"]}
    with_history, without = [], []
    for seed in range(3):
        data = anomaly.prepare(raw, cfg, seed=seed)
        model = ZScoreDetector()
        model.fit(data.train, RunContext(seed=0))
        query = data.query(0)
        population = DetectionQuery(query.values, query.valid, query.meta, query.resolution)
        with_history.append(auroc(data.query_labels[0], model.anomaly_score(query, None)))
        without.append(auroc(data.query_labels[0], model.anomaly_score(population, None)))
        # the same holds for the task's thresholded accuracy
        rows = scored(model, (cfg, data))
        assert rows[("scaling", "Accuracy")]["value"] > 0.85, seed
    assert min(with_history) > 0.95 and np.mean(with_history) > np.mean(without) + 0.2, (with_history, without)


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
        assert outcome.status == "failed" and note in outcome.note and outcome.samples is None
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
    np.testing.assert_array_equal(a.extra["scores"], b.extra["scores"])
    np.testing.assert_array_equal(a.extra["thresholds"], b.extra["thresholds"])


# -- the unified paper's protocol (split = pretrain, profile alone) -----------------------------------------------
PAPER = {"split": "pretrain", "fractions": [0.6, 0.2, 0.2], "pretrain_fraction": 0.8, "history_days": 0}


def test_paper_protocol_holdout_by_profile_and_pretraining_fit():
    profiles = toy_profiles(n_series=8, days=40)
    cfg = {**anomaly.DEFAULTS, **SMALL, **PAPER}
    data = anomaly.prepare(profiles, cfg, seed=0)
    assert data.holdout_rule.startswith("by profile (random halves") and data.history_days == 0
    assert data.pretrain is not None and data.example_history is None
    # calibration and test profiles are random halves of the pooled evaluation profiles: households are shared
    assert households(data.calibration) & households(data.real)
    assert abs(len(data.calibration) - len(data.real)) <= 1
    keys = lambda p: set(zip(p.meta["series_id"], p.meta["start"]))  # noqa: E731
    assert not keys(data.calibration) & keys(data.real) and not keys(data.examples) & keys(data.real)
    assert not keys(data.pretrain) & (keys(data.examples) | keys(data.calibration) | keys(data.real))
    # half of each group is attacked
    for labels in (data.example_labels, data.calibration_labels, data.query_labels):
        assert np.all(np.abs(labels.mean(axis=1) - 0.5) <= 1.0 / labels.shape[1])

    class PreTrainer(Constant):
        pretrains = True

        def fit(self, train, ctx):
            self.fitted_on = train

    model, plain = PreTrainer(0.0), Constant(0.0)
    plain.fit = lambda train, ctx: setattr(plain, "fitted_on", train)
    assert anomaly.run(model, data, RunContext(seed=0)).status == "ok"
    anomaly.run(plain, data, RunContext(seed=0))
    assert model.fitted_on is data.pretrain and plain.fitted_on is data.train
    # the household rule keeps its held-out households
    assert anomaly.holdout_rule({"split": "household"}) == "household"
    with pytest.raises(ValueError, match="'household' or 'profile'"):
        holdout_split(pd.DataFrame({"series_id": list("ab")}), np.random.default_rng(0), by="day")


def test_protocol_notes_say_what_is_stated_and_what_assumed():
    notes = anomaly.PROTOCOL_NOTES
    assert isinstance(notes, tuple) and all(isinstance(n, str) for n in notes)
    assert all(n.startswith(("paper:", "assumed:")) for n in notes)
    assert any("[34]" in n for n in notes) and any("attack_fraction" in n for n in notes)


def test_rows_are_the_registered_metrics_of_the_thresholded_labels_and_scores(toy):
    """With bootstrap_frac = 1 each row is the registered metric on every test profile: label metrics on the
    scores thresholded at the calibrated threshold, AUROC on the raw scores."""
    from metrics import METRICS

    cfg, data = toy
    outcome = anomaly.run(ZScoreDetector(), data, RunContext(seed=0))
    rows = rows_by_key(anomaly.score(outcome, data, {**cfg, "bootstrap_frac": 1.0}, seed=0))
    for index, setting in enumerate(data.settings):
        labels, scores = data.query_labels[index], outcome.extra["scores"][index]
        predicted = scores > outcome.extra["thresholds"][index]
        for metric in anomaly.METRIC_NAMES:
            pred = scores if METRICS[metric].needs == "scores" else predicted
            assert rows[(setting, metric)]["value"] == METRICS[metric].fn(labels, pred), (setting, metric)
