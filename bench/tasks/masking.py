"""Seeded missing-data patterns for the imputation task.

A pattern hides a fraction of each profile's *valid* steps (``valid`` False marks the padding of short months
or steps the data never had); padding is never hidden and never observed. Two patterns:

* ``"random"``: missing steps drawn uniformly without replacement among the valid steps;
* ``"block"``: one contiguous run of valid steps (contiguous in the order of the valid steps, i.e. in time when
  the valid steps of a profile form one run, as for padded months and complete days).

Each profile with ``n`` valid steps loses ``round(fraction * n)`` of them (half rounded up), clipped to
``[1, n - 1]`` so that every profile keeps at least one observed and one missing step; a profile with fewer
than two valid steps loses none.
"""

from __future__ import annotations

import numpy as np

PATTERNS = ("random", "block")


def _check(valid: np.ndarray, pattern: str, fraction: float) -> np.ndarray:
    valid = np.asarray(valid)
    if valid.dtype != np.bool_ or valid.ndim != 2:
        raise ValueError(f"valid must be a 2-D boolean array, got {valid.dtype} of shape {valid.shape}")
    if pattern not in PATTERNS:
        raise ValueError(f"unknown missing pattern {pattern!r}; known: {', '.join(PATTERNS)}")
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction missing must lie strictly between 0 and 1, got {fraction}")
    return valid


def n_missing(n_valid: np.ndarray, fraction: float) -> np.ndarray:
    """Number of steps to hide per profile: ``round(fraction * n_valid)`` clipped to ``[1, n_valid - 1]``
    (0 where ``n_valid < 2``)."""
    n_valid = np.asarray(n_valid, dtype=np.int64)
    k = np.floor(float(fraction) * n_valid + 0.5).astype(np.int64)
    k = np.clip(k, 1, np.maximum(n_valid - 1, 1))
    return np.where(n_valid >= 2, k, 0)


def missing_mask(valid: np.ndarray, pattern: str, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean ``[N, T]`` mask, True on the hidden steps (always a subset of ``valid``).

    Draws come from ``rng`` only, so one generator state gives one mask.
    """
    valid = _check(valid, pattern, fraction)
    n_valid = valid.sum(axis=1)
    k = n_missing(n_valid, fraction)
    if pattern == "random":
        # Rank valid steps by uniform keys (padding ranks last); the k smallest ranks are hidden.
        keys = np.where(valid, rng.random(valid.shape), np.inf)
        ranks = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
        return valid & (ranks < k[:, None])
    missing = np.zeros(valid.shape, dtype=bool)
    starts = rng.integers(0, n_valid - k + 1) if len(valid) else np.zeros(0, dtype=np.int64)
    for i in range(len(valid)):
        steps = np.flatnonzero(valid[i])
        missing[i, steps[starts[i]:starts[i] + k[i]]] = True
    return missing


def observed_mask(valid: np.ndarray, pattern: str, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean ``[N, T]`` mask, True on the steps a model is shown: ``valid`` minus :func:`missing_mask`."""
    return np.asarray(valid) & ~missing_mask(valid, pattern, fraction, rng)
