"""WPuQ: power of single-family houses in Hamelin, Germany, and of their substation (Zenodo 5642902).

HDF5 files ``{year}_data_{10s|1min|15min|60min}.hdf5`` hold PyTables tables (compound datasets named
``table``) under ``{NO_PV|WITH_PV}/SFH{n}/{HOUSEHOLD|HEATPUMP}/table``, ``MISC/ES1/TRANSFORMER/table`` (the
substation) and ``MISC/PV1/PV/INVERTER/{EAST,SOUTH,WEST}/table`` (the three inverters of the PV plant at the
transformer level), each with an ``index`` field (Unix seconds, UTC) and ``P_TOT`` (total active power in W,
NaN where missing). Kind ``"pv"`` returns one series per inverter and direction (``PV1-EAST``, ``PV1-SOUTH``,
``PV1-WEST``), as the EnergyDiff code treats each direction's daily profiles as samples of their own; nothing
is summed, and a missing reading of one inverter is missing in its series only. The 1-, 15- and 60-minute
files are read; all years present at the chosen resolution are joined. The HDF5 files are read as files on
disk: a zip archive of them has to be extracted first.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from bench.data.loaders._common import build_readings, check_duplicates, check_households
from bench.data.readings import Readings
from bench.errors import DataError

RESOLUTIONS = (1, 15, 60)
KINDS = {"household": "HOUSEHOLD", "heatpump": "HEATPUMP", "transformer": "TRANSFORMER", "pv": "PV"}
SITE_KINDS = ("transformer", "pv")  # series of the whole site, not houses: the households option does not apply
GROUPS = ("NO_PV", "WITH_PV")
TRANSFORMER_KEY = "MISC/ES1/TRANSFORMER/table"
PV_ID = "PV1"
INVERTERS = ("EAST", "SOUTH", "WEST")
PV_KEY = "MISC/PV1/PV/INVERTER/{}/table"
# Key of the note in Readings.notes that lists the PV inverters read and the tables absent from some file.
INVERTER_NOTE = "inverters"
FILE_NAME = re.compile(r"^(\d{4})_data_(10s|\d+min)\.hdf5$")
HOUSE = re.compile(r"^SFH(\d+)$")


def load_wpuq(path: str | Path, *, kind: str = "household", resolution: int | None = None,
              year: int | None = None, households: int | None = None) -> Readings:
    """Load WPuQ power from a folder of ``{year}_data_{res}.hdf5`` files (or one such file).

    Args:
        path: folder (searched recursively) or one HDF5 file.
        kind: ``"household"``, ``"heatpump"``, ``"transformer"`` (the substation, series ``ES1``) or ``"pv"``
            (the transformer-level PV plant: one series per inverter, ``PV1-EAST``, ``PV1-SOUTH`` and
            ``PV1-WEST``; a file that lacks some inverter tables contributes the ones it has).
        resolution: 1, 15 or 60 minutes; default the finest one present.
        year: only this year's file; default all years present.
        households: keep only the first ``n`` houses by house number (no effect for the site-level kinds
            ``"transformer"`` and ``"pv"``).

    Returns:
        Readings in kW; series ids ``SFH{n}`` with category ``no_pv`` / ``with_pv`` (``ES1`` with category
        ``transformer``, ``PV1-{EAST,SOUTH,WEST}`` with category ``pv``). For ``"pv"``,
        ``notes["inverters"]`` names the inverters read and the inverter tables a file lacks, e.g.
        ``"EAST, SOUTH, WEST (one series each)"`` or ``"EAST, SOUTH, WEST (one series each); WEST absent
        from 2019_data_60min.hdf5; no inverter table in 2020_data_60min.hdf5"``.

    Raises:
        DataError: no matching file or table (for ``"pv"``: no inverter table in any file), a missing field,
            an off-grid timestamp, a negative or infinite power (naming file, table and row), or a repeated
            timestamp.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
    households = check_households(households)
    files, resolution = _find_files(Path(path), resolution, year)
    parts, categories, absent = [], {}, []
    for source, f in enumerate(files):
        tables = _tables(f, kind)
        if kind == "pv":
            present = {t[0] for t in tables}
            absent.append((f, [i for i in INVERTERS if _inverter_id(i) not in present]))
        for series_id, category, key in tables:
            frame = _read_table(f, key, resolution)
            parts.append(frame.assign(series_id=series_id, source=source))
            categories[series_id] = category
    if not parts:
        raise DataError(f"no {kind} tables ({_pattern(kind)}) in the WPuQ files", path=", ".join(map(str, files)))
    if households is not None and kind not in SITE_KINDS:
        kept = sorted(categories, key=_house_number)[:households]
        parts = [p for p in parts if p["series_id"].iloc[0] in kept]
        categories = {k: v for k, v in categories.items() if k in kept}
    frame = pd.concat(parts, ignore_index=True)
    check_duplicates(frame, files, unit="row")
    notes = {INVERTER_NOTE: _inverter_note(categories, absent)} if kind == "pv" else {}
    return build_readings(frame, name="wpuq", resolution=resolution, categories=categories,
                          default_category=kind, sources=files, notes=notes)


def _pattern(kind: str) -> str:
    if kind == "transformer":
        return TRANSFORMER_KEY
    if kind == "pv":
        return PV_KEY.format("{" + ",".join(INVERTERS) + "}")
    return f"{{NO_PV|WITH_PV}}/SFH{{n}}/{KINDS[kind]}/table"


