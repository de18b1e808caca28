"""What a cell costs: peak memory while it ran and the size of the fitted model.

:func:`measure_peak_memory` resets the kernel's peak resident-set counter of this process (Linux: writing ``5``
to ``/proc/self/clear_refs``) and reads it back (``VmHWM`` in ``/proc/self/status``) when the block ends, so each
cell gets its own peak. Where the counter cannot be reset (other systems, restricted containers), the process
peak so far (``ru_maxrss``) is reported and marked as such. On CUDA the allocator's peak is reset and read too.

:func:`count_numbers` counts the numbers a fitted model keeps (its :meth:`bench.api.Model.get_state`: network
weights, mixture parameters, or the training profiles a copying reference stores): the model's size on disk in
numbers, comparable across model families.
"""

from __future__ import annotations

import resource
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    """Peak resident set of this process in MB (``VmHWM``, else ``ru_maxrss``)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB elsewhere


@contextmanager
def measure_peak_memory(device: str = "cpu") -> Iterator[dict]:
    """Yields a dict filled when the block ends: ``peak_rss_mb`` (this process), ``rss_scope`` ("cell" when
    the counter was reset, "process" otherwise) and, on CUDA, ``peak_gpu_mb``."""
    out: dict[str, Any] = {}
    scoped = _reset_peak_rss()
    cuda = str(device).startswith("cuda")
    if cuda:
        import torch

        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
    try:
        yield out
    finally:
        out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        out["rss_scope"] = "cell" if scoped else "process"
        if cuda:
            import torch

            out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)


def count_numbers(state: Any) -> int:
    """Numbers held by ``state`` (tensors, arrays, nested dicts / lists / tuples; plain scalars count one)."""
    import torch

    if isinstance(state, torch.Tensor):
        return int(state.numel())
    if isinstance(state, np.ndarray):
        return int(state.size) if state.dtype != object else sum(count_numbers(v) for v in state.ravel())
    if isinstance(state, torch.nn.Module):
        return sum(int(p.numel()) for p in state.state_dict().values())
    if isinstance(state, dict):
        return sum(count_numbers(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(count_numbers(v) for v in state)
    if isinstance(state, (bool, int, float, np.generic)):
        return 1
    return 0


def model_size(model: Any) -> int | None:
    """:func:`count_numbers` of ``model.get_state()``; None when the model cannot describe its state."""
    try:
        return count_numbers(model.get_state())
    except (TypeError, RuntimeError, AttributeError):
        return None
