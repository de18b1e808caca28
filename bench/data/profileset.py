"""ProfileSet: a stack of equal-length load profiles (days or padded months) with an observed mask."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from bench.errors import DataError

META_COLUMNS = ("series_id", "start", "month", "weekday", "days", "category")
MINUTES_PER_DAY = 1440


def steps_per_day(resolution: int) -> int:
    """Readings per day at ``resolution`` minutes; a resolution that does not divide the day is an error."""
    if isinstance(resolution, bool) or int(resolution) != resolution or resolution < 1 \
            or MINUTES_PER_DAY % int(resolution):
        raise ValueError(f"resolution must be a positive divisor of {MINUTES_PER_DAY} minutes, got {resolution!r}")
    return MINUTES_PER_DAY // int(resolution)


@dataclass
class ProfileSet:
    """Equal-length load profiles.

    Attributes:
        values: ``[N, T]`` float32, average power per interval in kW (or scaled units after
            :class:`bench.data.scaling.MinMaxScaler`). Unobserved entries hold 0.
        mask: ``[N, T]`` bool, True where the value was observed. Monthly profiles are padded to 31 days
            with ``mask=False`` on the padding (the "valid step" mask).
        meta: one row per profile with at least :data:`META_COLUMNS`.
        resolution: interval length in minutes.
        period: ``"day"`` or ``"month"``.
        name: dataset name (used in tables).
    """

    values: np.ndarray
    mask: np.ndarray
    meta: pd.DataFrame
    resolution: int
    period: str
    name: str = "unnamed"
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        self.mask = np.asarray(self.mask, dtype=bool)
        if self.values.ndim != 2 or self.values.shape != self.mask.shape:
            raise DataError(f"values {self.values.shape} and mask {self.mask.shape} must be equal 2-D shapes",
                            path=self.name)
        if len(self.meta) != len(self.values):
            raise DataError(f"meta has {len(self.meta)} rows for {len(self.values)} profiles", path=self.name)
        missing = [c for c in META_COLUMNS if c not in self.meta.columns]
        if missing:
            raise DataError(f"meta lacks columns {missing}", path=self.name)
        if self.period not in ("day", "month"):
            raise DataError(f"period must be 'day' or 'month', not {self.period!r}", path=self.name)
        self.meta = self.meta.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def steps_per_day(self) -> int:
        return steps_per_day(self.resolution)

    @property
    def length(self) -> int:
        """Number of time steps T per profile."""
        return self.values.shape[1]

    @property
    def complete(self) -> bool:
        """True when every value is observed (daily profiles after the completeness rule)."""
        return bool(self.mask.all())

    def subset(self, index: np.ndarray | list[int]) -> "ProfileSet":
        """Profiles at ``index`` (integer positions or a boolean mask), as a new set."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return replace(self, values=self.values[index], mask=self.mask[index],
                       meta=self.meta.iloc[index].reset_index(drop=True), notes=dict(self.notes))

    def with_values(self, values: np.ndarray) -> "ProfileSet":
        """Same profiles and meta with new values (e.g. scaled); masked entries are zeroed."""
        values = np.where(self.mask, values, 0.0).astype(np.float32)
        return replace(self, values=values, notes=dict(self.notes))

    def resample(self, resolution: int) -> "ProfileSet":
        """Average power onto a coarser grid (``resolution`` a multiple of the current one).

        A coarse interval is observed only when all its fine intervals are observed, so no coarse value is
        an average over partly missing data.
        """
        from bench.data.resample import resample_profiles

        return resample_profiles(self, resolution)

    def fingerprint(self) -> str:
        """Content hash of values, mask, meta, resolution and period (16 hex digits).

        Two sets with the same fingerprint give the same benchmark results for the same config and seed.
        """
        h = hashlib.sha256()
        h.update(f"{self.resolution}|{self.period}|{self.values.shape}".encode())
        h.update(np.ascontiguousarray(self.values).tobytes())
        h.update(np.packbits(self.mask).tobytes())
        meta = self.meta[list(META_COLUMNS)].astype(str)
        h.update(pd.util.hash_pandas_object(meta, index=False).to_numpy().tobytes())
        return h.hexdigest()[:16]
