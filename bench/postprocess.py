"""Post-processing steps applied to any model's samples, named by a suffix: ``energydiff+C``, ``gmm+C``.

A post-processed cell reuses the base model's cached samples (the base model is trained once) and is scored
as its own row, as the EnergyDiff paper reports "EnergyDiff" and "EnergyDiff+C" side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench.registry import Registry


@dataclass(frozen=True)
class PostProcessor:
    """``fn(samples [n, T], train [N, T]) -> [n, T]``, both in the scaled space the model works in."""

    suffix: str
    description: str
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _calibrate(samples: np.ndarray, train: np.ndarray) -> np.ndarray:
    from bench.calibration import marginal_calibration

    return marginal_calibration(samples, train)


# files whose code decides post-processed numbers (part of the cache key)
SOURCES = (Path(__file__), Path(__file__).with_name("calibration.py"))

POSTPROCESSORS: Registry[PostProcessor] = Registry("post-processor")
POSTPROCESSORS.register("C", PostProcessor("C", "marginal calibration: per-time-step map onto the training ECDF",
                                           _calibrate))


def split_model_name(name: str) -> tuple[str, tuple[str, ...]]:
    """``"energydiff+C"`` -> ``("energydiff", ("C",))``; unknown suffixes are a clear error."""
    base, *suffixes = name.split("+")
    for s in suffixes:
        if s not in POSTPROCESSORS:
            raise KeyError(f"unknown post-processing suffix '+{s}' in {name!r}; known: "
                           + ", ".join(f"+{k} ({p.description})" for k, p in POSTPROCESSORS.items()))
    return base, tuple(suffixes)


def apply(suffixes: tuple[str, ...], samples: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Apply the post-processors of ``suffixes`` in order."""
    for s in suffixes:
        samples = np.asarray(POSTPROCESSORS[s].fn(samples, train), dtype=np.float32)
    return samples
