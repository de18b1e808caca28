"""Forecasting windows cut from daily load profiles.

A window of series ``s`` ending at day ``d`` with ``n`` history days exists when the days ``d - n .. d`` of
that series are all present in the set (consecutive calendar days by ``meta.start``) and complete (mask all
True). Windows are described by the row indices of their days (:func:`consecutive_days`); :func:`day_ahead`
and :func:`hour_ahead` turn those rows into ``(history, target, meta)`` arrays:

* day-ahead: history = the ``n`` days before the target day, concatenated; target = the whole target day;
  ``origin`` = the start of the target day.
* hour-ahead: an origin at a whole hour of the target day (drawn uniformly among the hours whose horizon
  fits in that day); history = the ``n * T`` steps right before the origin (they span the previous days and
  the start of the target day); target = the ``horizon_steps`` steps from the origin.

Only the values of complete days are used, so histories and targets never contain a missing step.

A day's history is found in the *full* profile set by :class:`HistoryIndex`, wherever a split put the preceding
days: the forecasting and anomaly tasks take their targets / queried days from one part of a split and their
inputs from any part (a history is an input known at forecast time, never a target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.data.profileset import MINUTES_PER_DAY, ProfileSet, steps_per_day

_DAY = pd.Timedelta(days=1)


def _check_daily(profiles: ProfileSet) -> None:
    if profiles.period != "day":
        raise ValueError(f"profiles: forecasting windows need daily profiles (period 'day'), got period "
                         f"{profiles.period!r}")
    # steps_per_day refuses a resolution that does not divide the day
    if profiles.length != steps_per_day(profiles.resolution):
        raise ValueError(f"profiles: a daily profile must hold {MINUTES_PER_DAY} / resolution steps, got "
                         f"{profiles.length} steps at {profiles.resolution} min")


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _day_numbers(starts: pd.Series) -> np.ndarray:
    """Calendar day of each start as an integer (days since 1970-01-01, in the timestamps' own local time),
    so that a 23- or 25-hour day around a DST change still counts as one day."""
    stamps = pd.to_datetime(starts)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return ((stamps.dt.normalize() - pd.Timestamp("1970-01-01")) // _DAY).to_numpy(dtype=np.int64)


def consecutive_days(profiles: ProfileSet, n_days: int) -> np.ndarray:
    """``[W, n_days]`` int64 row indices of every run of ``n_days`` consecutive complete days of one series.

    Rows are ordered by series (sorted ``series_id``) then by the date of the first day; within a window the
    days are in time order. A day that is absent or incomplete (any step unobserved) breaks a run; a duplicate
    date does too. Returns an empty ``[0, n_days]`` array when no window exists.

    Raises:
        ValueError: not daily profiles, or ``n_days`` not a positive integer.
    """
    _check_daily(profiles)
    n_days = _check_positive("n_days", n_days)
    n = len(profiles)
    if n == 0:
        return np.zeros((0, n_days), dtype=np.int64)
    series = profiles.meta["series_id"].astype(str).to_numpy()
    days = _day_numbers(profiles.meta["start"])
    order = np.lexsort((days, series))  # by series, then by date
    series, days = series[order], days[order]
    complete = profiles.mask.all(axis=1)[order]
    # link[i]: sorted row i directly follows row i - 1 (same series, the next calendar day)
    link = np.zeros(n, dtype=bool)
    link[1:] = (series[1:] == series[:-1]) & (days[1:] - days[:-1] == 1)
    # a window ends at sorted position j when rows j-n+1..j are complete and linked to their predecessors
    bad_day = np.concatenate([[0], np.cumsum(~complete)])
    bad_link = np.concatenate([[0], np.cumsum(~link)])
    ends = np.arange(n_days - 1, n)
    first = ends - n_days + 1
    ok = (bad_day[ends + 1] - bad_day[first] == 0) & (bad_link[ends + 1] - bad_link[first + 1] == 0)
    ends = ends[ok]
    positions = ends[:, None] - np.arange(n_days - 1, -1, -1)[None, :]
    return order[positions].astype(np.int64).reshape(-1, n_days)


def _check_rows(profiles: ProfileSet, index_rows: np.ndarray, n_history_days: int) -> np.ndarray:
    _check_daily(profiles)
    n_history_days = _check_positive("n_history_days", n_history_days)
    rows = np.asarray(index_rows)
    if rows.ndim != 2 or rows.shape[1] != n_history_days + 1 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"index_rows must be an integer array [W, n_history_days + 1] = [W, "
                         f"{n_history_days + 1}] (from consecutive_days), got {rows.dtype} {rows.shape}")
    if rows.size and (rows.min() < 0 or rows.max() >= len(profiles)):
        raise ValueError(f"index_rows holds row indices outside [0, {len(profiles)})")
    if rows.size and not profiles.mask[rows].all():
        raise ValueError("index_rows selects incomplete days (every day of a window must be fully observed)")
    return rows


def _window_meta(profiles: ProfileSet, target_rows: np.ndarray, offsets: pd.TimedeltaIndex) -> pd.DataFrame:
    meta = profiles.meta
    starts = pd.to_datetime(meta["start"]).to_numpy()[target_rows]
    return pd.DataFrame({"series_id": meta["series_id"].to_numpy()[target_rows],
                         "origin": pd.DatetimeIndex(starts) + offsets})


def day_ahead(profiles: ProfileSet, index_rows: np.ndarray, n_history_days: int
              ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Day-ahead windows: ``history [W, n_history_days * T]``, ``target [W, T]`` (float32, the set's units)
    and ``meta`` (``series_id``, ``origin`` = start of the target day).

    ``index_rows [W, n_history_days + 1]`` are the rows of each window's days (oldest first, target day
    last), as :func:`consecutive_days` gives them.
    """
    rows = _check_rows(profiles, index_rows, n_history_days)
    length = profiles.length
    values = profiles.values
    history = values[rows[:, :-1]].reshape(len(rows), n_history_days * length).astype(np.float32)
    target = values[rows[:, -1]].astype(np.float32)
    meta = _window_meta(profiles, rows[:, -1], pd.to_timedelta(np.zeros(len(rows)), unit="min"))
    return history, target, meta


def hour_ahead(profiles: ProfileSet, index_rows: np.ndarray, n_history_days: int, horizon_steps: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Hour-ahead windows: for each window an origin at a whole hour of its target day, drawn uniformly by
    ``rng`` among the hours whose ``horizon_steps`` steps end within the day; ``history [W, n_history_days *
    T]`` = the steps right before the origin, ``target [W, horizon_steps]`` = the steps from the origin on,
    ``meta`` (``series_id``, ``origin``).

    Raises:
        ValueError: the resolution does not divide 60 minutes, or the horizon is longer than a day.
    """
    rows = _check_rows(profiles, index_rows, n_history_days)
    horizon_steps = _check_positive("horizon_steps", horizon_steps)
    resolution, length = profiles.resolution, profiles.length
    if 60 % resolution != 0:
        raise ValueError(f"hour-ahead origins need a resolution that divides 60 minutes, got {resolution} min")
    if horizon_steps > length:
        raise ValueError(f"horizon_steps={horizon_steps} is longer than a day ({length} steps)")
    per_hour = 60 // resolution
    n_hours = (length - horizon_steps) // per_hour + 1  # hours h with h * per_hour + horizon <= T
    hours = rng.integers(0, n_hours, size=len(rows))
    span = n_history_days * length
    full = profiles.values[rows].reshape(len(rows), (n_history_days + 1) * length)
    origin = span + hours * per_hour  # position of the first forecast step in ``full``
    take = origin[:, None] + np.arange(-span, horizon_steps)[None, :]
    window = np.take_along_axis(full, take, axis=1).astype(np.float32)
    meta = _window_meta(profiles, rows[:, -1], pd.to_timedelta(hours * 60, unit="min"))
    return window[:, :span], window[:, span:], meta


def profile_keys(meta: pd.DataFrame) -> pd.MultiIndex:
    """``(series_id as text, start)`` of every profile: how a profile of a split part is found in the full set."""
    return pd.MultiIndex.from_arrays([meta["series_id"].astype(str).to_numpy(),
                                      pd.to_datetime(meta["start"]).to_numpy()])


@dataclass(frozen=True)
class HistoryIndex:
    """Where the history of a day lies in the full profile set: one entry per day that ends a run of
    ``history_days + 1`` consecutive complete days of its household."""

    keys: pd.MultiIndex  # (series_id, start) of each such last day, unique
    windows: np.ndarray  # [W, history_days + 1] rows of the full set: the preceding days oldest first, then the day

    @property
    def rows(self) -> np.ndarray:
        """``[W, history_days]`` rows of the preceding days in the full set, oldest first."""
        return self.windows[:, :-1]

    @classmethod
    def build(cls, profiles: ProfileSet, history_days: int) -> "HistoryIndex":
        """Index of every day of ``profiles`` with ``history_days`` complete days before it. A (series, start)
        that occurs twice is ambiguous and left out."""
        windows = consecutive_days(profiles, history_days + 1)
        keys = profile_keys(profiles.meta)
        unique = ~keys.duplicated(keep=False)
        windows = windows[unique[windows[:, -1]]]
        return cls(keys=keys[windows[:, -1]], windows=windows)

    def locate(self, profiles: ProfileSet) -> np.ndarray:
        """``[len(profiles)]`` int: each profile's entry in the index, -1 for a day without full history."""
        return self.keys.get_indexer(profile_keys(profiles.meta))


def gather_windows(profiles: ProfileSet, windows: np.ndarray, transform) -> tuple[ProfileSet, np.ndarray]:
    """The days ``windows`` (rows of the full set ``profiles``, any shape) as a compact set: ``(subset with
    ``transform`` applied to its values, windows re-indexed into it)``. Only the days used are copied and
    transformed, so a window function (:func:`day_ahead`, :func:`hour_ahead`) can run on a large data set."""
    windows = np.asarray(windows, dtype=np.int64)
    used = np.unique(windows)
    subset = profiles.subset(used)
    subset = subset.with_values(np.asarray(transform(subset.values), dtype=np.float32))
    return subset, np.searchsorted(used, windows).astype(np.int64)
