"""Parsing helpers shared by the dataset loaders.

Every check here reports the source file and, where the input is a text file, the 1-based line number
(header = line 1) and the column, so a bad value in a multi-gigabyte CSV can be found with ``sed -n Np``.

Text files are read as distributed: plain, gzip-compressed (``name.csv.gz``) or as members of a zip archive
(``name.zip`` / ``name.csv.zip`` holding one or several files). A zip member is a :class:`ZipMember` and is
named ``archive.zip [member]`` in every error and in ``Readings.sources``; a plain or gzip file is its
:class:`~pathlib.Path`. Line numbers always count lines of the decompressed text.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
import pandas as pd

from bench.data.readings import Readings
from bench.errors import DataError

ENV_DATA = "METERBENCH_DATA"
CHUNK_ROWS = 2_000_000

# Column kinds understood by read_checked_csv.
STR, FLOAT, INT = "str", "float", "int"

GZIP_SUFFIX = ".gz"
ZIP_SUFFIX = ".zip"
# What a damaged gzip or zip stream raises while it is being read (BadGzipFile is an OSError).
_DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile)


@dataclass(frozen=True)
class ZipMember:
    """One file inside a zip archive.

    Attributes:
        archive: the ``.zip`` file on disk.
        member: the member's name inside the archive (may include folders, ``/``-separated).
    """

    archive: Path
    member: str

    @property
    def name(self) -> str:
        """The member's file name without its folders, e.g. ``File1.txt``."""
        return PurePosixPath(self.member).name

    def __str__(self) -> str:
        return f"{self.archive} [{self.member}]"


TextSource = Path | ZipMember


def source_name(source: TextSource) -> str:
    """The name of the text inside ``source``: ``File1.txt`` for ``File1.txt``, ``File1.txt.gz`` or a member
    ``File1.txt`` of a zip archive."""
    if isinstance(source, ZipMember):
        return source.name
    name = source.name
    return name[: -len(GZIP_SUFFIX)] if name.lower().endswith(GZIP_SUFFIX) else name


def source_stem(source: TextSource) -> str:
    """:func:`source_name` without its extension, e.g. ``block_0`` for ``block_0.csv.gz``."""
    return PurePosixPath(source_name(source)).stem


def is_zip(path: Path) -> bool:
    """Whether ``path`` is named as a zip archive (``.zip``, including ``.csv.zip`` / ``.txt.zip``)."""
    return path.suffix.lower() == ZIP_SUFFIX


def _zip_members(archive: Path) -> list[str]:
    """Names of the files (not folders) in ``archive``; :class:`DataError` when it cannot be read as a zip."""
    try:
        with zipfile.ZipFile(archive) as zf:
            return [i.filename for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"cannot read zip archive (corrupt, truncated or not a zip file): {exc}",
                        path=archive) from exc


def find_sources(path: Path, accept: Callable[[str], bool], what: str) -> list[TextSource]:
    """The text files under ``path`` whose :func:`source_name` passes ``accept``, in sorted order.

    ``path`` may be a folder (searched recursively; plain and ``.gz`` files are offered by their name
    without ``.gz``, and every ``.zip`` archive is opened and its members offered by their file name), a zip
    archive (its accepted members) or any other file (returned as it is, for the loader to check).

    Raises :class:`DataError` for an archive that cannot be read, and, when ``path`` itself is an archive, for
    one without an accepted member (the message lists its members and says which ``what`` was expected).
    Nested archives (a zip inside a zip) are not opened.
    """
    if path.is_file() and not is_zip(path):
        return [path]
    if path.is_file():
        members = _zip_members(path)
        found = [ZipMember(path, m) for m in members if accept(PurePosixPath(m).name)]
        if not found:
            listed = ", ".join(members[:10]) + (", ..." if len(members) > 10 else "") if members else "none"
            raise DataError(f"zip archive holds no {what} (members: {listed})", path=path)
        return found
    found: list[TextSource] = []
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        if is_zip(f):
            found += [ZipMember(f, m) for m in _zip_members(f) if accept(PurePosixPath(m).name)]
        elif accept(source_name(f)):
            found.append(f)
    return found


