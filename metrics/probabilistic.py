"""Scores of ensemble (sample-based) predictions against observations.

Every score has the one metric signature ``fn(real, pred, *, mask=None, ...)``: ``real`` [N, T] holds the
observed profiles (any shape works, the layout is not used) and ``pred`` [S, N, T] the ensemble, ``S`` predicted
samples of each of them (member axis first). ``mask`` (same shape as ``real``, bool) selects the entries that
are scored, e.g. the hidden steps of an imputation task or the valid (non-padding) steps of monthly profiles;
``None`` scores every entry. Entries outside the mask may hold NaN.
Bad input (shapes, NaN / inf or values beyond :data:`metrics.errors.MAX_ABS_VALUE` in scored entries) raises
:class:`metrics.errors.MetricInputError`.

SmartMeterFM's scores map onto these functions as follows (its code's values on the fixtures are tested in
``tests/test_paper_fixtures.py``): ``crps_empirical_dimwise(members, obs)`` is ``crps_ensemble(obs, members,
estimator="nrg")``; the set-vs-set ``crps_metric(gen, real)`` of its evaluation script is ``crps_sets(real, gen)``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from metrics.errors import MetricInputError, check_no_mask, check_values

# scoringrules' sort-based "pwm" and "qd" estimators are algebraically identical to its "fair" and "nrg"
# (energy-form) estimators but O(S log S) instead of O(S^2) per entry without numba.
_SCORINGRULES_ESTIMATOR = {"fair": "pwm", "nrg": "qd"}


def scored_entries(real: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Check ``real`` [N, T] / ensemble ``pred`` [S, N, T] / ``mask`` and return the scored entries as float64
    ``real [K]`` and ``pred [S, K]``.

    Raises :class:`MetricInputError` when the shapes disagree, the mask is not boolean or selects nothing, or a
    scored entry is not finite or beyond :data:`metrics.errors.MAX_ABS_VALUE`.
    """
    real = _as_float(real, "real")
    pred = _as_float(pred, "pred")
    if real.ndim < 1:
        raise MetricInputError("real must be an array with at least one axis, e.g. [N, T]")
    if pred.ndim != real.ndim + 1 or pred.shape[1:] != real.shape:
        raise MetricInputError(f"pred (the ensemble) must have shape [S, *real.shape] = "
                               f"[S, {', '.join(map(str, real.shape))}], got {pred.shape}")
    if pred.shape[0] < 1:
        raise MetricInputError("pred (the ensemble) has no members")
    if mask is None:
        flat_real, flat_pred = real.reshape(-1), pred.reshape(pred.shape[0], -1)
    else:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise MetricInputError(f"mask must be boolean (True = scored), got dtype {mask.dtype}")
        if mask.shape != real.shape:
            raise MetricInputError(f"mask shape {mask.shape} differs from real shape {real.shape}")
        flat_real, flat_pred = real[mask], pred[:, mask]
    if flat_real.size == 0:
        raise MetricInputError("no entry to score: the mask selects nothing (or real is empty)")
    check_values(flat_real, "real (scored entries)")
    check_values(flat_pred, "pred (scored entries)")
    return flat_real, flat_pred


def _as_float(arr: np.ndarray, name: str) -> np.ndarray:
    try:
        return np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricInputError(f"{name} must be an array of real numbers") from None


def crps_ensemble(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,
                  estimator: Literal["fair", "nrg"] = "fair") -> float:
    """Mean continuous ranked probability score of the ensemble ``pred`` [S, N, T] at the observations ``real``
    [N, T], over the scored entries.

    Per entry, with members ``x_1..x_S`` and observation ``y``:

    * ``"fair"`` (default): ``mean_i |x_i - y| - sum_{i,j} |x_i - x_j| / (2 S (S - 1))`` - an unbiased
      estimate of the CRPS of the distribution the members are drawn from, so scores of ensembles of
      different sizes are comparable. Needs ``S >= 2``.
    * ``"nrg"``: the same with ``/(2 S^2)``: the CRPS of the empirical distribution of the members (the
      SmartMeterFM code's estimator); it penalises small ensembles.

    Computed by ``scoringrules.crps_ensemble`` (its "pwm" and "qd" estimators, the sort-based forms equal to
    "fair" and "nrg"). In the units of the data; 0 for a perfect deterministic ensemble. Lower is better.
    """
    if estimator not in _SCORINGRULES_ESTIMATOR:
        raise MetricInputError(f"estimator must be 'fair' or 'nrg', got {estimator!r}")
    flat_real, flat_pred = scored_entries(real, pred, mask)
    if estimator == "fair" and flat_pred.shape[0] < 2:
        raise MetricInputError("the fair CRPS needs at least 2 ensemble members; use estimator='nrg' for one")
    # imported here: scoringrules compiles its numba kernels on import (seconds), which a run that scores no
    # ensemble should not pay
    import scoringrules

    scores = scoringrules.crps_ensemble(flat_real, flat_pred, m_axis=0,
                                        estimator=_SCORINGRULES_ESTIMATOR[estimator], backend="numpy")
    return float(np.mean(scores))


