"""Forecasting windows and the forecasting task on hand-built and synthetic daily profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines.forecasters import MLPForecaster, Persistence, SeasonalNaive
from bench.api import Forecaster, Model, Outcome
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.tasks import forecasting
from bench.tasks.queries import ForecastQuery
from bench.tasks.windows import HistoryIndex, consecutive_days, day_ahead, gather_windows, hour_ahead
from tests.test_forecasters import SMALL_MLP, weekly_toy
from tests.conftest import rows_by_key

SMALL = {"max_queries": 60, "max_train_windows": 120, "n_samples": 4, "n_bootstrap": 3}



def cfg(**overrides) -> dict:
    return {**forecasting.DEFAULTS, **SMALL, **overrides}


# -- windows ----------------------------------------------------------------------------------------------------
def hand_built(resolution: int = 360) -> ProfileSet:
    """Series A: ten days with day 4 absent and day 7 incomplete; series B: five complete days. Every value
    encodes (series, day, step) and the rows are shuffled, so a window's content and order can be checked."""
    spd = 1440 // resolution
    rows = []
    for series, days in (("A", [0, 1, 2, 3, 5, 6, 7, 8, 9]), ("B", [0, 1, 2, 3, 4])):
        for day in days:
            code = (1000 if series == "B" else 0) + 10 * day
            rows.append((series, day, code + np.arange(spd), not (series == "A" and day == 7)))
    order = np.random.default_rng(0).permutation(len(rows))
    rows = [rows[i] for i in order]
    values = np.array([r[2] for r in rows], dtype=np.float32)
    mask = np.ones(values.shape, dtype=bool)
    for i, r in enumerate(rows):
        if not r[3]:
            mask[i, 1] = False  # day A7 lacks one step
    start = pd.Timestamp("2013-03-01")
    meta = pd.DataFrame([{"series_id": r[0], "start": start + pd.Timedelta(days=r[1]), "month": 3,
                          "weekday": (start + pd.Timedelta(days=r[1])).weekday(), "days": 1, "category": "Std"}
                         for r in rows])
    return ProfileSet(values=np.where(mask, values, 0.0), mask=mask, meta=meta, resolution=resolution,
                      period="day", name="hand")


def window_days(profiles: ProfileSet, rows: np.ndarray) -> list[tuple[str, list[int]]]:
    start = pd.Timestamp("2013-03-01")
    return [(profiles.meta["series_id"][r[0]], [(profiles.meta["start"][i] - start).days for i in r]) for r in rows]


def test_consecutive_days_finds_exactly_the_complete_runs():
    profiles = hand_built()
    rows = consecutive_days(profiles, 3)
    assert window_days(profiles, rows) == [("A", [0, 1, 2]), ("A", [1, 2, 3]), ("B", [0, 1, 2]),
                                           ("B", [1, 2, 3]), ("B", [2, 3, 4])]
    assert window_days(profiles, consecutive_days(profiles, 2)) == [
        ("A", [0, 1]), ("A", [1, 2]), ("A", [2, 3]), ("A", [5, 6]), ("A", [8, 9]),
        ("B", [0, 1]), ("B", [1, 2]), ("B", [2, 3]), ("B", [3, 4])]
    assert consecutive_days(profiles, 6).shape == (0, 6)


def test_day_ahead_concatenates_the_history_days():
    profiles = hand_built()
    rows = consecutive_days(profiles, 3)
    history, target, meta = day_ahead(profiles, rows, 2)
    assert history.shape == (5, 8) and target.shape == (5, 4)
    # window B[1, 2, 3]: history = days 1 and 2 of B, target = day 3
    np.testing.assert_array_equal(history[3], np.r_[1010 + np.arange(4), 1020 + np.arange(4)])
    np.testing.assert_array_equal(target[3], 1030 + np.arange(4))
    assert list(meta.columns) == ["series_id", "origin"]
    assert meta["series_id"][3] == "B" and meta["origin"][3] == pd.Timestamp("2013-03-04")


