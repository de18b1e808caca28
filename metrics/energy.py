"""Errors on the extremes and levels of load profiles (peak, minimum and mean load).

Every function has the one metric signature ``fn(real, pred, *, mask=None)``: ``real`` the real profiles, ``pred``
the predicted or generated ones (an ensemble ``[S, N, T]``, a profile per real one ``[N, T]``, or an unpaired set
for :func:`peak_load_error_sets`). ``mask`` (bool [N, T], True = valid step) restricts the maximum, minimum and
mean of each profile to its valid steps, e.g. to leave out the padding of monthly profiles; ``None`` uses every
step. Bad input (shapes, NaN / inf or values beyond :data:`metrics.errors.MAX_ABS_VALUE` on valid steps) raises
:class:`metrics.errors.MetricInputError`.

SmartMeterFM's peak-load errors map onto :func:`peak_load_error`: its per-observation
``peak_load_error(members, obs)`` averaged over the observations is ``peak_load_error(obs, members)`` here, and
the set-vs-set ``peak_load_error_metric(gen, real)`` of its evaluation script is ``peak_load_error_sets(real,
gen)``.
"""

from __future__ import annotations

import numpy as np

from metrics.errors import MetricInputError, check_no_mask, check_result, check_values
from metrics.probabilistic import crps_between_ensembles


def _as_float(arr: np.ndarray, name: str) -> np.ndarray:
    try:
        return np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricInputError(f"{name} must be an array of real numbers") from None


def _as_ensemble(arr: np.ndarray, name: str) -> np.ndarray:
    arr = _as_float(arr, name)
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim != 3:
        raise MetricInputError(f"{name} must be [N, T] or an ensemble [S, N, T], got shape {arr.shape}")
    if arr.shape[0] < 1:
        raise MetricInputError(f"{name} has no ensemble members")
    return arr


