"""On-disk cache of finished benchmark cells, so identical work is never done twice.

A cell is one (dataset, resolution, task, model, seed). Its key hashes everything its result depends on:
model name and config, task name and config, config profile, data fingerprint, seed and the code version
(package version plus a hash of the model's, task's and metrics' source files and of every project module they
import, directly or not, so that a change to the shared training loop also invalidates the cells it trained). A cell is written
atomically (temporary directory, then rename) only when it has finished, so an interrupted run leaves no
half-written cell and resumes where it stopped.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import shutil
import tempfile
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
            package = _module_name(current)
        except ValueError:  # outside the project
            continue
        if current.name != "__init__.py":
            package = package.rpartition(".")[0]
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
                    if found is not None and found.resolve() not in seen:
                        todo.append(found.resolve())
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


class CellCache:
    """Finished cells under ``root/cells/KEY/`` (``result.json`` + optional ``samples.npy``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / "cells" / key

    def has(self, key: str) -> bool:
        return (self.path(key) / "result.json").is_file()

    def load(self, key: str) -> dict:
        """The stored result; ``samples`` is loaded lazily by :meth:`load_samples`."""
        with open(self.path(key) / "result.json") as fh:
            return json.load(fh)

    def load_samples(self, key: str) -> np.ndarray | None:
        f = self.path(key) / "samples.npy"
        return np.load(f) if f.is_file() else None

    def save(self, key: str, result: dict, samples: np.ndarray | None = None) -> None:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            with open(tmp / "result.json", "w") as fh:
                json.dump(result, fh, indent=1, sort_keys=True, default=str)
            if samples is not None:
                np.save(tmp / "samples.npy", samples)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def checkpoint_dir(self, key: str) -> Path:
        """Where an unfinished cell keeps model checkpoints (kept apart from finished results)."""
        d = self.root / "checkpoints" / key
        d.mkdir(parents=True, exist_ok=True)
        return d

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Store ``array`` as ``arrays/<name>.npy``; a unique temporary file and an atomic rename let several
        runs sharing one cache write the same array without corrupting it."""
        d = self.root / "arrays"
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".npy", dir=d)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, array)
            os.replace(tmp, d / f"{name}.npy")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def load_array(self, name: str) -> np.ndarray | None:
        f = self.root / "arrays" / f"{name}.npy"
        return np.load(f) if f.is_file() else None
