"""Errors of point (deterministic) predictions: RMSE, MAE and MAPE.

``y_true`` and ``y_pred`` share one shape (e.g. [N, T]); ``mask`` (bool, same shape, True = scored) selects
the entries to score, ``None`` scores all. Entries outside the mask may hold NaN. Lower is better for all.
Bad input (shapes, NaN / inf or values beyond :data:`metrics.errors.MAX_ABS_VALUE` in scored entries) raises
:class:`metrics.errors.MetricInputError`.
"""

from __future__ import annotations

import numpy as np

from metrics.errors import MetricInputError, check_result, check_values

MAPE_EPS = 1e-3
"""Default MAPE threshold: true values with ``|y| < MAPE_EPS`` are left out (1 W when loads are in kW)."""


def _scored(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricInputError("y_true and y_pred must be arrays of real numbers") from None
    if y_true.shape != y_pred.shape:
        raise MetricInputError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != y_true.shape:
            raise MetricInputError(f"mask must be a boolean array of shape {y_true.shape}, got {mask.dtype} "
                                   f"{mask.shape}")
        y_true, y_pred = y_true[mask], y_pred[mask]
    else:
        y_true, y_pred = y_true.ravel(), y_pred.ravel()
    if y_true.size == 0:
        raise MetricInputError("no entry to score (empty input or the mask selects nothing)")
    check_values(y_true, "y_true (scored entries)")
    check_values(y_pred, "y_pred (scored entries)")
    return y_true, y_pred


def rmse(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean squared error over the scored entries, ``sqrt(mean((y_pred - y_true)^2))``."""
    y_true, y_pred = _scored(y_true, y_pred, mask)
    return float(np.sqrt(check_result(np.mean((y_pred - y_true) ** 2), "the mean squared error")))


def mae(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error over the scored entries, ``mean(|y_pred - y_true|)``."""
    y_true, y_pred = _scored(y_true, y_pred, mask)
    return float(np.mean(np.abs(y_pred - y_true)))


def mape(y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None, eps: float = MAPE_EPS) -> float:
    """Mean absolute percentage error as a fraction (0.1 = 10 %): ``mean(|y_pred - y_true| / |y_true|)``.

    Near-zero loads make the ratio explode, so scored entries with ``|y_true| < eps`` are excluded (not
    clipped) and ``|y_true| == eps`` is kept; ``eps`` is in the units of the data (default 1e-3, i.e. 1 W for kW).
    True zeros are always excluded (``eps = 0`` excludes only them). Compute it on physical loads, not on data
    scaled to [-1, 1]. Raises :class:`MetricInputError` if every scored entry is excluded.
    """
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise MetricInputError(f"eps must be a non-negative number, got {eps!r}") from None
    if not 0 <= eps < np.inf:
        raise MetricInputError(f"eps must be a non-negative finite number, got {eps}")
    y_true, y_pred = _scored(y_true, y_pred, mask)
    # A zero load would divide by zero whatever eps is.
    keep = (np.abs(y_true) >= eps) & (y_true != 0)
    if not keep.any():
        raise MetricInputError(f"MAPE undefined: every scored true value has |y| < eps = {eps} (or is 0)")
    return float(np.mean(np.abs(y_pred[keep] - y_true[keep]) / np.abs(y_true[keep])))
