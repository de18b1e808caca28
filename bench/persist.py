"""Models and checkpoints on disk as data, never code: tensors, arrays and plain values, read back with
``torch.load(weights_only=True)``, which refuses anything else (a pickled object planted in a shared cache
is an :class:`UnsafeFileError` naming the file, never executed)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1
_ARRAY = "__ndarray__"
_MODULE = "__module_state__"
_TUPLE = "__tuple__"


class UnsafeFileError(RuntimeError):
    """A model or checkpoint file holds something other than tensors and plain values (or is unreadable)."""


def to_safe(value: Any, where: str = "value") -> Any:
    """``value`` as tensors and plain containers: arrays become tagged tensors, modules their state dicts,
    NumPy scalars Python numbers. Anything else is a ``TypeError`` naming ``where``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{where}: object arrays cannot be saved safely")
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(value).copy())}
    if isinstance(value, torch.nn.Module):
        return {_MODULE: {k: v.detach().cpu() for k, v in value.state_dict().items()}}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, tuple):
        return {_TUPLE: [to_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [to_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where}: only dicts with string keys can be saved safely")
        return {k: to_safe(v, f"{where}[{k!r}]") for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        raise TypeError(f"{where}: a {type(value).__name__} dataclass; save its fields (override get_state)")
    raise TypeError(f"{where}: a {type(value).__module__}.{type(value).__name__} cannot be saved as data; "
                    f"override get_state / set_state for it")


def from_safe(value: Any, current: Any = None) -> Any:
    """Inverse of :func:`to_safe`. A saved module's state loads into ``current`` (the module of the freshly
    built model), which must exist."""
    if isinstance(value, dict):
        if _ARRAY in value and len(value) == 1:
            return value[_ARRAY].numpy().copy()
        if _TUPLE in value and len(value) == 1:
            return tuple(from_safe(v) for v in value[_TUPLE])
        if _MODULE in value and len(value) == 1:
            if not isinstance(current, torch.nn.Module):
                raise UnsafeFileError("saved module state but the model built no module to load it into "
                                      "(build the networks in set_state before calling super().set_state)")
            device = next((p.device for p in current.parameters()), torch.device("cpu"))
            current.load_state_dict({k: v.to(device) for k, v in value[_MODULE].items()})
            return current
        return {k: from_safe(v, current.get(k) if isinstance(current, dict) else None) for k, v in value.items()}
    if isinstance(value, list):
        return [from_safe(v) for v in value]
    return value


def _load_failure(err: BaseException) -> str:
    """The part of a ``torch.load`` error that says what the file holds (for weights-only refusals, the
    offending global or opcode rather than torch's advice on how to load the file unsafely)."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        paragraphs = [" ".join(part.split()) for part in text.split(marker, 1)[1].split("\n\n") if part.strip()]
        if paragraphs:
            return paragraphs[0].split(" Please use ")[0].rstrip(".")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first or type(err).__name__


def safe_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a file holding pickled objects (or not a torch file at all)
    is an :class:`UnsafeFileError` naming ``path``."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError: all "not safe data"
        raise UnsafeFileError(f"{path}: not a file of tensors and plain values ({_load_failure(err)}); "
                              f"refused without running it") from None


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file, then rename, so a crash never leaves a half-written file (the
    temporary name is unique, so two processes writing the same file never mix their bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_model(model: Any, path: str | Path) -> Path:
    """Write ``model`` (a :class:`bench.api.Model`) as its class name, parameters and state."""
    blob = {"format": FORMAT, "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "params": to_safe(dataclasses.asdict(model.params), "params"), "state": model.get_state()}
    return atomic_save(blob, path)


def load_model(cls: type, path: str | Path) -> Any:
    """A model of class ``cls`` written by :func:`save_model`."""
    blob = safe_load(path)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise UnsafeFileError(f"{path}: not a meterbench model file (format {FORMAT})")
    if blob["class"] != name:
        raise UnsafeFileError(f"{path}: holds a {blob['class']}, not a {name}")
    model = cls(**from_safe(blob["params"]))
    model.set_state(blob["state"])
    return model
