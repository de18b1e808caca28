"""What a model is given when a task asks it to impute or to super-resolve (the inputs of ``impute`` and
``super_resolve``). All values are in the task's scaled space ([-1, 1] fitted on train); because that scaling
is affine, the interval mean of scaled values is the scaled interval mean, so coarse profiles stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ImputationQuery:
    """Profiles with missing steps to fill in.

    ``values [N, T]`` float32 with NaN wherever a step is not observed; ``observed [N, T]`` True where the
    value is given; ``valid [N, T]`` False on the padding of short months (never observed, never scored);
    ``meta`` one row per profile (``series_id, start, month, weekday, days, category``); ``resolution`` in
    minutes; ``history [N, T]`` (optional) the same series' profile seven days earlier, NaN where unknown
    (set for daily profiles; ``None`` for monthly ones, whose previous week lies inside the profile itself).
    A model returns ``[S, N, T]`` samples that keep the observed values.
    """

    values: np.ndarray
    observed: np.ndarray
    valid: np.ndarray
    meta: pd.DataFrame
    resolution: int
    history: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = self.values.shape
        if self.values.ndim != 2 or self.observed.shape != shape or self.valid.shape != shape:
            raise ValueError(f"values, observed and valid must share a 2-D shape, got {shape}, "
                             f"{self.observed.shape}, {self.valid.shape}")
        if (self.observed & ~self.valid).any():
            raise ValueError("a padding step cannot be observed")
        if not np.isfinite(self.values[self.observed]).all():
            raise ValueError("observed values must be finite")
        if len(self.meta) != shape[0]:
            raise ValueError(f"meta has {len(self.meta)} rows for {shape[0]} profiles")
        if self.history is not None:
            history = np.asarray(self.history)
            if history.shape != shape or not np.issubdtype(history.dtype, np.floating):
                raise ValueError(f"history must be a float array of shape {shape} (NaN where unknown), got "
                                 f"{history.dtype} of shape {history.shape}")
            if np.isinf(history).any():
                raise ValueError("history holds infinite values (use NaN for unknown steps)")

    def __len__(self) -> int:
        return self.values.shape[0]


@dataclass(frozen=True)
class SuperResolutionQuery:
    """Coarse profiles to refine by an integer ``factor``.

    ``low [N, T // factor]`` holds interval means of the unseen high-resolution profiles; ``valid [N, T]`` is the
    high-resolution valid-step mask (False on month padding); ``resolution`` is the target (high) resolution in
    minutes. A model returns ``[S, N, T]`` samples whose interval means should reproduce ``low``.
    """

    low: np.ndarray
    factor: int
    valid: np.ndarray
    meta: pd.DataFrame
    resolution: int

    def __post_init__(self) -> None:
        if self.factor < 2 or self.low.ndim != 2 or self.valid.ndim != 2:
            raise ValueError("factor must be >= 2 and low, valid 2-D arrays")
        if self.valid.shape != (self.low.shape[0], self.low.shape[1] * self.factor):
            raise ValueError(f"valid has shape {self.valid.shape}; expected "
                             f"{(self.low.shape[0], self.low.shape[1] * self.factor)} for factor {self.factor}")
        if len(self.meta) != self.low.shape[0]:
            raise ValueError(f"meta has {len(self.meta)} rows for {self.low.shape[0]} profiles")

    @property
    def length(self) -> int:
        return self.valid.shape[1]

    def __len__(self) -> int:
        return self.low.shape[0]
