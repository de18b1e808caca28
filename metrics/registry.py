"""Every named metric of the tables, described once: function, goal (is a lower or a higher value better, or
neither), range of possible values and what its prediction argument is.

All metric functions share one signature, ``fn(real, pred, *, mask=None, ...)``: the real data first, the
model's output second, then keyword arguments. What ``pred`` is depends on the family (:attr:`Metric.needs`):

* ``"samples"`` - distribution / marginal metrics: ``real`` [m, T] real profiles, ``pred`` [n, T] generated ones
  (unpaired sets). ``MMD``, ``MMD_p`` and ``MMD_pass`` also take ``bandwidth=`` (from
  :func:`metrics.distribution.rbf_bandwidth` on the real data, once per dataset); ``MMD_paper`` takes none: like
  the EnergyDiff code it derives its bandwidth from the real profiles of each call. Asymmetric metrics keep
  their meaning whatever the argument order: ``KL`` is KL(generated || real) as in the EnergyDiff code.
* ``"ensemble"`` - ``real`` [N, T], ``pred`` [S, N, T] (S draws per real profile), ``mask`` [N, T] of the scored
  entries.
* ``"point"`` - ``real`` and ``pred`` of one shape (one prediction per real value), ``mask`` of the scored entries.
* ``"labels"`` / ``"scores"`` - ``real`` [N] true binary labels, ``pred`` [N] predicted labels or anomaly scores.

The generation metrics follow the EnergyDiff code where its tables are concerned ("KL", "WD", "KS", "GFD",
"MMD_paper"); ``tests/test_paper_fixtures.py`` checks them against that code's values. Every metric raises
:class:`metrics.errors.MetricInputError` on input it cannot score.

The registry holds the task-specific metrics too (the conditional task's ``MMD_pass``, ``PeakRMSE``,
``MeanRMSE``; forecasting's ``MSE`` and ``MAPE_scaled``; imputation's ``Cov90``), so that every metric a table
shows has its goal here: the tables rank by :attr:`Metric.goal` and never rank a metric whose goal is ``ignore``.
"""

from __future__ import annotations

from bench.api import Metric
from bench.registry import Registry
from metrics import classification, distribution, energy, marginal, point, privacy, probabilistic, utility

