"""Point and binary-classification metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from metrics import MetricInputError, accuracy, auroc, f1, mae, mape, mse, precision, recall, rmse
from metrics.point import MAPE_EPS


@pytest.fixture
def loads():
    rng = np.random.default_rng(0)
    y_true = rng.gamma(2.0, 0.4, size=(20, 48)) + 0.05
    return y_true, y_true + rng.normal(0.0, 0.1, size=y_true.shape)


def test_point_metrics_match_sklearn(loads):
    y_true, y_pred = loads
    flat_t, flat_p = y_true.ravel(), y_pred.ravel()
    assert rmse(y_true, y_pred) == pytest.approx(np.sqrt(skm.mean_squared_error(flat_t, flat_p)), rel=1e-12)
    assert mse(y_true, y_pred) == pytest.approx(skm.mean_squared_error(flat_t, flat_p), rel=1e-12)
    assert mae(y_true, y_pred) == pytest.approx(skm.mean_absolute_error(flat_t, flat_p), rel=1e-12)
    assert mape(y_true, y_pred) == pytest.approx(skm.mean_absolute_percentage_error(flat_t, flat_p), rel=1e-12)


def test_point_metrics_with_mask(loads):
    y_true, y_pred = loads
    mask = np.random.default_rng(1).random(y_true.shape) < 0.3
    t, p = y_true[mask], y_pred[mask]
    y_pred_nan = np.where(mask, y_pred, np.nan)
    assert rmse(y_true, y_pred_nan, mask=mask) == pytest.approx(np.sqrt(skm.mean_squared_error(t, p)), rel=1e-12)
    assert mse(y_true, y_pred_nan, mask=mask) == pytest.approx(skm.mean_squared_error(t, p), rel=1e-12)
    assert mae(y_true, y_pred_nan, mask=mask) == pytest.approx(skm.mean_absolute_error(t, p), rel=1e-12)
    assert mape(y_true, y_pred_nan, mask=mask) == pytest.approx(skm.mean_absolute_percentage_error(t, p), rel=1e-12)
    with pytest.raises(MetricInputError, match="non-finite"):
        mae(y_true, y_pred_nan)


def test_mape_excludes_near_zero_loads(loads):
    y_true, y_pred = loads
    y_true = y_true.copy()
    y_true[:, :5] = 0.0
    y_true[:, 5] = 5e-4
    keep = np.abs(y_true) >= 1e-3
    expected = skm.mean_absolute_percentage_error(y_true[keep], y_pred[keep])
    assert mape(y_true, y_pred) == pytest.approx(expected, rel=1e-12)
    # a lower threshold keeps the 5e-4 loads, which dominate the mean
    assert mape(y_true, y_pred, eps=1e-4) > 10 * mape(y_true, y_pred)
    with pytest.raises(MetricInputError, match="eps"):
        mape(np.zeros((2, 3)), np.ones((2, 3)))


def test_mape_boundary_keeps_values_equal_to_eps():
    # |y| == eps is kept, |y| < eps left out: errors 1/0.5 = 2 (at the boundary) and 0.5/1 = 0.5 -> mean 1.25;
    # the just-below value 0.4999 is excluded
    y_true = np.array([0.5, 1.0, 0.4999, -0.5])
    y_pred = np.array([1.5, 1.5, 9.0, -0.5])
    assert mape(y_true, y_pred, eps=0.5) == pytest.approx((2.0 + 0.5 + 0.0) / 3)
    # the default threshold behaves the same at its own boundary (1e-3 is one float64 number on both sides)
    assert mape(np.array([MAPE_EPS, 1.0]), np.array([2 * MAPE_EPS, 1.0])) == pytest.approx(0.5)
    assert mape(np.array([0.999 * MAPE_EPS, 1.0]), np.array([2 * MAPE_EPS, 1.5])) == pytest.approx(0.5)
    # zeros are never divided by, even with eps = 0
    assert mape(np.array([0.0, 2.0]), np.array([1.0, 3.0]), eps=0.0) == pytest.approx(0.5)
    for bad in (-1.0, np.nan, np.inf, "x"):
        with pytest.raises(MetricInputError, match="eps"):
            mape(np.ones(2), np.ones(2), eps=bad)


def test_point_metrics_reject_bad_input(loads):
    y_true, y_pred = loads
    with pytest.raises(MetricInputError, match="shape"):
        rmse(y_true, y_pred[:3])
    with pytest.raises(MetricInputError, match="boolean"):
        mae(y_true, y_pred, mask=np.ones(y_true.shape))


def test_classification_matches_sklearn():
    rng = np.random.default_rng(2)
    for trial in range(5):
        y_true = rng.random(200) < 0.2
        y_pred = rng.random(200) < 0.1 + 0.1 * trial
        assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
        assert precision(y_true, y_pred) == pytest.approx(skm.precision_score(y_true, y_pred, zero_division=0))
        assert recall(y_true, y_pred) == pytest.approx(skm.recall_score(y_true, y_pred, zero_division=0))
        assert f1(y_true, y_pred) == pytest.approx(skm.f1_score(y_true, y_pred, zero_division=0))
    # integer labels work the same
    ints_true, ints_pred = y_true.astype(int), y_pred.astype(int)
    assert f1(ints_true, ints_pred) == pytest.approx(skm.f1_score(ints_true, ints_pred))


def test_classification_zero_division_and_validation():
    none = np.zeros(6, dtype=int)
    some = np.array([0, 1, 0, 1, 0, 0])
    assert precision(some, none) == 0.0
    assert recall(none, some) == 0.0
    assert f1(none, none) == 0.0
    assert accuracy(none, none) == 1.0
    with pytest.raises(MetricInputError, match="binary"):
        accuracy(np.array([0, 2, 1]), np.array([0, 1, 1]))
    with pytest.raises(MetricInputError, match="length"):
        f1(some, some[:3])


def test_classification_with_mask():
    rng = np.random.default_rng(3)
    y_true, y_pred, scores = rng.random(100) < 0.4, rng.random(100) < 0.5, rng.random(100)
    mask = rng.random(100) < 0.6
    for fn, reference in ((accuracy, skm.accuracy_score), (precision, skm.precision_score),
                          (recall, skm.recall_score), (f1, skm.f1_score)):
        assert fn(y_true, y_pred, mask=mask) == pytest.approx(reference(y_true[mask], y_pred[mask]))
    assert auroc(y_true, scores, mask=mask) == pytest.approx(skm.roc_auc_score(y_true[mask], scores[mask]))
    with pytest.raises(MetricInputError, match="boolean"):
        accuracy(y_true, y_pred, mask=mask.astype(int))
    with pytest.raises(MetricInputError, match="selects nothing"):
        f1(y_true, y_pred, mask=np.zeros(100, bool))
    with pytest.raises(TypeError):
        accuracy(y_true, y_pred, mask)  # mask is keyword-only
