"""Low Carbon London (LCL) smart-meter trial: half-hourly kWh of ~5,500 London households, 2011-2014.

Reads, from one folder (searched recursively) or one file, any mix of:

* the original London Datastore files ``CC_LCL-FullData.csv`` / ``LCL-June2015v2_N.csv``: header
  ``LCLid,stdorToU,DateTime,KWH/hh (per half hour) `` (+ ``Acorn,Acorn_grouped`` in the June 2015 version),
  timestamps ``2012-10-12 00:30:00.0000000``, space-padded values, ``Null`` for missing;
* the Kaggle "Smart meters in London" files ``LCLid,tstp,energy(kWh/hh)`` (``block_N.csv`` or one file per
  household), with the tariff group from ``informations_households.csv`` when it is present.

Files are recognised by their header, not their name. Energy per half hour becomes average power
(kWh / 0.5 h = kW). Timestamps are GMT throughout the trial (no daylight-saving shift) and are kept as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.loaders._common import (
    FLOAT, STR, FirstSeries, build_readings, check_duplicates, check_grid, check_households,
    check_nonnegative, parse_timestamps, read_checked_csv, read_header,
)
from bench.data.readings import Readings
from bench.errors import DataError

RESOLUTION = 30
ORIGINAL = ["LCLid", "stdorToU", "DateTime", "KWH/hh (per half hour)"]
ORIGINAL_ACORN = ORIGINAL + ["Acorn", "Acorn_grouped"]
KAGGLE = ["LCLid", "tstp", "energy(kWh/hh)"]
INFO = ["LCLid", "stdorToU", "Acorn", "Acorn_grouped", "file"]
MISSING = ("Null", "")
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
UNKNOWN = "unknown"


def load_lcl(path: str | Path, *, households: int | None = None, tariff: str | None = None) -> Readings:
    """Load LCL readings from ``path`` (a folder or a single CSV file).

    Args:
        path: folder holding the files (searched recursively) or one of the files.
        households: keep only the first ``n`` households in sorted ``LCLid`` order (after the tariff filter).
        tariff: keep only households of this ``stdorToU`` group (``"Std"`` as in the EnergyDiff code, or
            ``"ToU"``). In the Kaggle layout this needs ``informations_households.csv``.

    Returns:
        Readings at 30 minutes; ``info.category`` is the tariff group, ``"unknown"`` where no file says.
    """
    households = check_households(households)
    path = Path(path)
    layout = _find_files(path)
    if not layout["original"] and not layout["kaggle"]:
        raise DataError("no LCL readings file found (expected a header "
                        f"{','.join(ORIGINAL)} or {','.join(KAGGLE)}; files checked: "
                        f"{[p.name for p in layout['other']][:10]})", path=path)
    categories = _read_info(layout["info"])
    if tariff is not None and layout["kaggle"] and not categories:
        raise DataError(f"tariff={tariff!r} needs informations_households.csv next to the Kaggle-layout "
                        "files (it holds each household's stdorToU group)", path=path)

    select = FirstSeries(households)
    wanted_kaggle = _preselect(layout["kaggle"], layout["info"], tariff, households)
    parts: list[pd.DataFrame] = []
    sources: list[Path] = []
    for f in layout["original"]:
        sources.append(f)
        parts.append(_read_original(f, len(sources) - 1, tariff, select, categories))
    for f in layout["kaggle"]:
        if wanted_kaggle is not None and f not in wanted_kaggle:
            continue
        sources.append(f)
        parts.append(_read_kaggle(f, len(sources) - 1, tariff, select, categories))
    frame = select.filter(pd.concat(parts, ignore_index=True))
    if frame.empty:
        detail = f" with tariff {tariff!r} (tariffs found: {sorted(set(categories.values()))})" if tariff else ""
        raise DataError(f"no LCL readings{detail}", path=path)
    check_duplicates(frame, sources)
    return build_readings(frame, name="lcl", resolution=RESOLUTION, categories=categories,
                          default_category=UNKNOWN, sources=sources)


def _find_files(path: Path) -> dict[str, list[Path]]:
    """Sort the CSV files under ``path`` into layouts by their header."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() == ".csv")
    layout: dict[str, list[Path]] = {"original": [], "kaggle": [], "info": [], "other": []}
    for f in files:
        header = read_header(f)
        if header in (ORIGINAL, ORIGINAL_ACORN):
            layout["original"].append(f)
        elif header == KAGGLE:
            layout["kaggle"].append(f)
        elif header == INFO:
            layout["info"].append(f)
        elif path.is_file() or (header[:1] == ["LCLid"] and ("tstp" in header or "DateTime" in header)):
            # Looks like (or was named as) a readings file but is not one of the known layouts.
            raise DataError(f"unexpected columns {header}; expected {ORIGINAL} (optionally + Acorn, "
                            f"Acorn_grouped) or {KAGGLE}", path=f, line=1)
        else:
            layout["other"].append(f)
    return layout


