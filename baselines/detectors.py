"""Unsupervised anomaly-detection references (capability ``detect``), fitted on the clean training profiles.

* ``zscore-detector``: per time step, the mean and standard deviation of the training profiles (the std
  floored at ``std_floor`` so that a step that never varies in training cannot make every deviation
  infinite); a profile's score is its largest absolute z-score over its valid steps.
* ``pca-detector``: PCA of the training profiles with ``n_components`` components (numpy SVD of the centred
  profiles); a profile's score is its mean squared reconstruction error (the part outside the principal
  subspace) over its valid steps.

Both work in the task's scaled space, ignore the labelled examples (no ``fit_detector``) and are
deterministic. Training statistics use valid steps only; monthly padding (valid False) holds 0 in both the
training profiles and the queries and is never scored.
"""

from __future__ import annotations

import numpy as np

from baselines.nn.blocks import check_positive_int
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


def _query_values(query: DetectionQuery, length: int | None, model: str) -> np.ndarray:
    """Query values as float64 with non-valid steps 0, after checking the fit and the profile length."""
    if length is None:
        raise RuntimeError(f"{model}: call fit() before anomaly_score()")
    if query.values.shape[1] != length:
        raise ValueError(f"{model}: query profiles have {query.values.shape[1]} steps, the model was fitted on "
                         f"{length}")
    return np.where(query.valid, np.asarray(query.values, dtype=np.float64), 0.0)


@register_model("zscore-detector")
class ZScoreDetector:
    """Largest absolute per-step z-score of a profile against the training profiles."""

    capabilities = frozenset({"detect"})
    configs = {"quick": {"std_floor": 1e-3}, "paper": {"std_floor": 1e-3}}

    def __init__(self, std_floor: float = 1e-3) -> None:
        if isinstance(std_floor, bool) or not np.isfinite(std_floor) or std_floor <= 0:
            raise ValueError(f"std_floor must be a positive number, got {std_floor!r}")
        self.std_floor = float(std_floor)
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Per-step mean and (floored) population std over the profiles where the step is valid."""
        values, mask = _training_values(train, "zscore-detector")
        counts = np.maximum(mask.sum(axis=0), 1)
        mean = values.sum(axis=0) / counts
        var = (np.where(mask, values - mean, 0.0) ** 2).sum(axis=0) / counts
        self.mean_ = mean
        self.std_ = np.maximum(np.sqrt(var), self.std_floor)

    def anomaly_score(self, query: DetectionQuery, ctx: RunContext) -> np.ndarray:
        """``[N]`` max over valid steps of ``|x_t - mean_t| / std_t`` (0 for a profile with no valid step)."""
        values = _query_values(query, None if self.mean_ is None else len(self.mean_), "zscore-detector")
        z = np.abs(values - self.mean_) / self.std_
        return np.where(query.valid, z, 0.0).max(axis=1, initial=0.0)


@register_model("pca-detector")
class PCADetector:
    """Mean squared PCA reconstruction error of a profile (principal subspace of the training profiles)."""

    capabilities = frozenset({"detect"})
    configs = {"quick": {"n_components": 8}, "paper": {"n_components": 16}}

    def __init__(self, n_components: int = 8) -> None:
        self.n_components = check_positive_int("n_components", n_components)
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
        values = _query_values(query, None if self.mean_ is None else len(self.mean_), "pca-detector")
        err = np.where(query.valid, (values - self.reconstruct(values)) ** 2, 0.0)
        return err.sum(axis=1) / np.maximum(query.valid.sum(axis=1), 1)
