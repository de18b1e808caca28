"""RunContext: what a model needs to know about the run it is part of."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class RunContext:
    """Execution settings handed to every model method.

    Attributes:
        seed: the cell's seed; models derive all randomness from :meth:`rng` or ``seed``.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (deep models resolve it).
        dtype: ``"float32"`` or ``"bf16"`` for mixed precision where supported.
        profile: config profile name (``"quick"`` or ``"paper"``).
        budget_steps / budget_seconds: optional training budget for iterative models.
        progress: show progress bars.
        checkpoint_dir: where iterative models keep checkpoints so an interrupted fit resumes.
    """

    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    profile: str = "quick"
    budget_steps: int | None = None
    budget_seconds: float | None = None
    progress: bool = False
    checkpoint_dir: Path | None = None
    extra: dict = field(default_factory=dict)

    def rng(self, offset: int = 0) -> np.random.Generator:
        """A fresh NumPy generator seeded from the cell seed (``offset`` separates independent streams)."""
        return np.random.default_rng([self.seed, offset])
