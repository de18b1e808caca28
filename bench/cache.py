"""On-disk cache of finished benchmark cells, so identical work is never done twice.

A cell is one (dataset, resolution, task, model, seed). Its key hashes everything its result depends on:
model name and config, task name and config, config profile, data fingerprint, seed and the code version
(package version plus a hash of the model's, task's and metrics' source files and of every project module they
import, directly or not, so that a change to the shared training loop also invalidates the cells it trained). A cell is written
atomically (temporary directory, then rename) only when it has finished, so an interrupted run leaves no
half-written cell and resumes where it stopped.

Every entry carries the SHA-256 of its files (``checksum.json``, written last), so a cell or array damaged
on disk afterwards (a truncated copy, flipped bytes, a crash of the file system before the data reached the
disk, an entry written before checksums were kept) is never served: :meth:`CellCache.has` is False for it,
:meth:`CellCache.problem` says what is wrong, loading it raises :class:`CacheEntryError` and
:meth:`CellCache.quarantine` moves it aside (under ``.damaged/``) so the cell can be recomputed and nothing is
lost. An entry's layout::

    cells/KEY/result.json      the result (JSON object)
    cells/KEY/samples.npy      optional array (plain dtype; object arrays are refused)
    cells/KEY/checksum.json    {"format": 1, "files": {"result.json": {"sha256": ..., "bytes": ...}, ...}}
    arrays/NAME.npy            a stored array, with arrays/NAME.checksum.json in the same format
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import io
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import bench


def _file_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        try:
            name = p.resolve().relative_to(REPO_ROOT).as_posix()
        except ValueError:
            name = p.name
        h.update(name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


REPO_ROOT = Path(__file__).resolve().parents[1]


def _module_file(name: str) -> Path | None:
    """The source file of project module ``name`` (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``)."""
    base = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    parts = list(path.resolve().relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# direct project imports of each source file, keyed by its path, size and modification time: a run computes
# code versions for every cell, and parsing the same files again each time dominated that cost
_DIRECT_IMPORTS: dict[tuple[Path, int, int], frozenset[Path]] = {}


def _direct_imports(current: Path) -> frozenset[Path]:
    """The project source files ``current`` (a resolved path inside the project) imports itself."""
    stat = current.stat()
    memo_key = (current, stat.st_size, stat.st_mtime_ns)
    if memo_key in _DIRECT_IMPORTS:
        return _DIRECT_IMPORTS[memo_key]
    package = _module_name(current)
    if current.name != "__init__.py":
        package = package.rpartition(".")[0]
    found_files: set[Path] = set()
    for node in ast.walk(ast.parse(current.read_text(), filename=str(current))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            # every enclosing package's __init__ runs on import too
            for i in range(1, len(parts) + 1):
                found = _module_file(".".join(parts[:i]))
                if found is not None:
                    found_files.add(found.resolve())
    result = frozenset(found_files)
    _DIRECT_IMPORTS[memo_key] = result
    return result


def project_imports(path: Path) -> set[Path]:
    """``path`` and every project source file it imports, directly or through other project modules.

    Read from the import statements (not from what happens to be loaded), so the set is the same in every
    process; imports of outside packages are ignored.
    """
    seen: set[Path] = set()
    todo = [path.resolve()]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            _module_name(current)
        except ValueError:  # outside the project
            continue
        todo.extend(f for f in _direct_imports(current) if f not in seen)
    return seen


def code_version(*sources) -> str:
    """Package version plus a digest of the sources that decide a cell's numbers: the files defining
    ``sources`` (classes, functions, modules or paths), every project module they import (directly or
    not) and every metrics module."""
    import metrics

    files = {Path(s) if isinstance(s, (str, Path)) else Path(inspect.getfile(s)) for s in sources}
    files |= set(Path(metrics.__file__).parent.glob("*.py"))
    closure: set[Path] = set()
    for f in files:
        if f.is_file():
            closure |= project_imports(f) if f.suffix == ".py" else {f.resolve()}
    return f"{bench.__version__}+{_file_digest(sorted(closure))}"


def cell_key(descriptor: dict) -> str:
    """Stable hash of a JSON-serialisable cell descriptor."""
    blob = json.dumps(descriptor, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


CHECKSUM_NAME = "checksum.json"
CHECKSUM_FORMAT = 1
DAMAGED_DIR = ".damaged"
# the files of a cell entry the cache reads; checksum.json may list these and nothing else
_CELL_FILES = ("result.json", "samples.npy")


class CacheEntryError(RuntimeError):
    """A cache entry (cell or array) is damaged; the message names its path and what is wrong."""


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _digest(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _checksum_blob(files: dict[str, bytes]) -> bytes:
    return json.dumps({"format": CHECKSUM_FORMAT, "files": {n: _digest(b) for n, b in files.items()}},
                      indent=1, sort_keys=True).encode()


def _npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of a ``.npy`` file; object arrays are refused (they would be pickles)."""
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise TypeError(f"the cache stores plain arrays only, not dtype {array.dtype} (Python objects)")
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _parse_npy(data: bytes) -> np.ndarray:
    """The array in ``data``; a ``ValueError`` saying why when the bytes are not a plain ``.npy`` array."""
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - bad bytes raise ValueError, EOFError, SyntaxError...: all "damaged"
        raise ValueError(f"does not load as an array ({_one_line(err)})") from None