def single_source(path: Path, accept: Callable[[str], bool], what: str) -> TextSource:
    """``path`` as one text source: the file itself, or the one accepted member of a zip archive.

    Raises :class:`DataError` when ``path`` is not a file, or a zip archive holds no accepted member or several
    (naming them).
    """
    if not path.is_file():
        raise DataError("expected a file (plain, .gz or a zip archive), not a folder or a missing path", path=path)
    found = find_sources(path, accept, what)
    if len(found) > 1:
        names = ", ".join(s.member for s in found if isinstance(s, ZipMember))
        raise DataError(f"zip archive holds several {what} ({names}); extract the one to read", path=path)
    return found[0]


@contextlib.contextmanager
def open_source(source: TextSource) -> Iterator[IO[bytes]]:
    """Open ``source`` for reading as decompressed bytes.

    A damaged archive raises :class:`DataError` naming the archive (and member) when it is opened or while
    the body of the ``with`` block reads it; other errors pass through unchanged.
    """
    compressed = isinstance(source, ZipMember) or source.name.lower().endswith(GZIP_SUFFIX)
    with contextlib.ExitStack() as stack:
        try:
            if isinstance(source, ZipMember):
                zf = stack.enter_context(zipfile.ZipFile(source.archive))
                fh = stack.enter_context(zf.open(source.member))
            elif compressed:
                fh = stack.enter_context(gzip.open(source, "rb"))
            else:
                fh = stack.enter_context(open(source, "rb"))
        except KeyError as exc:
            raise DataError("member not found in the zip archive", path=source) from exc
        except (RuntimeError, NotImplementedError) as exc:
            # encrypted members and compression methods zipfile cannot decode (e.g. Deflate64)
            raise DataError(f"cannot read zip member: {exc}; extract the archive and point at the files",
                            path=source) from exc
        except _DECOMPRESSION_ERRORS as exc:
            raise DataError(_unreadable(source, compressed, exc), path=source) from exc
        try:
            yield fh
        except DataError:
            raise
        except _DECOMPRESSION_ERRORS as exc:
            raise DataError(_unreadable(source, compressed, exc), path=source) from exc


def _unreadable(source: TextSource, compressed: bool, exc: BaseException) -> str:
    if not compressed:
        return f"cannot read file: {exc}"
    kind = "zip" if isinstance(source, ZipMember) else "gzip"
    return f"cannot decompress {kind} data (corrupt or truncated archive): {exc}"


