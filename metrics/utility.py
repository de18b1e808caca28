"""Downstream utility of generated profiles: train on synthetic, test on real (TSTR).

A fixed forecaster, ridge regression (scikit-learn's ``Ridge``, ``alpha`` fixed) from the first
``1 - horizon_frac`` of a daily profile to its last ``horizon_frac`` (the evening from the rest of the day at the
default quarter), is fitted once on generated profiles and once on the real training profiles; both predict the
same real test profiles. The TSTR ratio is ``MAE(trained on generated) / MAE(trained on real)``: about 1 when the
synthetic data serve the job as well as the real data, above 1 when they serve it worse. Replaying the training
profiles (``resample-train``) gives about 1 by construction.

Where generated profiles carry labels (the conditions of conditional generation: month, category), a fixed
classifier does the same job: scikit-learn's ``LogisticRegression`` (``C`` fixed, on standardised steps) predicts
the label of a profile, fitted once on the generated profiles with the labels they were generated under and once
on the real training profiles with theirs, tested on the real test profiles. :func:`tstr_class_ratio` is the ratio
of the two error rates (about 1 = the synthetic profiles carry the label as the real ones do).
"""

from __future__ import annotations

import numpy as np

from metrics.errors import MetricInputError, check_values


def _split(profiles: np.ndarray, horizon_frac: float) -> tuple[np.ndarray, np.ndarray]:
    profiles = check_values(np.asarray(profiles, dtype=np.float64), "profiles")
    if profiles.ndim != 2 or len(profiles) < 2:
        raise MetricInputError(f"profiles must be [N >= 2, T], got shape {profiles.shape}")
    horizon = int(round(horizon_frac * profiles.shape[1]))
    if not 1 <= horizon < profiles.shape[1]:
        raise MetricInputError(f"horizon_frac={horizon_frac} leaves no input or no target in {profiles.shape[1]} steps")
    return profiles[:, :-horizon], profiles[:, -horizon:]


def forecast_errors(train: np.ndarray, test: np.ndarray, *, horizon_frac: float = 0.25,
                    alpha: float = 1.0) -> np.ndarray:
    """``[N_test]`` mean absolute errors of the fixed ridge forecaster fitted on ``train``, per test profile."""
    from sklearn.linear_model import Ridge

    x_train, y_train = _split(train, horizon_frac)
    x_test, y_test = _split(test, horizon_frac)
    model = Ridge(alpha=alpha).fit(x_train, y_train)
    return np.abs(model.predict(x_test) - y_test).mean(axis=1)


def tstr_ratio_from_errors(synthetic_errors: np.ndarray, real_errors: np.ndarray) -> float:
    """``mean(synthetic_errors) / mean(real_errors)`` on the same test profiles."""
    real_mae = float(np.mean(real_errors))
    if real_mae == 0.0:
        return 1.0 if float(np.mean(synthetic_errors)) == 0.0 else float("inf")
    return float(np.mean(synthetic_errors)) / real_mae


def tstr_ratio(real: np.ndarray, pred: np.ndarray, *, mask=None, train: np.ndarray | None = None,
               horizon_frac: float = 0.25, alpha: float = 1.0) -> float:
    """TSTR ratio (module docstring): ``real`` the real test profiles, ``pred`` the generated ones, ``train``
    the real training profiles."""
    if train is None:
        raise MetricInputError("the TSTR ratio needs the real training profiles: pass train=")
    return tstr_ratio_from_errors(forecast_errors(pred, real, horizon_frac=horizon_frac, alpha=alpha),
                                  forecast_errors(train, real, horizon_frac=horizon_frac, alpha=alpha))


def classification_errors(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray,
                          *, c: float = 1.0) -> np.ndarray:
    """``[N_test]`` 0/1 errors of the fixed classifier (module docstring) fitted on ``train`` with
    ``train_labels`` and asked for the labels of ``test``.

    Raises :class:`MetricInputError` for bad shapes or values, or fewer than two classes in ``train_labels``
    (no classifier can be fitted).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = check_values(np.asarray(train, dtype=np.float64), "train")
    test = check_values(np.asarray(test, dtype=np.float64), "test")
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise MetricInputError(f"train and test must be [N, T] with one T, got {train.shape} and {test.shape}")
    if len(train_labels) != len(train) or len(test_labels) != len(test):
        raise MetricInputError("one label per profile is needed for train and test")
    if len(np.unique(train_labels)) < 2:
        raise MetricInputError(f"the training profiles carry one label only ({train_labels[0]!r}): no classifier "
                               "can be fitted")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    model.fit(train, train_labels)
    return (model.predict(test) != test_labels).astype(np.float64)


def tstr_class_ratio(real: np.ndarray, pred: np.ndarray, *, mask=None, real_labels: np.ndarray,
                     pred_labels: np.ndarray, train: np.ndarray, train_labels: np.ndarray, c: float = 1.0) -> float:
    """Error rate of the fixed classifier trained on the generated ``pred`` (with ``pred_labels``) over that of the
    same classifier trained on the real ``train`` (with ``train_labels``), both tested on ``real`` with
    ``real_labels`` (module docstring). Lower is better; about 1 = as useful as real data."""
    return tstr_ratio_from_errors(classification_errors(pred, pred_labels, real, real_labels, c=c),
                                  classification_errors(train, train_labels, real, real_labels, c=c))