def _read_checked(checksum_file: Path, folder: Path, allowed: tuple[str, ...], required: tuple[str, ...]
                  ) -> dict[str, bytes]:
    """The bytes of every file ``checksum_file`` lists (names relative to ``folder``), each verified against
    its SHA-256; a problem is a ``ValueError`` whose message says what is wrong (the caller adds the path)."""
    if not checksum_file.is_file():
        raise ValueError(f"no {checksum_file.name}: half-written, or written before entries carried checksums")
    try:
        manifest = json.loads(checksum_file.read_bytes())
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{checksum_file.name} is unreadable ({_one_line(err)})") from None
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict) or manifest.get("format") != CHECKSUM_FORMAT:
        raise ValueError(f"{checksum_file.name} is unreadable (not a format-{CHECKSUM_FORMAT} checksum file)")
    for name, entry in listed.items():
        if name not in allowed:  # never read a file the entry does not consist of (a path outside, say)
            raise ValueError(f"{checksum_file.name} lists an unexpected file {name!r}")
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("bytes"), int)):
            raise ValueError(f"{checksum_file.name} has a malformed record for {name}")
    for name in required:
        if name not in listed:
            raise ValueError(f"{checksum_file.name} does not list {name}")
    for name in allowed:
        if name not in listed and (folder / name).exists():
            raise ValueError(f"{name} is present but {checksum_file.name} does not list it")
    out: dict[str, bytes] = {}
    for name, entry in listed.items():
        f = folder / name
        if not f.is_file():
            raise ValueError(f"{name} is missing")
        data = f.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            size, expected = len(data), entry["bytes"]
            how = ("corrupted: same size, other bytes" if size == expected else
                   f"{'truncated' if size < expected else 'corrupted'}: {size} bytes, {expected} written")
            raise ValueError(f"{name} does not match its checksum ({how})")
        out[name] = data
    return out


