"""``knn-imputer``: scikit-learn's ``KNNImputer`` over the training days (neighbour-based imputation).

Each training profile is one row of ``T`` columns (its unobserved steps NaN); each query profile is one more row
with its unobserved steps NaN. ``KNNImputer`` finds, for every missing step of a query, the ``n_neighbors``
training rows nearest to the query in the NaN-aware Euclidean distance over the steps both observe (among the
rows that observe that step) and fills the step with their mean (``weights="uniform"``) or their
inverse-distance weighted mean (``weights="distance"``). A query with no observed step gets every step's
training mean (scikit-learn's rule when no distance is defined). Nothing is random: the ``S`` samples are
the point imputation repeated.

Persistence: the fitted state of a ``KNNImputer`` is its training matrix, so that matrix (``[M, T]`` float32,
NaN where unobserved) is the saved state and the imputer is rebuilt from it (deterministically) when asked to
impute; no scikit-learn object is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bench.api import Imputer, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.registry import register_model
from bench.tasks.queries import ImputationQuery


@dataclass(frozen=True)
class KNNImputerParams(Params):
    """Neighbourhood size and weighting of the neighbours' values."""

    n_neighbors: int = 10
    weights: Literal["uniform", "distance"] = "uniform"

    def __post_init__(self) -> None:
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {self.n_neighbors}")


@register_model("knn-imputer")
class NeighbourImputer(Model, Imputer):
    """k-nearest training days (scikit-learn's KNNImputer), the unified paper's C1 role (imputation from
    neighbour information).

    The paper gives no neighbourhood size for C1, so the ``paper`` profile keeps the default ``k = 10``;
    ``test`` uses ``k = 5``. Deterministic: the point imputation repeated ``S`` times.
    """

    Params = KNNImputerParams
    profiles = {"test": {"n_neighbors": 5}}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._donors: np.ndarray | None = None  # [M, T] float32 training profiles, NaN where unobserved

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Keep the training profiles with at least one observed step as the neighbour pool.

        Raises:
            ModelFitError: no training profile has an observed step.
        """
        values, mask = np.asarray(train.values), np.asarray(train.mask, dtype=bool)
        if values.ndim != 2 or mask.shape != values.shape:
            raise ValueError(f"knn-imputer: training values and mask must share a 2-D shape, got {values.shape} "
                             f"and {mask.shape}")
        keep = mask.any(axis=1)
        if not keep.any():
            raise ModelFitError("knn-imputer: no training profile has an observed step")
        self._donors = np.where(mask, values, np.nan)[keep].astype(np.float32)

    def _imputer(self) -> Any:
        """A ``KNNImputer`` fitted on the neighbour pool (scikit-learn is a core dependency)."""
        from sklearn.impute import KNNImputer

        # keep_empty_features: a step no training day observes (e.g. month padding) keeps its column, so that
        # the output has all T steps; scikit-learn fills such a step with 0
        imputer = KNNImputer(n_neighbors=self.n_neighbors, weights=self.weights, keep_empty_features=True)
        return imputer.fit(self._donors.astype(np.float64))

    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` float32: the neighbours' fill of the unobserved steps, observed values kept exactly,
        padding 0; the ``S`` samples are identical."""
        if self._donors is None:
            raise RuntimeError("knn-imputer: impute called before fit")
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"knn-imputer: n_samples must be a positive integer, got {n_samples!r}")
        length = query.values.shape[1]
        if length != self._donors.shape[1]:
            raise ValueError(f"knn-imputer: query profiles have {length} steps, the model was fitted on "
                             f"{self._donors.shape[1]}")
        x = np.where(query.observed, query.values, np.nan).astype(np.float64)
        filled = self._imputer().transform(x)
        filled = np.where(query.observed, query.values, filled)
        filled = np.where(query.valid, filled, 0.0).astype(np.float32)
        return np.broadcast_to(filled, (int(n_samples), *filled.shape)).copy()
