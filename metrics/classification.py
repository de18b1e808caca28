"""Binary classification scores (e.g. anomaly detection), positive class = 1 / True.

Inputs are 1-D arrays of equal length holding only 0/1 or booleans. Zero-division rule: a ratio whose
denominator is 0 (precision with no predicted positive, recall with no actual positive, F1 with
precision + recall = 0) is 0.0, as scikit-learn's ``zero_division=0``. Higher is better for all.

:func:`auroc` scores real-valued ``scores`` (higher = more likely positive) instead of predicted labels: the
area under the ROC curve, threshold-free. Bad input (non-binary labels, NaN / inf or scores beyond
:data:`metrics.errors.MAX_ABS_VALUE`, shapes) raises :class:`metrics.errors.MetricInputError`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from metrics.errors import MetricInputError, check_values


def _labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for arr, name in ((y_true, "y_true"), (y_pred, "y_pred")):
        arr = np.asarray(arr)
        if arr.ndim != 1:
            raise MetricInputError(f"{name} must be 1-D, got shape {arr.shape}")
        if arr.dtype != np.bool_:
            if arr.dtype.kind not in "iuf":
                raise MetricInputError(f"{name} must hold binary labels (0/1 or bool), got dtype {arr.dtype}")
            check_values(arr, name)
            if not np.isin(arr, (0, 1)).all():
                raise MetricInputError(f"{name} must hold binary labels (0/1 or bool)")
            arr = arr == 1
        out.append(arr)
    if out[0].shape != out[1].shape:
        raise MetricInputError(f"y_true and y_pred differ in length: {out[0].size} vs {out[1].size}")
    if out[0].size == 0:
        raise MetricInputError("no labels to score")
    return out[0], out[1]


def _ratio(num: int, den: int) -> float:
    return num / den if den > 0 else 0.0


def _counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int, int]:
    """True positives, false positives, false negatives."""
    t, p = _labels(y_true, y_pred)
    return int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of labels predicted correctly."""
    t, p = _labels(y_true, y_pred)
    return float(np.mean(t == p))


def precision(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``TP / (TP + FP)``; 0.0 when nothing is predicted positive."""
    tp, fp, _ = _counts(y_true, y_pred)
    return _ratio(tp, tp + fp)


def recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``TP / (TP + FN)``; 0.0 when there is no actual positive."""
    tp, _, fn = _counts(y_true, y_pred)
    return _ratio(tp, tp + fn)


def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Harmonic mean of precision and recall, ``2 TP / (2 TP + FP + FN)``; 0.0 when that denominator is 0."""
    tp, fp, fn = _counts(y_true, y_pred)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def auroc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative,
    ties counting 1/2 (the Mann-Whitney U statistic divided by ``n_pos * n_neg``).

    Computed by the rank formula ``(R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with ``R_pos`` the sum of
    the positives' mid-ranks (tied scores share their average rank). 0.5 = chance, 1 = every positive above
    every negative. Higher is better.

    Raises:
        MetricInputError: ``y_true`` not binary, ``scores`` not finite real numbers (or beyond
            :data:`metrics.errors.MAX_ABS_VALUE`), lengths differ, or only one class present.
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise MetricInputError(f"scores must be 1-D, got shape {scores.shape}")
    if scores.dtype.kind not in "biuf":
        raise MetricInputError(f"scores must be finite real numbers, got dtype {scores.dtype}")
    check_values(scores, "scores")
    t, _ = _labels(y_true, np.zeros(scores.shape, dtype=bool))
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise MetricInputError(f"AUROC needs both classes in y_true, got {n_pos} positive and {n_neg} negative")
    ranks = rankdata(scores.astype(np.float64))  # average ranks for ties
    u = ranks[t].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
