"""RunContext: what a model needs to know about the run it is part of."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import seeds
from bench.seeds import Stream


@dataclass
class RunContext:
    """Execution settings handed to every model method.

    Attributes:
        seed: the cell's seed; models derive all randomness from its named streams (:meth:`rng`,
            :meth:`int_seed`, :meth:`torch_generator`), never from ``seed`` directly.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (deep models resolve it).
        dtype: ``"float32"`` or ``"bf16"`` for mixed precision where supported.
        profile: config profile name (``"test"``, ``"quick"`` or ``"paper"``).
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

    def rng(self, stream: Stream, *sub: int) -> np.random.Generator:
        """A fresh NumPy generator for the named ``stream`` (see :mod:`bench.seeds`) of the cell seed."""
        return seeds.rng(self.seed, stream, *sub)

    def int_seed(self, stream: Stream, *sub: int, bits: int = 62) -> int:
        """An integer seed from ``stream`` for libraries that take one (``bits=31`` for scikit-learn)."""
        return seeds.int_seed(self.seed, stream, *sub, bits=bits)

    def torch_generator(self, stream: Stream, *sub: int):
        """A CPU ``torch.Generator`` seeded from ``stream`` (noise drawn on the CPU gives the same samples on
        every device)."""
        import torch

        return torch.Generator(device="cpu").manual_seed(self.int_seed(stream, *sub))