def resolve_data_dir(dataset: str, data_dir: str | Path | None) -> Path:
    """Return the folder (or file) holding ``dataset``'s files.

    ``data_dir`` wins when given; otherwise ``$METERBENCH_DATA/<dataset>`` is used. Raises :class:`DataError`
    naming the path that was tried and how to point at the data instead.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.exists():
            raise DataError(f"data path for dataset {dataset!r} does not exist", path=path)
        return path
    root = os.environ.get(ENV_DATA)
    if not root:
        raise DataError(f"no data folder given for dataset {dataset!r} and ${ENV_DATA} is not set; pass "
                        f"--data-dir DIR (data_dir=... in Python) or set {ENV_DATA} to a folder holding a "
                        f"'{dataset}' sub-folder")
    path = Path(root).expanduser() / dataset
    if not path.exists():
        raise DataError(f"data folder for dataset {dataset!r} not found (tried ${ENV_DATA}/{dataset} with "
                        f"{ENV_DATA}={root}); put the files there, pass --data-dir DIR (data_dir=... in "
                        f"Python) or set {ENV_DATA} to another root", path=path)
    return path


def check_households(households: int | None) -> int | None:
    """Validate the common ``households`` option (None = all)."""
    if households is None:
        return None
    if isinstance(households, bool) or not isinstance(households, (int, np.integer)) or households < 1:
        raise ValueError(f"households must be a positive integer or None, not {households!r}")
    return int(households)


def read_header(path: TextSource, sep: str = ",") -> list[str]:
    """The first line of a text source split on ``sep``, each name stripped (some real headers carry spaces).

    Undecodable bytes are replaced rather than fatal: the header is only used to recognise a layout, and
    unrelated files next to the data (e.g. Kaggle's Latin-1 ``acorn_details.csv``) must not stop a load.
    """
    with open_source(path) as raw:
        first = raw.readline()
    text = first.decode("utf-8", errors="replace").removeprefix("\ufeff")
    return [name.strip() for name in text.rstrip("\r\n").split(sep)]


def check_header(path: TextSource, found: Sequence[str], expected: Sequence[str]) -> None:
    """Raise unless ``found`` starts with the ``expected`` column names."""
    if list(found[: len(expected)]) != list(expected):
        raise DataError(f"unexpected columns {list(found)}; expected {list(expected)}", path=path, line=1)


class FirstSeries:
    """The first ``n`` series ids in sorted order among all ids offered so far (all ids when ``n`` is None).

    Lets a loader stream a large file chunk by chunk and keep only the rows it will return, whatever order
    the households appear in.
    """

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.kept: set[str] = set()

    def offer(self, ids: Iterable[str]) -> None:
        if self.n is None:
            return
        self.kept = set(sorted(self.kept.union(ids))[: self.n])

    def filter(self, frame: pd.DataFrame, column: str = "series_id") -> pd.DataFrame:
        if self.n is None:
            return frame
        return frame[frame[column].isin(self.kept)]


def _padded(tokens: Iterable[str]) -> list[str]:
    # The C parser matches missing-value tokens exactly, and real files pad values with single spaces.
    out = []
    for t in tokens:
        out += [t, f" {t}", f"{t} ", f" {t} "]
    return out


def read_checked_csv(path: TextSource, *, names: Sequence[str], kinds: dict[str, str], header: bool = True,
                     sep: str = ",", missing: Sequence[str] = ("",), chunk_rows: int = CHUNK_ROWS,
                     keep: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> pd.DataFrame:
    """Read the columns named in ``kinds`` from a delimited text file, checking every value.

    Args:
        path: the file (plain or ``.gz``) or zip member.
        names: names for all columns of the file, in file order (replacing the header when ``header``).
        kinds: columns to return and their kind: ``"str"``, ``"float"`` (``missing`` tokens, surrounding
            spaces allowed, become NaN) or ``"int"`` (no missing values).
        header: whether line 1 is a header.
        sep: field separator (``r"\\s+"`` for whitespace-separated files).
        missing: tokens meaning "no reading" in float columns.
        chunk_rows: rows per chunk, to bound memory on large files.
        keep: optional filter applied to each parsed chunk (e.g. the selected households).

    Returns:
        The parsed columns plus ``line`` (int64, the 1-based line of each row in the file). Blank lines are
        skipped. Raises :class:`DataError` naming file, line and column for any value that is not of its kind
        and for non-finite numbers.
    """
    usecols = list(kinds)
    offset = 2 if header else 1
    # With usecols the parser silently accepts rows with extra fields; without it a wrong field count is an
    # error, so restrict the columns only when some are actually skipped.
    common = dict(sep=sep, header=0 if header else None, names=list(names),
                  usecols=None if set(usecols) == set(names) else usecols,
                  skip_blank_lines=False, keep_default_na=False, chunksize=chunk_rows, engine="c",
                  encoding="utf-8-sig")
    dtype = {c: {STR: str, FLOAT: "float64", INT: "int64"}[k] for c, k in kinds.items()}
    na_values = {c: _padded(missing) for c, k in kinds.items() if k == FLOAT}
    try:
        try:
            with open_source(path) as fh:
                chunks = [_finish_chunk(c, kinds, offset, path, keep)
                          for c in pd.read_csv(fh, dtype=dtype, na_values=na_values, **common)]
        except ValueError as exc:
            if isinstance(exc, (pd.errors.ParserError, DataError, UnicodeDecodeError)):
                raise
            # A value the fast parser rejected: re-read as text to find and report it, or to accept
            # tokens the fast path cannot match (e.g. a missing token with unusual padding).
            with open_source(path) as fh:
                chunks = [_finish_chunk(_convert_text(c, kinds, missing, offset, path), kinds, offset, path,
                                        keep)
                          for c in pd.read_csv(fh, dtype=str, **common)]
    except DataError:
        raise
    except pd.errors.ParserError as exc:
        raise DataError(f"malformed line: {exc}", path=path) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError("file is empty", path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read file: {exc}", path=path) from exc
    except ValueError as exc:
        raise DataError(f"cannot parse file: {exc}", path=path) from exc
    if not chunks:
        return pd.DataFrame({**{c: pd.Series(dtype=dtype[c]) for c in usecols}, "line": pd.Series(dtype="int64")})
    return pd.concat(chunks, ignore_index=True)


def _blank_rows(chunk: pd.DataFrame, kinds: dict[str, str]) -> np.ndarray:
    # An empty line parses to "" in text columns and NaN in numeric ones.
    blank = np.ones(len(chunk), dtype=bool)
    for c, k in kinds.items():
        col = chunk[c]
        blank &= (col == "").to_numpy() if k == STR else col.isna().to_numpy()
    return blank


def _convert_text(chunk: pd.DataFrame, kinds: dict[str, str], missing: Sequence[str], offset: int,
                  path: TextSource) -> pd.DataFrame:
    chunk = chunk.fillna("")
    chunk = chunk[~_blank_rows(chunk, {c: STR for c in kinds})]
    lines = chunk.index.to_numpy() + offset
    out = {}
    for c, k in kinds.items():
        if k == STR:
            out[c] = chunk[c]
            continue
        text = chunk[c].str.strip()
        absent = text.isin(list(missing)) if k == FLOAT else np.zeros(len(text), dtype=bool)
        values = pd.to_numeric(text.where(~absent), errors="coerce")
        bad = values.isna().to_numpy() & ~np.asarray(absent)
        if k == INT:
            bad |= ~bad & (values.fillna(0) % 1 != 0).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "an integer" if k == INT else "a number" + (f" or one of {list(missing)}" if missing else "")
            raise DataError(f"value {chunk[c].iloc[i]!r} is not {what}", path=path, line=int(lines[i]), column=c)
        out[c] = values.astype("int64") if k == INT else values.astype("float64")
    return pd.DataFrame(out, index=chunk.index)


def _finish_chunk(chunk: pd.DataFrame, kinds: dict[str, str], offset: int, path: TextSource,
                  keep: Callable[[pd.DataFrame], pd.DataFrame] | None) -> pd.DataFrame:
    if any(k == STR for k in kinds.values()):
        blank = _blank_rows(chunk, kinds)
        if blank.any():
            chunk = chunk[~blank]
    chunk = chunk.assign(line=chunk.index.to_numpy(dtype=np.int64) + offset)
    for c, k in kinds.items():
        if k == FLOAT:
            values = chunk[c].to_numpy()
            bad = np.isinf(values)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(f"value {values[i]} is not finite", path=path, line=int(chunk["line"].iloc[i]),
                                column=c)
    return keep(chunk) if keep is not None else chunk


def parse_timestamps(text: pd.Series, lines: np.ndarray, path: TextSource, column: str,
                     formats: Sequence[str]) -> np.ndarray:
    """Parse timestamp strings with the first of ``formats`` that fits the first value.

    Returns datetime64[ns] values; any value that does not parse raises :class:`DataError` with its line.
    """
    if len(text) == 0:
        return np.array([], dtype="datetime64[ns]")
    first = str(text.iloc[0]).strip()
    fmt = formats[0]
    for candidate in formats:
        if not pd.isna(pd.to_datetime(first, format=candidate, errors="coerce")):
            fmt = candidate
            break
    parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"unparsable timestamp {text.iloc[i]!r} (expected format {fmt!r})", path=path,
                        line=int(lines[i]), column=column)
    return parsed.to_numpy(dtype="datetime64[ns]")


def check_grid(timestamps: np.ndarray, resolution: int, lines: np.ndarray | None, path: TextSource,
               column: str) -> None:
    """Raise unless every timestamp is a whole multiple of ``resolution`` minutes after midnight."""
    step = np.int64(resolution) * 60 * 10**9
    off = np.asarray(timestamps, dtype="datetime64[ns]").view(np.int64) % step != 0
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise DataError(f"timestamp {pd.Timestamp(timestamps[i])} is not on the {resolution}-minute grid",
                        path=path, line=None if lines is None else int(lines[i]), column=column)


def check_nonnegative(values: np.ndarray, lines: np.ndarray, path: TextSource, column: str) -> None:
    """Raise on the first negative reading."""
    neg = np.asarray(values) < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise DataError(f"negative reading {values[i]}", path=path, line=int(lines[i]), column=column)


def check_duplicates(frame: pd.DataFrame, sources: Sequence[TextSource | str], unit: str = "line") -> None:
    """Raise on a repeated (series_id, timestamp) key.

    ``frame`` has columns ``series_id``, ``timestamp``, ``source`` (index into ``sources``) and ``line``
    (1-based line in that source; ``unit="row"`` for non-text sources, where it is a table row). The error
    names the later occurrence and where the first one is.
    """
    dup = frame.duplicated(["series_id", "timestamp"], keep=False).to_numpy()
    if not dup.any():
        return
    rows = frame[dup].sort_values(["series_id", "timestamp", "source", "line"], kind="stable")
    first, second = rows.iloc[0], rows.iloc[1]
    where = f"{sources[int(first['source'])]} {unit} {int(first['line'])}"
    message = f"duplicate reading for series {first['series_id']} at {pd.Timestamp(first['timestamp'])}"
    if unit == "line":
        raise DataError(f"{message} (first at {where})", path=sources[int(second["source"])],
                        line=int(second["line"]))
    raise DataError(f"{message} in row {int(second['line'])} (first at {where})", path=sources[int(second["source"])])


def build_readings(frame: pd.DataFrame, *, name: str, resolution: int, categories: dict[str, str] | None,
                   default_category: str, sources: Sequence[TextSource | str], presorted: bool = False,
                   notes: dict[str, str] | None = None) -> Readings:
    """Sort the long frame, attach one info row per series and wrap it as :class:`Readings`.

    ``presorted=True`` skips the order check when the loader has already verified it (large single series).
    When ``frame`` has a ``source`` column (index into ``sources``), files that contributed no row are left
    out of ``Readings.sources``. ``notes`` become ``Readings.notes`` (what the loader selected, for reports).
    """
    if frame.empty:
        raise DataError("no readings left to load (check the files and the households/tariff options)",
                        path=", ".join(str(s) for s in sources) or name)
    if "source" in frame.columns:
        used = set(pd.unique(frame["source"]).tolist())
        sources = [s for i, s in enumerate(sources) if i in used]
    ids = frame["series_id"]
    if ids.dtype != object:
        ids = ids.astype(str)
    timestamps = frame["timestamp"].to_numpy(dtype="datetime64[ns]")
    if not presorted and not _is_sorted(ids, timestamps):
        codes, _ = pd.factorize(ids, sort=True)
        order = np.lexsort((timestamps, codes))
        ids, timestamps, kw = ids.iloc[order], timestamps[order], frame["kw"].to_numpy()[order]
    else:
        kw = frame["kw"].to_numpy()
    out = pd.DataFrame({"series_id": ids.to_numpy(dtype=object), "timestamp": timestamps,
                        "kw": np.asarray(kw, dtype=np.float64)}, copy=False)
    ids = pd.unique(out["series_id"])
    categories = categories or {}
    info = pd.DataFrame({"category": [str(categories.get(i, default_category)) for i in ids]},
                        index=pd.Index(ids, name="series_id"))
    return Readings(frame=out, resolution=resolution, info=info, name=name, sources=[str(s) for s in sources],
                    notes=dict(notes or {}))


def _is_sorted(ids: pd.Series, timestamps: np.ndarray) -> bool:
    """True when rows are ordered by series id, then strictly by time (a cheap test that skips sorting)."""
    if not ids.is_monotonic_increasing:
        return False
    same = ids.to_numpy()[1:] == ids.to_numpy()[:-1]
    return bool((np.diff(timestamps.view(np.int64))[same] > 0).all())
