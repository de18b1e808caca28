"""Resampling by averaging power onto a coarser regular grid (1 min -> 15 min -> 30 min -> 1 h)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.data.readings import Readings
from bench.errors import DataError


def _check_factor(source: int, target: int, where: str) -> int:
    if target < source or target % source != 0:
        raise DataError(f"cannot resample {source}-minute data to {target} minutes: the target must be a "
                        f"multiple of the source resolution", path=where)
    if 1440 % target != 0:
        raise DataError(f"resolution {target} min does not divide a day", path=where)
    return target // source


def resample_readings(readings: Readings, resolution: int) -> Readings:
    """Average power of ``readings`` over ``resolution``-minute intervals.

    A coarse interval gets a value only when every one of its fine intervals has a reading; otherwise it is
    NaN, so a coarse average never silently covers a gap.
    """
    factor = _check_factor(readings.resolution, resolution, readings.name)
    if factor == 1:
        return readings
    frame = readings.frame
    coarse = frame["timestamp"].dt.floor(f"{resolution}min")
    grouped = frame.assign(timestamp=coarse).groupby(["series_id", "timestamp"], sort=True)["kw"]
    # mean() skips NaN, so count the non-missing fine values and require all `factor` of them
    out = grouped.agg(["mean", "count"]).reset_index()
    out["kw"] = out["mean"].where(out["count"] == factor)
    return Readings(frame=out[["series_id", "timestamp", "kw"]], resolution=resolution, info=readings.info,
                    name=readings.name, sources=readings.sources, notes=dict(readings.notes))


def resample_profiles(profiles, resolution: int):
    """Average a :class:`ProfileSet` onto ``resolution`` minutes; a coarse step is observed only when all its
    fine steps are observed (unobserved coarse steps hold 0)."""
    from dataclasses import replace

    factor = _check_factor(profiles.resolution, resolution, profiles.name)
    if factor == 1:
        return profiles
    n, t = profiles.values.shape
    values = profiles.values.reshape(n, t // factor, factor).mean(axis=2)
    mask = profiles.mask.reshape(n, t // factor, factor).all(axis=2)
    return replace(profiles, values=np.where(mask, values, 0.0).astype(np.float32), mask=mask,
                   resolution=resolution, notes=dict(profiles.notes))


def infer_resolution(timestamps: pd.Series, where: str) -> int:
    """The most common positive spacing between consecutive timestamps, in whole minutes."""
    diffs = timestamps.sort_values().diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        raise DataError("need at least two distinct timestamps to infer the resolution", path=where)
    minutes = diffs.mode().iloc[0] / pd.Timedelta(minutes=1)
    if minutes != int(minutes) or minutes <= 0:
        raise DataError(f"timestamp spacing {diffs.mode().iloc[0]} is not a whole number of minutes", path=where)
    return int(minutes)
