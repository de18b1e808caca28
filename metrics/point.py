"""Errors of point (deterministic) predictions: RMSE, MSE, MAE and MAPE.

Every function has the one metric signature ``fn(real, pred, *, mask=None, ...)``: the truth ``real`` and the
prediction ``pred`` share one shape (e.g. [N, T]); ``mask`` (bool, same shape, True = scored) selects the
entries to score, ``None`` scores all. Entries outside the mask may hold NaN. Lower is better for all.
Bad input (shapes, NaN / inf or values beyond :data:`metrics.errors.MAX_ABS_VALUE` in scored entries) raises
:class:`metrics.errors.MetricInputError`.
"""

from __future__ import annotations

import numpy as np

from metrics.errors import MetricInputError, check_result, check_values, select_masked

MAPE_EPS = 1e-3
"""Default MAPE threshold: true values with ``|y| < MAPE_EPS`` are left out (1 W when loads are in kW)."""


def _scored(real: np.ndarray, pred: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        real = np.asarray(real, dtype=np.float64)
        pred = np.asarray(pred, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricInputError("real and pred must be arrays of real numbers") from None
    if real.shape != pred.shape:
        raise MetricInputError(f"real and pred differ in shape: {real.shape} vs {pred.shape}")
    if mask is not None:
        real, pred = select_masked(real, pred, mask)
    else:
        real, pred = real.ravel(), pred.ravel()
    if real.size == 0:
        raise MetricInputError("no entry to score (empty input or the mask selects nothing)")
    check_values(real, "real (scored entries)")
    check_values(pred, "pred (scored entries)")
    return real, pred


def mse(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the scored entries, ``mean((pred - real)^2)``, in squared units of the data."""
    real, pred = _scored(real, pred, mask)
    return float(check_result(np.mean((pred - real) ** 2), "the mean squared error"))


def rmse(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Root mean squared error over the scored entries, ``sqrt(mean((pred - real)^2))``."""
    real, pred = _scored(real, pred, mask)
    return float(np.sqrt(check_result(np.mean((pred - real) ** 2), "the mean squared error")))


def mae(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Mean absolute error over the scored entries, ``mean(|pred - real|)``."""
    real, pred = _scored(real, pred, mask)
    return float(np.mean(np.abs(pred - real)))


def mape(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None, eps: float = MAPE_EPS) -> float:
    """Mean absolute percentage error as a fraction (0.1 = 10 %): ``mean(|pred - real| / |real|)``.

    Near-zero loads make the ratio explode, so scored entries with ``|real| < eps`` are excluded (not
    clipped) and ``|real| == eps`` is kept; ``eps`` is in the units of the data (default 1e-3, i.e. 1 W for kW).
    True zeros are always excluded (``eps = 0`` excludes only them). Compute it on physical loads, not on data
    scaled to [-1, 1] (the forecasting task's ``MAPE_scaled`` does so on purpose and says so). Raises
    :class:`MetricInputError` if every scored entry is excluded.
    """
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise MetricInputError(f"eps must be a non-negative number, got {eps!r}") from None
    if not 0 <= eps < np.inf:
        raise MetricInputError(f"eps must be a non-negative finite number, got {eps}")
    real, pred = _scored(real, pred, mask)
    # A zero load would divide by zero whatever eps is.
    keep = (np.abs(real) >= eps) & (real != 0)
    if not keep.any():
        raise MetricInputError(f"MAPE undefined: every scored true value has |y| < eps = {eps} (or is 0)")
    return float(np.mean(np.abs(pred[keep] - real[keep]) / np.abs(real[keep])))
