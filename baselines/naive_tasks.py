"""Naive references for the imputation, super-resolution and conditional-generation tasks.

* ``linear-interp`` (impute): straight lines between the observed steps, the nearest observed value beyond
  the first / last one. Deterministic: the ``S`` samples are identical.
* ``last-week`` (impute): the same time one week earlier (``query.history`` for daily profiles, a shift of
  seven days inside a monthly profile), linear interpolation where that value is unknown.
* ``hold-upsample`` (super_resolve): each coarse value repeated over its block (keeps the block means).
* ``cubic-upsample`` (super_resolve): as ``linear-upsample`` with a shape-preserving cubic (PCHIP) curve.
* ``linear-upsample`` (super_resolve): linear through the block midpoints, then shifted per block so that
  its mean equals the coarse value exactly.
* ``conditional-resample`` (generate, conditional): training profiles drawn with the requested month (and
  category).
* ``constrained-resample`` (generate, conditional, constrained): as ``conditional-resample``; under
  ``target_peak`` / ``target_mean`` it returns, from the same pool, the training profile whose peak and mean
  lie nearest the targets (retrieval: the reference a constrained generator must beat).

Every method works in the task's scaled space and returns 0 on padding steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.api import ConditionalGenerator, ConstrainedGenerator, Generator, Imputer, Model, SuperResolver
from bench.context import RunContext
from bench.data.profileset import MINUTES_PER_DAY, ProfileSet
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import ImputationQuery, SuperResolutionQuery

WEEK_MINUTES = 7 * MINUTES_PER_DAY


def _check_n_samples(n_samples: int, model: str) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"{model}: n_samples must be a positive integer, got {n_samples!r}")
    return int(n_samples)


def interpolate_observed(values: np.ndarray, observed: np.ndarray, valid: np.ndarray,
                         fallback: np.ndarray | None = None) -> np.ndarray:
    """``[N, T]`` float32: observed values kept, other valid steps linearly interpolated in time between the
    observed ones (constant beyond the first and last), padding 0. A profile with no observed step gets
    ``fallback`` (a ``[T]`` profile, zeros when None) on its valid steps."""
    values = np.asarray(values, dtype=np.float64)
    n, length = values.shape
    out = np.zeros((n, length), dtype=np.float64)
    steps = np.arange(length)
    for i in range(n):
        known = np.flatnonzero(observed[i])
        if known.size:
            out[i] = np.interp(steps, known, values[i, known])
        elif fallback is not None:
            out[i] = fallback
    return np.where(valid, out, 0.0).astype(np.float32)


@register_model("linear-interp")
class LinearInterp(Model, Imputer):
    """Linear interpolation over the missing steps, constant extrapolation at the ends (deterministic)."""

    learns = False

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._mean: np.ndarray | None = None

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Keep the per-step training mean, used only for a profile with no observed step at all."""
        counts = np.maximum(train.mask.sum(axis=0), 1)
        self._mean = (np.where(train.mask, train.values, 0.0).sum(axis=0) / counts).astype(np.float32)

    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]``: ``S`` copies of the interpolated profiles."""
        n_samples = _check_n_samples(n_samples, "linear-interp")
        filled = interpolate_observed(query.values, query.observed, query.valid, self._mean)
        return np.broadcast_to(filled, (n_samples, *filled.shape)).copy()


@register_model("last-week")
class LastWeek(LinearInterp):
    """Same time last week (query.history, or a 7-day shift inside a monthly profile), else linear interp.

    A missing step takes the value the series had seven days earlier: from ``query.history`` when the query
    carries it (daily profiles), otherwise from the step seven days earlier in the same profile, or seven days
    later when the earlier one is not observed (the first week of a month). Steps whose reference value is
    unknown (absent day, missing reference step) fall back to linear interpolation between observed steps.
    Deterministic: the ``S`` samples are identical.
    """

    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        n_samples = _check_n_samples(n_samples, "last-week")
        filled = interpolate_observed(query.values, query.observed, query.valid, self._mean).astype(np.float64)
        if query.history is not None:
            reference = np.asarray(query.history, dtype=np.float64)
        else:
            reference = np.full(filled.shape, np.nan)
            shift = WEEK_MINUTES // query.resolution
            if WEEK_MINUTES % query.resolution == 0 and shift < filled.shape[1]:
                known = np.where(query.observed, query.values, np.nan).astype(np.float64)
                later = np.full(filled.shape, np.nan)
                later[:, :-shift] = known[:, shift:]
                reference[:, shift:] = known[:, :-shift]
                reference = np.where(np.isnan(reference), later, reference)
        use = ~query.observed & query.valid & np.isfinite(reference)
        filled = np.where(use, reference, filled)
        filled = np.where(query.valid, filled, 0.0).astype(np.float32)
        return np.broadcast_to(filled, (n_samples, *filled.shape)).copy()


def _block_stats(query: SuperResolutionQuery) -> tuple[np.ndarray, np.ndarray]:
    """Valid-step weights ``[N, B, f]`` and per-block valid counts ``[N, B]`` of ``query``."""
    n, blocks = query.low.shape
    weights = query.valid.reshape(n, blocks, query.factor).astype(np.float64)
    return weights, weights.sum(axis=2)


@register_model("hold-upsample")
class HoldUpsample(Model, SuperResolver):
    """Each coarse value repeated over its block: a step function that keeps every block mean."""

    learns = False

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Nothing to learn."""

    def super_resolve(self, query: SuperResolutionQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]``: ``S`` copies of the held profiles (0 on padding)."""
        n_samples = _check_n_samples(n_samples, "hold-upsample")
        fine = np.where(query.valid, np.repeat(np.asarray(query.low, dtype=np.float64), query.factor, axis=1), 0.0)
        fine = fine.astype(np.float32)
        return np.broadcast_to(fine, (n_samples, *fine.shape)).copy()


@register_model("linear-upsample")
class LinearUpsample(HoldUpsample):
    """Linear interpolation through the block midpoints, corrected per block to keep every block mean."""

    def super_resolve(self, query: SuperResolutionQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]``: ``S`` copies; the mean over each block's valid steps equals ``query.low`` exactly."""
        n_samples = _check_n_samples(n_samples, "linear-upsample")
        low = np.asarray(query.low, dtype=np.float64)
        n, blocks = low.shape
        factor, length = query.factor, query.length
        weights, counts = _block_stats(query)
        centres = (np.arange(blocks) + 0.5) * factor - 0.5
        steps = np.arange(length)
        line = np.zeros((n, length))
        for i in range(n):
            known = counts[i] > 0  # padding blocks carry no information
            if known.any():
                line[i] = self.interpolate(centres[known], low[i, known], steps)
        # Shift each block so that its valid-step mean is the coarse value (the interpolant alone is not).
        shaped = line.reshape(n, blocks, factor)
        block_mean = (shaped * weights).sum(axis=2) / np.maximum(counts, 1.0)
        fine = (shaped + (low - block_mean)[:, :, None]).reshape(n, length)
        fine = np.where(query.valid, fine, 0.0).astype(np.float32)
        return np.broadcast_to(fine, (n_samples, *fine.shape)).copy()


    @staticmethod
    def interpolate(centres: np.ndarray, values: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The curve through ``(centres, values)`` at ``steps`` before the block-mean correction: linear, held
        constant beyond the first and last centre."""
        return np.interp(steps, centres, values)


@register_model("cubic-upsample")
class CubicUpsample(LinearUpsample):
    """Shape-preserving cubic (PCHIP, scipy) through the block midpoints, corrected per block to keep every block
    mean: the cubic-interpolation baseline of the SmartMeterFM paper's super-resolution comparison."""

    @staticmethod
    def interpolate(centres: np.ndarray, values: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """PCHIP through ``(centres, values)`` (monotone between midpoints: no overshoot of the coarse values),
        held constant beyond the first and last centre; one known block gives a constant."""
        from scipy.interpolate import PchipInterpolator

        if len(centres) < 2:
            return np.full(steps.shape, float(values[0]))
        return PchipInterpolator(centres, values, extrapolate=False)(np.clip(steps, centres[0], centres[-1]))


@register_model("conditional-resample")
class ConditionalResample(Model, Generator, ConditionalGenerator):
    """Training profiles drawn with the requested month and category (falling back to looser groups).

    For condition row ``i`` a training profile is drawn uniformly among those with the same month and
    category; when none exists, among those with the same month; when none exists either, among all
    training profiles. Steps beyond the requested ``days`` of a month are returned as 0.
    """

    learns = False

    def __init__(self, **params) -> None:
        super().__init__(**params)
        # what sampling reads of the training set: its profiles, their month and category, and the layout
        self._values: np.ndarray | None = None
        self._months: np.ndarray | None = None
        self._categories: list | None = None
        self._period: str | None = None
        self._steps_per_day: int | None = None

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Keep the training profiles, their month and category, and the period layout."""
        if len(train) == 0:
            raise ValueError(f"conditional-resample: training set {train.name!r} is empty")
        self._values = np.asarray(train.values)
        self._months = train.meta["month"].to_numpy(dtype=np.int64)
        self._categories = train.meta["category"].tolist()
        self._period = train.period
        self._steps_per_day = train.steps_per_day

    def _pools(self, cond: pd.DataFrame) -> list[np.ndarray]:
        meta = pd.DataFrame({"month": self._months, "category": self._categories})
        by_month_cat = {k: v.to_numpy() for k, v in meta.groupby(["month", "category"]).groups.items()}
        by_month = {k: v.to_numpy() for k, v in meta.groupby("month").groups.items()}
        everything = np.arange(len(meta))
        pools = []
        categories = cond["category"] if "category" in cond.columns else [None] * len(cond)
        for month, category in zip(cond["month"], categories):
            pool = by_month_cat.get((month, category)) if category is not None else None
            if pool is None or len(pool) == 0:
                pool = by_month.get(month)
            pools.append(everything if pool is None or len(pool) == 0 else pool)
        return pools

    def sample(self, n: int, cond: pd.DataFrame | None, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32: row ``i`` a training profile drawn under condition row ``i`` (uniform draws
        from all training profiles when ``cond`` is None)."""
        if self._values is None:
            raise RuntimeError("conditional-resample: call fit() before sample()")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"conditional-resample: n must be a positive integer, got {n!r}")
        rng = ctx.rng(Stream.MODEL_SAMPLE)
        values = self._values
        if cond is None:
            return values[rng.integers(0, len(values), size=int(n))].copy()
        if len(cond) != n or "month" not in cond.columns:
            raise ValueError(f"conditional-resample: cond must have n = {n} rows and a month column, got "
                             f"{len(cond)} rows and columns {list(cond.columns)}")
        rows = np.array([pool[rng.integers(0, len(pool))] for pool in self._pools(cond)])
        out = values[rows].copy()
        if "days" in cond.columns and self._period == "month":
            steps = np.arange(out.shape[1])
            out[steps[None, :] >= (cond["days"].to_numpy()[:, None] * self._steps_per_day)] = 0.0
        return out


@register_model("constrained-resample")
class ConstrainedResample(ConditionalResample, ConstrainedGenerator):
    """Nearest training profile to the numerical targets among those with the requested month and category.

    Rows of ``cond`` without a finite ``target_peak`` / ``target_mean`` are drawn as ``conditional-resample``
    draws them; for the others, the pool member minimising ``(peak - target_peak)^2 + (mean - target_mean)^2``
    (over the finite targets; peaks and means over the valid steps) is returned, the first on a tie.
    """

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._valid: np.ndarray | None = None  # the training profiles' valid steps, for their peaks and means

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """As ``conditional-resample``, keeping the valid-step mask too."""
        super().fit(train, ctx)
        self._valid = np.asarray(train.mask, dtype=bool)

    def sample(self, n: int, cond: pd.DataFrame | None, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32 (see the class docstring)."""
        out = super().sample(n, cond, ctx)
        targets = [c for c in ("target_peak", "target_mean") if cond is not None and c in cond.columns]
        if not targets:
            return out
        valid = self._valid
        count = np.maximum(valid.sum(axis=1), 1)
        stats = {"target_peak": np.where(valid, self._values, -np.inf).max(axis=1),
                 "target_mean": np.where(valid, self._values, 0.0).sum(axis=1) / count}
        wanted = {c: pd.to_numeric(cond[c], errors="coerce").to_numpy(dtype=np.float64) for c in targets}
        for i, pool in enumerate(self._pools(cond.reset_index(drop=True))):
            finite = [c for c in targets if np.isfinite(wanted[c][i])]
            if finite:
                distance = sum((stats[c][pool] - wanted[c][i]) ** 2 for c in finite)
                out[i] = self._values[pool[int(np.argmin(distance))]]
        if "days" in cond.columns and self._period == "month":
            steps = np.arange(out.shape[1])
            out[steps[None, :] >= (cond["days"].to_numpy()[:, None] * self._steps_per_day)] = 0.0
        return out
