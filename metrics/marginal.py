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

import numpy as np
import torch

from metrics.distribution import profile_pair
from metrics.errors import check_count, check_no_mask
from metrics.sets import KL_N_EDGES, SetPair, marginal_stats, sort_joint

__all__ = ["KL_N_EDGES", "kl_per_step", "kl_pooled", "ks_per_step", "ks_pooled", "wasserstein_per_step",
           "wasserstein_pooled"]



def _check_n_edges(n_edges: int) -> int:
    return check_count(n_edges, "n_edges", 2, "edges of at least one bin")


def _pooled(real: np.ndarray, pred: np.ndarray, round_float32: bool, stat: str, n_edges: int = KL_N_EDGES) -> float:
    """``stat`` (``"KL"``, ``"WD"`` or ``"KS"``) of all values pooled (:meth:`metrics.sets.SetPair.pooled_marginals`
    on the resample that holds every row)."""
    real, pred = profile_pair(real, pred)
    pair = SetPair(real, pred, round_float32=round_float32)
    values = pair.pooled_marginals(*pair.all_rows(), n_edges=n_edges, which=(stat,))
    return float(values[("KL", "WD", "KS").index(stat)][0])


def _per_step(real: np.ndarray, pred: np.ndarray, n_edges: int = KL_N_EDGES) -> tuple[float, float, float]:
    """(KL, Wasserstein, KS) at each time step (values as given, float64), each averaged over the steps."""
    real, pred = profile_pair(real, pred)
    values, from_pred = sort_joint(torch.from_numpy(pred), torch.from_numpy(real))
    return tuple(float(stat.mean()) for stat in marginal_stats(values, from_pred, n_edges))


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
    return _pooled(real, pred, round_float32, "KL", _check_n_edges(n_edges))


def kl_per_step(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,
                n_edges: int = KL_N_EDGES) -> float:
    """KL(generated || real) = KL(pred || real) at each time step with the rule of :func:`kl_pooled`: ``n_edges``
    edges (default 200, i.e. 199 bins) spanning *that step's* joint range, bins empty on either side dropped;
    averaged over the time steps. A step where both sides are one constant contributes 0; ``inf`` if any step has
    no shared bin. Computed on the values as given (no float32 rounding). Lower is better."""
    check_no_mask(mask, "KL_step")
    return _per_step(real, pred, _check_n_edges(n_edges))[0]


def wasserstein_pooled(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,
                       round_float32: bool = True) -> float:
    """1-Wasserstein (earth mover's) distance between the pooled value distributions
    (``scipy.stats.wasserstein_distance`` on the flattened arrays), in the units of the data (the EnergyDiff
    paper's "WD"; ``round_float32``: see the module docstring). Symmetric. Lower is better."""
    check_no_mask(mask, "WD")
    return _pooled(real, pred, round_float32, "WD")


def wasserstein_per_step(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """1-Wasserstein distance at each time step, averaged over the time steps. Symmetric. Lower is better."""
    check_no_mask(mask, "WD_step")
    return _per_step(real, pred)[1]


def ks_pooled(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None,
              round_float32: bool = True) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap between the empirical CDFs, in [0, 1]) on the pooled
    values (``scipy.stats.ks_2samp``; the EnergyDiff paper's "KS"). ``round_float32`` (see the module docstring)
    matters here: ties made by the rounding change the statistic. Symmetric. Lower is better."""
    check_no_mask(mask, "KS")
    return _pooled(real, pred, round_float32, "KS")


def ks_per_step(real: np.ndarray, pred: np.ndarray, *, mask: np.ndarray | None = None) -> float:
    """Two-sample KS statistic at each time step, averaged over the time steps. Symmetric. Lower is better."""
    check_no_mask(mask, "KS_step")
    return _per_step(real, pred)[2]
