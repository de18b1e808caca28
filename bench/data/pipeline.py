"""From a dataset name to daily or monthly profiles at a chosen resolution."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench.data.loaders import load_dataset
from bench.data.profileset import ProfileSet
from bench.data.resample import resample_readings
from bench.data.segment import Completeness, segment

POOL_SEPARATOR = "+"


def load_profiles(dataset: str, resolution: int, period: str = "day", data_dir: str | Path | None = None,
                  min_observed: float = 1.0, **options) -> ProfileSet:
    """Load ``dataset``, average it to ``resolution`` minutes and cut it into ``period`` profiles.

    ``options`` go to the dataset's loader (e.g. ``households=10`` for LCL). A pooled name such as
    ``"cer+lcl"`` (the unified-model paper pools CER and LCL) loads each part (see :func:`pooled_profiles`).
    """
    if POOL_SEPARATOR in dataset:
        return pooled_profiles(dataset.split(POOL_SEPARATOR), resolution, period, data_dir, min_observed,
                               **options)
    readings = load_dataset(dataset, data_dir=data_dir, **options)
    readings = resample_readings(readings, resolution)
    return segment(readings, period=period, completeness=Completeness(min_observed))


def pooled_profiles(parts: list[str], resolution: int, period: str, data_dir: str | Path | None = None,
                    min_observed: float = 1.0, **options) -> ProfileSet:
    """The profiles of several datasets stacked into one set, each series id prefixed with its dataset
    (``"lcl:MAC000002"``) so that households of different datasets never merge.

    Each part reads ``data_dir/<part>`` (or ``$METERBENCH_DATA/<part>`` without ``data_dir``); ``options`` maps
    a part's name to its loader options (``{"lcl": {"households": 100}}``). Each part's loader notes are kept
    under ``"<part>: <key>"``.
    """
    from bench.data.split import concat

    if len(parts) < 2 or len(set(parts)) != len(parts) or not all(parts):
        raise ValueError(f"a pooled dataset names two or more different datasets, got {POOL_SEPARATOR.join(parts)!r}")
    unknown = sorted(set(options) - set(parts))
    if unknown:
        raise ValueError(f"options of a pooled dataset are per part ({', '.join(parts)}); got {unknown}")
    loaded = []
    for part in parts:
        part_dir = Path(data_dir) / part if data_dir is not None else None
        profiles = load_profiles(part, resolution, period, part_dir, min_observed, **options.get(part, {}))
        meta = profiles.meta.copy()
        meta["series_id"] = part + ":" + meta["series_id"].astype(str)
        loaded.append(replace(profiles, meta=meta, notes={f"{part}: {k}": v for k, v in profiles.notes.items()}))
    pooled = concat(loaded)
    notes = {k: v for p in loaded for k, v in p.notes.items()}
    notes["pooled"] = ", ".join(f"{part} {len(p)} {period}s" for part, p in zip(parts, loaded))
    return replace(pooled, name=POOL_SEPARATOR.join(parts), notes=notes)
