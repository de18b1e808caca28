"""WPuQ: power of single-family houses in Hamelin, Germany, and of their substation (Zenodo 5642902).

HDF5 files ``{year}_data_{10s|1min|15min|60min}.hdf5`` hold PyTables tables (compound datasets named
``table``) under ``{NO_PV|WITH_PV}/SFH{n}/{HOUSEHOLD|HEATPUMP}/table``, ``MISC/ES1/TRANSFORMER/table`` (the
substation) and ``MISC/PV1/PV/INVERTER/{EAST,SOUTH,WEST}/table`` (the three inverters of the PV plant at the
transformer level), each with an ``index`` field (Unix seconds, UTC) and ``P_TOT`` (total active power in W,
NaN where missing). Kind ``"pv"`` returns the plant as one series, the sum of its three inverters; a time
step where any inverter has no reading has none in the sum. The 1-, 15- and 60-minute files are read; all
years present at the chosen resolution are joined.
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
SITE_KINDS = ("transformer", "pv")  # one series for the whole site: the households option does not apply
GROUPS = ("NO_PV", "WITH_PV")
TRANSFORMER_KEY = "MISC/ES1/TRANSFORMER/table"
PV_ID = "PV1"
INVERTERS = ("EAST", "SOUTH", "WEST")
PV_KEY = "MISC/PV1/PV/INVERTER/{}/table"
FILE_NAME = re.compile(r"^(\d{4})_data_(10s|\d+min)\.hdf5$")
HOUSE = re.compile(r"^SFH(\d+)$")


def load_wpuq(path: str | Path, *, kind: str = "household", resolution: int | None = None,
              year: int | None = None, households: int | None = None) -> Readings:
    """Load WPuQ power from a folder of ``{year}_data_{res}.hdf5`` files (or one such file).

    Args:
        path: folder (searched recursively) or one HDF5 file.
        kind: ``"household"``, ``"heatpump"``, ``"transformer"`` (the substation, series ``ES1``) or ``"pv"``
            (the transformer-level PV plant, series ``PV1``: the sum of its EAST, SOUTH and WEST inverters,
            missing wherever any of them is).
        resolution: 1, 15 or 60 minutes; default the finest one present.
        year: only this year's file; default all years present.
        households: keep only the first ``n`` houses by house number (no effect for ``"transformer"`` and
            ``"pv"``, which are one series each).

    Returns:
        Readings in kW; series ids ``SFH{n}`` with category ``no_pv`` / ``with_pv`` (``ES1`` with category
        ``transformer``, ``PV1`` with category ``pv``).

    Raises:
        DataError: no matching file or table, a file with only some of the three PV inverter tables, a
            missing field, an off-grid timestamp, a negative or infinite power (naming file, table and row),
            or a repeated timestamp.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
    households = check_households(households)
    files, resolution = _find_files(Path(path), resolution, year)
    parts, categories = [], {}
    for source, f in enumerate(files):
        for series_id, category, key in _tables(f, kind):
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
    # for pv this checks each inverter on its own (series PV1/EAST, ...), before the sum hides a repeat
    check_duplicates(frame, files, unit="row")
    if kind == "pv":
        frame, categories = _sum_inverters(frame), {PV_ID: "pv"}
    return build_readings(frame, name="wpuq", resolution=resolution, categories=categories,
                          default_category=kind, sources=files)


def _pattern(kind: str) -> str:
    if kind == "transformer":
        return TRANSFORMER_KEY
    if kind == "pv":
        return PV_KEY.format("{" + ",".join(INVERTERS) + "}")
    return f"{{NO_PV|WITH_PV}}/SFH{{n}}/{KINDS[kind]}/table"


def _sum_inverters(frame: pd.DataFrame) -> pd.DataFrame:
    """One ``PV1`` row per timestamp that any inverter reports: the sum of the three inverters' power.

    ``frame`` holds the rows of all inverter tables (series ids ``PV1/{INVERTER}``, no repeated timestamp
    within one). A timestamp that an inverter reports as NaN or lacks is NaN in the sum: counting a missing
    inverter as zero would make a day with an outage look complete, with too little generation.
    """
    columns = [f"{PV_ID}/{inverter}" for inverter in INVERTERS]
    wide = frame.pivot(index="timestamp", columns="series_id", values="kw").reindex(columns=columns)
    # numpy's sum propagates NaN, including the NaN that reindexing puts where an inverter has no row
    kw = wide.to_numpy(dtype=np.float64).sum(axis=1)
    # the file each summed row comes from, so build_readings lists only the files that contributed
    source = frame.groupby("timestamp")["source"].min().reindex(wide.index)
    return pd.DataFrame({"series_id": PV_ID, "timestamp": wide.index.to_numpy(), "kw": kw,
                         "source": source.to_numpy()})


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
                raise DataError("file name is not of the form {year}_data_{1min|15min|60min}.hdf5", path=f)
            continue
        seen.append(f.name)
        res = int(m.group(2)[:-3]) if m.group(2).endswith("min") else None
        if res in RESOLUTIONS and (year is None or int(m.group(1)) == year):
            found.setdefault(res, []).append(f)
    if resolution is None and found:
        resolution = min(found)
    if resolution not in found:
        wanted = f"{resolution}min" if resolution is not None else "1min, 15min or 60min"
        raise DataError(f"no WPuQ file {{year}}_data_{wanted}.hdf5" + (f" for year {year}" if year else "")
                        + f" (found: {seen or 'none'}; the 10 s files are not read)", path=path)
    return found[resolution], resolution


def _tables(f: Path, kind: str) -> list[tuple[str, str, str]]:
    """(series_id, category, dataset key) of every table of ``kind`` in file ``f``."""
    try:
        with h5py.File(f, "r") as h5:
            if kind == "transformer":
                return [("ES1", "transformer", TRANSFORMER_KEY)] if TRANSFORMER_KEY in h5 else []
            if kind == "pv":
                return _inverter_tables(f, h5)
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


def _inverter_tables(f: Path, h5: h5py.File) -> list[tuple[str, str, str]]:
    """The three PV inverter tables of an open file; none when the file has no PV plant.

    A file with only some of them is an error rather than a partial plant: the sum would be missing (or, if
    the absent ones were taken as zero, wrong) at every time step.
    """
    present = [inverter for inverter in INVERTERS if PV_KEY.format(inverter) in h5]
    if not present:
        return []
    absent = [inverter for inverter in INVERTERS if inverter not in present]
    if absent:
        raise DataError(f"PV inverter table(s) {', '.join(PV_KEY.format(i) for i in absent)} missing; the PV "
                        f"plant is the sum of {', '.join(INVERTERS)} and this file has only "
                        f"{', '.join(present)}", path=f)
    return [(f"{PV_ID}/{inverter}", "pv", PV_KEY.format(inverter)) for inverter in INVERTERS]


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
