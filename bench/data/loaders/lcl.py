"""Low Carbon London (LCL) smart-meter trial: half-hourly kWh of ~5,500 London households, 2011-2014.

Reads, from one folder (searched recursively) or one file, any mix of:

* the original London Datastore files ``CC_LCL-FullData.csv`` / ``LCL-June2015v2_N.csv``: header
  ``LCLid,stdorToU,DateTime,KWH/hh (per half hour) `` (+ ``Acorn,Acorn_grouped`` in the June 2015 version),
  timestamps ``2012-10-12 00:30:00.0000000``, space-padded values, ``Null`` for missing;
* the Kaggle "Smart meters in London" files ``LCLid,tstp,energy(kWh/hh)`` (``block_N.csv`` or one file per
  household), with the tariff group from ``informations_households.csv`` when it is present.

Files are recognised by their header, not their name, and are read as distributed: plain ``.csv``, gzip
``.csv.gz`` or inside zip archives (e.g. ``Power-Networks-LCL-June2015(withAcornGps).zip``, or a Kaggle
download holding ``block_*.csv``). Energy per half hour becomes average power (kWh / 0.5 h = kW). Timestamps
are GMT throughout the trial (no daylight-saving shift) and are kept as they are.

Tariff filter: the EnergyDiff code keeps only households with ``stdorToU == "Std"``, and so does this loader
by default (``tariff="Std"``). Where no file gives the tariff (Kaggle-layout files without
``informations_households.csv``, e.g. one CSV per household) the filter cannot be applied: all households are
kept. ``Readings.notes["filter"]`` always says which of the two happened and how many households were kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.loaders._common import (
    FLOAT, STR, FirstSeries, TextSource, build_readings, check_duplicates, check_grid,
    check_households, check_nonnegative, find_sources, is_zip, parse_timestamps, read_checked_csv, read_header,
    source_name, source_stem,
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
# The tariff option: a stdorToU group, or "all" for no filter. "Std" is the EnergyDiff selection.
TARIFFS = ("Std", "ToU", "all")
DEFAULT_TARIFF = "Std"
# Key of the tariff note in Readings.notes (and, through the pipeline, ProfileSet.notes).
FILTER_NOTE = "filter"


def load_lcl(path: str | Path, *, households: int | None = None, tariff: str = DEFAULT_TARIFF) -> Readings:
    """Load LCL readings from ``path`` (a folder, a CSV file or a zip archive).

    Args:
        path: folder holding the files (searched recursively, zip archives included), one of the files
            (``.csv`` or ``.csv.gz``) or a zip archive.
        households: keep only the first ``n`` households in sorted ``LCLid`` order (after the tariff filter).
        tariff: ``"Std"`` (default: the households of the standard tariff, as the EnergyDiff code keeps),
            ``"ToU"`` (the time-of-use households) or ``"all"`` (no filter). The tariff comes from the
            ``stdorToU`` column of the original files or, in the Kaggle layout, from
            ``informations_households.csv``; households whose tariff no file gives are left out by a filter.
            When no file gives any tariff, ``"Std"`` keeps every household (noted, see below) and ``"ToU"``
            is an error.

    Returns:
        Readings at 30 minutes; ``info.category`` is the tariff group, ``"unknown"`` where no file says.
        ``notes["filter"]`` says what was selected, e.g. ``"tariff Std (3 of 4 households kept)"`` or
        ``"all tariffs (30 households; tariff unknown: no stdorToU column or informations_households.csv,
        Std filter not applied)"``.

    Raises:
        ValueError: ``tariff`` not one of ``"Std"``, ``"ToU"``, ``"all"``; bad ``households``.
        DataError: missing, unreadable or malformed files (naming file or archive member, line and column).
    """
    households = check_households(households)
    if not isinstance(tariff, str) or tariff not in TARIFFS:
        raise ValueError(f"tariff must be one of {list(TARIFFS)} ('all' keeps every household), not {tariff!r}")
    path = Path(path)
    layout = _find_files(path)
    if not layout["original"] and not layout["kaggle"]:
        raise DataError("no LCL readings file found (expected a header "
                        f"{','.join(ORIGINAL)} or {','.join(KAGGLE)} in a .csv, .csv.gz or zip-archived CSV; "
                        f"files checked: {[source_name(p) for p in layout['other']][:10]})", path=path)
    categories = _read_info(layout["info"])
    # The tariff is known when an original file (stdorToU column) or a households file is present.
    known = bool(layout["original"]) or bool(categories)
    if tariff == "ToU" and not known:
        raise DataError("tariff='ToU' needs each household's stdorToU group, and no file here gives it (Kaggle-"
                        "layout files without informations_households.csv); add that file or pass tariff='all'",
                        path=path)
    wanted = tariff if tariff != "all" and known else None

    select = _Selection(wanted, households, categories)
    wanted_kaggle, listed = _preselect(layout["kaggle"], layout["info"], wanted, households)
    parts: list[pd.DataFrame] = []
    sources: list[TextSource] = []
    for f in layout["original"]:
        sources.append(f)
        parts.append(_read_original(f, len(sources) - 1, select))
    for f in layout["kaggle"]:
        if wanted_kaggle is not None and f not in wanted_kaggle:
            continue
        sources.append(f)
        parts.append(_read_kaggle(f, len(sources) - 1, select))
    frame = select.first.filter(pd.concat(parts, ignore_index=True))
    if frame.empty:
        detail = f" with tariff {tariff!r} (tariffs found: {sorted(set(categories.values()))})" if wanted else ""
        raise DataError(f"no LCL readings{detail}", path=path)
    check_duplicates(frame, sources)
    note = _filter_note(tariff, wanted, select.seen | listed, categories, frame["series_id"].nunique(),
                        households)
    return build_readings(frame, name="lcl", resolution=RESOLUTION, categories=categories,
                          default_category=UNKNOWN, sources=sources, notes={FILTER_NOTE: note})


def _filter_note(tariff: str, wanted: str | None, found: set[str], categories: dict[str, str], loaded: int,
                 households: int | None) -> str:
    """The ``notes["filter"]`` line: the tariff selection and the households it kept out of those found."""
    if wanted is not None:
        matching = sum(categories.get(i) == wanted for i in found)
        unknown = sum(i not in categories for i in found)
        text = f"tariff {wanted} ({matching} of {len(found)} households kept"
        if unknown:
            text += f"; {unknown} of unknown tariff left out"
    else:
        matching = len(found)
        reason = ("tariff='all'" if tariff == "all" else
                  f"tariff unknown: no stdorToU column or informations_households.csv, {tariff} filter not applied")
        text = f"all tariffs ({len(found)} households; {reason}"
    if loaded < matching:
        text += f"; first {loaded} by LCLid loaded, households={households}"
    return text + ")"


def _find_files(path: Path) -> dict[str, list[TextSource]]:
    """Sort the CSV files under ``path`` (plain, gzip or zip members) into layouts by their header."""
    files = find_sources(path, lambda name: name.lower().endswith(".csv"), "CSV file (.csv)")
    single = path.is_file() and not is_zip(path)
    layout: dict[str, list[TextSource]] = {"original": [], "kaggle": [], "info": [], "other": []}
    for f in files:
        header = read_header(f)
        if header in (ORIGINAL, ORIGINAL_ACORN):
            layout["original"].append(f)
        elif header == KAGGLE:
            layout["kaggle"].append(f)
        elif header == INFO:
            layout["info"].append(f)
        elif single or (header[:1] == ["LCLid"] and ("tstp" in header or "DateTime" in header)):
            # Looks like (or was named as) a readings file but is not one of the known layouts.
            raise DataError(f"unexpected columns {header}; expected {ORIGINAL} (optionally + Acorn, "
                            f"Acorn_grouped) or {KAGGLE}", path=f, line=1)
        else:
            layout["other"].append(f)
    return layout


def _read_info(files: list[TextSource]) -> dict[str, str]:
    """LCLid -> stdorToU from ``informations_households.csv``."""
    categories: dict[str, str] = {}
    for f in files:
        info = read_checked_csv(f, names=INFO, kinds={"LCLid": STR, "stdorToU": STR})
        categories.update(zip(info["LCLid"].str.strip(), info["stdorToU"].str.strip(), strict=True))
    return categories


def _preselect(kaggle: list[TextSource], info_files: list[TextSource], wanted: str | None,
               households: int | None) -> tuple[set[TextSource] | None, set[str]]:
    """Block files that can hold the selected households (None: read every file), and the households the
    households file lists for the blocks present (so that the filter note counts those of skipped blocks).

    Only possible when every Kaggle file is a block named in the ``file`` column of the households file.
    """
    if not info_files or (households is None and wanted is None):
        return None, set()
    info = pd.concat([read_checked_csv(f, names=INFO, kinds={"LCLid": STR, "stdorToU": STR, "file": STR})
                      for f in info_files], ignore_index=True)
    by_stem: dict[str, list[TextSource]] = {}
    for f in kaggle:
        by_stem.setdefault(source_stem(f), []).append(f)
    blocks = set(info["file"].str.strip())
    if not set(by_stem) <= blocks:
        return None, set()
    info = info[info["file"].str.strip().isin(by_stem)]
    listed = set(info["LCLid"].str.strip())
    if wanted is not None:
        info = info[info["stdorToU"].str.strip() == wanted]
    ids = sorted(info["LCLid"].str.strip())
    if households is not None:
        ids = ids[:households]
    stems = set(info.loc[info["LCLid"].str.strip().isin(ids), "file"].str.strip())
    return {f for s in stems for f in by_stem[s]}, listed


class _Selection:
    """The rows kept while files stream in: the tariff filter, then the first ``households`` households.

    Records every household seen before the filter (for the note) and, from the original files' stdorToU
    column, each household's tariff, which must be the same in every row and file.
    """

    def __init__(self, wanted: str | None, households: int | None, categories: dict[str, str]) -> None:
        self.wanted = wanted
        self.first = FirstSeries(households)
        self.categories = categories
        self.seen: set[str] = set()

    def keep(self, f: TextSource, tariff_column: str | None):
        def keep(chunk: pd.DataFrame) -> pd.DataFrame:
            ids = chunk["LCLid"].str.strip()
            empty = (ids == "").to_numpy()
            if empty.any():
                raise DataError("empty LCLid", path=f, line=int(chunk["line"].iloc[np.flatnonzero(empty)[0]]),
                                column="LCLid")
            if tariff_column is not None:
                groups = chunk[tariff_column].str.strip()
                pairs = pd.DataFrame({"id": ids, "group": groups, "line": chunk["line"]}).drop_duplicates(
                    ["id", "group"])
                for lcl_id, group, line in zip(pairs["id"], pairs["group"], pairs["line"], strict=True):
                    if self.categories.setdefault(lcl_id, group) != group:
                        raise DataError(f"household {lcl_id} has tariff {group!r} here but "
                                        f"{self.categories[lcl_id]!r} elsewhere", path=f, line=int(line),
                                        column=tariff_column)
            unique = pd.unique(ids)
            self.seen.update(unique)
            if self.wanted is not None:
                chunk = chunk[ids.map(self.categories).to_numpy() == self.wanted]
            self.first.offer(pd.unique(chunk["LCLid"]))
            return self.first.filter(chunk, "LCLid")
        return keep


def _read_original(f: TextSource, source: int, select: _Selection) -> pd.DataFrame:
    header = read_header(f)
    raw = read_checked_csv(f, names=header, missing=MISSING, keep=select.keep(f, "stdorToU"),
                           kinds={"LCLid": STR, "stdorToU": STR, "DateTime": STR, ORIGINAL[3]: FLOAT})
    return _to_long(raw, f, source, "DateTime", ORIGINAL[3])


def _read_kaggle(f: TextSource, source: int, select: _Selection) -> pd.DataFrame:
    raw = read_checked_csv(f, names=KAGGLE, missing=MISSING, keep=select.keep(f, None),
                           kinds={"LCLid": STR, "tstp": STR, KAGGLE[2]: FLOAT})
    return _to_long(raw, f, source, "tstp", KAGGLE[2])


def _to_long(raw: pd.DataFrame, f: TextSource, source: int, time_col: str, value_col: str) -> pd.DataFrame:
    lines = raw["line"].to_numpy()
    ids = raw["LCLid"].to_numpy(dtype=object)
    ts = parse_timestamps(raw[time_col], lines, f, time_col, TIME_FORMATS)
    check_grid(ts, RESOLUTION, lines, f, time_col)
    kwh = raw[value_col].to_numpy(dtype=np.float64)
    check_nonnegative(kwh, lines, f, value_col)
    return pd.DataFrame({"series_id": ids, "timestamp": ts, "kw": kwh / 0.5,
                         "source": np.full(len(raw), source, dtype=np.int32), "line": lines})
