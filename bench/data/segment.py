"""Cut long readings into daily or monthly profiles with an explicit completeness rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.data.profileset import ProfileSet
from bench.data.readings import Readings
from bench.errors import DataError

MAX_MONTH_DAYS = 31


@dataclass(frozen=True)
class Completeness:
    """Which segments are kept.

    ``min_observed`` is the fraction of a segment's valid steps that must have a reading (1.0 = only complete
    days or months, the EnergyDiff rule). Kept segments with gaps carry ``mask=False`` on the missing steps.
    """

    min_observed: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_observed <= 1.0:
            raise ValueError(f"min_observed must be in (0, 1], got {self.min_observed}")


def segment(readings: Readings, period: str = "day", completeness: Completeness = Completeness()) -> ProfileSet:
    """Cut ``readings`` into calendar-day or calendar-month profiles.

    Days are ``1440 / resolution`` steps long. Months are padded to 31 days: steps past the month's last day
    have ``mask=False`` (the valid-step mask), and ``meta.days`` holds the month length. A segment is kept when
    at least ``completeness.min_observed`` of its valid steps have a reading; missing steps hold 0 with
    ``mask=False``. Raises :class:`DataError` when no segment survives.
    """
    if period not in ("day", "month"):
        raise ValueError(f"period must be 'day' or 'month', not {period!r}")
    res = readings.resolution
    spd = 1440 // res
    frame = readings.frame.dropna(subset=["kw"])
    ts = frame["timestamp"]
    day = ts.dt.normalize()
    if period == "day":
        seg_start = day
        step = ((ts - day) // pd.Timedelta(minutes=res)).to_numpy()
        length = spd
    else:
        seg_start = ts.dt.to_period("M").dt.start_time
        step = ((ts - seg_start) // pd.Timedelta(minutes=res)).to_numpy()
        length = spd * MAX_MONTH_DAYS
    keys = pd.DataFrame({"series_id": frame["series_id"].to_numpy(), "start": seg_start.to_numpy()})
    group = keys.groupby(["series_id", "start"], sort=True).ngroup().to_numpy()
    starts = keys.drop_duplicates().sort_values(["series_id", "start"]).reset_index(drop=True)
    n = len(starts)
    values = np.zeros((n, length), dtype=np.float32)
    mask = np.zeros((n, length), dtype=bool)
    values[group, step] = frame["kw"].to_numpy(dtype=np.float32)
    mask[group, step] = True

    start_ts = pd.to_datetime(starts["start"])
    days = start_ts.dt.days_in_month.to_numpy() if period == "month" else np.ones(n, dtype=int)
    valid = np.arange(length)[None, :] < (days * spd)[:, None]
    observed_fraction = (mask & valid).sum(axis=1) / valid.sum(axis=1)
    keep = observed_fraction >= completeness.min_observed - 1e-12
    if not keep.any():
        raise DataError(f"no {period} of {readings.name} has at least {completeness.min_observed:.0%} of its "
                        f"steps observed ({len(starts)} candidate {period}s)", path=readings.name)
    info = readings.info
    meta = pd.DataFrame({
        "series_id": starts["series_id"].astype(str),
        "start": start_ts,
        "month": start_ts.dt.month,
        "weekday": start_ts.dt.weekday,
        "days": days,
        "category": starts["series_id"].map(info["category"]).astype(str).to_numpy(),
    })
    return ProfileSet(values=values[keep], mask=mask[keep], meta=meta[keep], resolution=res, period=period,
                      name=readings.name,
                      notes={**readings.notes, "completeness": f"kept {int(keep.sum())} of {n} {period}s with >= "
                                             f"{completeness.min_observed:.0%} observed steps"})
