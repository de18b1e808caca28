"""Long-format meter readings: the common output of every loader.

A loader turns one dataset's real files into a :class:`Readings`: one row per (series, interval) with the
average power in kW over the interval that *starts* at ``timestamp``. Timestamps are timezone-naive and in
UTC for every dataset that records a time zone (LCL is GMT already; CER and CoSSMic are converted); the UCI
default household is recorded in local standard time without shifts and is kept as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.errors import DataError

READING_COLUMNS = ("series_id", "timestamp", "kw")


@dataclass
class Readings:
    """Regular-interval power readings of one or more series.

    Attributes:
        frame: DataFrame with columns ``series_id`` (str), ``timestamp`` (datetime64[ns], naive) and ``kw``
            (float64, NaN where a reading is missing), sorted by series then time, no duplicate keys.
        resolution: interval length in minutes (1, 15, 30, 60, ...).
        info: one row per series, indexed by ``series_id``; column ``category`` (str) always present
            (e.g. the LCL tariff group ``Std``/``ToU``; ``"all"`` when the dataset has none).
        name: dataset name, e.g. ``"lcl"``.
        sources: the files the readings came from (for provenance and error messages); a member of a zip
            archive is written ``archive.zip [member]``.
        notes: provenance notes of the loader, one line per stable key, for reports (e.g. ``"filter"``: the
            LCL tariff selection; ``"inverters"``: the WPuQ PV inverters read). They describe the loaded
            data, so code that derives profiles from readings carries them over to ``ProfileSet.notes``.
    """

    frame: pd.DataFrame
    resolution: int
    info: pd.DataFrame
    name: str
    sources: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_readings(self.frame, self.resolution, source=", ".join(self.sources) or self.name)
        if "category" not in self.info.columns:
            raise DataError("series info needs a 'category' column", path=self.name)
        bad = {k: v for k, v in self.notes.items() if not (isinstance(k, str) and isinstance(v, str))}
        if bad:
            raise DataError(f"notes must map strings to strings, got {bad}", path=self.name)
        missing = set(self.frame["series_id"].unique()) - set(self.info.index)
        if missing:
            raise DataError(f"series without info rows: {sorted(missing)[:5]}", path=self.name)

    @property
    def series_ids(self) -> list[str]:
        return list(self.info.index)


def validate_readings(frame: pd.DataFrame, resolution: int, *, source: str) -> None:
    """Check the long-format contract; raise :class:`DataError` naming ``source`` on any violation.

    NaN readings are allowed (they are missing data, handled by the segmenting completeness rule);
    negative readings, duplicate (series, timestamp) keys and timestamps off the resolution grid are not.
    """
    missing = [c for c in READING_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"readings lack columns {missing}; have {list(frame.columns)}", path=source)
    if not np.issubdtype(frame["timestamp"].dtype, np.datetime64):
        raise DataError(f"timestamp column has dtype {frame['timestamp'].dtype}, expected datetime64",
                        path=source)
    if resolution <= 0 or 1440 % resolution != 0:
        raise DataError(f"resolution {resolution} min does not divide a day", path=source)
    kw = frame["kw"].to_numpy(dtype=float)
    negative = np.flatnonzero(kw < 0)
    if negative.size:
        row = frame.iloc[negative[0]]
        raise DataError(f"{negative.size} negative readings, first {row['kw']} kW for series "
                        f"{row['series_id']} at {row['timestamp']}", path=source)
    # one int64 key per (series, minute): sorting it is much faster than DataFrame.duplicated on millions of rows
    codes, _ = pd.factorize(frame["series_id"])
    minutes = frame["timestamp"].to_numpy().astype("datetime64[m]").astype(np.int64)
    key = codes.astype(np.int64) * (1 << 36) + (minutes - minutes.min() if len(minutes) else minutes)
    ordered = np.sort(key)
    if len(ordered) and (ordered[1:] == ordered[:-1]).any():
        dup = frame.duplicated(["series_id", "timestamp"])
        row = frame[dup].iloc[0]
        raise DataError(f"{int(dup.sum())} duplicate timestamps, first series {row['series_id']} at "
                        f"{row['timestamp']}", path=source)
    ts = frame["timestamp"]
    off_grid = (ts - ts.dt.floor(f"{resolution}min")) != pd.Timedelta(0)
    if off_grid.any():
        row = frame[off_grid].iloc[0]
        raise DataError(f"timestamp {row['timestamp']} of series {row['series_id']} is not on the "
                        f"{resolution}-minute grid", path=source)
