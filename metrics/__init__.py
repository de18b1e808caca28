"""Pure metric functions of meterbench, each documented with its formula and goal.

Modules: ``distribution`` (MMD, its permutation test, Gaussian Fréchet distance), ``marginal`` (KL,
Wasserstein, KS; pooled and per time step), ``probabilistic`` (CRPS, interval coverage), ``energy`` (peak-load
errors, peak and mean RMSE), ``point`` (RMSE, MSE, MAE, MAPE), ``classification`` (accuracy, precision, recall,
F1, AUROC), ``privacy`` (distance to the closest training record, memorisation), ``utility`` (train on
synthetic, test on real), ``bootstrap`` (repeated-subsample mean ± std, ddof = 1) and ``registry``
(:data:`METRICS`: every named metric with its goal, range and what it needs, as the tables use them).

Every metric function has one signature, ``fn(real, pred, *, mask=None, ...)``: the real data first, the
model's output second (generated profiles, an ensemble, a point prediction, labels or scores), then keyword
arguments. Every metric raises :class:`MetricInputError` (a ``ValueError``, defined in ``errors``) on input it
cannot score: bad shapes or arguments, NaN, infinite values, or values large enough to overflow float64.
"""

from metrics.bootstrap import bootstrap
from metrics.classification import accuracy, auroc, f1, precision, recall
from metrics.distribution import (
    frechet_distance,
    mmd_p_value,
    mmd_pass,
    mmd_permutation_test,
    mmd_rbf,
    mmd_rbf_paper,
    rbf_bandwidth,
)
from metrics.energy import mean_rmse, peak_abs_error, peak_load_error, peak_load_error_sets, peak_rmse
from metrics.errors import MAX_ABS_VALUE, MetricInputError
from metrics.marginal import (
    kl_per_step,
    kl_pooled,
    ks_per_step,
    ks_pooled,
    wasserstein_per_step,
    wasserstein_pooled,
)
from metrics.point import mae, mape, mse, rmse
from metrics.privacy import dcr_ratio, distance_to_closest_record, memorisation_rate
from metrics.probabilistic import (
    coverage_error,
    crps_between_ensembles,
    crps_ensemble,
    crps_sets,
    interval_coverage,
)
from metrics.registry import GENERATION_METRICS, METRICS, Metric, goal, register_metric
from metrics.utility import tstr_class_ratio, tstr_ratio

__all__ = [
    "GENERATION_METRICS",
    "MAX_ABS_VALUE",
    "METRICS",
    "MetricInputError",
    "Metric",
    "accuracy",
    "auroc",
    "bootstrap",
    "coverage_error",
    "crps_between_ensembles",
    "crps_ensemble",
    "crps_sets",
    "dcr_ratio",
    "distance_to_closest_record",
    "goal",
    "f1",
    "frechet_distance",
    "interval_coverage",
    "kl_per_step",
    "kl_pooled",
    "ks_per_step",
    "ks_pooled",
    "mae",
    "mape",
    "mean_rmse",
    "memorisation_rate",
    "mmd_p_value",
    "mmd_pass",
    "mmd_permutation_test",
    "mmd_rbf",
    "mmd_rbf_paper",
    "mse",
    "peak_abs_error",
    "peak_load_error",
    "peak_load_error_sets",
    "peak_rmse",
    "precision",
    "rbf_bandwidth",
    "recall",
    "register_metric",
    "rmse",
    "tstr_class_ratio",
    "tstr_ratio",
    "wasserstein_per_step",
    "wasserstein_pooled",
]
