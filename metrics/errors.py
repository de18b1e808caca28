"""The one error type of the metric layer and the checks of numeric input that every metric shares.

Every metric raises :class:`MetricInputError` (a ``ValueError``) for input it cannot score: wrong shapes, empty
selections, invalid arguments, non-finite values (NaN, +-inf) and values so large that the arithmetic of the
metric would overflow float64. A metric never turns such input into a NaN, a misleading number or a linear-algebra
error.

Overflow guard: :data:`MAX_ABS_VALUE` = 1e150. Metrics square their inputs (squared distances of MMD, variances
and covariances, RMSE) and sum many of those squares; with ``|x| <= 1e150`` a square is at most ~4e300 (of a
difference), leaving a factor of ~1e7 of head room below the float64 maximum (1.8e308) for the sums. No load
(in W, kW or scaled to [-1, 1]), forecast, anomaly score or label is anywhere near that bound, so anything
beyond it is a broken model's output, not data. Metrics that go beyond squares (the Fréchet distance multiplies
covariance matrices, i.e. fourth powers) also check their intermediate results and raise on overflow.
"""

from __future__ import annotations

import numpy as np

MAX_ABS_VALUE = 1e150
"""Largest magnitude a metric accepts in its inputs (see the module docstring for why)."""


class MetricInputError(ValueError):
    """Input a metric cannot score: bad shape or argument, non-finite values, or values that overflow float64."""


def check_values(values: np.ndarray, name: str) -> np.ndarray:
    """Return ``values`` unchanged if every entry is finite and at most :data:`MAX_ABS_VALUE` in magnitude.

    Raises :class:`MetricInputError` naming ``name`` and what is wrong (NaN, infinite or too large values, with
    their count), so that a broken model's output is reported instead of silently scored.
    """
    values = np.asarray(values)
    if values.size == 0 or values.dtype.kind in "biu":
        return values  # integers and booleans are finite and far below the bound
    if values.dtype.kind not in "f":
        raise MetricInputError(f"{name} must hold real numbers, got dtype {values.dtype}")
    n_nan = int(np.count_nonzero(np.isnan(values)))
    n_inf = int(np.count_nonzero(np.isinf(values)))
    if n_nan or n_inf:
        raise MetricInputError(f"{name} contains non-finite values ({n_nan} NaN, {n_inf} infinite)")
    if float(np.finfo(values.dtype).max) <= MAX_ABS_VALUE:
        return values  # float16 / float32 cannot hold such values (metrics compute in float64)
    n_huge = int(np.count_nonzero(np.abs(values) > MAX_ABS_VALUE))
    if n_huge:
        raise MetricInputError(f"{name} holds {n_huge} value(s) with |x| > {MAX_ABS_VALUE:g} (largest "
                               f"{float(np.abs(values).max()):.3g}): the metric's arithmetic would overflow float64")
    return values


def check_result(value: float, what: str) -> float:
    """Return ``value`` if it is finite, else raise :class:`MetricInputError` saying that ``what`` overflowed.

    Used after intermediate steps whose magnitude grows faster than the inputs (products of covariance
    matrices, sums of many squares), where a finite input can still overflow.
    """
    if not np.all(np.isfinite(value)):
        raise MetricInputError(f"{what} overflowed float64 (non-finite intermediate result): the input values are "
                               "too large for this metric; rescale them (e.g. to kW or to [-1, 1])")
    return value


def check_count(value, name: str, minimum: int, why: str = "") -> int:
    """``value`` as an ``int`` if it is an integer (of any numeric type) of at least ``minimum``, else a
    :class:`MetricInputError` naming ``name``, the bound and ``why`` it holds."""
    try:
        ok = int(value) == value and value >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        reason = f" ({why})" if why else ""
        raise MetricInputError(f"{name} must be an integer >= {minimum}{reason}, got {value!r}")
    return int(value)


def check_no_mask(mask, metric: str) -> None:
    """Refuse a ``mask`` for a metric that compares two unpaired sets of whole profiles (its ``mask`` parameter
    exists for the shared signature ``fn(real, pred, *, mask=None, ...)`` only): a :class:`MetricInputError`
    naming ``metric`` unless ``mask`` is None."""
    if mask is not None:
        raise MetricInputError(f"{metric} compares two sets of whole profiles and takes no mask (got one of "
                               f"shape {np.shape(mask)}); select the profiles or time steps before calling it")


def select_masked(real: np.ndarray, pred: np.ndarray, mask: object) -> tuple[np.ndarray, np.ndarray]:
    """``(real[mask], pred[mask])`` after checking ``mask`` is a boolean array of ``real``'s shape."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != real.shape:
        raise MetricInputError(f"mask must be a boolean array of shape {real.shape}, got {mask.dtype} "
                               f"{mask.shape}")
    return real[mask], pred[mask]
