"""Naive reference generators and the input checks shared by the classical baselines.

* ``resample-train`` draws whole training days uniformly with replacement. It reproduces the training
  distribution exactly, so it is the memorising upper bound for every marginal and distributional metric
  (its only error against held-out days is the train/evaluation difference itself).
* ``independent-marginals`` draws every time step independently from that step's training ECDF: perfect
  per-step marginals, no temporal dependence at all. A model that learns the shape of a day must beat it on
  MMD and Fréchet distance.
"""

from __future__ import annotations

import numpy as np

from bench.api import Generator, Model
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.registry import register_model
from bench.seeds import Stream


def training_matrix(train: ProfileSet, model: str) -> np.ndarray:
    """``train.values`` as float64 after checking the set is usable by an unconditional generator.

    Raises:
        ValueError: the set is empty, has unobserved steps (the generators model complete days) or holds
            non-finite values.
    """
    values = np.asarray(train.values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{model}: training set {train.name!r} is empty (shape {values.shape})")
    if not train.complete:
        raise ValueError(f"{model}: training set {train.name!r} has unobserved steps; this model needs "
                         "complete profiles (mask all True)")
    if not np.isfinite(values).all():
        raise ValueError(f"{model}: training set {train.name!r} holds non-finite values")
    return values


def check_sample_request(n: int, cond: object, fitted: bool, model: str) -> int:
    """Validate the arguments of an unconditional ``sample`` call and return ``n`` as an int.

    Raises:
        RuntimeError: the model was not fitted yet.
        ValueError: ``n`` is not a positive integer or a condition was passed to an unconditional model.
    """
    if not fitted:
        raise RuntimeError(f"{model}: call fit() before sample()")
    if cond is not None:
        raise ValueError(f"{model} is an unconditional generator; cond must be None")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{model}: n must be a positive integer, got {n!r}")
    return int(n)


@register_model("resample-train")
class ResampleTrain(Model, Generator):
    """Training days drawn uniformly with replacement (memorising upper bound for marginal metrics)."""

    learns = False

    def __init__(self) -> None:
        super().__init__()
        self._train: np.ndarray | None = None

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Keep a copy of the training profiles."""
        self._train = training_matrix(train, "resample-train").astype(np.float32)

    def sample(self, n: int, cond: object, ctx: RunContext) -> np.ndarray:
        """``n`` training rows drawn with replacement, ``[n, T]`` float32."""
        n = check_sample_request(n, cond, self._train is not None, "resample-train")
        rows = ctx.rng(Stream.MODEL_SAMPLE).integers(0, len(self._train), size=n)
        return self._train[rows].copy()


@register_model("independent-marginals")
class IndependentMarginals(Model, Generator):
    """Each time step drawn independently from its training ECDF (exact marginals, no dependence)."""

    learns = False

    def __init__(self) -> None:
        super().__init__()
        self._train: np.ndarray | None = None

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Keep a copy of the training profiles (the per-step ECDFs are their columns)."""
        self._train = training_matrix(train, "independent-marginals").astype(np.float32)

    def sample(self, n: int, cond: object, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32; entry ``(i, t)`` is step ``t`` of an independently drawn training day."""
        n = check_sample_request(n, cond, self._train is not None, "independent-marginals")
        n_train, length = self._train.shape
        # Drawing a random row per entry is sampling exactly from the step's ECDF (no interpolation).
        rows = ctx.rng(Stream.MODEL_SAMPLE).integers(0, n_train, size=(n, length))
        return np.take_along_axis(self._train, rows, axis=0)
