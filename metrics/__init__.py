"""Pure metric functions of meterbench, each documented with its formula and direction.

Modules: ``distribution`` (MMD, its permutation test, Gaussian Fréchet distance), ``marginal`` (KL,
Wasserstein, KS; pooled and per time step), ``probabilistic`` (CRPS, interval coverage), ``energy`` (peak-load
errors), ``point`` (RMSE, MAE, MAPE), ``classification`` (accuracy, precision, recall, F1, AUROC), ``bootstrap``
(repeated-subsample mean ± std, ddof = 1) and ``registry`` (names and directions used by the tables). Every metric
raises :class:`MetricInputError` (a ``ValueError``, defined in ``errors``) on input it cannot score: bad shapes or
arguments, NaN, infinite values, or values large enough to overflow float64.
"""

from metrics.bootstrap import bootstrap
from metrics.classification import accuracy, auroc, f1, precision, recall
from metrics.distribution import (
    frechet_distance,
    mmd_p_value,
    mmd_permutation_test,
    mmd_rbf,
    mmd_rbf_paper,
    rbf_bandwidth,
)
from metrics.energy import peak_abs_error, peak_load_error, peak_load_error_sets
from metrics.errors import MAX_ABS_VALUE, MetricInputError
from metrics.marginal import (
    kl_per_step,
    kl_pooled,
    ks_per_step,
    ks_pooled,
    wasserstein_per_step,
    wasserstein_pooled,
)
from metrics.point import mae, mape, rmse
from metrics.probabilistic import (
    coverage_error,
    crps_between_ensembles,
    crps_ensemble,
    crps_sets,
    interval_coverage,
)
from metrics.registry import ALL_METRICS, GENERATION_METRICS, Metric, goal

__all__ = [
    "ALL_METRICS",
    "GENERATION_METRICS",
    "MAX_ABS_VALUE",
    "MetricInputError",
    "Metric",
    "accuracy",
    "auroc",
    "bootstrap",
    "coverage_error",
    "crps_between_ensembles",
    "crps_ensemble",
    "crps_sets",
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
    "mmd_p_value",
    "mmd_permutation_test",
    "mmd_rbf",
    "mmd_rbf_paper",
    "peak_abs_error",
    "peak_load_error",
    "peak_load_error_sets",
    "precision",
    "rbf_bandwidth",
    "recall",
    "rmse",
    "wasserstein_per_step",
    "wasserstein_pooled",
]
