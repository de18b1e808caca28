"""CoSSMic household data (Open Power System Data package "household_data"), Konstanz, Germany.

Files ``household_data_{1,15,60}min_singleindex.csv``: ``utc_timestamp`` (``2015-05-21T15:00:00Z``),
``cet_cest_timestamp``, then columns ``DE_KN_{residential1-6|industrial1-3|public1-2}_{feed}`` holding
CUMULATIVE energy in kWh (empty where not recorded), and a final ``interpolated`` column.
The average power of interval ``[t, t + res)`` is ``(E(t + res) - E(t)) / (res / 60 h)``, placed at ``t``.
The file is read plain, gzip-compressed (``.csv.gz``) or from a zip archive holding it (e.g. the OPSD package
zip).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.loaders._common import (
    FLOAT, STR, TextSource, build_readings, check_households, find_sources, is_zip, parse_timestamps,
    read_checked_csv, read_header, source_name,
)
from bench.data.readings import Readings
from bench.errors import DataError

RESOLUTIONS = (1, 15, 60)
KINDS = ("residential", "industrial", "public")
TIME_COLUMN = "utc_timestamp"
TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ",)
FILE_NAME = re.compile(r"^household_data_(\d+)min_singleindex\.csv$")


def file_name(resolution: int) -> str:
    """The OPSD file name for ``resolution`` minutes."""
    return f"household_data_{resolution}min_singleindex.csv"


def load_cossmic(path: str | Path, *, feed: str = "grid_import", kind: str = "residential",
                 resolution: int | None = None, households: int | None = None) -> Readings:
    """Load CoSSMic power from the OPSD household data file.

    Args:
        path: folder holding ``household_data_{res}min_singleindex.csv`` (searched recursively, plain, as
            ``.csv.gz`` or inside zip archives), the file itself, or a zip archive holding it.
        feed: meter channel, e.g. ``"grid_import"`` (default), ``"pv"``, ``"heat_pump"``.
        kind: ``"residential"`` (default), ``"industrial"`` or ``"public"``.
        resolution: 1, 15 or 60 minutes; default the finest file present.
        households: keep only the first ``n`` buildings by number.

    Returns:
        Readings in kW, series ids like ``"residential1"``, category = ``kind``. Missing energy cells give
        NaN power for the intervals that touch them; each series is trimmed to its first and last reading.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    households = check_households(households)
    f, resolution = _find_file(Path(path), resolution)
    header = read_header(f)
    if not header or header[0] != TIME_COLUMN:
        raise DataError(f"first column is {header[:1]}, expected {TIME_COLUMN!r}", path=f, line=1)
    pattern = re.compile(rf"^DE_KN_{kind}(\d+)_{re.escape(feed)}$")
    columns = sorted((int(m.group(1)), c) for c in header if (m := pattern.match(c)))
    if not columns:
        feeds = sorted({c.split("_", 3)[3] for c in header if c.startswith(f"DE_KN_{kind}")})
        raise DataError(f"no {kind} column for feed {feed!r} (DE_KN_{kind}N_{feed}); {kind} feeds in this file: "
                        f"{feeds}", path=f, line=1)
    if households is not None:
        columns = columns[:households]
    raw = read_checked_csv(f, names=header, kinds={TIME_COLUMN: STR, **{c: FLOAT for _, c in columns}})
    lines = raw["line"].to_numpy()
    ts = parse_timestamps(raw[TIME_COLUMN], lines, f, TIME_COLUMN, TIME_FORMATS)
    _check_regular(ts, resolution, lines, f)
    hours = resolution / 60
    parts = []
    for number, column in columns:
        energy = raw[column].to_numpy(dtype=np.float64)
        step = np.diff(energy)
        drop = step < 0
        if drop.any():
            i = int(np.flatnonzero(drop)[0])
            raise DataError(f"cumulative energy decreases from {energy[i]} kWh (line {lines[i]}) to "
                            f"{energy[i + 1]} kWh: meter reset or error", path=f, line=int(lines[i + 1]),
                            column=column)
        power = np.append(step / hours, np.nan)
        seen = np.flatnonzero(~np.isnan(power))
        if seen.size == 0:
            continue
        span = slice(seen[0], seen[-1] + 1)
        parts.append(pd.DataFrame({"series_id": f"{kind}{number}", "timestamp": ts[span], "kw": power[span]}))
    if not parts:
        raise DataError(f"no two consecutive readings in any {kind} {feed} column", path=f)
    frame = pd.concat(parts, ignore_index=True)
    categories = dict.fromkeys(frame["series_id"].unique(), kind)
    return build_readings(frame, name="cossmic", resolution=resolution, categories=categories,
                          default_category=kind, sources=[f])


def _find_file(path: Path, resolution: int | None) -> tuple[TextSource, int]:
    if resolution is not None and resolution not in RESOLUTIONS:
        raise ValueError(f"CoSSMic resolution must be one of {RESOLUTIONS} minutes, not {resolution!r}")
    if path.is_file() and not is_zip(path):
        m = FILE_NAME.match(source_name(path))
        if not m or int(m.group(1)) not in RESOLUTIONS:
            raise DataError("file name is not household_data_{1,15,60}min_singleindex.csv (or .csv.gz)",
                            path=path)
        if resolution is not None and int(m.group(1)) != resolution:
            raise DataError(f"file holds {m.group(1)}-minute data, not {resolution}-minute", path=path)
        return path, int(m.group(1))
    wanted = file_name(resolution) if resolution else "household_data_{1,15,60}min_singleindex.csv"
    sources = find_sources(path, lambda name: bool(FILE_NAME.match(name)), f"CoSSMic file {wanted}")
    for res in RESOLUTIONS if resolution is None else (resolution,):
        found = sorted((s for s in sources if source_name(s) == file_name(res)), key=str)
        if found:
            return found[0], res
    raise DataError(f"no CoSSMic file {wanted} found (plain, .csv.gz or inside a zip archive)", path=path)


def _check_regular(ts: np.ndarray, resolution: int, lines: np.ndarray, f: TextSource) -> None:
    """Differencing needs consecutive rows exactly one interval apart."""
    if len(ts) < 2:
        raise DataError("fewer than two rows: cannot difference cumulative energy", path=f)
    gaps = np.diff(ts.view(np.int64)) // 10**9
    bad = gaps != resolution * 60
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "duplicate timestamp" if gaps[i] == 0 else (
            f"timestamp {pd.Timestamp(ts[i + 1])} follows {pd.Timestamp(ts[i])} (line {lines[i]}); rows must be "
            f"consecutive {resolution}-minute steps")
        raise DataError(what, path=f, line=int(lines[i + 1]), column=TIME_COLUMN)
    off = ts[0].astype("datetime64[s]").astype(np.int64) % (resolution * 60)
    if off:
        raise DataError(f"timestamp {pd.Timestamp(ts[0])} is not on the {resolution}-minute grid", path=f,
                        line=int(lines[0]), column=TIME_COLUMN)