def _read_info(files: list[Path]) -> dict[str, str]:
    """LCLid -> stdorToU from ``informations_households.csv``."""
    categories: dict[str, str] = {}
    for f in files:
        info = read_checked_csv(f, names=INFO, kinds={"LCLid": STR, "stdorToU": STR})
        categories.update(zip(info["LCLid"].str.strip(), info["stdorToU"].str.strip(), strict=True))
    return categories


def _preselect(kaggle: list[Path], info_files: list[Path], tariff: str | None,
               households: int | None) -> set[Path] | None:
    """Block files that can hold the selected households, or None to read every file.

    Only possible when every Kaggle file is a block named in the ``file`` column of the households file.
    """
    if not info_files or (households is None and tariff is None):
        return None
    info = pd.concat([read_checked_csv(f, names=INFO, kinds={"LCLid": STR, "stdorToU": STR, "file": STR})
                      for f in info_files], ignore_index=True)
    by_stem = {f.stem: f for f in kaggle}
    blocks = set(info["file"].str.strip())
    if not set(by_stem) <= blocks:
        return None
    info = info[info["file"].str.strip().isin(by_stem)]
    if tariff is not None:
        info = info[info["stdorToU"].str.strip() == tariff]
    ids = sorted(info["LCLid"].str.strip())
    if households is not None:
        ids = ids[:households]
    stems = set(info.loc[info["LCLid"].str.strip().isin(ids), "file"].str.strip())
    return {by_stem[s] for s in stems}


def _keep(tariff: str | None, select: FirstSeries, tariff_of_row: str | None,
          categories: dict[str, str]):
    def keep(chunk: pd.DataFrame) -> pd.DataFrame:
        if tariff is not None:
            if tariff_of_row is not None:
                chunk = chunk[chunk[tariff_of_row].str.strip() == tariff]
            else:
                ok = [i for i in pd.unique(chunk["LCLid"]) if categories.get(i.strip()) == tariff]
                chunk = chunk[chunk["LCLid"].isin(ok)]
        select.offer(pd.unique(chunk["LCLid"]))
        return select.filter(chunk, "LCLid")
    return keep


def _read_original(f: Path, source: int, tariff: str | None, select: FirstSeries,
                   categories: dict[str, str]) -> pd.DataFrame:
    header = read_header(f)
    raw = read_checked_csv(f, names=header, missing=MISSING, keep=_keep(tariff, select, "stdorToU", categories),
                           kinds={"LCLid": STR, "stdorToU": STR, "DateTime": STR, ORIGINAL[3]: FLOAT})
    pairs = raw.drop_duplicates(["LCLid", "stdorToU"])
    for lcl_id, group, line in zip(pairs["LCLid"].str.strip(), pairs["stdorToU"].str.strip(), pairs["line"],
                                   strict=True):
        if categories.setdefault(lcl_id, group) != group:
            raise DataError(f"household {lcl_id} has tariff {group!r} here but {categories[lcl_id]!r} elsewhere",
                            path=f, line=int(line), column="stdorToU")
    return _to_long(raw, f, source, "DateTime", ORIGINAL[3])


def _read_kaggle(f: Path, source: int, tariff: str | None, select: FirstSeries,
                 categories: dict[str, str]) -> pd.DataFrame:
    raw = read_checked_csv(f, names=KAGGLE, missing=MISSING, keep=_keep(tariff, select, None, categories),
                           kinds={"LCLid": STR, "tstp": STR, KAGGLE[2]: FLOAT})
    return _to_long(raw, f, source, "tstp", KAGGLE[2])


def _to_long(raw: pd.DataFrame, f: Path, source: int, time_col: str, value_col: str) -> pd.DataFrame:
    lines = raw["line"].to_numpy()
    ids = raw["LCLid"].to_numpy(dtype=object)
    empty = raw["LCLid"].str.strip().to_numpy() == "" if len(raw) else np.zeros(0, dtype=bool)
    if empty.any():
        raise DataError("empty LCLid", path=f, line=int(lines[np.flatnonzero(empty)[0]]), column="LCLid")
    ts = parse_timestamps(raw[time_col], lines, f, time_col, TIME_FORMATS)
    check_grid(ts, RESOLUTION, lines, f, time_col)
    kwh = raw[value_col].to_numpy(dtype=np.float64)
    check_nonnegative(kwh, lines, f, value_col)
    return pd.DataFrame({"series_id": ids, "timestamp": ts, "kw": kwh / 0.5,
                         "source": np.full(len(raw), source, dtype=np.int32), "line": lines})