def _inverter_id(inverter: str) -> str:
    """Series id of one PV inverter, e.g. ``PV1-EAST``."""
    return f"{PV_ID}-{inverter}"


def _inverter_note(series: dict[str, str], absent: list[tuple[Path, list[str]]]) -> str:
    """``notes["inverters"]``: the inverters read, then what each file that lacks inverter tables lacks."""
    read = [i for i in INVERTERS if _inverter_id(i) in series]
    parts = [f"{', '.join(read)} (one series each)"]
    for f, missing in absent:
        if len(missing) == len(INVERTERS):
            parts.append(f"no inverter table in {f.name}")
        elif missing:
            parts.append(f"{', '.join(missing)} absent from {f.name}")
    return "; ".join(parts)


def _house_number(series_id: str) -> tuple[int, str]:
    m = HOUSE.match(series_id)
    return (int(m.group(1)) if m else -1, series_id)


def _find_files(path: Path, resolution: int | None, year: int | None) -> tuple[list[Path], int]:
    if resolution is not None and resolution not in RESOLUTIONS:
        raise ValueError(f"WPuQ resolution must be one of {RESOLUTIONS} minutes, not {resolution!r}")
    candidates = [path] if path.is_file() else sorted(path.rglob("*.hdf5"))
    found: dict[int, list[Path]] = {}
    seen = []
    for f in candidates:
        m = FILE_NAME.match(f.name)
        if not m:
            if path.is_file():
                hint = "; extract the archive first" if f.suffix.lower() in (".zip", ".gz") else ""
                raise DataError("file name is not of the form {year}_data_{1min|15min|60min}.hdf5" + hint, path=f)
            continue
        seen.append(f.name)
        res = int(m.group(2)[:-3]) if m.group(2).endswith("min") else None
        if res in RESOLUTIONS and (year is None or int(m.group(1)) == year):
            found.setdefault(res, []).append(f)
    if resolution is None and found:
        resolution = min(found)
    if resolution not in found:
        wanted = f"{resolution}min" if resolution is not None else "1min, 15min or 60min"
        # HDF5 is read by seeking within the file, which an archive does not allow: say so when one is there
        archives = [] if path.is_file() else sorted(p.name for p in path.rglob("*") if p.suffix.lower() in
                                                    (".zip", ".gz"))
        hint = f"; archives are not read, extract them first: {archives[:5]}" if archives else ""
        raise DataError(f"no WPuQ file {{year}}_data_{wanted}.hdf5" + (f" for year {year}" if year else "")
                        + f" (found: {seen or 'none'}; the 10 s files are not read{hint})", path=path)
    return found[resolution], resolution


def _tables(f: Path, kind: str) -> list[tuple[str, str, str]]:
    """(series_id, category, dataset key) of every table of ``kind`` in file ``f``."""
    try:
        with h5py.File(f, "r") as h5:
            if kind == "transformer":
                return [("ES1", "transformer", TRANSFORMER_KEY)] if TRANSFORMER_KEY in h5 else []
            if kind == "pv":
                return _inverter_tables(h5)
            out = []
            for group in GROUPS:
                if group not in h5:
                    continue
                for house in h5[group]:
                    key = f"{group}/{house}/{KINDS[kind]}/table"
                    if HOUSE.match(house) and key in h5:
                        out.append((house, group.lower(), key))
            return out
    except OSError as exc:
        raise DataError(f"cannot open HDF5 file: {exc}", path=f) from exc


def _inverter_tables(h5: h5py.File) -> list[tuple[str, str, str]]:
    """The PV inverter tables an open file has (each inverter is a series of its own, so any subset loads)."""
    return [(_inverter_id(i), "pv", PV_KEY.format(i)) for i in INVERTERS if PV_KEY.format(i) in h5]


def _read_table(f: Path, key: str, resolution: int) -> pd.DataFrame:
    with h5py.File(f, "r") as h5:
        ds = h5[key]
        fields = ds.dtype.names or ()
        for needed in ("index", "P_TOT"):
            if needed not in fields:
                raise DataError(f"table {key} lacks field {needed!r}; has {list(fields)}", path=f, column=needed)
        seconds = np.asarray(ds["index"])
        watts = np.asarray(ds["P_TOT"], dtype=np.float64)
    rows = np.arange(1, len(seconds) + 1)
    if not np.issubdtype(seconds.dtype, np.integer):
        bad = ~np.isfinite(seconds) | (seconds != np.round(seconds))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"table {key} row {rows[i]}: index {seconds[i]} is not whole Unix seconds", path=f,
                            column="index")
    seconds = seconds.astype(np.int64)
    off = seconds % (resolution * 60) != 0
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise DataError(f"table {key} row {rows[i]}: timestamp {pd.Timestamp(seconds[i], unit='s')} is not on "
                        f"the {resolution}-minute grid", path=f, column="index")
    bad = np.isinf(watts) | (watts < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"table {key} row {rows[i]}: P_TOT {watts[i]} W is not a non-negative power", path=f,
                        column="P_TOT")
    return pd.DataFrame({"timestamp": seconds.astype("datetime64[s]").astype("datetime64[ns]"),
                         "kw": watts / 1000.0, "line": rows})