def test_hour_ahead_origins_on_whole_hours_and_history_right_before():
    profiles = hand_built(resolution=60)  # 24 steps a day
    rows = consecutive_days(profiles, 3)
    history, target, meta = hour_ahead(profiles, rows, 2, 1, np.random.default_rng(3))
    assert history.shape == (5, 48) and target.shape == (5, 1)
    for i, r in enumerate(rows):
        full = np.concatenate([profiles.values[j] for j in r])
        origin = pd.Timestamp(meta["origin"][i])
        day_start = pd.Timestamp(profiles.meta["start"][r[-1]])
        assert origin.minute == 0 and origin.normalize() == day_start
        position = 48 + origin.hour
        np.testing.assert_array_equal(history[i], full[position - 48:position])
        np.testing.assert_array_equal(target[i], full[position:position + 1])
    # origins are drawn uniformly over the day: many windows reach every hour
    many = np.repeat(rows, 200, axis=0)
    _, _, meta = hour_ahead(profiles, many, 2, 1, np.random.default_rng(0))
    assert set(pd.to_datetime(meta["origin"]).dt.hour) == set(range(24))
    # a longer horizon never runs past the end of the target day
    _, target, meta = hour_ahead(profiles, many, 2, 3, np.random.default_rng(0))
    assert set(pd.to_datetime(meta["origin"]).dt.hour) == set(range(22)) and target.shape[1] == 3


def test_history_index_and_gather_windows_find_days_across_parts():
    profiles = hand_built()
    index = HistoryIndex.build(profiles, 2)
    # a "part" holding only the target days B3 and A2 (and A5, which has no two complete days before it)
    part = profiles.subset([i for i in range(len(profiles))
                            if (profiles.meta["series_id"][i], profiles.meta["start"][i].day - 1)
                            in {("B", 3), ("A", 2), ("A", 5)}])
    entries = index.locate(part)
    assert sorted(e >= 0 for e in entries) == [False, True, True]
    windows = index.windows[entries[entries >= 0]]
    assert sorted(window_days(profiles, windows)) == [("A", [0, 1, 2]), ("B", [1, 2, 3])]
    np.testing.assert_array_equal(index.rows, index.windows[:, :-1])
    days, rows = gather_windows(profiles, windows, lambda v: 2.0 * v)
    assert len(days) == 6 and rows.shape == windows.shape  # only the six days used, each once
    np.testing.assert_array_equal(days.values[rows], 2.0 * profiles.values[windows])
    history, target, _ = day_ahead(days, rows, 2)
    np.testing.assert_array_equal(target, 2.0 * profiles.values[windows[:, -1]])


def test_windows_reject_bad_input():
    profiles = hand_built()
    with pytest.raises(ValueError, match="index_rows"):
        day_ahead(profiles, consecutive_days(profiles, 3), 3)  # rows of 3 days, 3 history days asked
    incomplete = np.flatnonzero(~profiles.mask.all(axis=1))[0]
    with pytest.raises(ValueError, match="incomplete"):
        day_ahead(profiles, np.full((1, 3), incomplete), 2)
    with pytest.raises(ValueError, match="divides 60"):
        hour_ahead(_res45(), np.zeros((0, 3), dtype=np.int64), 2, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="longer than a day"):
        hourly = hand_built(resolution=60)
        hour_ahead(hourly, consecutive_days(hourly, 3), 2, 25, np.random.default_rng(0))
    month = ProfileSet(values=np.zeros((2, 4)), mask=np.ones((2, 4), bool), meta=profiles.meta.iloc[:2],
                       resolution=360, period="month")
    with pytest.raises(ValueError, match="daily profiles"):
        consecutive_days(month, 2)


def _res45() -> ProfileSet:
    values = np.ones((3, 32), dtype=np.float32)
    meta = pd.DataFrame({"series_id": ["A"] * 3, "start": pd.date_range("2013-01-01", periods=3, freq="D"),
                         "month": 1, "weekday": 0, "days": 1, "category": "Std"})
    return ProfileSet(values=values, mask=np.ones(values.shape, bool), meta=meta, resolution=45, period="day")


# -- the task ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy():
    return weekly_toy(n_series=8, days=42, resolution=60)


@pytest.fixture(scope="module")
def data(toy):
    return forecasting.prepare(toy, cfg(), 0)


