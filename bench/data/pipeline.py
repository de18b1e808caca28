"""From a dataset name to daily or monthly profiles at a chosen resolution."""

from __future__ import annotations

from pathlib import Path

from bench.data.loaders import load_dataset
from bench.data.profileset import ProfileSet
from bench.data.resample import resample_readings
from bench.data.segment import Completeness, segment


def load_profiles(dataset: str, resolution: int, period: str = "day", data_dir: str | Path | None = None,
                  min_observed: float = 1.0, **options) -> ProfileSet:
    """Load ``dataset``, average it to ``resolution`` minutes and cut it into ``period`` profiles.

    ``options`` go to the dataset's loader (e.g. ``households=10`` for LCL).
    """
    readings = load_dataset(dataset, data_dir=data_dir, **options)
    readings = resample_readings(readings, resolution)
    return segment(readings, period=period, completeness=Completeness(min_observed))
