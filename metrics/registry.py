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

DIRECTIONS = ("lower", "higher")


@dataclass(frozen=True)
class MetricSpec:
    """A metric as tabulated: its name, function, direction (``"lower"`` or ``"higher"`` is better) and a
    one-line description."""

    name: str
    fn: Callable[..., float]
    direction: str
    description: str

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction must be 'lower' or 'higher', got {self.direction!r}")


def _specs(*specs: MetricSpec) -> dict[str, MetricSpec]:
    return {spec.name: spec for spec in specs}


GENERATION_METRICS: dict[str, MetricSpec] = _specs(
    MetricSpec("MMD", distribution.mmd_rbf, "lower",
               "squared MMD, RBF kernel with bandwidth from the real data, unbiased estimator"),
    MetricSpec("GFD", distribution.frechet_distance, "lower", "Gaussian Fréchet distance of the profile vectors"),
    MetricSpec("KL", marginal.kl_pooled, "lower",
               "KL(generated || real) of pooled values, 199-bin histograms (200 edges over the joint range), bins "
               "empty on either side dropped (the EnergyDiff code's rule)"),
    MetricSpec("WD", marginal.wasserstein_pooled, "lower", "1-Wasserstein distance of pooled values"),
    MetricSpec("KS", marginal.ks_pooled, "lower", "two-sample Kolmogorov-Smirnov statistic of pooled values"),
)
"""The unconditional generation table of the EnergyDiff paper (marginals pooled, as there)."""

ALL_METRICS: dict[str, MetricSpec] = {
    **GENERATION_METRICS,
    **_specs(
        MetricSpec("MMD_paper", distribution.mmd_rbf_paper, "lower",
                   "MMD of the EnergyDiff code (bandwidth from each call's real profiles, diagonal kernel terms "
                   "kept), for comparison with the paper"),
        MetricSpec("MMD_p", distribution.mmd_p_value, "higher",
                   "p-value of the MMD permutation test (1000 permutations); higher = harder to tell apart"),
        MetricSpec("KL_step", marginal.kl_per_step, "lower",
                   "KL(generated || real) per time step (199 bins over each step's joint range), averaged"),
        MetricSpec("WD_step", marginal.wasserstein_per_step, "lower", "1-Wasserstein distance per time step, averaged"),
        MetricSpec("KS_step", marginal.ks_per_step, "lower", "KS statistic per time step, averaged"),
        MetricSpec("CRPS", probabilistic.crps_ensemble, "lower",
                   "mean ensemble CRPS (fair estimator) over scored entries"),
        MetricSpec("CovErr90", probabilistic.coverage_error, "lower",
                   "|coverage of the central 90% ensemble interval - 0.9|"),
        MetricSpec("PeakCRPS", energy.peak_load_error, "lower", "CRPS of per-profile maxima + CRPS of minima"),
        MetricSpec("PeakAE", energy.peak_abs_error, "lower", "mean absolute error of per-profile maxima"),
        MetricSpec("RMSE", point.rmse, "lower", "root mean squared error"),
        MetricSpec("MAE", point.mae, "lower", "mean absolute error"),
        MetricSpec("MAPE", point.mape, "lower",
                   "mean absolute percentage error (fraction), |y| < 1e-3 excluded (|y| = 1e-3 kept)"),
        MetricSpec("Accuracy", classification.accuracy, "higher", "fraction of correct binary labels"),
        MetricSpec("Precision", classification.precision, "higher", "TP / (TP + FP), 0 if no predicted positive"),
        MetricSpec("Recall", classification.recall, "higher", "TP / (TP + FN), 0 if no actual positive"),
        MetricSpec("F1", classification.f1, "higher", "harmonic mean of precision and recall"),
        MetricSpec("AUROC", classification.auroc, "higher",
                   "area under the ROC curve of the anomaly scores (threshold-free; 0.5 = chance)"),
    ),
}
"""Every named metric; ``interval_coverage`` itself has no better direction and is ranked as ``CovErr90``."""


def direction(name: str) -> str:
    """``"lower"`` or ``"higher"`` (is better) for the metric ``name``; ``KeyError`` naming the known metrics."""
    try:
        return ALL_METRICS[name].direction
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(ALL_METRICS)}") from None