class Oracle(Model, Forecaster):
    """Returns the true continuation (plus ``shift``), as a point forecast or an ensemble with spread."""

    def __init__(self, data, ensemble: bool = False, shift: float = 0.0, nan: bool = False, shape=None):
        super().__init__()
        self.truth = {len(t[0]): t for t in data.targets}
        self.ensemble, self.shift, self.nan, self.shape = ensemble, shift, nan, shape
        self.calls: list[str] = []

    def fit(self, train, ctx):
        self.calls.append("fit")

    def fit_forecast(self, examples, ctx):
        assert examples.target.shape == (len(examples.query), examples.query.horizon)
        self.calls.append(f"fit_forecast-{examples.query.horizon}")

    def forecast(self, query, n_samples, ctx):
        self.calls.append(f"forecast-{query.horizon}")
        out = self.truth[query.horizon] + self.shift
        if self.nan:
            out = out.copy()
            out[0, 0] = np.nan
        if self.shape is not None:
            return np.zeros(self.shape, dtype=np.float32)
        if self.ensemble:
            spread = np.linspace(-0.01, 0.01, n_samples)[:, None, None]
            return (out[None] + spread).astype(np.float32)
        return out


def test_prepare_windows_and_expected_rows(data, toy):
    assert data.settings == ["day-ahead", "hour-ahead"]
    assert forecasting.expected_rows(cfg()) == [(s, m) for s in ("day-ahead", "hour-ahead")
                                                for m in ("MAE", "RMSE", "MAPE", "MSE", "MAPE_scaled", "CRPS")]
    assert forecasting.expected_rows(cfg(settings=["hour-ahead"]), resolution=60) == [
        ("hour-ahead", m) for m in forecasting.METRIC_NAMES]
    day, hour = data.queries
    assert day.horizon == 24 and hour.horizon == 1
    assert day.history.shape[1] == hour.history.shape[1] == 7 * 24
    assert len(day) == len(hour) == 60  # max_queries, a subset of the evaluation windows
    assert len(data.examples[0].query) == 120  # max_train_windows
    # training windows come from training households, queries from the others
    train_ids = set(data.examples[0].query.meta["series_id"])
    assert train_ids <= set(data.train.meta["series_id"])
    assert not train_ids & set(day.meta["series_id"])
    # a day-ahead query's truth is the scaled profile of its target day
    sid, origin = day.meta["series_id"][0], day.meta["origin"][0]
    row = np.flatnonzero((data.real.meta["series_id"] == sid).to_numpy()
                         & (data.real.meta["start"] == origin).to_numpy())[0]
    np.testing.assert_array_equal(data.targets[0][0], data.real.values[row])
    kw_row = np.flatnonzero((toy.meta["series_id"] == sid).to_numpy() & (toy.meta["start"] == origin).to_numpy())
    np.testing.assert_allclose(data.scaler.inverse(data.targets[0][0]), toy.values[kw_row[0]], atol=1e-5)


def test_score_point_forecast_rows_and_crps_not_applicable(data):
    model = Oracle(data)
    outcome = forecasting.run(model, data, RunContext(seed=0))
    assert isinstance(outcome, Outcome) and outcome.samples is None
    assert outcome.status == "ok" and outcome.extra["point"] == [True, True]
    assert model.calls == ["fit", "fit_forecast-24", "forecast-24", "fit_forecast-1", "forecast-1"]
    rows = rows_by_key(forecasting.score(outcome, data, cfg(), 0))
    assert set(rows) == set(forecasting.expected_rows(cfg()))
    for setting in data.settings:
        for metric in ("MAE", "RMSE", "MAPE", "MSE", "MAPE_scaled"):
            assert rows[(setting, metric)]["status"] == "ok"
            assert rows[(setting, metric)]["value"] == pytest.approx(0.0, abs=1e-5)
        crps = rows[(setting, "CRPS")]
        assert crps["status"] == "n/a" and crps["note"] == "point forecast" and np.isnan(crps["value"])
    # a forecast off by a constant 0.1 in the scaled space is off by 0.05 * (high - low) kW everywhere
    shifted = forecasting.score(forecasting.run(Oracle(data, shift=0.1), data, RunContext(seed=0)), data,
                                cfg(), 0)
    expected = 0.05 * (data.scaler.high - data.scaler.low)
    for r in shifted:
        if r["metric"] in ("MAE", "RMSE"):
            assert r["value"] == pytest.approx(expected, rel=1e-4) and r["std"] == pytest.approx(0, abs=1e-6)
        if r["metric"] == "MSE":  # kW^2: the square of the constant error
            assert r["value"] == pytest.approx(expected ** 2, rel=2e-4) and r["std"] == pytest.approx(0, abs=1e-6)
    # MAPE_scaled is the mean of 0.1 / |y| over the scaled truths y with |y| >= 1e-3 (the metric's default
    # threshold), bootstrap-free with bootstrap_frac = 1
    one = rows_by_key(forecasting.score(forecasting.run(Oracle(data, shift=0.1), data, RunContext(seed=0)), data,
                                   cfg(bootstrap_frac=1.0), 0))
    for index, setting in enumerate(data.settings):
        truth = np.abs(data.targets[index].astype(np.float64))
        expected = np.mean(0.1 / truth[truth >= 1e-3])
        assert one[(setting, "MAPE_scaled")]["value"] == pytest.approx(expected, rel=1e-4)


