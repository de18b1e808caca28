"""Marginal (one-dimensional) distances between generated and real load values.

Each metric comes in two versions, named distinctly because they measure different things:

* ``*_pooled`` - every value of every profile flattened into one 1-D sample per side, so the time of day is
  ignored. This is the convention of the EnergyDiff paper and the one its tables report ("KL", "WD", "KS"); the
  pooled functions follow its evaluation code exactly (histogram rule of the KL, values rounded to float32 first).
* ``*_per_step`` - the metric computed separately at each time step ``t`` on ``real[:, t]`` and
  ``pred[:, t]``, then averaged over the ``T`` steps with equal weights. Sensitive to *when* loads occur. Not a
  paper metric: computed on the values as given (float64), with the same KL histogram rule per step.

Every function has the one metric signature ``fn(real, pred, *, mask=None, ...)``: ``real`` [m, T] the real
profiles, ``pred`` [n, T] the generated ones (any float dtype; unpaired sets, sizes may differ). ``mask`` exists
for the shared signature only and must be None (set metrics compare whole profiles). Lower is better for all.
The KL is asymmetric and keeps the EnergyDiff code's direction, KL(generated || real) = KL(pred || real);
Wasserstein and KS are symmetric. Bad input (shapes, NaN / inf, values beyond
:data:`metrics.errors.MAX_ABS_VALUE`) raises :class:`metrics.errors.MetricInputError`.

float32 rounding of the pooled metrics: the EnergyDiff code casts both sets to float32 before computing KL,
Wasserstein and KS. Rounding changes nothing measurable except ties: two float64 values closer than float32
resolution become equal, which on data with many near-ties (real LCL kW values against the same values x 1.1, say)
moves the KS statistic by a few per cent. With ``round_float32=True`` (the default) the values are rounded exactly as
there and then computed in float64, which reproduces the code's KS and Wasserstein values exactly and its KL to
float32 round-off (~1e-6 relative). meterbench's own profiles are float32 already, so there the rounding is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from metrics.distribution import profile_pair
from metrics.errors import MetricInputError, check_count, check_no_mask

KL_N_EDGES = 200
"""Default number of histogram *edges* of the KL: ``linspace(min, max, 200)`` over the joint range, i.e. 199
equal-width bins (the EnergyDiff code's rule)."""


def _kl_1d(real: np.ndarray, pred: np.ndarray, n_edges: int) -> float:
    """Histogram KL(pred || real) of two 1-D samples (the rule of :func:`kl_pooled`)."""
    lo = min(pred.min(), real.min())
    hi = max(pred.max(), real.max())
    if lo == hi:
        # Both samples are the same point mass.
        return 0.0
    edges = np.linspace(lo, hi, n_edges)
    p = np.histogram(pred, bins=edges)[0].astype(np.float64)
    q = np.histogram(real, bins=edges)[0].astype(np.float64)
    keep = (p > 0) & (q > 0)
    if not keep.any():
        return float("inf")
    p = p[keep] / p[keep].sum()
    q = q[keep] / q[keep].sum()
    return float(np.sum(p * np.log(p / q)))


def _check_n_edges(n_edges: int) -> int:
    return check_count(n_edges, "n_edges", 2, "edges of at least one bin")


def _pooled(real: np.ndarray, pred: np.ndarray, round_float32: bool) -> tuple[np.ndarray, np.ndarray]:
    real, pred = profile_pair(real, pred)
    if round_float32:
        biggest = max(np.abs(pred).max(), np.abs(real).max())
        if biggest > np.finfo(np.float32).max:
            raise MetricInputError(f"values up to {biggest:.3g} exceed the float32 range: they cannot be rounded to "
                                   "float32 as the EnergyDiff code does (pass round_float32=False)")
        # As the EnergyDiff code: cast to float32 (ties included), then compute in float64.
        real, pred = real.astype(np.float32).astype(np.float64), pred.astype(np.float32).astype(np.float64)
    return real.ravel(), pred.ravel()


def kl_pooled(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None, n_edges: int = KL_N_EDGES,
              round_float32: bool = True) -> float:
    """Histogram estimate of KL(generated || real) = KL(pred || real) on all values pooled, in nats (the EnergyDiff
    paper's "KL"; the direction of its code, kept although ``real`` comes first in the signature).

    Both sides are flattened to 1-D; the bin edges are ``numpy.linspace(min, max, n_edges)`` over the joint range
    of the two samples, i.e. ``n_edges - 1`` equal-width bins (default 200 edges = 199 bins, as the EnergyDiff
    code; the last bin is closed on the right). Bins empty in *either* histogram are dropped and both histograms
    renormalised over the remaining bins before ``sum_b p_b log(p_b / q_b)`` (p = generated, q = real); this keeps
    the estimate finite but ignores mass that one side puts where the other has none. ``round_float32``: see the
    module docstring. Returns 0 when both samples are one and the same constant, and ``inf`` when no bin holds
    values of both sides. Lower is better.
    """
    check_no_mask(mask, "KL")
    n_edges = _check_n_edges(n_edges)
    real, pred = _pooled(real, pred, round_float32)
    return _kl_1d(real, pred, n_edges)


def _per_step(fn: Callable[[np.ndarray, np.ndarray], float], real: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([fn(real[:, t], pred[:, t]) for t in range(real.shape[1])]))


def kl_per_step(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,
                n_edges: int = KL_N_EDGES) -> float:
    """KL(generated || real) = KL(pred || real) at each time step with the rule of :func:`kl_pooled`: ``n_edges``
    edges (default 200, i.e. 199 bins) spanning *that step's* joint range, bins empty on either side dropped;
    averaged over the time steps. A step where both sides are one constant contributes 0; ``inf`` if any step has
    no shared bin. Computed on the values as given (no float32 rounding). Lower is better."""
    check_no_mask(mask, "KL_step")
    n_edges = _check_n_edges(n_edges)
    real, pred = profile_pair(real, pred)
    return _per_step(lambda r, g: _kl_1d(r, g, n_edges), real, pred)


def wasserstein_pooled(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,
                       round_float32: bool = True) -> float:
    """1-Wasserstein (earth mover's) distance between the pooled value distributions
    (``scipy.stats.wasserstein_distance`` on the flattened arrays), in the units of the data (the EnergyDiff
    paper's "WD"; ``round_float32``: see the module docstring). Symmetric. Lower is better."""
    check_no_mask(mask, "WD")
    real, pred = _pooled(real, pred, round_float32)
    return float(stats.wasserstein_distance(pred, real))


def wasserstein_per_step(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """1-Wasserstein distance at each time step, averaged over the time steps. Symmetric. Lower is better."""
    check_no_mask(mask, "WD_step")
    real, pred = profile_pair(real, pred)
    return _per_step(lambda r, g: float(stats.wasserstein_distance(g, r)), real, pred)


def _ks_stat(real: np.ndarray, pred: np.ndarray) -> float:
    # The statistic does not depend on how the p-value is computed; "asymp" skips the costly exact p-value.
    return float(stats.ks_2samp(pred, real, method="asymp").statistic)


def ks_pooled(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,
              round_float32: bool = True) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs, in [0, 1]) on the pooled
    values (``scipy.stats.ks_2samp``; the EnergyDiff paper's "KS"). ``round_float32`` (see the module docstring)
    matters here: ties made by the rounding change the statistic. Symmetric. Lower is better."""
    check_no_mask(mask, "KS")
    real, pred = _pooled(real, pred, round_float32)
    return _ks_stat(real, pred)


def ks_per_step(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Two-sample KS statistic at each time step, averaged over the time steps. Symmetric. Lower is better."""
    check_no_mask(mask, "KS_step")
    real, pred = profile_pair(real, pred)
    return _per_step(_ks_stat, real, pred)
