"""Marginal (one-dimensional) distances between generated and real load values.

Each metric comes in two versions, named distinctly because they measure different things:

* ``*_pooled`` - every value of every profile flattened into one 1-D sample per side, so the time of day is
  ignored. This is the convention of the EnergyDiff paper and the one its tables report ("KL", "WD", "KS").
* ``*_per_step`` - the metric computed separately at each time step ``t`` on ``gen[:, t]`` and
  ``real[:, t]``, then averaged over the ``T`` steps with equal weights. Sensitive to *when* loads occur.

Inputs are ``gen`` [n, T] and ``real`` [m, T] (any float dtype; computed in float64). Lower is better for all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from metrics.distribution import profile_pair

DEFAULT_BINS = 200


def _kl_1d(gen: np.ndarray, real: np.ndarray, bins: int) -> float:
    lo = min(gen.min(), real.min())
    hi = max(gen.max(), real.max())
    if lo == hi:
        # Both samples are the same point mass.
        return 0.0
    edges = np.linspace(lo, hi, bins + 1)
    p = np.histogram(gen, bins=edges)[0].astype(np.float64)
    q = np.histogram(real, bins=edges)[0].astype(np.float64)
    keep = (p > 0) & (q > 0)
    if not keep.any():
        return float("inf")
    p = p[keep] / p[keep].sum()
    q = q[keep] / q[keep].sum()
    return float(np.sum(p * np.log(p / q)))


def _check_bins(bins: int) -> int:
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    return int(bins)


def kl_pooled(gen: np.ndarray, real: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """Histogram estimate of KL(generated || real) on all values pooled, in nats.

    Both sides are flattened to 1-D; ``bins`` equal-width bins span the joint range ``[min, max]`` of the two
    samples (the last bin closed on the right). Following the EnergyDiff code, bins empty in *either*
    histogram are dropped and both histograms renormalised over the remaining bins before
    ``sum_b p_b log(p_b / q_b)`` (p = generated, q = real); this keeps the estimate finite but ignores mass
    that one side puts where the other has none. Returns 0 when both samples are one and the same constant,
    and ``inf`` when no bin holds values of both sides. Lower is better.
    """
    gen, real = profile_pair(gen, real, names=("gen", "real"))
    return _kl_1d(gen.ravel(), real.ravel(), _check_bins(bins))


def _per_step(fn: Callable[[np.ndarray, np.ndarray], float], gen: np.ndarray, real: np.ndarray) -> float:
    return float(np.mean([fn(gen[:, t], real[:, t]) for t in range(gen.shape[1])]))


def kl_per_step(gen: np.ndarray, real: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """KL(generated || real) at each time step, as in :func:`kl_pooled` (bins over that step's joint range),
    averaged over the time steps. ``inf`` if any step has no shared bin. Lower is better."""
    gen, real = profile_pair(gen, real, names=("gen", "real"))
    bins = _check_bins(bins)
    return _per_step(lambda g, r: _kl_1d(g, r, bins), gen, real)


def wasserstein_pooled(gen: np.ndarray, real: np.ndarray) -> float:
    """1-Wasserstein (earth mover's) distance between the pooled value distributions
    (``scipy.stats.wasserstein_distance`` on the flattened arrays), in the units of the data. Lower is better."""
    gen, real = profile_pair(gen, real, names=("gen", "real"))
    return float(stats.wasserstein_distance(gen.ravel(), real.ravel()))


def wasserstein_per_step(gen: np.ndarray, real: np.ndarray) -> float:
    """1-Wasserstein distance at each time step, averaged over the time steps. Lower is better."""
    gen, real = profile_pair(gen, real, names=("gen", "real"))
    return _per_step(lambda g, r: float(stats.wasserstein_distance(g, r)), gen, real)


def _ks_stat(gen: np.ndarray, real: np.ndarray) -> float:
    # The statistic does not depend on how the p-value is computed; "asymp" skips the costly exact p-value.
    return float(stats.ks_2samp(gen, real, method="asymp").statistic)


def ks_pooled(gen: np.ndarray, real: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs, in [0, 1]) on the pooled
    values (``scipy.stats.ks_2samp``). Lower is better."""
    gen, real = profile_pair(gen, real, names=("gen", "real"))
    return _ks_stat(gen.ravel(), real.ravel())


def ks_per_step(gen: np.ndarray, real: np.ndarray) -> float:
    """Two-sample KS statistic at each time step, averaged over the time steps. Lower is better."""
    gen, real = profile_pair(gen, real, names=("gen", "real"))
    return _per_step(_ks_stat, gen, real)
