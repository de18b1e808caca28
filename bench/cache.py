"""On-disk cache of finished benchmark cells, so identical work is never done twice.

A cell is one (dataset, resolution, task, model, seed). Its key hashes everything its result depends on:
model name and config, task name and config, config profile, data fingerprint, seed and the code version
(package version plus a hash of the model's, task's and metrics' source files). A cell is written
atomically (temporary directory, then rename) only when it has finished, so an interrupted run leaves no
half-written cell and resumes where it stopped.
"""

from __future__ import annotations

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
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def code_version(*sources) -> str:
    """Package version plus a digest of the sources that decide a cell's numbers: the files defining
    ``sources`` (classes, functions, modules or paths) and every metrics module."""
    import metrics

    files = {Path(s) if isinstance(s, (str, Path)) else Path(inspect.getfile(s)) for s in sources}
    files |= set(Path(metrics.__file__).parent.glob("*.py"))
    return f"{bench.__version__}+{_file_digest([f for f in files if f.is_file()])}"


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
        d = self.root / "arrays"
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{name}.tmp.npy"
        np.save(tmp, array)
        os.replace(tmp, d / f"{name}.npy")

    def load_array(self, name: str) -> np.ndarray | None:
        f = self.root / "arrays" / f"{name}.npy"
        return np.load(f) if f.is_file() else None
