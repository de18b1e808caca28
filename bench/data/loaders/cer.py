"""CER Ireland smart-metering trial (ISSDA): half-hourly kWh of ~6,400 homes and businesses, 2009-2010.

Files ``File1.txt`` .. ``File6.txt``: whitespace-separated, no header, ``ID DayTime kWh``. ``DayTime`` is a
3-digit day code (day 1 = 2009-01-01) followed by a 2-digit half-hour code counting the intervals of the local
(Europe/Dublin) day from 01: 48 on a normal day, 46 on the spring-forward day and 50 (codes 49 and 50) on the
autumn fall-back day. Each reading is placed at the UTC start of its interval, which makes every series a
regular 30-minute grid across the clock changes. The files are read as ISSDA ships them (``File1.txt.zip``, a
zip archive holding ``File1.txt``), gzip-compressed (``File1.txt.gz``) or extracted.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.loaders._common import (
    FLOAT, INT, STR, FirstSeries, TextSource, build_readings, check_duplicates, check_households,
    check_nonnegative, find_sources, is_zip, read_checked_csv, source_name,
)
from bench.data.readings import Readings
from bench.errors import DataError

RESOLUTION = 30
TIME_ZONE = "Europe/Dublin"
DAY_ONE = pd.Timestamp("2009-01-01")
FILE_NAME = re.compile(r"^file(\d+)\.txt$", re.IGNORECASE)
NAMES = ["ID", "DayTime", "kWh"]
# Codes of the allocation file's "Code" column.
ALLOCATION_CODES = {1: "residential", 2: "sme", 3: "other"}
HALF_HOUR_NS = 30 * 60 * 10**9


def load_cer(path: str | Path, *, households: int | None = None,
             allocation: str | Path | None = None) -> Readings:
    """Load CER readings from a folder holding ``File1.txt`` .. ``File6.txt`` (or from one such file).

    Args:
        path: folder (searched recursively; each file plain, as ``FileN.txt.gz`` or inside a zip archive such
            as ``FileN.txt.zip``), a single file, or one zip archive (its ``FileN.txt`` members are read).
        households: keep only the first ``n`` meter IDs in sorted (string) order.
        allocation: optional CSV export of the trial's allocation sheet with columns ``ID`` and ``Code``
            (1 residential, 2 SME, 3 other); a relative path is looked up in ``path`` first. Without it
            every series has category ``"all"``.

    Returns:
        Readings at 30 minutes, timestamps in UTC.
    """
    households = check_households(households)
    path = Path(path)
    files = _find_files(path)
    select = FirstSeries(households)

    def keep(chunk: pd.DataFrame) -> pd.DataFrame:
        select.offer(pd.unique(chunk["ID"]))
        return select.filter(chunk, "ID")

    parts = []
    for source, f in enumerate(files):
        raw = read_checked_csv(f, names=NAMES, kinds={"ID": STR, "DayTime": INT, "kWh": FLOAT}, header=False,
                               sep=r"\s+", missing=(), keep=keep)
        parts.append(_to_long(raw, f, source))
    frame = select.filter(pd.concat(parts, ignore_index=True))
    check_duplicates(frame, files)
    categories, default = (None, "all")
    if allocation is not None:
        categories, default = _read_allocation(_locate(path, allocation)), "unknown"
    return build_readings(frame, name="cer", resolution=RESOLUTION, categories=categories,
                          default_category=default, sources=files)


def _find_files(path: Path) -> list[TextSource]:
    if path.is_file() and not is_zip(path):
        return [path]
    files = find_sources(path, FILE_NAME.match, "CER file (File1.txt .. File6.txt)")
    if not files:
        raise DataError("no CER files found (expected File1.txt .. File6.txt, plain, as .txt.gz or inside zip "
                        "archives such as File1.txt.zip)", path=path)
    return sorted(files, key=lambda p: (int(FILE_NAME.match(source_name(p)).group(1)), str(p)))


def day_starts_utc(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTC start (naive datetime64[ns]) and number of half-hours of each local CER day code in ``days``."""
    local = DAY_ONE + pd.to_timedelta(np.concatenate([days, days + 1]) - 1, unit="D")
    # Midnight is never inside an Irish clock change (they happen at 01:00 UTC), so this is unambiguous.
    utc = pd.DatetimeIndex(local).tz_localize(TIME_ZONE).tz_convert("UTC").tz_localize(None)
    utc = utc.to_numpy(dtype="datetime64[ns]")
    start, end = utc[: len(days)], utc[len(days):]
    return start, ((end - start).astype(np.int64) // HALF_HOUR_NS).astype(np.int64)


def _to_long(raw: pd.DataFrame, f: TextSource, source: int) -> pd.DataFrame:
    lines = raw["line"].to_numpy()
    code = raw["DayTime"].to_numpy(dtype=np.int64)
    day, half_hour = code // 100, code % 100
    bad_day = (day < 1) | (day > 999)
    if bad_day.any():
        i = int(np.flatnonzero(bad_day)[0])
        raise DataError(f"DayTime {code[i]} is not a 3-digit day code + 2-digit half-hour code", path=f,
                        line=int(lines[i]), column="DayTime")
    days, inverse = np.unique(day, return_inverse=True)
    start, n_intervals = day_starts_utc(days)
    limit = n_intervals[inverse]
    bad = (half_hour < 1) | (half_hour > limit)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        date = (DAY_ONE + pd.Timedelta(days=int(day[i]) - 1)).date()
        kind = {46: "the spring daylight-saving change day", 48: "a day without a clock change",
                50: "the autumn daylight-saving change day"}[int(limit[i])]
        raise DataError(f"half-hour code {half_hour[i]:02d} in DayTime {code[i]} is invalid: {date} (day "
                        f"{day[i]}) is {kind}, which has codes 01-{limit[i]}", path=f, line=int(lines[i]),
                        column="DayTime")
    ts = start[inverse] + ((half_hour - 1) * HALF_HOUR_NS).astype("timedelta64[ns]")
    kwh = raw["kWh"].to_numpy(dtype=np.float64)
    check_nonnegative(kwh, lines, f, "kWh")
    return pd.DataFrame({"series_id": raw["ID"].to_numpy(dtype=object), "timestamp": ts, "kw": kwh / 0.5,
                         "source": np.full(len(raw), source, dtype=np.int32), "line": lines})


def _locate(path: Path, allocation: str | Path) -> Path:
    candidate = Path(allocation).expanduser()
    base = path if path.is_dir() else path.parent
    if not candidate.is_absolute() and (base / candidate).exists():
        return base / candidate
    if not candidate.exists():
        raise DataError("allocation file not found", path=candidate)
    return candidate


def _read_allocation(f: Path) -> dict[str, str]:
    """Meter ID -> "residential" / "sme" / "other" from a CSV with columns ``ID`` and ``Code``."""
    if f.suffix.lower() != ".csv":
        raise DataError("the allocation file must be a CSV with columns ID and Code (export the allocation "
                        "spreadsheet as CSV)", path=f)
    try:
        header = pd.read_csv(f, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read allocation file: {exc}", path=f) from exc
    names = [str(c).strip() for c in header]
    for needed in ("ID", "Code"):
        if needed not in names:
            raise DataError(f"allocation file lacks column {needed!r}; has {names}", path=f, line=1)
    table = read_checked_csv(f, names=names, kinds={"ID": STR, "Code": INT})
    unknown = ~table["Code"].isin(list(ALLOCATION_CODES))
    if unknown.any():
        row = table[unknown].iloc[0]
        raise DataError(f"allocation code {row['Code']} is not one of {sorted(ALLOCATION_CODES)}", path=f,
                        line=int(row["line"]), column="Code")
    return {str(i).strip(): ALLOCATION_CODES[int(c)] for i, c in zip(table["ID"], table["Code"], strict=True)}
