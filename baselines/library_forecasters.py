"""Library-backed forecasters for the forecasting task (capability ``forecast``), all point forecasts ``[N, h]``.

* ``lightgbm-forecaster``: LightGBM gradient-boosted trees on lag and calendar features, trained in
  ``fit_forecast`` on the task's (history, target) windows (:class:`LightGBMForecaster`).
* ``autoets``: statsforecast's ``AutoETS`` fitted to each query window's history with a daily season
  (:class:`AutoETSForecaster`).
* ``mstl``: statsforecast's ``MSTL`` (STL decomposition with a daily, and from two weeks of history also a
  weekly, season; an ETS forecast of the deseasonalised series) fitted to each query window's history
  (:class:`MSTLForecaster`).

The libraries (extra ``meterbench[baselines]``) are imported inside the methods through
:func:`bench.extras.require`, so that the registry loads without them. Everything works in the task's scaled
space ([-1, 1]); there loads near zero are negative, so the libraries rule out multiplicative ETS components
on their own (they need positive series).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from baselines.forecasters import day_mean_index, seasonal_repeat
from bench.api import Forecaster, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet, steps_per_day
from bench.errors import ModelFitError
from bench.extras import require
from bench.persist import UnsafeFileError
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import ForecastExamples, ForecastQuery

DAYS_PER_WEEK = 7


def _steps_per_day(query: ForecastQuery, model: str) -> int:
    try:
        return steps_per_day(query.resolution)
    except ValueError as err:
        raise ValueError(f"{model}: {err}") from None


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _fraction(name: str, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")


# -- LightGBM ------------------------------------------------------------------------------------------------
def lag_feature_names(history_steps: int, steps_per_day: int, n_lags: int) -> list[str]:
    """Column names of :func:`lag_features` for histories of ``history_steps`` steps (the columns present depend
    on the history length: a day-ago lag needs a day of history, a week-ago lag a week)."""
    names = ["lead", "step_of_day", "weekday", "month"]
    names += [f"lag_{k}" for k in range(1, min(n_lags, history_steps) + 1)]
    names += ["window_day_mean"]
    if history_steps >= steps_per_day:
        names += ["day_before", "same_step_mean"]
    if history_steps >= DAYS_PER_WEEK * steps_per_day:
        names += ["week_before"]
    return names


def lag_features(query: ForecastQuery, n_lags: int) -> tuple[np.ndarray, list[str]]:
    """``(features [N * horizon, F] float64, names)``: one row per (window ``i``, forecast step ``j``), row
    ``i * horizon + j``, so that one model covers every step of the horizon with the step index as a feature.

    With ``H`` history steps, ``T`` steps a day and ``D = H // T`` whole history days, the columns are:

    * ``lead``: ``j``, the forecast step (0 = the origin);
    * ``step_of_day``, ``weekday`` (Monday = 0), ``month``: calendar of the forecast step's time, the window's
      ``meta["origin"]`` plus ``j`` steps;
    * ``lag_1 .. lag_n``: the last ``n = min(n_lags, H)`` history values, ``history[H - k]``;
    * ``window_day_mean``: the mean of the last day of history (of the whole history when shorter): its level;
    * ``day_before`` (``H >= T``): the latest value at the same time of day, ``history[H - T + (j mod T)]``
      (one day before the step while ``j < T``);
    * ``same_step_mean`` (``H >= T``): the mean of ``history[H - k T + (j mod T)]`` over ``k = 1..D``;
    * ``week_before`` (``H >= 7 T``): ``history[H - 7 T + (j mod 7 T)]``, the same step one week earlier.
    """
    _positive_int("n_lags", n_lags)
    history = np.asarray(query.history, dtype=np.float64)
    n, length = history.shape
    horizon = int(query.horizon)
    spd = _steps_per_day(query, "lightgbm-forecaster")
    lead = np.arange(horizon)
    origins = pd.DatetimeIndex(pd.to_datetime(query.meta["origin"]))
    times = origins.repeat(horizon) + pd.to_timedelta(np.tile(lead * query.resolution, n), unit="min")
    minute_of_day = times.hour.to_numpy() * 60 + times.minute.to_numpy()

    def per_window(values: np.ndarray) -> np.ndarray:  # [N] -> [N * horizon], constant over the horizon
        return np.repeat(values, horizon)

    columns = [np.tile(lead, n), minute_of_day // query.resolution, times.dayofweek.to_numpy(),
               times.month.to_numpy()]
    columns += [per_window(history[:, length - k]) for k in range(1, min(n_lags, length) + 1)]
    columns.append(per_window(history[:, -min(spd, length):].mean(axis=1)))
    if length >= spd:
        columns.append(seasonal_repeat(history, spd, horizon).astype(np.float64).reshape(-1))
        columns.append(history[:, day_mean_index(length, horizon, spd)].mean(axis=1).reshape(-1))
    if length >= DAYS_PER_WEEK * spd:
        columns.append(seasonal_repeat(history, DAYS_PER_WEEK * spd, horizon).astype(np.float64).reshape(-1))
    names = lag_feature_names(length, spd, n_lags)
    features = np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1) if n else \
        np.zeros((0, len(names)))
    return features, names


@dataclass(frozen=True)
class LightGBMForecasterParams(Params):
    """Hyper-parameters of :class:`LightGBMForecaster` (LightGBM's names).

    Attributes:
        n_lags: history values right before the origin used as features.
        num_boost_round: boosting rounds (trees).
        learning_rate, num_leaves, min_data_in_leaf, lambda_l2: LightGBM's tree and shrinkage settings.
        feature_fraction, bagging_fraction: column and row subsampling per tree (seeded; 1 = none).
        objective: LightGBM's regression objective (``regression`` is the squared error).
    """

    n_lags: int = 4
    num_boost_round: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 20
    lambda_l2: float = 0.0
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.8
    objective: Literal["regression", "regression_l1", "huber"] = "regression"

    def __post_init__(self) -> None:
        _positive_int("n_lags", self.n_lags)
        _positive_int("num_boost_round", self.num_boost_round)
        _positive_int("min_data_in_leaf", self.min_data_in_leaf)
        _positive_int("num_leaves", self.num_leaves)
        if self.num_leaves < 2:
            raise ValueError(f"num_leaves must be at least 2, got {self.num_leaves}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if not self.lambda_l2 >= 0:
            raise ValueError(f"lambda_l2 must be a number >= 0, got {self.lambda_l2!r}")
        _fraction("feature_fraction", self.feature_fraction)
        _fraction("bagging_fraction", self.bagging_fraction)


@register_model("lightgbm-forecaster")
class LightGBMForecaster(Model, Forecaster):
    """LightGBM on lag and calendar features, one model per (history length, horizon) (point forecast).

    Fills the unified paper's A1-A3 role (task-specific load forecasters, Table II) with a well-kept library:
    a gradient-boosted tree regressor, not a reproduction of those networks.

    Model. Every (window, forecast step) pair is one training row (:func:`lag_features`: the step index, the
    step's time of day, weekday and month, the last ``n_lags`` history values, the last day's mean, the same time
    of day one day and one week earlier and its mean over the history days); one booster per (history length,
    horizon) predicts the scaled load of that step, trained in ``fit_forecast`` on the task's training windows
    (``fit`` learns nothing). The step index as a feature makes one model cover the whole horizon (a direct
    multi-step forecast) instead of one model per step.

    Determinism: ``seed`` from ``ctx.int_seed(Stream.MODEL_FIT, bits=31)`` (LightGBM derives its bagging and
    feature-subsampling seeds from it), ``deterministic=True``, ``force_row_wise=True`` and ``num_threads=1``.
    State: each booster's ``model_to_string()`` text, rebuilt with ``lightgbm.Booster(model_str=...)``; the fitted
    model forecasts with a booster rebuilt from that text too, so that a loaded model forecasts bit for bit the
    same. Profiles: ``test`` 50 small trees, ``quick`` 300 trees of 31 leaves, ``paper`` (no paper gives
    LightGBM settings: a larger budget) 1000 trees of 63 leaves at learning rate 0.03.
    """

    Params = LightGBMForecasterParams
    profiles = {"test": {"num_boost_round": 50, "num_leaves": 15, "min_data_in_leaf": 10},
                "paper": {"num_boost_round": 1000, "num_leaves": 63, "learning_rate": 0.03}}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # one booster per (history steps, horizon), with the steps per day its features were built for
        self._boosters: dict[tuple[int, int], Any] = {}
        self._texts: dict[tuple[int, int], str] = {}
        self._steps_per_day: dict[tuple[int, int], int] = {}

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Forget any trained booster (the forecaster learns from the windows of ``fit_forecast`` alone)."""
        self._boosters, self._texts, self._steps_per_day = {}, {}, {}

    def _lgb_params(self, seed: int) -> dict:
        return {"objective": self.objective, "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "min_data_in_leaf": self.min_data_in_leaf, "lambda_l2": self.lambda_l2,
                "feature_fraction": self.feature_fraction, "bagging_fraction": self.bagging_fraction,
                # bagging only runs with a positive frequency; 0 keeps every row in every tree
                "bagging_freq": 1 if self.bagging_fraction < 1.0 else 0,
                "seed": seed, "deterministic": True, "force_row_wise": True, "num_threads": 1,
                "verbosity": -1}

    def fit_forecast(self, examples: ForecastExamples, ctx: RunContext) -> None:
        """Train a booster for ``examples``' (history length, horizon) on its windows.

        Raises:
            ValueError: no training window, or a non-finite target.
            ModelFitError: LightGBM failed.
        """
        lgb = require("lightgbm", model="lightgbm-forecaster")
        query = examples.query
        if len(query) == 0:
            raise ValueError("lightgbm-forecaster: examples hold no training window")
        target = np.asarray(examples.target, dtype=np.float64).reshape(-1)  # row i * horizon + j, as features
        if not np.isfinite(target).all():
            raise ValueError("lightgbm-forecaster: the training targets must be finite")
        features, names = lag_features(query, self.n_lags)
        params = self._lgb_params(ctx.int_seed(Stream.MODEL_FIT, bits=31))
        try:
            data = lgb.Dataset(features, label=target, feature_name=names, params={"verbosity": -1})
            booster = lgb.train(params, data, num_boost_round=self.num_boost_round)
            text = booster.model_to_string()
            rebuilt = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as err:
            raise ModelFitError(f"lightgbm-forecaster: LightGBM failed: {err}") from err
        key = (query.history.shape[1], query.horizon)
        self._boosters[key], self._texts[key] = rebuilt, text
        self._steps_per_day[key] = _steps_per_day(query, "lightgbm-forecaster")

    def forecast(self, query: ForecastQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[N, horizon]`` point forecasts in the scaled space (``n_samples`` is not used).

        Raises:
            RuntimeError: no booster was trained for this (history length, horizon), or it was trained at
                another resolution.
        """
        key = (query.history.shape[1], query.horizon)
        if key not in self._boosters:
            raise RuntimeError(f"lightgbm-forecaster: no booster for histories of {key[0]} steps and horizon "
                               f"{key[1]}; call fit_forecast with such windows first (trained: "
                               f"{sorted(self._boosters)})")
        spd = _steps_per_day(query, "lightgbm-forecaster")
        if spd != self._steps_per_day[key]:
            raise RuntimeError(f"lightgbm-forecaster: the booster for {key} was trained on {self._steps_per_day[key]} "
                               f"steps a day, the query has {spd}")
        features, _ = lag_features(query, self.n_lags)
        if len(features) == 0:
            return np.zeros((0, query.horizon), dtype=np.float32)
        out = self._boosters[key].predict(features, num_threads=1)
        return np.asarray(out, dtype=np.float64).reshape(len(query), query.horizon).astype(np.float32)

    def diagnostics(self) -> dict[str, float]:
        """Trees of each booster, under ``trees_<history steps>x<horizon>``."""
        return {f"trees_{h}x{k}": float(b.num_trees()) for (h, k), b in self._boosters.items()}

    def get_state(self) -> dict:
        """Each booster's ``model_to_string()`` text with the shape it was trained for, under
        ``"<history steps>x<horizon>"``."""
        return {"boosters": {f"{h}x{k}": {"history_steps": h, "horizon": k,
                                          "steps_per_day": self._steps_per_day[(h, k)], "model": text}
                             for (h, k), text in self._texts.items()}}

    def set_state(self, state: dict) -> None:
        """Rebuild every saved booster from its text with ``lightgbm.Booster(model_str=...)``."""
        self._boosters, self._texts, self._steps_per_day = {}, {}, {}
        saved = state.get("boosters", {})
        if not saved:
            return
        lgb = require("lightgbm", model="lightgbm-forecaster")
        for name, entry in saved.items():
            if not isinstance(entry, dict) or {"history_steps", "horizon", "steps_per_day", "model"} - set(entry):
                raise UnsafeFileError(f"lightgbm-forecaster: saved booster {name!r} lacks its shape or text")
            key = (int(entry["history_steps"]), int(entry["horizon"]))
            self._boosters[key] = lgb.Booster(model_str=str(entry["model"]))
            self._texts[key] = str(entry["model"])
            self._steps_per_day[key] = int(entry["steps_per_day"])


# -- statsforecast ---------------------------------------------------------------------------------------------
_ETS_ERROR, _ETS_TREND, _ETS_SEASON = "AMZ", "NAMZ", "NAMZ"


def _check_ets_spec(name: str, spec: str, *, seasonal: bool) -> None:
    """An ETS model string of statsforecast: error (A, M, Z), trend (N, A, M, Z), season (N, A, M, Z; only N
    when ``seasonal`` is False)."""
    ok = (isinstance(spec, str) and len(spec) == 3 and spec[0] in _ETS_ERROR and spec[1] in _ETS_TREND
          and spec[2] in (_ETS_SEASON if seasonal else "N"))
    if not ok:
        season = "N, A, M or Z" if seasonal else "N"
        raise ValueError(f"{name} must be three letters: error A, M or Z, trend N, A, M or Z, season {season} "
                         f"(Z = chosen by AICc), got {spec!r}")


class _StatsForecastForecaster(Model, Forecaster):
    """Common part of the statsforecast wrappers: one library model fitted to each query window's history,
    nothing fitted beforehand (no ``fit_forecast``, no state to save)."""

    model_name = ""  # the registered name, for messages

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Nothing to learn across windows: each forecast fits the window's own history."""

    def seasons(self, history_steps: int, steps_per_day: int) -> list[int]:
        """The seasonal periods (in steps) fitted to a history of ``history_steps`` steps."""
        return [steps_per_day]

    def library_model(self, models: Any, seasons: list[int]) -> Any:
        """A fresh statsforecast model for ``seasons`` (``models`` is ``statsforecast.models``)."""
        raise NotImplementedError

    def forecast(self, query: ForecastQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[N, horizon]`` point forecasts in the scaled space: the library model fitted to each window's
        history, then its mean forecast over the horizon (``n_samples`` is not used).

        Raises:
            ValueError: a history shorter than two days (a daily season needs two whole cycles).
            ModelFitError: the library failed on a window or forecast non-finite values.
        """
        models = require("statsforecast.models", model=self.model_name)
        spd = _steps_per_day(query, self.model_name)
        history = np.asarray(query.history, dtype=np.float64)
        if history.shape[1] < 2 * spd:
            raise ValueError(f"{self.model_name}: a history of {history.shape[1]} steps is shorter than two days "
                             f"({2 * spd} steps), too short for a daily season")
        seasons = self.seasons(history.shape[1], spd)
        out = np.empty((len(query), query.horizon), dtype=np.float64)
        for i, series in enumerate(history):
            try:
                out[i] = self.library_model(models, seasons).forecast(y=series, h=int(query.horizon))["mean"]
            except Exception as err:  # the library raises bare Exceptions and ValueErrors alike on a failed fit
                raise ModelFitError(f"{self.model_name}: the fit of window {i} failed: {err}") from err
            if not np.isfinite(out[i]).all():
                raise ModelFitError(f"{self.model_name}: non-finite forecast for window {i}")
        return out.astype(np.float32)


@dataclass(frozen=True)
class AutoETSParams(Params):
    """Hyper-parameters of :class:`AutoETSForecaster` (statsforecast's names).

    Attributes:
        model: the ETS model string, error / trend / season from N (none), A (additive), M (multiplicative),
            Z (chosen by AICc); the season is daily.
        damped: damped trend (None: both tried when the trend is chosen).
    """

    model: str = "ZZZ"
    damped: bool | None = None

    def __post_init__(self) -> None:
        _check_ets_spec("model", self.model, seasonal=True)


@register_model("autoets")
class AutoETSForecaster(_StatsForecastForecaster):
    """statsforecast's AutoETS with a daily season, fitted to each window's history (point forecast).

    Fills the unified paper's A1-A3 role (task-specific load forecasters, Table II) with a classical
    statistical reference. Each query window's history is fitted on its own (exponential smoothing with a
    season of one day, ``steps_per_day`` steps; the error, trend and season types chosen by AICc for ``ZZZ``)
    and forecast over the horizon; nothing is learnt across windows, and nothing is saved. ETS holds one
    season only, so there is no weekly one (``mstl`` has both). About 0.1 s a window at 30 min with seven
    history days for ``ZZZ`` (0.03 s for the fixed ``ANA`` of the ``test`` profile).
    """

    Params = AutoETSParams
    profiles = {"test": {"model": "ANA"}, "paper": {}}
    model_name = "autoets"

    def library_model(self, models: Any, seasons: list[int]) -> Any:
        """``AutoETS(season_length=<one day>, model=..., damped=...)``."""
        return models.AutoETS(season_length=seasons[0], model=self.model, damped=self.damped)


@dataclass(frozen=True)
class MSTLParams(Params):
    """Hyper-parameters of :class:`MSTLForecaster`.

    Attributes:
        weekly: add a weekly season when the history holds at least two weeks.
        trend_model: the ETS model string of the forecaster of the deseasonalised series (season N;
            statsforecast's default ``ZZN``).
    """

    weekly: bool = True
    trend_model: str = "ZZN"

    def __post_init__(self) -> None:
        _check_ets_spec("trend_model", self.trend_model, seasonal=False)


@register_model("mstl")
class MSTLForecaster(_StatsForecastForecaster):
    """statsforecast's MSTL (daily and weekly STL seasons, ETS trend), fitted to each window's history (point).

    Fills the unified paper's A1-A3 role (task-specific load forecasters, Table II) with a classical
    decomposition reference. Each query window's history is decomposed by MSTL into a daily season
    (``steps_per_day``), a weekly one (``7 * steps_per_day``, when ``weekly`` and the history holds at least two
    weeks) and a trend + remainder that an AutoETS of ``trend_model`` forecasts; the forecast adds the seasons
    back. Nothing is learnt across windows, and nothing is saved. About 0.02 s a window at 30 min with seven
    history days (daily season only), 0.3 s with fourteen (both seasons).
    """

    Params = MSTLParams
    profiles = {"test": {}, "paper": {}}
    model_name = "mstl"

    def seasons(self, history_steps: int, steps_per_day: int) -> list[int]:
        """``[T]``, plus ``7 T`` when ``weekly`` and the history holds two weeks (``14 T`` steps)."""
        week = DAYS_PER_WEEK * steps_per_day
        return [steps_per_day, week] if self.weekly and history_steps >= 2 * week else [steps_per_day]

    def library_model(self, models: Any, seasons: list[int]) -> Any:
        """``MSTL(season_length=seasons, trend_forecaster=AutoETS(model=trend_model))``."""
        return models.MSTL(season_length=seasons, trend_forecaster=models.AutoETS(model=self.trend_model))
