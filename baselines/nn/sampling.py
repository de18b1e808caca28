"""The batched sampling loop every deep model shares."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def draw_in_batches(n: int, batch: int, draw: Callable[[int, int], torch.Tensor | np.ndarray]) -> np.ndarray:
    """``draw(start, size)`` for consecutive batches of at most ``batch`` rows covering ``range(n)``, without
    gradients, concatenated along the first axis as float32 NumPy (on the CPU)."""
    if n < 1 or batch < 1:
        raise ValueError(f"n and batch must be positive, got n={n}, batch={batch}")
    out = []
    with torch.no_grad():
        for start in range(0, n, batch):
            part = draw(start, min(batch, n - start))
            out.append(part.float().cpu().numpy() if isinstance(part, torch.Tensor) else np.asarray(part))
    return np.concatenate(out, axis=0).astype(np.float32, copy=False)