def test_ensemble_forecast_gets_crps(data):
    outcome = forecasting.run(Oracle(data, ensemble=True), data, RunContext(seed=0))
    assert outcome.extra["point"] == [False, False] and outcome.extra["forecasts"][0].shape == (4, 60, 24)
    rows = rows_by_key(forecasting.score(outcome, data, cfg(), 0))
    crps = rows[("day-ahead", "CRPS")]
    assert crps["status"] == "ok" and 0 < crps["value"] < 0.01 * (data.scaler.high - data.scaler.low)
    assert rows[("day-ahead", "MAE")]["value"] == pytest.approx(0.0, abs=1e-5)  # the median is the truth


def test_failed_outcomes(data):
    for model, note in ((Oracle(data, nan=True), "non-finite"), (Oracle(data, shape=(3, 2)), "shape")):
        outcome = forecasting.run(model, data, RunContext(seed=0))
        assert outcome.status == "failed" and note in outcome.note
        rows = forecasting.score(outcome, data, cfg(), 0)
        assert len(rows) == 12 and all(r["status"] == "failed" and np.isnan(r["value"]) for r in rows)

    class Diverges(Oracle):
        def fit_forecast(self, examples, ctx):
            raise ModelFitError("diverged at step 3")

    outcome = forecasting.run(Diverges(data), data, RunContext(seed=0))
    assert outcome.status == "failed" and "diverged" in outcome.note


def test_bad_configs_and_too_short_data(toy):
    with pytest.raises(ValueError, match="needs 12 consecutive complete days"):
        forecasting.prepare(weekly_toy(n_series=8, days=10), cfg(history_days=11), 0)
    with pytest.raises(ValueError, match="unknown forecasting settings"):
        forecasting.prepare(toy, cfg(settings=["week-ahead"]), 0)
    with pytest.raises(ValueError, match="divides 60"):
        forecasting.prepare(_res45(), cfg(), 0)
    forecasting.expected_rows(cfg(settings=["day-ahead"]))  # day-ahead alone needs no hourly grid
    with pytest.raises(ValueError, match="history_days"):
        forecasting.prepare(toy, cfg(history_days=0), 0)
    with pytest.raises(ValueError, match="n_samples"):
        forecasting.prepare(toy, cfg(n_samples=1), 0)


def test_determinism(toy, data):
    again = forecasting.prepare(toy, cfg(), 0)
    queries = data.queries + [e.query for e in data.examples]
    for a, b in zip(queries, again.queries + [e.query for e in again.examples]):
        np.testing.assert_array_equal(a.history, b.history)
        pd.testing.assert_frame_equal(a.meta, b.meta)
    rows = forecasting.score(forecasting.run(Persistence(), data, RunContext(seed=0)), data, cfg(), 0)
    assert rows == forecasting.score(forecasting.run(Persistence(), again, RunContext(seed=0)), again, cfg(), 0)
    other = forecasting.prepare(toy, cfg(), 1)
    assert not np.array_equal(other.queries[0].history, data.queries[0].history)


def test_mlp_beats_seasonal_naive_end_to_end(data):
    ctx = RunContext(seed=0)
    naive = rows_by_key(forecasting.score(forecasting.run(SeasonalNaive(), data, ctx), data, cfg(), 0))
    outcome = forecasting.run(MLPForecaster(**SMALL_MLP), data, ctx)
    assert outcome.status == "ok" and outcome.fit_seconds >= outcome.extra["finetune_seconds"] > 0
    mlp = rows_by_key(forecasting.score(outcome, data, cfg(), 0))
    assert mlp[("day-ahead", "MAE")]["value"] < 0.7 * naive[("day-ahead", "MAE")]["value"]
    assert mlp[("day-ahead", "RMSE")]["value"] < naive[("day-ahead", "RMSE")]["value"]


