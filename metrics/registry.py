"""Named metrics with their direction (is a lower or a higher value better?), as the tables use them.

Call conventions by family (see each function's docstring):

* distribution / marginal: ``fn(gen [n, T], real [m, T])``; ``MMD`` and ``MMD_p`` also take ``bandwidth=`` (from
  :func:`metrics.distribution.rbf_bandwidth` on the real data, once per dataset); ``MMD_paper`` takes none: like
  the EnergyDiff code it derives its bandwidth from the real profiles of each call;
* ensemble: ``fn(obs [N, T], ens [S, N, T], mask=None)``; peak load: ``fn(real, gen, mask=None)``;
* point: ``fn(y_true, y_pred, mask=None)``; classification: ``fn(y_true [N], y_pred [N])`` (``AUROC``:
  ``fn(y_true [N], scores [N])``).

The generation metrics follow the EnergyDiff code where its tables are concerned ("KL", "WD", "KS", "GFD",
"MMD_paper"); ``tests/test_paper_fixtures.py`` checks them against that code's values. Every metric raises
:class:`metrics.errors.MetricInputError` on input it cannot score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from metrics import classification, distribution, energy, marginal, point, probabilistic

GOALS = ("lower", "higher", "ignore")
"""Which values are better: ``lower``, ``higher``, or ``ignore`` (reported, never ranked nor marked best)."""


@dataclass(frozen=True)
class Metric:
    """A metric as tabulated.

    Attributes:
        name: its column name.
        fn: ``fn(real, pred, *, mask=None, ...) -> float``.
        goal: one of :data:`GOALS`.
        description: one line for the tables' notes.
        range: ``(low, high)`` of possible values.
        needs: what ``pred`` is: ``"samples"`` (a set of profiles), ``"ensemble"`` ([S, N, T] draws per real
            profile), ``"point"`` (one prediction per real value), ``"labels"`` or ``"scores"``.
    """

    name: str
    fn: Callable[..., float]
    goal: str
    description: str
    range: tuple[float, float] = (0.0, float("inf"))
    needs: str = "samples"

    def __post_init__(self) -> None:
        if self.goal not in GOALS:
            raise ValueError(f"metric {self.name!r}: goal must be one of {', '.join(GOALS)}, got {self.goal!r}")


def _specs(*specs: Metric) -> dict[str, Metric]:
    return {spec.name: spec for spec in specs}


GENERATION_METRICS: dict[str, Metric] = _specs(
    Metric("MMD", distribution.mmd_rbf, "lower",
               "squared MMD, RBF kernel with bandwidth from the real data, unbiased estimator"),
    Metric("GFD", distribution.frechet_distance, "lower", "Gaussian Fréchet distance of the profile vectors"),
    Metric("KL", marginal.kl_pooled, "lower",
               "KL(generated || real) of pooled values, 199-bin histograms (200 edges over the joint range), bins "
               "empty on either side dropped (the EnergyDiff code's rule)"),
    Metric("WD", marginal.wasserstein_pooled, "lower", "1-Wasserstein distance of pooled values"),
    Metric("KS", marginal.ks_pooled, "lower", "two-sample Kolmogorov-Smirnov statistic of pooled values"),
)
"""The unconditional generation table of the EnergyDiff paper (marginals pooled, as there)."""

ALL_METRICS: dict[str, Metric] = {
    **GENERATION_METRICS,
    **_specs(
        Metric("MMD_paper", distribution.mmd_rbf_paper, "lower",
                   "MMD of the EnergyDiff code (bandwidth from each call's real profiles, diagonal kernel terms "
                   "kept), for comparison with the paper"),
        Metric("MMD_p", distribution.mmd_p_value, "higher",
                   "p-value of the MMD permutation test (1000 permutations); higher = harder to tell apart"),
        Metric("KL_step", marginal.kl_per_step, "lower",
                   "KL(generated || real) per time step (199 bins over each step's joint range), averaged"),
        Metric("WD_step", marginal.wasserstein_per_step, "lower", "1-Wasserstein distance per time step, averaged"),
        Metric("KS_step", marginal.ks_per_step, "lower", "KS statistic per time step, averaged"),
        Metric("CRPS", probabilistic.crps_ensemble, "lower",
                   "mean ensemble CRPS (fair estimator) over scored entries"),
        Metric("CovErr90", probabilistic.coverage_error, "lower",
                   "|coverage of the central 90% ensemble interval - 0.9|"),
        Metric("PeakCRPS", energy.peak_load_error, "lower", "CRPS of per-profile maxima + CRPS of minima"),
        Metric("PeakAE", energy.peak_abs_error, "lower", "mean absolute error of per-profile maxima"),
        Metric("RMSE", point.rmse, "lower", "root mean squared error"),
        Metric("MAE", point.mae, "lower", "mean absolute error"),
        Metric("MAPE", point.mape, "lower",
                   "mean absolute percentage error (fraction), |y| < 1e-3 excluded (|y| = 1e-3 kept)"),
        Metric("Accuracy", classification.accuracy, "higher", "fraction of correct binary labels"),
        Metric("Precision", classification.precision, "higher", "TP / (TP + FP), 0 if no predicted positive"),
        Metric("Recall", classification.recall, "higher", "TP / (TP + FN), 0 if no actual positive"),
        Metric("F1", classification.f1, "higher", "harmonic mean of precision and recall"),
        Metric("AUROC", classification.auroc, "higher",
                   "area under the ROC curve of the anomaly scores (threshold-free; 0.5 = chance)"),
    ),
}
"""Every named metric; ``interval_coverage`` itself has no better direction and is ranked as ``CovErr90``."""


def goal(name: str) -> str:
    """``"lower"``, ``"higher"`` (is better) or ``"ignore"`` for the metric ``name``; ``KeyError`` naming the
    known metrics."""
    try:
        return ALL_METRICS[name].goal
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(ALL_METRICS)}") from None
