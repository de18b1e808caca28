"""The library-backed forecasters (LightGBM, statsforecast's AutoETS and MSTL): features against hand-computed
values, each wrapper against calling its library directly, learning on a weekly toy, save / load, clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from baselines.library_forecasters import (AutoETSForecaster, LightGBMForecaster, MSTLForecaster, lag_feature_names,
                                           lag_features)
from bench.api import Forecaster, ParamError
from bench.context import RunContext
from bench.errors import ModelFitError
from bench.extras import MissingExtraError
from bench.registry import get_model
from bench.seeds import Stream
from bench.tasks.queries import ForecastExamples, ForecastQuery

CTX = RunContext(seed=0)
RESOLUTION = 120  # 12 steps a day: small and fast, still a daily shape
SPD = 1440 // RESOLUTION
MONDAY = "2013-01-07"
SMALL_LGB = {"num_boost_round": 60, "num_leaves": 15, "min_data_in_leaf": 10}


def weekly_days(n_series: int, n_days: int, seed: int, noise: float = 0.04, weekends: bool = True
                ) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """``([n_series, n_days, SPD] scaled loads, dates)``: a weekday shape (morning and evening peaks) and a
    different weekend shape (a midday hump; the weekday one every day without ``weekends``), a household level
    and noise; the first day is a Monday, so a forecast from yesterday fails on Mondays and Saturdays while the
    week before and the weekday tell."""
    rng = np.random.default_rng(seed)
    t = (np.arange(SPD) + 0.5) / SPD
    weekday = -0.8 + 0.8 * np.exp(-((t - 0.3) / 0.07) ** 2) + 1.0 * np.exp(-((t - 0.8) / 0.08) ** 2)
    weekend = -0.7 + 0.9 * np.exp(-((t - 0.55) / 0.15) ** 2)
    dates = pd.date_range(MONDAY, periods=n_days, freq="D")
    shapes = np.stack([weekend if weekends and d.weekday() >= 5 else weekday for d in dates])
    level = rng.uniform(0.7, 1.1, (n_series, 1, 1))
    return level * shapes[None] + noise * rng.standard_normal((n_series, n_days, SPD)), dates


def day_ahead_windows(values: np.ndarray, dates: pd.DatetimeIndex, history_days: int) -> ForecastExamples:
    """Every day-ahead window (``history_days`` days before each target day) of every series."""
    histories, targets, meta = [], [], []
    for s in range(values.shape[0]):
        for d in range(history_days, values.shape[1]):
            histories.append(values[s, d - history_days:d].reshape(-1))
            targets.append(values[s, d])
            meta.append({"series_id": f"H{s}", "origin": dates[d]})
    query = ForecastQuery(history=np.asarray(histories, dtype=np.float32), horizon=SPD, meta=pd.DataFrame(meta),
                          resolution=RESOLUTION)
    return ForecastExamples(query=query, target=np.asarray(targets, dtype=np.float32))


def short_horizon_windows(values: np.ndarray, dates: pd.DatetimeIndex, history_days: int, horizon: int = 2,
                          origin_step: int = 3) -> ForecastExamples:
    """Hour-ahead-like windows: the ``history_days * SPD`` steps before step ``origin_step`` of each target day
    and the ``horizon`` steps from it."""
    span = history_days * SPD
    histories, targets, meta = [], [], []
    for s in range(values.shape[0]):
        for d in range(history_days, values.shape[1]):
            full = values[s, d - history_days:d + 1].reshape(-1)
            histories.append(full[origin_step:span + origin_step])
            targets.append(full[span + origin_step:span + origin_step + horizon])
            meta.append({"series_id": f"H{s}", "origin": dates[d] + pd.Timedelta(minutes=origin_step * RESOLUTION)})
    query = ForecastQuery(history=np.asarray(histories, dtype=np.float32), horizon=horizon,
                          meta=pd.DataFrame(meta), resolution=RESOLUTION)
    return ForecastExamples(query=query, target=np.asarray(targets, dtype=np.float32))


def mae(forecast: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(forecast, dtype=np.float64) - truth)))


@pytest.fixture(scope="module")
def weekly():
    """Training windows from 6 households and query windows from 3 others (5 weeks each, 7-day histories)."""
    train = day_ahead_windows(*weekly_days(6, 35, seed=0), history_days=7)
    test = day_ahead_windows(*weekly_days(3, 35, seed=1), history_days=7)
    return train, test


# -- features ----------------------------------------------------------------------------------------------------
def test_lag_features_match_hand_computed_values():
    # 360 min -> T = 4 steps a day; 8 history days of distinct values; the origin 2013-01-31 18:00 (Thursday) is
    # the last step of its day, so the second forecast step is 2013-02-01 00:00 (Friday, February, step 0)
    history = np.arange(2 * 32, dtype=np.float32).reshape(2, 32) / 10.0
    meta = pd.DataFrame({"series_id": ["A", "B"],
                         "origin": pd.to_datetime(["2013-01-31 18:00", "2013-03-04 06:00"])})
    query = ForecastQuery(history=history, horizon=2, meta=meta, resolution=360)
    features, names = lag_features(query, n_lags=3)
    assert names == ["lead", "step_of_day", "weekday", "month", "lag_1", "lag_2", "lag_3", "window_day_mean",
                     "day_before", "same_step_mean", "week_before"]
    col = {name: features[:, i] for i, name in enumerate(names)}
    h = history.astype(np.float64)
    # rows: (window 0, step 0), (window 0, step 1), (window 1, step 0), (window 1, step 1)
    np.testing.assert_array_equal(col["lead"], [0, 1, 0, 1])
    np.testing.assert_array_equal(col["step_of_day"], [3, 0, 1, 2])
    np.testing.assert_array_equal(col["weekday"], [3, 4, 0, 0])  # Thu, Fri; Monday 06:00 and 12:00
    np.testing.assert_array_equal(col["month"], [1, 2, 3, 3])
    np.testing.assert_array_equal(col["lag_1"], [h[0, 31], h[0, 31], h[1, 31], h[1, 31]])
    np.testing.assert_array_equal(col["lag_3"], [h[0, 29], h[0, 29], h[1, 29], h[1, 29]])
    np.testing.assert_allclose(col["window_day_mean"], np.repeat(h[:, 28:32].mean(axis=1), 2))
    np.testing.assert_array_equal(col["day_before"], [h[0, 28], h[0, 29], h[1, 28], h[1, 29]])
    np.testing.assert_array_equal(col["week_before"], [h[0, 4], h[0, 5], h[1, 4], h[1, 5]])
    # the same step over the 8 history days: positions 0, 4, ..., 28 (+1 for step 1); arange makes it 14 (+0.1)
    for i in range(2):
        for j in range(2):
            expected = np.mean([h[i, 32 - 4 * k + j] for k in range(1, 9)])
            assert col["same_step_mean"][2 * i + j] == pytest.approx(expected)


def test_lag_feature_columns_follow_the_history_length():
    assert lag_feature_names(3, 4, n_lags=4) == ["lead", "step_of_day", "weekday", "month", "lag_1", "lag_2",
                                                "lag_3", "window_day_mean"]
    assert "week_before" not in lag_feature_names(27, 4, n_lags=2)
    assert lag_feature_names(28, 4, n_lags=2)[-1] == "week_before"
    short = ForecastQuery(history=np.array([[0.1, 0.2, 0.6]], dtype=np.float32), horizon=2,
                          meta=pd.DataFrame({"series_id": ["A"], "origin": [pd.Timestamp("2013-01-07")]}),
                          resolution=360)
    features, names = lag_features(short, n_lags=4)
    assert features.shape == (2, 8)
    assert features[0, names.index("window_day_mean")] == pytest.approx(0.3)  # the whole, shorter history


# -- LightGBM ------------------------------------------------------------------------------------------------------
def _reference_rows(query: ForecastQuery, n_lags: int) -> np.ndarray:
    """The features of ``lag_features`` written out one (window, step) at a time, as the docstring states them."""
    rows = []
    history = query.history.astype(np.float64)
    length, spd = history.shape[1], 1440 // query.resolution
    for i, origin in enumerate(pd.to_datetime(query.meta["origin"])):
        for j in range(query.horizon):
            when = origin + pd.Timedelta(minutes=j * query.resolution)
            row = [j, (when.hour * 60 + when.minute) // query.resolution, when.weekday(), when.month]
            row += [history[i, length - k] for k in range(1, min(n_lags, length) + 1)]
            row += [history[i, length - spd:].mean(), history[i, length - spd + j % spd]]
            row += [np.mean([history[i, length - k * spd + j % spd] for k in range(1, length // spd + 1)])]
            row += [history[i, length - 7 * spd + j % (7 * spd)]]
            rows.append(row)
    return np.asarray(rows, dtype=np.float64)


def test_lightgbm_agrees_with_a_direct_lightgbm_fit(weekly):
    lgb = pytest.importorskip("lightgbm")
    train, test = weekly
    model = LightGBMForecaster(**SMALL_LGB)
    model.fit(None, CTX)
    model.fit_forecast(train, CTX)
    ours = model.forecast(test.query, 1, CTX)
    assert ours.shape == (len(test.query), SPD) and ours.dtype == np.float32

    params = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 10,
              "lambda_l2": 0.0, "feature_fraction": 0.9, "bagging_fraction": 0.8, "bagging_freq": 1,
              "seed": CTX.int_seed(Stream.MODEL_FIT, bits=31), "deterministic": True, "force_row_wise": True,
              "num_threads": 1, "verbosity": -1}
    data = lgb.Dataset(_reference_rows(train.query, 4), label=train.target.astype(np.float64).reshape(-1))
    booster = lgb.train(params, data, num_boost_round=60)
    reference = booster.predict(_reference_rows(test.query, 4)).reshape(len(test.query), SPD)
    np.testing.assert_allclose(ours, reference.astype(np.float32), rtol=0, atol=1e-6)


def test_lightgbm_learns_the_weekly_pattern(weekly):
    pytest.importorskip("lightgbm")
    train, test = weekly
    model = LightGBMForecaster(**SMALL_LGB)
    model.fit(None, CTX)
    model.fit_forecast(train, CTX)
    ours = mae(model.forecast(test.query, 1, CTX), test.target)
    global_mean = mae(np.full(test.target.shape, train.target.mean()), test.target)
    yesterday = mae(test.query.history[:, -SPD:], test.target)
    assert ours < 0.5 * yesterday < global_mean, (ours, yesterday, global_mean)
    assert model.diagnostics() == {f"trees_{7 * SPD}x{SPD}": 60.0}


def test_lightgbm_is_deterministic_keeps_one_booster_per_shape_and_round_trips(weekly, tmp_path):
    pytest.importorskip("lightgbm")
    train, test = weekly
    values, dates = weekly_days(4, 21, seed=2)
    short_train, short_test = short_horizon_windows(values, dates, 7), short_horizon_windows(*weekly_days(2, 21, 3), 7)
    models = []
    for _ in range(2):
        model = LightGBMForecaster(**SMALL_LGB)
        model.fit(None, CTX)
        model.fit_forecast(train, CTX)
        model.fit_forecast(short_train, CTX)
        models.append(model)
    first, second = models
    np.testing.assert_array_equal(first.forecast(test.query, 1, CTX), second.forecast(test.query, 1, CTX))
    # another seed draws other bagging rows: other trees
    other = LightGBMForecaster(**SMALL_LGB)
    other.fit_forecast(train, RunContext(seed=1))
    assert not np.array_equal(other.forecast(test.query, 1, CTX), first.forecast(test.query, 1, CTX))

    state = first.get_state()
    assert set(state["boosters"]) == {f"{7 * SPD}x{SPD}", f"{7 * SPD}x2"}
    assert all(isinstance(entry["model"], str) for entry in state["boosters"].values())
    loaded = LightGBMForecaster.load(first.save(tmp_path / "lgb.pt"))
    for query in (test.query, short_test.query):
        np.testing.assert_array_equal(loaded.forecast(query, 1, CTX), first.forecast(query, 1, CTX))


def test_lightgbm_errors_are_clear(weekly):
    pytest.importorskip("lightgbm")
    train, test = weekly
    model = LightGBMForecaster(**SMALL_LGB)
    with pytest.raises(RuntimeError, match="no booster for histories of 84 steps and horizon 12"):
        model.forecast(test.query, 1, CTX)
    target = train.target.copy()
    target[0, 5] = np.nan
    with pytest.raises(ValueError, match="training targets must be finite"):
        model.fit_forecast(ForecastExamples(train.query, target), CTX)
    model.fit_forecast(train, CTX)
    other_resolution = ForecastQuery(history=test.query.history, horizon=SPD, meta=test.query.meta, resolution=60)
    with pytest.raises(RuntimeError, match="trained on 12 steps a day, the query has 24"):
        model.forecast(other_resolution, 1, CTX)
    for bad in ({"num_leaves": 1}, {"learning_rate": 0.0}, {"bagging_fraction": 1.5}, {"objective": "poisson"},
                {"n_lags": 0}):
        with pytest.raises(ParamError):
            get_model("lightgbm-forecaster").build("test", bad)


# -- statsforecast ---------------------------------------------------------------------------------------------
def _statsforecast_reference(library_model, query: ForecastQuery) -> np.ndarray:
    """The forecasts of statsforecast's own front end (``StatsForecast.forecast`` on a long table with one
    series per window) for ``library_model``."""
    from statsforecast import StatsForecast

    n, length = query.history.shape
    frame = pd.DataFrame({"unique_id": np.repeat(np.arange(n), length), "ds": np.tile(np.arange(length), n),
                          "y": query.history.astype(np.float64).reshape(-1)})
    out = StatsForecast(models=[library_model], freq=1, n_jobs=1).forecast(df=frame, h=query.horizon)
    out = out.sort_values(["unique_id", "ds"])
    column = [c for c in out.columns if c not in ("unique_id", "ds")][0]
    return out[column].to_numpy(dtype=np.float64).reshape(n, query.horizon)


def _few(examples: ForecastExamples, rows: list[int]) -> ForecastExamples:
    q = examples.query
    return ForecastExamples(ForecastQuery(history=q.history[rows], horizon=q.horizon,
                                          meta=q.meta.iloc[rows].reset_index(drop=True), resolution=q.resolution),
                            examples.target[rows])


def test_autoets_agrees_with_the_statsforecast_front_end(weekly):
    models = pytest.importorskip("statsforecast.models")
    query = _few(weekly[1], [0, 5, 40]).query
    for spec in ("ZZZ", "ANA"):
        ours = AutoETSForecaster(model=spec).forecast(query, 1, CTX)
        assert ours.shape == (3, SPD) and ours.dtype == np.float32
        reference = _statsforecast_reference(models.AutoETS(season_length=SPD, model=spec), query)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)


def test_mstl_agrees_with_the_statsforecast_front_end_with_one_and_two_seasons():
    models = pytest.importorskip("statsforecast.models")
    values, dates = weekly_days(2, 22, seed=4)
    week = day_ahead_windows(values, dates, history_days=7).query
    two_weeks = day_ahead_windows(values, dates, history_days=14).query
    assert MSTLForecaster().seasons(week.history.shape[1], SPD) == [SPD]
    assert MSTLForecaster().seasons(two_weeks.history.shape[1], SPD) == [SPD, 7 * SPD]
    assert MSTLForecaster(weekly=False).seasons(two_weeks.history.shape[1], SPD) == [SPD]
    for query, seasons in ((_few(ForecastExamples(week, np.zeros((len(week), SPD))), [0, 9]).query, SPD),
                           (two_weeks, [SPD, 7 * SPD])):
        ours = MSTLForecaster().forecast(query, 1, CTX)
        reference = _statsforecast_reference(
            models.MSTL(season_length=seasons, trend_forecaster=models.AutoETS(model="ZZN")), query)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)


def test_statsforecast_forecasters_learn_from_the_history():
    pytest.importorskip("statsforecast")
    # every day the same shape: a daily season fitted to the history forecasts it to the noise floor
    values, dates = weekly_days(3, 22, seed=5, weekends=False)
    week = day_ahead_windows(values, dates, history_days=7)
    flat = mae(np.repeat(week.query.history.mean(axis=1, keepdims=True), SPD, axis=1), week.target)
    noise_floor = 0.04 * np.sqrt(2 / np.pi)  # the MAE of the true shape: E|N(0, 0.04^2)|
    for model in (AutoETSForecaster(model="ANA"), MSTLForecaster()):
        ours = mae(model.forecast(week.query, 1, CTX), week.target)
        assert ours < 1.4 * noise_floor < 0.2 * flat, (type(model).__name__, ours, noise_floor, flat)
    # with weekends and two weeks of history the weekly season tells them from weekdays; a daily one cannot
    values, dates = weekly_days(3, 22, seed=5)
    two_weeks = day_ahead_windows(values, dates, history_days=14)
    both = mae(MSTLForecaster().forecast(two_weeks.query, 1, CTX), two_weeks.target)
    daily = mae(MSTLForecaster(weekly=False).forecast(two_weeks.query, 1, CTX), two_weeks.target)
    assert both < 0.5 * daily, (both, daily)


def test_statsforecast_forecasters_round_trip_and_are_registered(weekly, tmp_path):
    pytest.importorskip("statsforecast")
    query = _few(weekly[1], [3, 17]).query
    for name, cls in (("autoets", AutoETSForecaster), ("mstl", MSTLForecaster)):
        spec = get_model(name)
        assert spec.cls is cls and spec.capabilities == frozenset({"forecast"}) and Forecaster in cls.__mro__
        model = spec.build("test")
        model.fit(None, CTX)
        loaded = cls.load(model.save(tmp_path / f"{name}.pt"))
        assert loaded.params == model.params
        np.testing.assert_array_equal(loaded.forecast(query, 1, CTX), model.forecast(query, 1, CTX))


def test_statsforecast_errors_are_clear(weekly):
    pytest.importorskip("statsforecast")
    query = weekly[1].query
    short = ForecastQuery(history=query.history[:2, -(2 * SPD - 1):], horizon=SPD, meta=query.meta.iloc[:2],
                          resolution=RESOLUTION)
    for model in (AutoETSForecaster(), MSTLForecaster()):
        with pytest.raises(ValueError, match="shorter than two days"):
            model.forecast(short, 1, CTX)
    # a multiplicative error needs a positive series; the scaled loads here are mostly negative
    with pytest.raises(ModelFitError, match="autoets: the fit of window 0 failed"):
        AutoETSForecaster(model="MNM").forecast(_few(weekly[1], [0]).query, 1, CTX)
    for name, bad in (("autoets", {"model": "ZZ"}), ("autoets", {"model": "XNN"}), ("mstl", {"trend_model": "ZZA"})):
        with pytest.raises(ParamError):
            get_model(name).build("test", bad)


# -- a missing library -----------------------------------------------------------------------------------------
def test_a_missing_library_names_the_extra(weekly, monkeypatch, tmp_path):
    pytest.importorskip("lightgbm")
    train, test = weekly
    fitted = LightGBMForecaster(**SMALL_LGB)
    fitted.fit_forecast(train, CTX)
    path = fitted.save(tmp_path / "lgb.pt")
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    monkeypatch.setitem(sys.modules, "statsforecast.models", None)
    extra = r"meterbench\[baselines\]"
    with pytest.raises(MissingExtraError, match=rf"lightgbm-forecaster needs the lightgbm package.*{extra}"):
        LightGBMForecaster().fit_forecast(train, CTX)
    with pytest.raises(MissingExtraError, match=extra):
        LightGBMForecaster.load(path)
    for model, name in ((AutoETSForecaster(), "autoets"), (MSTLForecaster(), "mstl")):
        with pytest.raises(MissingExtraError, match=rf"{name} needs the statsforecast package.*{extra}"):
            model.forecast(test.query, 1, CTX)
