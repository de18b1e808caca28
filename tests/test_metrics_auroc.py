"""AUROC: agreement with scikit-learn (ties included), closed-form cases, registry entry and input errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import metrics
from metrics import METRICS, MetricInputError, auroc, goal


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 200
    y = rng.random(n) < 0.3
    # few distinct values: many ties within and across the classes
    scores = rng.integers(0, 6, size=n) + 1.5 * y * rng.random(n).round(1)
    assert len(np.unique(scores)) < n
    assert auroc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    # integer labels are accepted as booleans
    assert auroc(y.astype(int), scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_auroc_closed_forms():
    y = np.array([False, False, True, True])
    assert auroc(y, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert auroc(y, np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert auroc(y, np.zeros(4)) == 0.5  # every pair tied: 1/2 each
    # pairs (pos, neg): 0.3 > 0.1, 0.3 = 0.3 (1/2), 0.2 > 0.1, 0.2 < 0.3 -> (1 + 0.5 + 1 + 0) / 4
    assert auroc(y, np.array([0.1, 0.3, 0.3, 0.2])) == pytest.approx(2.5 / 4)
    # invariant to any increasing transform of the scores
    rng = np.random.default_rng(0)
    s = rng.standard_normal(50)
    lab = rng.random(50) < 0.5
    assert auroc(lab, np.exp(3 * s)) == pytest.approx(auroc(lab, s))


def test_auroc_is_registered_higher_is_better():
    assert METRICS["AUROC"].fn is metrics.auroc
    assert goal("AUROC") == "higher" and METRICS["AUROC"].needs == "scores"
    assert METRICS["AUROC"].range == (0.0, 1.0)


def test_auroc_errors():
    with pytest.raises(MetricInputError, match="finite"):
        auroc(np.array([True, False]), np.array([np.inf, 1.0]))
    with pytest.raises(ValueError, match="both classes"):
        auroc(np.ones(5, dtype=bool), np.arange(5.0))
    with pytest.raises(ValueError, match="both classes"):
        auroc(np.zeros(5, dtype=bool), np.arange(5.0))
    with pytest.raises(ValueError, match="finite"):
        auroc(np.array([True, False]), np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="differ in length"):
        auroc(np.array([True, False, True]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="binary"):
        auroc(np.array([0, 2]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="1-D"):
        auroc(np.array([True, False]), np.zeros((2, 1)))
