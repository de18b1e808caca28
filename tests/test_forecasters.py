"""The forecasting baselines: closed-form naive forecasters and the MLP forecaster on a weekly toy series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import metrics
from baselines.forecasters import (
    DayMean,
    MLPForecaster,
    Persistence,
    ResidualMLP,
    SeasonalNaive,
    WeeklyNaive,
    day_mean_index,
    seasonal_repeat,
    window_features,
)
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.registry import get_model
from bench.tasks.queries import ForecastExamples, ForecastQuery
from bench.tasks.windows import consecutive_days, day_ahead

# a small network and budget: the toy problem is learnable in a few hundred steps on one thread
SMALL_MLP = {"hidden": 64, "n_layers": 3, "train_steps": 400, "batch_size": 64, "lr": 2e-3,
             "weight_decay": 0.05, "input_dropout": 0.1, "dropout": 0.1, "ema_decay": 0.99, "std_floor": 0.05}


def weekly_toy(n_series: int = 8, days: int = 42, resolution: int = 60, start: str = "2013-01-07",
               noise: float = 0.05, seed: int = 0) -> ProfileSet:
    """Daily profiles (kW) with a weekday shape (morning and evening peaks) and a different weekend shape
    (one broad midday hump), a household level and noise: yesterday is a poor forecast on Mondays and
    Saturdays, while the week before and the weekday tell the next day."""
    rng = np.random.default_rng(seed)
    spd = 1440 // resolution
    t = (np.arange(spd) + 0.5) / spd
    weekday = 0.2 + 0.8 * np.exp(-((t - 0.32) / 0.05) ** 2) + 1.0 * np.exp(-((t - 0.8) / 0.06) ** 2)
    weekend = 0.3 + 0.9 * np.exp(-((t - 0.55) / 0.15) ** 2)
    stamps = pd.date_range(start, periods=days, freq="D")
    values, meta = [], []
    for s in range(n_series):
        level = rng.uniform(0.7, 1.3)
        for day in stamps:
            shape = weekend if day.weekday() >= 5 else weekday
            values.append(np.maximum(level * shape + noise * rng.standard_normal(spd), 0.01))
            meta.append({"series_id": f"H{s}", "start": day, "month": day.month, "weekday": day.weekday(),
                         "days": 1, "category": "Std"})
    values = np.array(values, dtype=np.float32)
    return ProfileSet(values=values, mask=np.ones(values.shape, dtype=bool), meta=pd.DataFrame(meta),
                      resolution=resolution, period="day", name="weekly-toy")


def toy_query(history: np.ndarray, horizon: int, resolution: int = 360) -> ForecastQuery:
    n = history.shape[0]
    meta = pd.DataFrame({"series_id": [f"S{i}" for i in range(n)],
                         "origin": pd.date_range("2013-01-08", periods=n, freq="D")})
    return ForecastQuery(history=np.asarray(history, dtype=np.float32), horizon=horizon, meta=meta,
                         resolution=resolution)


CTX = RunContext(seed=0)


# -- closed forms ---------------------------------------------------------------------------------------------
def test_naive_forecasters_match_closed_forms():
    # 360 min -> T = 4 steps a day; 8 days of history with distinct values
    history = np.arange(2 * 32, dtype=np.float32).reshape(2, 32) / 10.0
    query = toy_query(history, horizon=4)
    np.testing.assert_array_equal(SeasonalNaive().forecast(query, 5, CTX), history[:, 28:32])
    np.testing.assert_array_equal(WeeklyNaive().forecast(query, 5, CTX), history[:, 4:8])
    np.testing.assert_array_equal(Persistence().forecast(query, 5, CTX), np.repeat(history[:, 31:], 4, axis=1))
    # an hour-like short horizon: the first steps of the same day one day / one week earlier
    short = toy_query(history, horizon=2)
    np.testing.assert_array_equal(SeasonalNaive().forecast(short, 5, CTX), history[:, 28:30])
    np.testing.assert_array_equal(WeeklyNaive().forecast(short, 5, CTX), history[:, 4:6])
    # beyond one period the last period repeats
    long = toy_query(history, horizon=6)
    np.testing.assert_array_equal(SeasonalNaive().forecast(long, 5, CTX), history[:, [28, 29, 30, 31, 28, 29]])
    # day-mean: the 8 days' values at each time of day, averaged by hand (day k holds history[4k : 4k + 4])
    by_day = history.reshape(2, 8, 4)
    np.testing.assert_allclose(DayMean().forecast(query, 5, CTX), by_day.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(DayMean().forecast(short, 5, CTX), by_day.mean(axis=1)[:, :2], rtol=1e-6)


def test_seasonal_repeat_needs_one_period():
    with pytest.raises(ValueError, match="fewer than one seasonal period"):
        seasonal_repeat(np.zeros((1, 3)), 4, 2)
    with pytest.raises(ValueError, match="fewer than one seasonal period"):
        WeeklyNaive().forecast(toy_query(np.zeros((1, 8)), 4), 2, CTX)  # two days, not a week


def test_day_mean_index_and_untrained_network_forecast_the_day_mean():
    index = day_mean_index(12, 3, 4)  # three days of 4 steps, horizon 3
    np.testing.assert_array_equal(index, [[8, 9, 10], [4, 5, 6], [0, 1, 2]])
    np.testing.assert_array_equal(day_mean_index(3, 2, 4), [[2, 2]])  # under a day: persistence
    net = ResidualMLP(12 + 8, 16, 3, 3, index, 0.2, 0.5).eval()
    x = torch.randn(5, 20)
    expected = (x[:, [8, 9, 10]] + x[:, [4, 5, 6]] + x[:, [0, 1, 2]]) / 3
    torch.testing.assert_close(net(x), expected)


def test_window_features_normalise_by_the_last_day():
    history = np.array([[0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    inputs, mean, std = window_features(toy_query(history, 4), std_floor=0.01)
    assert mean[0, 0] == pytest.approx(2.5) and std[0, 0] == pytest.approx(np.std([1, 2, 3, 4]))
    np.testing.assert_allclose(inputs[0, :8], (history[0] - 2.5) / np.std([1, 2, 3, 4]), rtol=1e-6)
    assert inputs.shape == (1, 8 + 6 + 2)
    _, _, floored = window_features(toy_query(np.ones((1, 8)), 4), std_floor=0.05)
    assert floored[0, 0] == pytest.approx(0.05)  # a flat day does not divide by zero


# -- registry and validation -------------------------------------------------------------------------------------
def test_registered_forecasters():
    for name in ("seasonal-naive", "weekly-naive", "persistence", "day-mean", "mlp-forecaster"):
        spec = get_model(name)
        assert spec.capabilities == frozenset({"forecast"})
        # the closed forms copy or average the history: nothing the contract test could ask them to learn
        assert spec.cls.learns is (name == "mlp-forecaster")
        for profile in ("test", "quick", "paper"):
            spec.build(profile)
    quick = get_model("mlp-forecaster").config("quick")
    assert (quick["hidden"], quick["n_layers"], quick["train_steps"], quick["batch_size"], quick["lr"]) == \
        (256, 3, 1500, 128, 1e-3)
    paper = get_model("mlp-forecaster").config("paper")
    assert (paper["hidden"], paper["n_layers"], paper["train_steps"], paper["batch_size"], paper["lr"]) == \
        (512, 3, 10000, 256, 1e-3)
    assert paper["ema_decay"] == 0.999 and quick["ema_decay"] == 0.99


@pytest.mark.parametrize("bad", [{"hidden": 0}, {"n_layers": 1}, {"lr": -1.0}, {"dropout": 1.0},
                                 {"input_dropout": -0.1}, {"ema_decay": 1.0}, {"weight_decay": -1.0},
                                 {"std_floor": 0.0}, {"train_steps": 2.5}, {"batch_size": True}])
def test_mlp_forecaster_rejects_bad_config(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        MLPForecaster(**{**SMALL_MLP, **bad})


def test_mlp_forecast_needs_a_trained_head():
    model = MLPForecaster(**SMALL_MLP)
    model.fit(weekly_toy(n_series=1, days=8), CTX)
    with pytest.raises(RuntimeError, match="call fit_forecast"):
        model.forecast(toy_query(np.zeros((1, 32)), 4), 2, CTX)


# -- the MLP forecaster learns the weekly pattern --------------------------------------------------------------
def _day_ahead_examples(profiles: ProfileSet, history_days: int = 7) -> ForecastExamples:
    rows = consecutive_days(profiles, history_days + 1)
    history, target, meta = day_ahead(profiles, rows, history_days)
    return ForecastExamples(ForecastQuery(history=history, horizon=target.shape[1], meta=meta,
                                          resolution=profiles.resolution), target)


@pytest.fixture(scope="module")
def trained():
    """An MLP forecaster fitted on six toy households, with windows of two held-out households."""
    profiles = weekly_toy(n_series=8, days=42)
    train = profiles.subset(profiles.meta["series_id"].isin([f"H{i}" for i in range(6)]).to_numpy())
    test = profiles.subset(profiles.meta["series_id"].isin(["H6", "H7"]).to_numpy())
    model = MLPForecaster(**SMALL_MLP)
    model.fit(train, CTX)
    model.fit_forecast(_day_ahead_examples(train), CTX)
    return model, _day_ahead_examples(test)


def test_mlp_beats_seasonal_naive_on_the_weekly_toy(trained):
    model, examples = trained
    query, truth = examples.query, examples.target
    pred = model.forecast(query, 2, CTX)
    assert pred.shape == truth.shape and pred.dtype == np.float32
    mlp_mae = metrics.mae(truth, pred)
    naive_mae = metrics.mae(truth, SeasonalNaive().forecast(query, 2, CTX))
    weekly_mae = metrics.mae(truth, WeeklyNaive().forecast(query, 2, CTX))
    assert mlp_mae < 0.6 * naive_mae, (mlp_mae, naive_mae)
    assert mlp_mae < weekly_mae, (mlp_mae, weekly_mae)  # averages the noise that last week's value carries
    # the gain is largest where yesterday is the wrong kind of day (Mondays and Saturdays)
    switch = pd.to_datetime(query.meta["origin"]).dt.dayofweek.isin([0, 5]).to_numpy()
    assert metrics.mae(truth[switch], pred[switch]) < 0.5 * metrics.mae(
        truth[switch], SeasonalNaive().forecast(query, 2, CTX)[switch])


def test_mlp_forecaster_is_deterministic_and_keeps_one_head_per_shape(trained):
    model, examples = trained
    first = model.forecast(examples.query, 2, CTX)
    again = MLPForecaster(**SMALL_MLP)
    profiles = weekly_toy(n_series=8, days=42)
    train = profiles.subset(profiles.meta["series_id"].isin([f"H{i}" for i in range(6)]).to_numpy())
    again.fit(train, CTX)
    again.fit_forecast(_day_ahead_examples(train), CTX)
    np.testing.assert_array_equal(again.forecast(examples.query, 2, CTX), first)
    # a second (history, horizon) gets its own network; the day-ahead one is untouched
    short = ForecastExamples(
        ForecastQuery(history=examples.query.history[:, -48:], horizon=1, meta=examples.query.meta,
                      resolution=examples.query.resolution), examples.target[:, :1])
    again.fit_forecast(short, RunContext(seed=0, budget_steps=20))
    assert set(again._heads) == {(168, 24), (48, 1)}
    np.testing.assert_array_equal(again.forecast(examples.query, 2, CTX), first)
    assert again.forecast(short.query, 2, CTX).shape == (len(short.query), 1)


def test_forecasters_round_trip(trained, tmp_path):
    model, examples = trained
    loaded = MLPForecaster.load(model.save(tmp_path / "mlp.pt"))
    assert loaded.params == model.params and set(loaded._heads) == set(model._heads)
    np.testing.assert_array_equal(loaded.forecast(examples.query, 2, CTX), model.forecast(examples.query, 2, CTX))
    # an unfitted model comes back without heads; the closed forms have no state and forecast alike
    assert not MLPForecaster.load(MLPForecaster(**SMALL_MLP).save(tmp_path / "empty.pt"))._heads
    for cls in (SeasonalNaive, WeeklyNaive, Persistence, DayMean):
        naive = cls()
        naive.fit(weekly_toy(n_series=1, days=8), CTX)
        np.testing.assert_array_equal(cls.load(naive.save(tmp_path / f"{cls.__name__}.pt")).forecast(
            examples.query, 2, CTX), naive.forecast(examples.query, 2, CTX))
