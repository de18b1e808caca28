"""The LSTM + self-attention forecaster: its tokens and skip connection, that it learns the weekly toy of the
forecaster tests (daily shapes, a weekend shape, a level per household) better than the naive forecasts,
determinism, save / load and its errors."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch

import metrics
from baselines.attention_lstm import LSTMAttentionForecaster, LSTMAttentionNet, patch_steps
from baselines.forecasters import DayMean, Persistence, SeasonalNaive, WeeklyNaive, day_mean_index, window_features
from bench.context import RunContext
from bench.registry import get_model
from bench.tasks.queries import ForecastExamples, ForecastQuery, calendar_features
from tests.test_forecasters import toy_query, weekly_toy

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# a small network and budget (3-hour tokens at 60 minutes: 56 tokens for 7 days): a few seconds on one thread
SMALL = {"hidden": 16, "n_heads": 2, "patch_minutes": 180, "train_steps": 250, "batch_size": 64, "lr": 3e-3,
         "dropout": 0.1, "ema_decay": 0.99}
CTX = RunContext(seed=0)


def day_ahead_examples(profiles, history_days: int = 7) -> ForecastExamples:
    from bench.tasks.windows import consecutive_days, day_ahead

    rows = consecutive_days(profiles, history_days + 1)
    history, target, meta = day_ahead(profiles, rows, history_days)
    return ForecastExamples(ForecastQuery(history=history, horizon=target.shape[1], meta=meta,
                                          resolution=profiles.resolution), target)


def split_toy():
    """Six training households and two held-out ones of the weekly toy (hourly readings)."""
    profiles = weekly_toy(n_series=8, days=42)
    train = profiles.subset(profiles.meta["series_id"].isin([f"H{i}" for i in range(6)]).to_numpy())
    test = profiles.subset(profiles.meta["series_id"].isin(["H6", "H7"]).to_numpy())
    return train, day_ahead_examples(train), day_ahead_examples(test)


@pytest.fixture(scope="module")
def trained():
    train, examples, held_out = split_toy()
    model = LSTMAttentionForecaster(**SMALL)
    model.fit(train, CTX)
    start = time.perf_counter()
    model.fit_forecast(examples, CTX)
    return model, held_out, time.perf_counter() - start


# -- the network --------------------------------------------------------------------------------------------------
def test_tokens_hold_the_patches_and_their_time_of_day():
    # 90-minute origins at 30 minutes: 10 history steps in patches of 3 (the oldest step is left out)
    history = np.arange(2 * 10, dtype=np.float32).reshape(2, 10)
    meta = pd.DataFrame({"series_id": ["A", "B"], "origin": pd.to_datetime(["2013-03-04 01:30", "2013-03-05 17:00"])})
    query = ForecastQuery(history=history, horizon=2, meta=meta, resolution=30)
    inputs, _, _ = window_features(query, std_floor=0.05)
    assert patch_steps(90, 30) == 3 and patch_steps(20, 30) == 1
    net = LSTMAttentionNet(10, 2, 48, 3, 8, 1, 2, 0.0, day_mean_index(10, 2, 48))
    tokens = net.tokens(torch.from_numpy(inputs)).numpy()
    assert tokens.shape == (2, 3, 5)
    np.testing.assert_allclose(tokens[:, :, :3], inputs[:, 1:10].reshape(2, 3, 3))
    for row in range(2):
        # token j starts at history step 1 + 3 j, i.e. (10 - 1 - 3 j) half-hours before the origin
        starts = [meta["origin"][row] - pd.Timedelta(minutes=30 * (9 - 3 * j)) for j in range(3)]
        calendar = calendar_features(pd.Series(starts))
        np.testing.assert_allclose(tokens[row, :, 3], calendar[:, 0], atol=1e-5)
        np.testing.assert_allclose(tokens[row, :, 4], calendar[:, 3], atol=1e-5)
    with pytest.raises(ValueError, match="shorter than one token"):
        LSTMAttentionNet(2, 2, 48, 3, 8, 1, 2, 0.0, day_mean_index(2, 2, 48))


def test_untrained_network_forecasts_the_day_mean():
    index = day_mean_index(12, 3, 4)
    net = LSTMAttentionNet(12, 3, 4, 2, 8, 2, 2, 0.3, index).eval()
    x = torch.randn(5, 12 + 8)
    expected = (x[:, [8, 9, 10]] + x[:, [4, 5, 6]] + x[:, [0, 1, 2]]) / 3
    torch.testing.assert_close(net(x), expected)


def test_every_part_is_on_the_forward_path():
    """Changing the weights of the LSTM, the attention, the norm or the head changes the forecast (once the
    head's zero-initialised last layer is not zero)."""
    with torch.random.fork_rng(devices=[]):  # a fixed network without touching the caller's random state
        torch.manual_seed(0)
        net = LSTMAttentionNet(24, 4, 8, 2, 8, 1, 2, 0.0, day_mean_index(24, 4, 8)).eval()
        torch.nn.init.normal_(net.head[-1].weight)
        x = torch.randn(3, 24 + 8)
    before = net(x)
    for part in (net.lstm, net.attention, net.norm, net.head[1]):
        saved = [p.detach().clone() for p in part.parameters()]
        with torch.no_grad():
            for p in part.parameters():
                p.add_(0.5)
        assert not torch.allclose(net(x), before), type(part).__name__
        with torch.no_grad():
            for p, old in zip(part.parameters(), saved):
                p.copy_(old)
    torch.testing.assert_close(net(x), before)
    # the static inputs reach the head: the weekday of the origin (static column 1) and the window mean (6)
    for column in (1, 6):
        moved = x.clone()
        moved[:, 24 + column] += 0.5
        assert not torch.allclose(net(moved), before), column


# -- registry and validation ----------------------------------------------------------------------------------------
def test_registered_with_profiles():
    spec = get_model("lstm-attention")
    assert spec.capabilities == frozenset({"forecast"}) and spec.cls.learns
    for profile in ("test", "quick", "paper"):
        spec.build(profile)
    quick, paper = spec.config("quick"), spec.config("paper")
    assert (quick["hidden"], quick["n_heads"], quick["train_steps"], quick["batch_size"]) == (32, 4, 1000, 64)
    assert (paper["hidden"], paper["lstm_layers"], paper["n_heads"], paper["train_steps"]) == (128, 2, 8, 10000)


@pytest.mark.parametrize("bad", [{"hidden": 0}, {"lstm_layers": 0}, {"n_heads": 3}, {"patch_minutes": 0},
                                 {"lr": -1.0}, {"dropout": 1.0}, {"ema_decay": 1.0}, {"weight_decay": -1.0},
                                 {"std_floor": 0.0}, {"train_steps": 2.5}, {"batch_size": True}])
def test_rejects_bad_config(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        LSTMAttentionForecaster(**{**SMALL, **bad})


def test_bad_inputs_raise_clear_errors():
    model = LSTMAttentionForecaster(**SMALL)
    model.fit(weekly_toy(n_series=1, days=8), CTX)
    with pytest.raises(RuntimeError, match="call fit_forecast"):
        model.forecast(toy_query(np.zeros((1, 32)), 4), 2, CTX)
    _, examples, _ = split_toy()
    empty = ForecastExamples(ForecastQuery(history=examples.query.history[:0], horizon=24,
                                           meta=examples.query.meta.iloc[:0], resolution=60),
                             examples.target[:0])
    with pytest.raises(ValueError, match="no training window"):
        model.fit_forecast(empty, CTX)
    model.fit_forecast(examples, RunContext(seed=0, budget_steps=2))
    # the same number of steps at another resolution is another problem
    other = ForecastQuery(history=examples.query.history, horizon=24, meta=examples.query.meta, resolution=30)
    with pytest.raises(ValueError, match="trained at 60-minute resolution"):
        model.forecast(other, 2, CTX)
    with pytest.raises(ValueError, match="shorter than one token"):
        model.fit_forecast(ForecastExamples(toy_query(np.zeros((1, 2)), 1, resolution=60), np.zeros((1, 1))), CTX)


# -- learning ------------------------------------------------------------------------------------------------------
def test_beats_the_naive_forecasts_on_the_weekly_toy(trained):
    model, held_out, seconds = trained
    query, truth = held_out.query, held_out.target
    pred = model.forecast(query, 2, CTX)
    assert pred.shape == truth.shape and pred.dtype == np.float32
    ours = metrics.mae(truth, pred)
    naive = {cls.__name__: metrics.mae(truth, cls().forecast(query, 2, CTX))
             for cls in (SeasonalNaive, Persistence, DayMean, WeeklyNaive)}
    print(f"weekly toy day-ahead MAE: lstm-attention {ours:.4f}, "
          + ", ".join(f"{k} {v:.4f}" for k, v in naive.items()) + f"; training {seconds:.1f} s")
    assert ours < 0.6 * naive["SeasonalNaive"] and ours < 0.5 * naive["Persistence"], (ours, naive)
    # the day mean is what the untrained network forecasts: beating it is what training added
    assert ours < 0.6 * naive["DayMean"], (ours, naive)
    assert ours < naive["WeeklyNaive"], (ours, naive)  # averages the noise that last week's value carries
    switch = pd.to_datetime(query.meta["origin"]).dt.dayofweek.isin([0, 5]).to_numpy()  # Mondays, Saturdays
    assert metrics.mae(truth[switch], pred[switch]) < 0.5 * metrics.mae(
        truth[switch], SeasonalNaive().forecast(query, 2, CTX)[switch])


def test_deterministic_given_the_seed():
    train, examples, held_out = split_toy()
    short = RunContext(seed=0, budget_steps=30)
    forecasts = []
    for ctx in (short, short, RunContext(seed=1, budget_steps=30)):
        model = LSTMAttentionForecaster(**SMALL)
        model.fit(train, ctx)
        model.fit_forecast(examples, ctx)
        forecasts.append(model.forecast(held_out.query, 2, ctx))
    np.testing.assert_array_equal(forecasts[0], forecasts[1])
    assert not np.array_equal(forecasts[0], forecasts[2])


def test_round_trip_with_two_heads(trained, tmp_path):
    model, held_out, _ = trained
    first = model.forecast(held_out.query, 2, CTX)
    # a second (history, horizon) gets its own network; the day-ahead one is untouched
    short = ForecastExamples(ForecastQuery(history=held_out.query.history[:, -48:], horizon=1,
                                           meta=held_out.query.meta, resolution=60), held_out.target[:, :1])
    model.fit_forecast(short, RunContext(seed=0, budget_steps=5))
    assert set(model._heads) == {(168, 24), (48, 1)}
    np.testing.assert_array_equal(model.forecast(held_out.query, 2, CTX), first)
    loaded = LSTMAttentionForecaster.load(model.save(tmp_path / "lstm.pt"))
    assert loaded.params == model.params and set(loaded._heads) == set(model._heads)
    np.testing.assert_array_equal(loaded.forecast(held_out.query, 2, CTX), first)
    np.testing.assert_array_equal(loaded.forecast(short.query, 2, CTX), model.forecast(short.query, 2, CTX))
    assert not LSTMAttentionForecaster.load(LSTMAttentionForecaster(**SMALL).save(tmp_path / "empty.pt"))._heads