def _unique_aside(parent: Path, stem: str) -> Path:
    """A fresh path ``parent/STEM-<UTC time>`` (suffixed further if taken) to move a damaged entry to."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    candidate, i = parent / f"{stem}-{stamp}", 0
    while candidate.exists():
        i += 1
        candidate = parent / f"{stem}-{stamp}-{i}"
    return candidate


def _check_name(name: str, what: str) -> str:
    # one plain path component: no separators, and no leading dot (temporary files and .damaged/ use those)
    if not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\\" in name \
            or os.sep in name:
        raise ValueError(f"invalid cache {what} {name!r}: use a plain file name without '/' or a leading '.'")
    return name


class CellCache:
    """Finished cells under ``root/cells/KEY/`` and stored arrays under ``root/arrays/``, each with a
    checksum (see the module docstring for the layout)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- cells ------------------------------------------------------------------------------------------
    def path(self, key: str) -> Path:
        """The directory of cell ``key`` (whether or not it exists)."""
        return self.root / "cells" / _check_name(key, "key")

    def _read(self, key: str) -> tuple[dict, np.ndarray | None] | None:
        """The verified result and samples of ``key``; None when absent, :class:`CacheEntryError` if damaged."""
        folder = self.path(key)
        if not folder.exists() and not folder.is_symlink():
            return None
        try:
            if not folder.is_dir():
                raise ValueError("is not a directory")
            files = _read_checked(folder / CHECKSUM_NAME, folder, _CELL_FILES, ("result.json",))
            try:
                result = json.loads(files["result.json"])
            except (ValueError, UnicodeDecodeError) as err:
                raise ValueError(f"result.json is not valid JSON ({_one_line(err)})") from None
            if not isinstance(result, dict):
                raise ValueError(f"result.json holds a {type(result).__name__}, not an object")
            samples = None
            if "samples.npy" in files:
                try:
                    samples = _parse_npy(files["samples.npy"])
                except ValueError as err:
                    raise ValueError(f"samples.npy {err}") from None
        except (ValueError, OSError) as err:
            msg = str(err) if isinstance(err, ValueError) else _one_line(err)
            raise CacheEntryError(f"damaged cache entry {folder}: {msg}") from None
        return result, samples

    def problem(self, key: str) -> str | None:
        """None when cell ``key`` is intact or absent; otherwise one line naming the entry's path and what is
        wrong (no checksum: half-written or from before checksums; checksum mismatch; unparsable JSON; an
        unloadable ``samples.npy``)."""
        try:
            self._read(key)
        except CacheEntryError as err:
            return str(err)
        return None

    def has(self, key: str) -> bool:
        """True only for an intact entry: files present, checksums matching, JSON and samples readable."""
        try:
            return self._read(key) is not None
        except CacheEntryError:
            return False

    def load(self, key: str) -> dict:
        """The stored result (``samples`` come from :meth:`load_samples`); :class:`CacheEntryError` for a
        damaged entry, ``FileNotFoundError`` for an absent one."""
        entry = self._read(key)
        if entry is None:
            raise FileNotFoundError(f"no cache entry {self.path(key)}")
        return entry[0]

    def load_samples(self, key: str) -> np.ndarray | None:
        """The stored samples, None if the cell stored none; :class:`CacheEntryError` for a damaged entry,
        ``FileNotFoundError`` for an absent one."""
        entry = self._read(key)
        if entry is None:
            raise FileNotFoundError(f"no cache entry {self.path(key)}")
        return entry[1]

    def quarantine(self, key: str) -> Path:
        """Move the entry of ``key`` to ``cells/.damaged/KEY-<UTC time>`` (kept for inspection; the cell is
        then absent and can be recomputed) and return where it went. Meant for entries :meth:`problem`
        reports; an intact entry is moved all the same. ``FileNotFoundError`` if there is no entry."""
        folder = self.path(key)
        if not folder.exists() and not folder.is_symlink():
            raise FileNotFoundError(f"no cache entry {folder} to quarantine")
        target = _unique_aside(folder.parent / DAMAGED_DIR, key)
        os.rename(folder, target)
        return target

    def save(self, key: str, result: dict, samples: np.ndarray | None = None) -> None:
        """Store cell ``key`` atomically: the files and their checksums go to a temporary directory that is
        renamed into place. An intact entry already there is replaced; a damaged one is quarantined first."""
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        files = {"result.json": json.dumps(result, indent=1, sort_keys=True, default=str).encode()}
        if samples is not None:
            files["samples.npy"] = _npy_bytes(samples)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        old: Path | None = None
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            # written last: an entry without it was interrupted before it was complete
            (tmp / CHECKSUM_NAME).write_bytes(_checksum_blob(files))
            if final.exists() or final.is_symlink():
                if self.problem(key) is not None:
                    self.quarantine(key)
                else:
                    old = Path(tempfile.mkdtemp(prefix=f".{key}-old-", dir=final.parent))
                    os.replace(final, old)  # onto an empty directory: allowed, and atomic
            try:
                os.replace(tmp, final)
            except OSError:
                # another process stored the same cell in between (same key, same inputs): keep theirs
                if not self.has(key):
                    raise
        finally:
            for leftover in (tmp, old):
                if leftover is not None and leftover.exists():
                    shutil.rmtree(leftover, ignore_errors=True)

    def checkpoint_dir(self, key: str) -> Path:
        """Where an unfinished cell keeps model checkpoints (kept apart from finished results)."""
        d = self.root / "checkpoints" / _check_name(key, "key")
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- arrays -----------------------------------------------------------------------------------------
    def array_path(self, name: str) -> Path:
        """The file of stored array ``name`` (``arrays/NAME.npy``; its checksum is ``arrays/NAME.checksum.json``)."""
        return self.root / "arrays" / f"{_check_name(name, 'array name')}.npy"

    def _array_checksum_path(self, name: str) -> Path:
        return self.root / "arrays" / f"{_check_name(name, 'array name')}.checksum.json"

    def _read_array(self, name: str) -> np.ndarray | None:
        f, sums = self.array_path(name), self._array_checksum_path(name)
        if not f.exists() and not sums.exists():
            return None
        try:
            return _parse_npy(_read_checked(sums, f.parent, (f.name,), (f.name,))[f.name])
        except (ValueError, OSError) as err:
            msg = str(err) if isinstance(err, ValueError) else _one_line(err)
            raise CacheEntryError(f"damaged cache array {f}: {msg}") from None

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Store ``array`` as ``arrays/<name>.npy`` with its checksum. Unique temporary files and atomic
        renames (the array, then its checksum) let several runs sharing one cache write the same array; a
        damaged array already there is quarantined first."""
        f, sums = self.array_path(name), self._array_checksum_path(name)
        f.parent.mkdir(parents=True, exist_ok=True)
        data = _npy_bytes(array)
        temps = []
        try:
            for suffix, blob in ((".npy", data), (".checksum.json", _checksum_blob({f.name: data}))):
                fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=suffix, dir=f.parent)
                temps.append(tmp)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(blob)
            if self.array_problem(name) is not None:
                self.quarantine_array(name)
            os.replace(temps[0], f)
            os.replace(temps[1], sums)
        finally:
            for tmp in temps:
                if os.path.exists(tmp):
                    os.remove(tmp)

    def load_array(self, name: str) -> np.ndarray | None:
        """The stored array ``name``; None when absent, :class:`CacheEntryError` when damaged."""
        return self._read_array(name)

    def array_problem(self, name: str) -> str | None:
        """None when array ``name`` is intact or absent; otherwise one line naming its path and what is wrong."""
        try:
            self._read_array(name)
        except CacheEntryError as err:
            return str(err)
        return None

    def quarantine_array(self, name: str) -> Path:
        """Move array ``name`` (and its checksum) into ``arrays/.damaged/NAME-<UTC time>/`` and return that
        directory. ``FileNotFoundError`` if neither file exists."""
        present = [p for p in (self.array_path(name), self._array_checksum_path(name)) if p.exists()]
        if not present:
            raise FileNotFoundError(f"no cache array {self.array_path(name)} to quarantine")
        target = _unique_aside(self.root / "arrays" / DAMAGED_DIR, name)
        target.mkdir()
        for p in present:
            os.rename(p, target / p.name)
        return target