# -- the unified paper's protocol (split = pretrain) ---------------------------------------------------------------
PAPER = {"split": "pretrain", "fractions": [0.6, 0.2, 0.2], "pretrain_fraction": 0.8}


@pytest.fixture(scope="module")
def paper_data(toy):
    return forecasting.prepare(toy, cfg(**PAPER, max_queries=None, max_train_windows=None), 0)


def _key_rows(profiles: ProfileSet) -> dict:
    return {(str(sid), pd.Timestamp(start)): i
            for i, (sid, start) in enumerate(zip(profiles.meta["series_id"], profiles.meta["start"]))}


def test_paper_protocol_targets_from_the_part_history_from_anywhere(paper_data, toy):
    data = paper_data
    assert data.pretrain is not None and "pre-train" in data.split_rule
    full = _key_rows(toy)
    train, real, pre = _key_rows(data.train), _key_rows(data.real), _key_rows(data.pretrain)
    assert not set(train) & set(real) and not set(pre) & (set(train) | set(real))
    day = data.examples[0]
    targets = [(str(s), pd.Timestamp(o)) for s, o in zip(day.query.meta["series_id"], day.query.meta["origin"])]
    # every training target day is a training profile, and every training profile with 7 days before it is one
    assert set(targets) <= set(train)
    assert set(targets) == {k for k in train if (k[1] - pd.Timestamp(toy.meta["start"].min())).days >= 7}
    queries = [(str(s), pd.Timestamp(o)) for s, o in zip(data.queries[0].meta["series_id"],
                                                         data.queries[0].meta["origin"])]
    assert set(queries) <= set(real)
    history_sources = {"pretrain": 0, "train": 0, "real": 0}
    for i, (sid, day0) in enumerate(targets):
        np.testing.assert_array_equal(day.target[i], data.train.values[train[(sid, day0)]])
        for k in range(7):  # the history is the 7 days before the target, scaled, wherever the split put them
            key = (sid, day0 - pd.Timedelta(days=7 - k))
            np.testing.assert_array_equal(day.query.history[i, k * 24:(k + 1) * 24],
                                          data.scaler.transform(toy.values[full[key]]))
            history_sources["pretrain" if key in pre else "train" if key in train else "real"] += 1
    assert history_sources["pretrain"] > history_sources["train"] > 0  # most inputs lie in the pre-training set
    for i, key in enumerate(queries):
        np.testing.assert_array_equal(data.targets[0][i], data.real.values[real[key]])


class PreTrainer(Oracle):
    """An oracle that pre-trains: the task must hand it the pre-training set."""

    pretrains = True

    def fit(self, train, ctx):
        self.fitted_on = train
        super().fit(train, ctx)


def test_pretraining_models_fit_on_the_pretraining_set(paper_data):
    model, plain = PreTrainer(paper_data), Oracle(paper_data)
    plain.fit = lambda train, ctx: setattr(plain, "fitted_on", train)
    forecasting.run(model, paper_data, RunContext(seed=0))
    forecasting.run(plain, paper_data, RunContext(seed=0))
    assert model.fitted_on is paper_data.pretrain and plain.fitted_on is paper_data.train


def test_protocol_notes_say_what_is_stated_and_what_assumed():
    notes = forecasting.PROTOCOL_NOTES
    assert isinstance(notes, tuple) and all(isinstance(n, str) for n in notes)
    assert all(n.startswith(("paper:", "assumed:")) for n in notes)
    assert any(n.startswith("paper:") for n in notes) and any(n.startswith("assumed:") for n in notes)


def point_forecast_rows(truth_kw: np.ndarray, pred_kw: np.ndarray, **overrides) -> dict:
    """The scored rows of point forecasts ``pred_kw`` of two day-ahead windows of two steps ``truth_kw`` (kW),
    scaled by a kW 0..2 -> -1..1 scaler (scaled = kW - 1), one bootstrap draw of every window."""
    from bench.data.scaling import MinMaxScaler

    scaler = MinMaxScaler(0.0, 2.0)
    meta = pd.DataFrame({"series_id": ["a", "b"], "origin": pd.to_datetime(["2013-01-08", "2013-01-09"])})
    query = ForecastQuery(history=np.zeros((2, 2), np.float32), horizon=2, meta=meta, resolution=720)
    data = forecasting.TaskData(train=None, real=None, scaler=scaler, split_rule="", settings=["day-ahead"],
                                examples=[], queries=[query], targets=[scaler.transform(truth_kw)], n_samples=2)
    outcome = Outcome(extra={"forecasts": [scaler.transform(pred_kw)], "point": [True]})
    return rows_by_key(forecasting.score(outcome, data, cfg(bootstrap_frac=1.0, **overrides), 0))