def _sum_abs_pair_diffs(z: np.ndarray) -> np.ndarray:
    """``sum_{i, j} |z_i - z_j|`` along axis 0 for every column, via sorting (O(L log L) per column)."""
    size = z.shape[0]
    weights = 2.0 * np.arange(size) - size + 1.0
    return 2.0 * np.einsum("i,i...->...", weights, np.sort(z, axis=0))


def crps_between_ensembles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CRPS between two empirical distributions, per column: ``E|X - Y| - (E|X - X'| + E|Y - Y'|) / 2``.

    ``a`` [R, K] and ``b`` [S, K] are samples (rows) of K quantities; X, X' are drawn independently from the
    rows of ``a`` and Y, Y' from the rows of ``b``, every expectation being the mean over *all* pairs (i = j
    included), as in the SmartMeterFM code. It is half the energy distance between the two empirical
    distributions, symmetric and >= 0; with one row in ``a`` it is the "nrg" CRPS of the ensemble ``b`` at that
    observation. Returns float64 [K]. A building block of :func:`crps_sets` and
    :func:`metrics.energy.peak_load_error` (one value per quantity), not a metric itself.
    """
    a = _as_float(a, "a")
    b = _as_float(b, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise MetricInputError(f"a and b must be [R, K] and [S, K] with the same K, got {a.shape} and {b.shape}")
    if a.shape[0] < 1 or b.shape[0] < 1 or a.shape[1] < 1:
        raise MetricInputError(f"both ensembles need at least one member and one quantity, got {a.shape} and "
                               f"{b.shape}")
    check_values(a, "a")
    check_values(b, "b")
    r, s = a.shape[0], b.shape[0]
    saa = _sum_abs_pair_diffs(a)
    sbb = _sum_abs_pair_diffs(b)
    # The pair sum over the union counts each cross pair twice: S_union = S_aa + S_bb + 2 S_ab.
    sab = 0.5 * (_sum_abs_pair_diffs(np.concatenate([a, b])) - saa - sbb)
    out = sab / (r * s) - 0.5 * (saa / r**2 + sbb / s**2)
    # Exactly >= 0 in exact arithmetic (half an energy distance); the differences of sums above can leave a
    # round-off residue below 0 for (nearly) identical ensembles.
    return np.maximum(out, 0.0)


def crps_sets(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Set-vs-set CRPS of two sets of profiles, averaged over the time steps (SmartMeterFM's ``crps_metric``).

    ``real`` [R, T] and the generated ``pred`` [S, T] are unpaired sets (e.g. real and generated profiles of one
    month); at each step ``t`` the two sets' values form two empirical distributions scored by
    :func:`crps_between_ensembles` (``E|X - Y| - (E|X - X'| + E|Y - Y'|) / 2``, all pairs), and the result is the
    mean over the ``T`` steps. In the units of the data; symmetric in its arguments; 0 for identical sets. ``mask``
    must be None (a set metric compares whole profiles). Lower is better.
    """
    check_no_mask(mask, "the set CRPS")
    real = _as_float(real, "real")
    pred = _as_float(pred, "pred")
    if pred.ndim != 2 or real.ndim != 2:
        raise MetricInputError(f"real and pred must be 2-D [profiles, time steps], got {real.shape} and "
                               f"{pred.shape}")
    return float(np.mean(crps_between_ensembles(real, pred)))


def interval_coverage(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,
                      level: float = 0.9) -> float:
    """Fraction of scored observations ``real`` [N, T] inside the central ``level`` prediction interval of the
    ensemble ``pred`` [S, N, T].

    The interval of each entry runs from the ``(1 - level)/2`` to the ``(1 + level)/2`` empirical quantile of
    its members (``numpy.quantile``, ``method="linear"``: the quantile ``q`` of sorted members ``x_(0..S-1)`` is
    interpolated at position ``q (S - 1)``), bounds included. A calibrated ensemble covers about ``level``;
    neither direction is "better" (use :func:`coverage_error` for a ranking). Needs at least two members: the
    interval of a single member is one point, which says nothing about calibration.
    """
    try:
        level = float(level)
    except (TypeError, ValueError):
        raise MetricInputError(f"level must be a number strictly between 0 and 1, got {level!r}") from None
    if not 0.0 < level < 1.0:
        raise MetricInputError(f"level must lie strictly between 0 and 1, got {level}")
    flat_real, flat_pred = scored_entries(real, pred, mask)
    if flat_pred.shape[0] < 2:
        raise MetricInputError(f"interval coverage needs at least 2 ensemble members, got {flat_pred.shape[0]}")
    lo, hi = np.quantile(flat_pred, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=0, method="linear")
    return float(np.mean((flat_real >= lo) & (flat_real <= hi)))


def coverage_error(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,
                   level: float = 0.9) -> float:
    """``|interval_coverage(real, pred, mask=mask, level=level) - level|``: distance from nominal coverage, in
    [0, max(level, 1 - level)]. Lower is better."""
    return abs(interval_coverage(real, pred, mask=mask, level=level) - float(level))
