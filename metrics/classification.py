"""Binary classification scores (e.g. anomaly detection), positive class = 1 / True.

Every function has the one metric signature ``fn(real, pred, *, mask=None)``: the true labels ``real`` and the
predicted labels ``pred`` (for :func:`auroc`: scores) are 1-D arrays of equal length, labels holding only 0/1 or
booleans; ``mask`` (bool, same length, True = scored) selects the entries to score, ``None`` scores all.
Zero-division rule: a ratio whose denominator is 0 (precision with no predicted positive, recall with no actual
positive, F1 with precision + recall = 0) is 0.0, as scikit-learn's ``zero_division=0``. Higher is better for all.

:func:`auroc` scores real-valued scores ``pred`` (higher = more likely positive) instead of predicted labels: the
area under the ROC curve, threshold-free. Bad input (non-binary labels, NaN / inf or scores beyond
:data:`metrics.errors.MAX_ABS_VALUE`, shapes) raises :class:`metrics.errors.MetricInputError`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from metrics.errors import MetricInputError, check_values, select_masked


def _select(real: np.ndarray, pred: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``real`` and ``pred`` as 1-D arrays of one length, restricted to the entries ``mask`` selects."""
    real, pred = np.asarray(real), np.asarray(pred)
    for arr, name in ((real, "real"), (pred, "pred")):
        if arr.ndim != 1:
            raise MetricInputError(f"{name} must be 1-D, got shape {arr.shape}")
    if real.shape != pred.shape:
        raise MetricInputError(f"real and pred differ in length: {real.size} vs {pred.size}")
    if mask is not None:
        real, pred = select_masked(real, pred, mask)
    return real, pred


def _binary(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        raise MetricInputError(f"{name} must hold binary labels (0/1 or bool), got dtype {arr.dtype}")
    check_values(arr, name)
    if not np.isin(arr, (0, 1)).all():
        raise MetricInputError(f"{name} must hold binary labels (0/1 or bool)")
    return arr == 1


def _labels(real: np.ndarray, pred: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    real, pred = _select(real, pred, mask)
    real, pred = _binary(real, "real"), _binary(pred, "pred")
    if real.size == 0:
        raise MetricInputError("no labels to score (empty input or the mask selects nothing)")
    return real, pred


def _ratio(num: int, den: int) -> float:
    return num / den if den > 0 else 0.0


def _counts(real: np.ndarray, pred: np.ndarray, mask: np.ndarray | None) -> tuple[int, int, int]:
    """True positives, false positives, false negatives."""
    t, p = _labels(real, pred, mask)
    return int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))


def accuracy(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Fraction of labels predicted correctly."""
    t, p = _labels(real, pred, mask)
    return float(np.mean(t == p))


def precision(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """``TP / (TP + FP)``; 0.0 when nothing is predicted positive."""
    tp, fp, _ = _counts(real, pred, mask)
    return _ratio(tp, tp + fp)


def recall(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """``TP / (TP + FN)``; 0.0 when there is no actual positive."""
    tp, _, fn = _counts(real, pred, mask)
    return _ratio(tp, tp + fn)


def f1(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Harmonic mean of precision and recall, ``2 TP / (2 TP + FP + FN)``; 0.0 when that denominator is 0."""
    tp, fp, fn = _counts(real, pred, mask)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def auroc(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Area under the ROC curve of the scores ``pred`` (higher = more likely positive) against the true labels
    ``real``: the probability that a random positive scores above a random negative, ties counting 1/2 (the
    Mann-Whitney U statistic divided by ``n_pos * n_neg``).

    Computed by the rank formula ``(R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with ``R_pos`` the sum of
    the positives' mid-ranks (tied scores share their average rank). 0.5 = chance, 1 = every positive above
    every negative. Higher is better.

    Raises:
        MetricInputError: ``real`` not binary, ``pred`` not finite real numbers (or beyond
            :data:`metrics.errors.MAX_ABS_VALUE`), lengths differ, or only one class present.
    """
    real, scores = _select(real, pred, mask)
    if scores.dtype.kind not in "biuf":
        raise MetricInputError(f"pred (scores) must be finite real numbers, got dtype {scores.dtype}")
    check_values(scores, "pred (scores)")
    t = _binary(real, "real")
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise MetricInputError(f"AUROC needs both classes in real, got {n_pos} positive and {n_neg} negative")
    ranks = rankdata(scores.astype(np.float64))  # average ranks for ties
    u = ranks[t].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