def test_mse_and_scaled_mape_by_hand():
    """Two windows of two steps, point forecasts, one bootstrap draw of everything: the metrics by hand."""
    truth_kw = np.array([[0.5, 1.5], [0.25, 2.0]])
    pred_kw = np.array([[0.75, 1.0], [0.25, 1.0]])
    rows = point_forecast_rows(truth_kw, pred_kw, mape_eps=0.01)
    err = pred_kw - truth_kw  # 0.25, -0.5, 0, -1
    assert rows[("day-ahead", "MSE")]["value"] == pytest.approx((0.0625 + 0.25 + 0 + 1) / 4)
    assert rows[("day-ahead", "RMSE")]["value"] == pytest.approx(np.sqrt((0.0625 + 0.25 + 0 + 1) / 4))
    assert rows[("day-ahead", "MAPE")]["value"] == pytest.approx((0.5 + 1 / 3 + 0 + 0.5) / 4)
    # scaled truths -0.5, 0.5, -0.75, 1.0: ratios 0.25/0.5, 0.5/0.5, 0, 1/1
    assert rows[("day-ahead", "MAPE_scaled")]["value"] == pytest.approx((0.5 + 1.0 + 0.0 + 1.0) / 4)
    assert np.abs(err).mean() == pytest.approx(rows[("day-ahead", "MAE")]["value"])


def test_default_mape_leaves_out_loads_under_10_watts():
    """The task's default MAPE threshold is 10 W: a 5 W true load is left out, a 20 W one is scored."""
    rows = point_forecast_rows(np.array([[0.005, 1.0], [0.02, 2.0]]), np.array([[0.5, 1.5], [0.03, 1.0]]))
    # scored: 1.0 -> 1.5 (0.5), 0.02 -> 0.03 (0.5), 2.0 -> 1.0 (0.5); the 5 W step is left out
    assert rows[("day-ahead", "MAPE")]["value"] == pytest.approx(0.5, rel=1e-4)


class PlainForecaster(Model, Forecaster):
    """A forecaster that keeps the Protocol's fit_forecast: the task calls it, and it does nothing."""

    def fit(self, train, ctx):
        pass

    def forecast(self, query, n_samples, ctx):
        return np.zeros((len(query), query.horizon), dtype=np.float32)


def test_fit_forecast_defaults_to_nothing(data):
    outcome = forecasting.run(PlainForecaster(), data, RunContext(seed=0))
    assert outcome.status == "ok" and outcome.extra["point"] == [True, True]


def test_rows_are_the_registered_metrics(data):
    """With bootstrap_frac = 1 every row is the registered metric on every window: kW for MAE / RMSE / MSE /
    MAPE (with the task's 10 W threshold), the scaled space for MAPE_scaled, the ensemble for CRPS."""
    from metrics import METRICS

    one = cfg(bootstrap_frac=1.0)
    outcome = forecasting.run(Oracle(data, ensemble=True, shift=0.05), data, RunContext(seed=0))
    rows = rows_by_key(forecasting.score(outcome, data, one, 0))
    for index, setting in enumerate(data.settings):
        scaled_truth = data.targets[index].astype(np.float64)
        scaled = outcome.extra["forecasts"][index].astype(np.float64)
        truth = data.scaler.inverse(data.targets[index]).astype(np.float64)
        ens = data.scaler.inverse(outcome.extra["forecasts"][index]).astype(np.float64)
        median = np.median(ens, axis=0)
        expected = {"MAE": METRICS["MAE"].fn(truth, median), "RMSE": METRICS["RMSE"].fn(truth, median),
                    "MSE": METRICS["MSE"].fn(truth, median),
                    "MAPE": METRICS["MAPE"].fn(truth, median, eps=one["mape_eps"]),
                    "MAPE_scaled": METRICS["MAPE_scaled"].fn(scaled_truth, np.median(scaled, axis=0)),
                    "CRPS": METRICS["CRPS"].fn(truth, ens)}
        for metric, value in expected.items():
            assert rows[(setting, metric)]["value"] == pytest.approx(value, rel=1e-12), (setting, metric)