def _check_mask(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if shape[0] < 1 or shape[1] < 1:
        raise MetricInputError(f"no profiles or no time steps to score (shape {shape})")
    mask = np.ones(shape, dtype=bool) if mask is None else np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != shape:
        raise MetricInputError(f"mask must be a boolean array of shape {shape}, got {mask.dtype} {mask.shape}")
    if not mask.any(axis=1).all():
        raise MetricInputError("every profile needs at least one valid step in mask")
    return mask


def _extremes(profiles: np.ndarray, mask: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-profile maxima and minima over the valid steps of ``profiles`` [..., N, T]."""
    valid = np.broadcast_to(mask, profiles.shape)
    check_values(profiles[valid], f"{name} (valid steps)")
    peaks = np.where(valid, profiles, -np.inf).max(axis=-1)
    troughs = np.where(valid, profiles, np.inf).min(axis=-1)
    return peaks, troughs


def peak_load_error(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """CRPS of the per-profile maxima plus CRPS of the per-profile minima (the SmartMeterFM peak-load error).

    ``real`` is [N, T] (one real profile per case) or [R, N, T] (R real profiles per case); ``pred`` is
    [S, N, T] (S generated samples per case) or [N, T] (a single prediction). For each case ``n`` the maxima
    over the (valid) time steps of the real members and of the generated members form two ensembles, scored by
    :func:`metrics.probabilistic.crps_between_ensembles` (``E|X - Y| - (E|X - X'| + E|Y - Y'|) / 2``, all
    pairs); likewise the minima. The result is ``mean_n CRPS_max(n) + mean_n CRPS_min(n)`` in the units of the
    data. With one real profile per case this is the ensemble CRPS ("nrg" form) of the generated peaks at the
    real peak; with single profiles on both sides it is ``mean |max diff| + mean |min diff|``.

    To compare two unconditional sets (the distribution of daily peaks), pass ``real[:, None]`` [R, 1, T] and
    ``pred[:, None]`` [S, 1, T], which :func:`peak_load_error_sets` does. Lower is better.
    """
    real = _as_ensemble(real, "real")
    pred = _as_ensemble(pred, "pred")
    if real.shape[1:] != pred.shape[1:]:
        raise MetricInputError(f"real and pred describe different cases/lengths: {real.shape[1:]} vs "
                               f"{pred.shape[1:]}")
    mask = _check_mask(mask, real.shape[1:])
    real_max, real_min = _extremes(real, mask, "real")
    pred_max, pred_min = _extremes(pred, mask, "pred")
    return float(crps_between_ensembles(real_max, pred_max).mean()
                 + crps_between_ensembles(real_min, pred_min).mean())


def peak_load_error_sets(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Peak-load error between two unpaired sets of profiles (SmartMeterFM's ``peak_load_error_metric``).

    ``real`` [R, T] and the generated ``pred`` [S, T]: the per-profile maxima of the two sets form two empirical
    distributions scored by :func:`metrics.probabilistic.crps_between_ensembles`, likewise the minima; the result
    is the sum, i.e. :func:`peak_load_error` of ``real[:, None]`` and ``pred[:, None]`` (one case). In the units
    of the data; symmetric; 0 when the two sets have the same distribution of maxima and of minima. ``mask`` must
    be None (a set metric compares whole profiles). Lower is better.
    """
    check_no_mask(mask, "the set peak-load error")
    real = _as_float(real, "real")
    pred = _as_float(pred, "pred")
    if pred.ndim != 2 or real.ndim != 2:
        raise MetricInputError(f"real and pred must be 2-D [profiles, time steps], got {real.shape} and "
                               f"{pred.shape}")
    return peak_load_error(real[:, None], pred[:, None])


def _paired_profiles(real: np.ndarray, pred: np.ndarray, mask: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``real`` and ``pred`` as float64 [N, T] arrays of one shape and the checked mask."""
    real = _as_float(real, "real")
    pred = _as_float(pred, "pred")
    if real.ndim != 2 or real.shape != pred.shape:
        raise MetricInputError(f"real and pred must be [N, T] arrays of one shape, got {real.shape} and "
                               f"{pred.shape}")
    return real, pred, _check_mask(mask, real.shape)


def peak_abs_error(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Mean absolute error of the peak: ``mean_n |max_t real[n, t] - max_t pred[n, t]|``.

    ``real`` and ``pred`` are [N, T] point profiles (a deterministic prediction per case); maxima run over
    the valid steps of ``mask``. In the units of the data. Lower is better.
    """
    real, pred, mask = _paired_profiles(real, pred, mask)
    real_max, _ = _extremes(real, mask, "real")
    pred_max, _ = _extremes(pred, mask, "pred")
    return float(np.mean(np.abs(real_max - pred_max)))


def _rms(diff: np.ndarray, what: str) -> float:
    return float(np.sqrt(check_result(np.mean(diff ** 2), what)))


def peak_rmse(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Root mean squared error of the peak: ``sqrt(mean_n (max_t pred[n, t] - max_t real[n, t])^2)``.

    ``real`` and ``pred`` are [N, T], one predicted profile per real one (e.g. a profile generated under the real
    profile's peak as a target); maxima run over the valid steps of ``mask``. In the units of the data (kW for
    the conditional task's ``PeakRMSE``). Lower is better.
    """
    real, pred, mask = _paired_profiles(real, pred, mask)
    real_max, _ = _extremes(real, mask, "real")
    pred_max, _ = _extremes(pred, mask, "pred")
    return _rms(pred_max - real_max, "the squared peak errors")


def mean_rmse(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Root mean squared error of the mean load: ``sqrt(mean_n (mean_t pred[n, t] - mean_t real[n, t])^2)``.

    Like :func:`peak_rmse` with each profile's mean over its valid steps instead of its maximum (the conditional
    task's ``MeanRMSE``, kW). Lower is better.
    """
    real, pred, mask = _paired_profiles(real, pred, mask)
    check_values(real[mask], "real (valid steps)")
    check_values(pred[mask], "pred (valid steps)")
    count = mask.sum(axis=1)
    real_mean = np.where(mask, real, 0.0).sum(axis=1) / count
    pred_mean = np.where(mask, pred, 0.0).sum(axis=1) / count
    return _rms(pred_mean - real_mean, "the squared mean-load errors")
