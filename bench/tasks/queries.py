"""What a model is given when a task asks it to impute or to super-resolve (the inputs of ``impute`` and
``super_resolve``). All values are in the task's scaled space ([-1, 1] fitted on train); because that scaling
is affine, the interval mean of scaled values is the scaled interval mean, so coarse profiles stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.data.profileset import MINUTES_PER_DAY, steps_per_day


@dataclass(frozen=True)
class ImputationQuery:
    """Profiles with missing steps to fill in.

    ``values [N, T]`` float32 with NaN wherever a step is not observed; ``observed [N, T]`` True where the
    value is given; ``valid [N, T]`` False on the padding of short months (never observed, never scored);
    ``meta`` one row per profile (``series_id, start, month, weekday, days, category``); ``resolution`` in
    minutes; ``history [N, T]`` (optional) the same series' profile seven days earlier, NaN where unknown
    (set for daily profiles; ``None`` for monthly ones, whose previous week lies inside the profile itself).
    A model returns ``[S, N, T]`` samples that keep the observed values.
    """

    values: np.ndarray
    observed: np.ndarray
    valid: np.ndarray
    meta: pd.DataFrame
    resolution: int
    history: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = self.values.shape
        if self.values.ndim != 2 or self.observed.shape != shape or self.valid.shape != shape:
            raise ValueError(f"values, observed and valid must share a 2-D shape, got {shape}, "
                             f"{self.observed.shape}, {self.valid.shape}")
        if (self.observed & ~self.valid).any():
            raise ValueError("a padding step cannot be observed")
        if not np.isfinite(self.values[self.observed]).all():
            raise ValueError("observed values must be finite")
        if len(self.meta) != shape[0]:
            raise ValueError(f"meta has {len(self.meta)} rows for {shape[0]} profiles")
        if self.history is not None:
            history = np.asarray(self.history)
            if history.shape != shape or not np.issubdtype(history.dtype, np.floating):
                raise ValueError(f"history must be a float array of shape {shape} (NaN where unknown), got "
                                 f"{history.dtype} of shape {history.shape}")
            if np.isinf(history).any():
                raise ValueError("history holds infinite values (use NaN for unknown steps)")

    def __len__(self) -> int:
        return self.values.shape[0]


@dataclass(frozen=True)
class SuperResolutionQuery:
    """Coarse profiles to refine by an integer ``factor``.

    ``low [N, T // factor]`` holds interval means of the unseen high-resolution profiles; ``valid [N, T]`` is the
    high-resolution valid-step mask (False on month padding); ``resolution`` is the target (high) resolution in
    minutes. A model returns ``[S, N, T]`` samples whose interval means should reproduce ``low``.
    """

    low: np.ndarray
    factor: int
    valid: np.ndarray
    meta: pd.DataFrame
    resolution: int

    def __post_init__(self) -> None:
        if self.factor < 2 or self.low.ndim != 2 or self.valid.ndim != 2:
            raise ValueError("factor must be >= 2 and low, valid 2-D arrays")
        if self.valid.shape != (self.low.shape[0], self.low.shape[1] * self.factor):
            raise ValueError(f"valid has shape {self.valid.shape}; expected "
                             f"{(self.low.shape[0], self.low.shape[1] * self.factor)} for factor {self.factor}")
        if len(self.meta) != self.low.shape[0]:
            raise ValueError(f"meta has {len(self.meta)} rows for {self.low.shape[0]} profiles")

    @property
    def length(self) -> int:
        return self.valid.shape[1]

    def __len__(self) -> int:
        return self.low.shape[0]


def calendar_features(times: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """``[N, 6]`` float32 cyclic calendar encoding of timestamps: sin/cos of the time of day, of the weekday
    and of the day of the year. Forecasters use it for the time their forecast starts at."""
    stamps = pd.DatetimeIndex(pd.to_datetime(np.asarray(times)))
    day = (stamps.hour * 60 + stamps.minute).to_numpy(dtype=np.float64) / MINUTES_PER_DAY
    week = stamps.dayofweek.to_numpy(dtype=np.float64) / 7.0
    year = (stamps.dayofyear.to_numpy(dtype=np.float64) - 1.0) / 365.25
    angles = 2 * np.pi * np.stack([day, week, year], axis=1)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


@dataclass(frozen=True)
class ForecastQuery:
    """Load histories to forecast from.

    ``history [N, H]`` float32, complete (no NaN), in the task's scaled space, oldest step first; the forecast
    covers the ``horizon`` steps right after the last history step. ``meta`` has one row per window with
    ``series_id`` and ``origin`` (timestamp of the first forecast step); ``resolution`` in minutes. A model
    returns ``[S, N, horizon]`` samples (a probabilistic forecast) or ``[N, horizon]`` (a point forecast).
    """

    history: np.ndarray
    horizon: int
    meta: pd.DataFrame
    resolution: int

    def __post_init__(self) -> None:
        if self.history.ndim != 2:
            raise ValueError(f"history must be 2-D [N, H], got shape {self.history.shape}")
        if isinstance(self.horizon, bool) or int(self.horizon) < 1:
            raise ValueError(f"horizon must be a positive integer, got {self.horizon!r}")
        if not np.isfinite(self.history).all():
            raise ValueError("history must be finite (forecast windows are built from complete days)")
        if len(self.meta) != self.history.shape[0]:
            raise ValueError(f"meta has {len(self.meta)} rows for {self.history.shape[0]} windows")
        if "origin" not in self.meta.columns or "series_id" not in self.meta.columns:
            raise ValueError("meta must have the columns 'series_id' and 'origin'")

    @property
    def steps_per_day(self) -> int:
        """Readings per day at the query's resolution."""
        return steps_per_day(self.resolution)

    def calendar(self) -> np.ndarray:
        """:func:`calendar_features` of the forecast origins, ``[N, 6]``."""
        return calendar_features(self.meta["origin"])

    def __len__(self) -> int:
        return self.history.shape[0]


@dataclass(frozen=True)
class ForecastExamples:
    """Training windows for a forecaster: ``query`` (the histories before target days of the training part) and
    the true ``target [N, horizon]`` (scaled) that followed each history."""

    query: ForecastQuery
    target: np.ndarray

    def __post_init__(self) -> None:
        expected = (len(self.query), self.query.horizon)
        if self.target.shape != expected:
            raise ValueError(f"target has shape {self.target.shape}, expected {expected}")


@dataclass(frozen=True)
class DetectionQuery:
    """Profiles to score for anomalies: ``values [N, T]`` float32 in the task's scaled space (padding 0),
    ``valid [N, T]`` (False on month padding), ``meta`` one row per profile, ``resolution`` in minutes, and
    optionally ``history [N, D * T]``: the same household's ``D`` complete days before each profile (scaled,
    oldest first, never attacked), so that a detector can judge a day against the customer's own behaviour.
    A model returns ``[N]`` anomaly scores, higher = more likely attacked."""

    values: np.ndarray
    valid: np.ndarray
    meta: pd.DataFrame
    resolution: int
    history: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.valid.shape != self.values.shape:
            raise ValueError(f"values and valid must share a 2-D shape, got {self.values.shape}, {self.valid.shape}")
        if not np.isfinite(self.values[self.valid]).all():
            raise ValueError("values must be finite on valid steps")
        if len(self.meta) != self.values.shape[0]:
            raise ValueError(f"meta has {len(self.meta)} rows for {self.values.shape[0]} profiles")
        if self.history is not None:
            history = np.asarray(self.history)
            n, length = self.values.shape
            if history.ndim != 2 or history.shape[0] != n or history.shape[1] % length or not history.shape[1]:
                raise ValueError(f"history must have shape [N, D * T] = [{n}, D * {length}], got {history.shape}")
            if not np.isfinite(history).all():
                raise ValueError("history must be finite (it is built from complete days)")

    @property
    def history_days(self) -> int:
        """Number of context days in ``history`` (0 without history)."""
        return 0 if self.history is None else self.history.shape[1] // self.values.shape[1]

    def __len__(self) -> int:
        return self.values.shape[0]


@dataclass(frozen=True)
class DetectionExamples:
    """Labelled training profiles for a detector: ``query`` and ``labels [N]`` bool (True = attacked)."""

    query: DetectionQuery
    labels: np.ndarray

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.dtype != np.bool_ or labels.shape != (len(self.query),):
            raise ValueError(f"labels must be a boolean array of shape {(len(self.query),)}, got "
                             f"{labels.dtype} {labels.shape}")
