"""Linear scaling of kW values to [-1, 1], fitted on the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.profileset import ProfileSet
from bench.errors import DataError


@dataclass(frozen=True)
class MinMaxScaler:
    """Maps ``[low, high]`` kW linearly onto ``[-1, 1]``.

    Fitted as in the EnergyDiff code (``high = headroom * max``, ``low = min(0, min)``) but on the training
    split only, so no statistic of the evaluation data leaks into the model.
    """

    low: float
    high: float

    @classmethod
    def fit(cls, train: ProfileSet, headroom: float = 1.1) -> "MinMaxScaler":
        observed = train.values[train.mask]
        if observed.size == 0:
            raise DataError("cannot fit scaling: the training split has no observed values", path=train.name)
        low = min(0.0, float(observed.min()))
        high = headroom * float(observed.max())
        if not np.isfinite([low, high]).all() or high <= low:
            raise DataError(f"cannot fit scaling on a constant or non-finite training split "
                            f"(min {low}, max {high})", path=train.name)
        return cls(low, high)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (2.0 * (np.asarray(values, dtype=np.float64) - self.low) / (self.high - self.low) - 1.0
                ).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return ((np.asarray(values, dtype=np.float64) + 1.0) * 0.5 * (self.high - self.low) + self.low
                ).astype(np.float32)

    def apply(self, profiles: ProfileSet) -> ProfileSet:
        """``profiles`` with scaled values (padding and missing steps stay 0)."""
        return profiles.with_values(self.transform(profiles.values))