METRICS: Registry[Metric] = Registry("metric")
"""Every named metric, by name (``METRICS["KL"].goal``); an unknown name is a ``KeyError`` listing the known."""


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` under its name; returns it."""
    return METRICS.register(metric.name, metric)


GENERATION_METRICS: dict[str, Metric] = {m.name: register_metric(m) for m in (
    Metric("MMD", distribution.mmd_rbf, "lower",
           "squared MMD, RBF kernel with bandwidth from the real data, unbiased estimator", (-2.0, 2.0)),
    Metric("GFD", distribution.frechet_distance, "lower", "Gaussian Fréchet distance of the profile vectors"),
    Metric("KL", marginal.kl_pooled, "lower",
           "KL(generated || real) of pooled values, 199-bin histograms (200 edges over the joint range), bins "
           "empty on either side dropped (the EnergyDiff code's rule)"),
    Metric("WD", marginal.wasserstein_pooled, "lower", "1-Wasserstein distance of pooled values"),
    Metric("KS", marginal.ks_pooled, "lower", "two-sample Kolmogorov-Smirnov statistic of pooled values",
           (0.0, 1.0)),
)}
"""The unconditional generation table of the EnergyDiff paper (marginals pooled, as there), in its column order."""

for _metric in (
    # distributions of generated profiles
    Metric("MMD_paper", distribution.mmd_rbf_paper, "lower",
           "MMD of the EnergyDiff code (bandwidth from each call's real profiles, diagonal kernel terms kept), "
           "for comparison with the paper", (0.0, 4.0)),
    Metric("MMD_p", distribution.mmd_p_value, "higher",
           "p-value of the MMD permutation test (1000 permutations); higher = harder to tell apart", (0.0, 1.0)),
    Metric("MMD_pass", distribution.mmd_pass, "higher",
           "share of condition groups whose MMD permutation test has p > alpha (cannot tell generated from real)",
           (0.0, 1.0)),
    Metric("KL_step", marginal.kl_per_step, "lower",
           "KL(generated || real) per time step (199 bins over each step's joint range), averaged"),
    Metric("WD_step", marginal.wasserstein_per_step, "lower", "1-Wasserstein distance per time step, averaged"),
    Metric("KS_step", marginal.ks_per_step, "lower", "KS statistic per time step, averaged", (0.0, 1.0)),
    # privacy of generated profiles (not ranked: a diagnostic beside quality)
    Metric("DCR_ratio", privacy.dcr_ratio, "ignore",
           "median distance of generated profiles to their closest training profile over that of real held-out "
           "ones (1 = like unseen data, 0 = copies)", (0.0, float("inf"))),
    Metric("Memorised", privacy.memorisation_rate, "ignore",
           "share of generated profiles closer to the training set than the 5 % quantile of held-out profiles "
           "(0.05 = like unseen data, 1 = copies)", (0.0, 1.0)),
    Metric("TSTR", utility.tstr_ratio, "lower",
           "train on synthetic, test on real: MAE of a fixed ridge forecaster (evening from the rest of the day) "
           "trained on generated profiles over the same trained on real ones (about 1 = as useful)",
           (0.0, float("inf"))),
    Metric("TSTR_class", utility.tstr_class_ratio, "lower",
           "train on synthetic, test on real: error rate of a fixed logistic-regression classifier of the condition "
           "(month) trained on generated profiles over the same trained on real ones (about 1 = as useful)",
           (0.0, float("inf"))),
    # ensembles
    Metric("CRPS", probabilistic.crps_ensemble, "lower", "mean ensemble CRPS (fair estimator) over scored entries",
           needs="ensemble"),
    Metric("Cov90", probabilistic.interval_coverage, "ignore",
           "coverage of the central 90% ensemble interval; closer to 0.9 is better (ranked as CovErr90)", (0.0, 1.0),
           needs="ensemble"),
    Metric("CovErr90", probabilistic.coverage_error, "lower",
           "|coverage of the central 90% ensemble interval - 0.9|", (0.0, 0.9), needs="ensemble"),
    Metric("PeakCRPS", energy.peak_load_error, "lower", "CRPS of per-profile maxima + CRPS of minima",
           needs="ensemble"),
    # one prediction per real value
    Metric("PeakAE", energy.peak_abs_error, "lower", "mean absolute error of per-profile maxima", needs="point"),
    Metric("PeakRMSE", energy.peak_rmse, "lower",
           "RMSE of per-profile maxima (kW), generated under the real profile's peak as a target", needs="point"),
    Metric("MeanRMSE", energy.mean_rmse, "lower",
           "RMSE of per-profile means (kW), generated under the real profile's mean as a target", needs="point"),
    Metric("RMSE", point.rmse, "lower", "root mean squared error", needs="point"),
    Metric("MSE", point.mse, "lower", "mean squared error (squared units: kW^2)", needs="point"),
    Metric("MAE", point.mae, "lower", "mean absolute error", needs="point"),
    Metric("MAPE", point.mape, "lower",
           "mean absolute percentage error (fraction), |y| < 1e-3 excluded (|y| = 1e-3 kept)", needs="point"),
    Metric("MAPE_scaled", point.mape, "lower",
           "MAPE (fraction) in the task's [-1, 1] min-max scaled space, |y| < 1e-3 excluded (scale-dependent)",
           needs="point"),
    # classification
    Metric("Accuracy", classification.accuracy, "higher", "fraction of correct binary labels", (0.0, 1.0),
           needs="labels"),
    Metric("Precision", classification.precision, "higher", "TP / (TP + FP), 0 if no predicted positive",
           (0.0, 1.0), needs="labels"),
    Metric("Recall", classification.recall, "higher", "TP / (TP + FN), 0 if no actual positive", (0.0, 1.0),
           needs="labels"),
    Metric("F1", classification.f1, "higher", "harmonic mean of precision and recall", (0.0, 1.0), needs="labels"),
    Metric("AUROC", classification.auroc, "higher",
           "area under the ROC curve of the anomaly scores (threshold-free; 0.5 = chance)", (0.0, 1.0),
           needs="scores"),
):
    register_metric(_metric)
del _metric


def goal(name: str) -> str:
    """``"lower"``, ``"higher"`` (is better) or ``"ignore"`` for the metric ``name``; a ``KeyError`` naming the
    known metrics otherwise."""
    return METRICS.get(name).goal
