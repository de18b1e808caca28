"""Unsupervised anomaly-detection references (capability ``detect``) in the task's scaled space.

* ``zscore-detector``: a profile's steps as z-scores against a reference mean and standard deviation per
  time step (the std floored at ``std_floor``, in scaled units, so that a step that never varies cannot make
  every deviation infinite); its score is the largest absolute *mean* z-score over sliding windows of
  ``window_hours`` (at least one step, at most the whole profile) of its valid steps. Averaging over a
  window before taking the absolute value rewards a run of deviations of one sign, as a scaled or ramped
  segment gives, over isolated noisy steps. The reference is the household's own history when the query
  carries one (``query.history``: the per time-of-day mean and std over the ``D`` previous days), else the
  training profiles (population mean and std per step, from ``fit``).
* ``pca-detector``: a population model: PCA of the training profiles with ``n_components`` components (numpy
  SVD of the centred profiles); a profile's score is its mean squared reconstruction error (the part outside
  the principal subspace) over its valid steps. It ignores ``query.history``.

Both ignore the labelled examples (no ``fit_detector``) and are deterministic. Training statistics use valid
steps only; monthly padding (valid False) holds 0 in both the training profiles and the queries and is never
scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from baselines.nn.blocks import check_positive_int
from bench.api import Detector, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.registry import register_model
from bench.tasks.queries import DetectionQuery


def _training_values(train: ProfileSet, model: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values float64 with non-valid steps 0, mask)`` after checking the set is usable."""
    values = np.asarray(train.values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 2 or values.shape[1] == 0:
        raise ValueError(f"{model}: need at least two training profiles, got shape {values.shape}")
    if not np.isfinite(values[train.mask]).all():
        raise ValueError(f"{model}: training set {train.name!r} holds non-finite values")
    return np.where(train.mask, values, 0.0), np.asarray(train.mask, dtype=bool)


def query_matrix(query: DetectionQuery, length: int | None, model: str, fitted_by: str = "fit") -> np.ndarray:
    """``[N, T]`` float64 query profiles with non-valid steps 0, after checking the model is fitted (``length``
    not None) and the profile length matches.

    Raises:
        RuntimeError: the model is not fitted (``fitted_by`` names the method to call).
        ValueError: the query's profiles have another length than the fitted ones.
    """
    if length is None:
        raise RuntimeError(f"{model}: call {fitted_by}() before anomaly_score()")
    if query.values.shape[1] != length:
        raise ValueError(f"{model}: query profiles have {query.values.shape[1]} steps, the model was fitted on "
                         f"{length}")
    return np.where(query.valid, np.asarray(query.values, dtype=np.float64), 0.0)


def window_steps(window_hours: float, resolution: int) -> int:
    """Sliding-window length in steps: ``window_hours`` at ``resolution`` minutes per step, rounded, at least
    one step."""
    return max(1, int(round(60.0 * float(window_hours) / int(resolution))))


def window_means(values: np.ndarray, valid: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(means [N, T - w + 1], has_valid [N, T - w + 1])``: the mean of ``values`` over the valid steps of
    every window of ``w = min(width, T)`` consecutive steps (0 where a window has no valid step)."""
    n, length = values.shape
    width = max(1, min(int(width), length))
    zero = np.zeros((n, 1))
    sums = np.concatenate([zero, np.cumsum(np.where(valid, values, 0.0), axis=1)], axis=1)
    counts = np.concatenate([zero, np.cumsum(valid, axis=1, dtype=np.float64)], axis=1)
    window_sum = sums[:, width:] - sums[:, :-width]
    window_count = np.rint(counts[:, width:] - counts[:, :-width])
    has = window_count > 0
    return np.where(has, window_sum / np.maximum(window_count, 1.0), 0.0), has


def largest_window_mean(z: np.ndarray, valid: np.ndarray, width: int) -> np.ndarray:
    """``[N]`` largest ``|mean of z over the valid steps of a window|`` over every window of ``width``
    consecutive steps (``width`` clipped to the profile length); windows without a valid step are skipped,
    and a profile with no valid step scores 0."""
    means, has = window_means(z, valid, width)
    return np.where(has, np.abs(means), 0.0).max(axis=1, initial=0.0)


@dataclass(frozen=True)
class ZScoreDetectorParams(Params):
    """Hyper-parameters of :class:`ZScoreDetector`.

    Attributes:
        std_floor: lower bound of the reference standard deviation, in scaled units.
        window_hours: length of the sliding windows whose mean z-score is taken.
    """

    std_floor: float = 0.01
    window_hours: float = 3.0

    def __post_init__(self) -> None:
        for name in ("std_floor", "window_hours"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")


@register_model("zscore-detector")
class ZScoreDetector(Model, Detector):
    """Largest absolute windowed mean z-score of a profile against its household's history (or, without
    history, against the training profiles)."""

    Params = ZScoreDetectorParams

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Per-step mean and (floored) population std over the profiles where the step is valid: the reference
        of queries without history."""
        values, mask = _training_values(train, "zscore-detector")
        counts = np.maximum(mask.sum(axis=0), 1)
        mean = values.sum(axis=0) / counts
        var = (np.where(mask, values - mean, 0.0) ** 2).sum(axis=0) / counts
        self.mean_ = mean
        self.std_ = np.maximum(np.sqrt(var), self.std_floor)

    def reference(self, query: DetectionQuery) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)``, each broadcastable to ``[N, T]``: per time of day over the query's history days
        (std floored), or the fitted population statistics when the query has no history."""
        if query.history is None:
            query_matrix(query, None if self.mean_ is None else len(self.mean_), "zscore-detector")
            return self.mean_, self.std_
        n, length = query.values.shape
        history = np.asarray(query.history, dtype=np.float64).reshape(n, query.history_days, length)
        return history.mean(axis=1), np.maximum(history.std(axis=1), self.std_floor)

    def anomaly_score(self, query: DetectionQuery, ctx: RunContext) -> np.ndarray:
        """``[N]`` largest ``|mean of z_t|`` over sliding windows of valid steps, ``z_t = (x_t - mean_t) /
        std_t`` against :meth:`reference` (0 for a profile with no valid step). With history the fitted
        statistics are not needed."""
        mean, std = self.reference(query)
        values = np.where(query.valid, np.asarray(query.values, dtype=np.float64), 0.0)
        z = (values - mean) / std
        return largest_window_mean(z, np.asarray(query.valid, dtype=bool),
                                   window_steps(self.window_hours, query.resolution))


@dataclass(frozen=True)
class PCADetectorParams(Params):
    """Hyper-parameters of :class:`PCADetector`.

    Attributes:
        n_components: principal components kept (fewer when the training set spans fewer directions).
    """

    n_components: int = 8

    def __post_init__(self) -> None:
        check_positive_int("n_components", self.n_components)


@register_model("pca-detector")
class PCADetector(Model, Detector):
    """Mean squared PCA reconstruction error of a profile (principal subspace of the training profiles); a
    population model that ignores ``query.history``."""

    Params = PCADetectorParams
    profiles = {"test": {"n_components": 4}, "paper": {"n_components": 16}}

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Mean and the leading ``min(n_components, N - 1, T)`` right singular vectors of the centred profiles
        (a centred set of ``N`` profiles spans at most ``N - 1`` directions)."""
        values, _ = _training_values(train, "pca-detector")
        self.mean_ = values.mean(axis=0)
        k = min(self.n_components, values.shape[0] - 1, values.shape[1])
        _, _, vt = np.linalg.svd(values - self.mean_, full_matrices=False)
        self.components_ = vt[:k]

    def reconstruct(self, values: np.ndarray) -> np.ndarray:
        """``[N, T]`` projection of ``values`` onto the fitted affine principal subspace."""
        centred = np.asarray(values, dtype=np.float64) - self.mean_
        return self.mean_ + (centred @ self.components_.T) @ self.components_

    def anomaly_score(self, query: DetectionQuery, ctx: RunContext) -> np.ndarray:
        """``[N]`` mean over valid steps of the squared reconstruction error (0 with no valid step)."""
        values = query_matrix(query, None if self.mean_ is None else len(self.mean_), "pca-detector")
        err = np.where(query.valid, (values - self.reconstruct(values)) ** 2, 0.0)
        return err.sum(axis=1) / np.maximum(query.valid.sum(axis=1), 1)
