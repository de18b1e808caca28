"""Errors on the extremes of load profiles (peak and minimum load).

``mask`` (bool [N, T], True = valid step) restricts the maximum and minimum of each profile to its valid
steps, e.g. to leave out the padding of monthly profiles; ``None`` uses every step. Bad input (shapes, NaN / inf
or values beyond :data:`metrics.errors.MAX_ABS_VALUE` on valid steps) raises
:class:`metrics.errors.MetricInputError`.

SmartMeterFM's peak-load errors map onto :func:`peak_load_error`: its per-observation
``peak_load_error(members, obs)`` averaged over the observations is ``peak_load_error(obs, members)`` here, and
the set-vs-set ``peak_load_error_metric(gen, real)`` of its evaluation script is :func:`peak_load_error_sets`.
"""

from __future__ import annotations

import numpy as np

from metrics.errors import MetricInputError, check_values
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


def peak_load_error(real: np.ndarray, gen: np.ndarray, mask: np.ndarray | None = None) -> float:
    """CRPS of the per-profile maxima plus CRPS of the per-profile minima (the SmartMeterFM peak-load error).

    ``real`` is [N, T] (one real profile per case) or [R, N, T] (R real profiles per case); ``gen`` is
    [S, N, T] (S generated samples per case) or [N, T] (a single prediction). For each case ``n`` the maxima
    over the (valid) time steps of the real members and of the generated members form two ensembles, scored by
    :func:`metrics.probabilistic.crps_between_ensembles` (``E|X - Y| - (E|X - X'| + E|Y - Y'|) / 2``, all
    pairs); likewise the minima. The result is ``mean_n CRPS_max(n) + mean_n CRPS_min(n)`` in the units of the
    data. With one real profile per case this is the ensemble CRPS ("nrg" form) of the generated peaks at the
    real peak; with single profiles on both sides it is ``mean |max diff| + mean |min diff|``.

    To compare two unconditional sets (the distribution of daily peaks), pass ``real[:, None]`` [R, 1, T] and
    ``gen[:, None]`` [S, 1, T], which :func:`peak_load_error_sets` does. Lower is better.
    """
    real = _as_ensemble(real, "real")
    gen = _as_ensemble(gen, "gen")
    if real.shape[1:] != gen.shape[1:]:
        raise MetricInputError(f"real and gen describe different cases/lengths: {real.shape[1:]} vs "
                               f"{gen.shape[1:]}")
    mask = _check_mask(mask, real.shape[1:])
    real_max, real_min = _extremes(real, mask, "real")
    gen_max, gen_min = _extremes(gen, mask, "gen")
    return float(crps_between_ensembles(real_max, gen_max).mean() + crps_between_ensembles(real_min, gen_min).mean())


def peak_load_error_sets(gen: np.ndarray, real: np.ndarray) -> float:
    """Peak-load error between two unpaired sets of profiles (SmartMeterFM's ``peak_load_error_metric``).

    ``gen`` [S, T] and ``real`` [R, T]: the per-profile maxima of the two sets form two empirical distributions
    scored by :func:`metrics.probabilistic.crps_between_ensembles`, likewise the minima; the result is the sum,
    i.e. :func:`peak_load_error` of ``real[:, None]`` and ``gen[:, None]`` (one case). In the units of the data;
    symmetric; 0 when the two sets have the same distribution of maxima and of minima. Lower is better.
    """
    gen = _as_float(gen, "gen")
    real = _as_float(real, "real")
    if gen.ndim != 2 or real.ndim != 2:
        raise MetricInputError(f"gen and real must be 2-D [profiles, time steps], got {gen.shape} and {real.shape}")
    return peak_load_error(real[:, None], gen[:, None])


def peak_abs_error(target: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error of the peak: ``mean_n |max_t target[n, t] - max_t pred[n, t]|``.

    ``target`` and ``pred`` are [N, T] point profiles (a deterministic prediction per case); maxima run over
    the valid steps of ``mask``. In the units of the data. Lower is better.
    """
    target = _as_float(target, "target")
    pred = _as_float(pred, "pred")
    if target.ndim != 2 or target.shape != pred.shape:
        raise MetricInputError(f"target and pred must be [N, T] arrays of one shape, got {target.shape} and "
                               f"{pred.shape}")
    mask = _check_mask(mask, target.shape)
    target_max, _ = _extremes(target, mask, "target")
    pred_max, _ = _extremes(pred, mask, "pred")
    return float(np.mean(np.abs(target_max - pred_max)))
