"""Every metric refuses input it cannot score with the named :class:`metrics.MetricInputError`.

Three corruptions of each array argument: values scaled by 1e200 (finite, but their squares overflow float64),
one +inf and one NaN. A metric must raise, never return a NaN, a plausible-looking number or a linear-algebra
error. Finite values below the bound that still overflow a metric's intermediate results raise too.
"""

from __future__ import annotations

import numpy as np
import pytest

import metrics
from metrics import MAX_ABS_VALUE, MetricInputError

_rng = np.random.default_rng(0)
GEN, REAL = _rng.normal(size=(8, 4)), _rng.normal(0.3, 1.0, size=(9, 4))
OBS, ENS = _rng.normal(size=(3, 4)), _rng.normal(size=(5, 3, 4))
Y_TRUE, Y_PRED = _rng.random(10) + 0.5, _rng.random(10) + 0.5
LABELS_TRUE = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
LABELS_PRED = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
SCORES = np.array([0.9, 0.4, 0.3, 0.8, 0.1, 0.5])

# name -> (function, positional arguments, keyword arguments, positions of the array arguments to corrupt)
CASES = {
    "rbf_bandwidth": (metrics.rbf_bandwidth, (REAL,), {}, (0,)),
    "mmd_rbf": (metrics.mmd_rbf, (REAL, GEN), {"bandwidth": 2.0}, (0, 1)),
    "mmd_rbf_paper": (metrics.mmd_rbf_paper, (REAL, GEN), {}, (0, 1)),
    "mmd_permutation_test": (metrics.mmd_permutation_test, (REAL, GEN), {"bandwidth": 2.0, "n_permutations": 10},
                             (0, 1)),
    "mmd_p_value": (metrics.mmd_p_value, (REAL, GEN), {"bandwidth": 2.0, "n_permutations": 10}, (0, 1)),
    "mmd_pass": (metrics.mmd_pass, (REAL, GEN), {"bandwidth": 2.0, "n_permutations": 10}, (0, 1)),
    "frechet_distance": (metrics.frechet_distance, (REAL, GEN), {}, (0, 1)),
    "kl_pooled": (metrics.kl_pooled, (REAL, GEN), {}, (0, 1)),
    "kl_pooled_float64": (metrics.kl_pooled, (REAL, GEN), {"round_float32": False}, (0, 1)),
    "kl_per_step": (metrics.kl_per_step, (REAL, GEN), {"n_edges": 4}, (0, 1)),  # few rows: coarse bins
    "wasserstein_pooled": (metrics.wasserstein_pooled, (REAL, GEN), {}, (0, 1)),
    "wasserstein_per_step": (metrics.wasserstein_per_step, (REAL, GEN), {}, (0, 1)),
    "ks_pooled": (metrics.ks_pooled, (REAL, GEN), {}, (0, 1)),
    "ks_per_step": (metrics.ks_per_step, (REAL, GEN), {}, (0, 1)),
    "crps_ensemble": (metrics.crps_ensemble, (OBS, ENS), {}, (0, 1)),
    "crps_ensemble_nrg": (metrics.crps_ensemble, (OBS, ENS), {"estimator": "nrg"}, (0, 1)),
    "crps_between_ensembles": (metrics.crps_between_ensembles, (REAL, GEN), {}, (0, 1)),
    "crps_sets": (metrics.crps_sets, (REAL, GEN), {}, (0, 1)),
    "interval_coverage": (metrics.interval_coverage, (OBS, ENS), {}, (0, 1)),
    "coverage_error": (metrics.coverage_error, (OBS, ENS), {}, (0, 1)),
    "peak_load_error": (metrics.peak_load_error, (OBS, ENS), {}, (0, 1)),
    "peak_load_error_sets": (metrics.peak_load_error_sets, (REAL, GEN), {}, (0, 1)),
    "peak_abs_error": (metrics.peak_abs_error, (OBS, ENS[0]), {}, (0, 1)),
    "peak_rmse": (metrics.peak_rmse, (OBS, ENS[0]), {}, (0, 1)),
    "mean_rmse": (metrics.mean_rmse, (OBS, ENS[0]), {}, (0, 1)),
    "rmse": (metrics.rmse, (Y_TRUE, Y_PRED), {}, (0, 1)),
    "mse": (metrics.mse, (Y_TRUE, Y_PRED), {}, (0, 1)),
    "mae": (metrics.mae, (Y_TRUE, Y_PRED), {}, (0, 1)),
    "mape": (metrics.mape, (Y_TRUE, Y_PRED), {}, (0, 1)),
    "accuracy": (metrics.accuracy, (LABELS_TRUE, LABELS_PRED), {}, (0, 1)),
    "precision": (metrics.precision, (LABELS_TRUE, LABELS_PRED), {}, (0, 1)),
    "recall": (metrics.recall, (LABELS_TRUE, LABELS_PRED), {}, (0, 1)),
    "f1": (metrics.f1, (LABELS_TRUE, LABELS_PRED), {}, (0, 1)),
    "auroc": (metrics.auroc, (LABELS_TRUE, SCORES), {}, (0, 1)),
    "bootstrap": (metrics.bootstrap, (metrics.wasserstein_pooled, REAL, GEN), {"n_repeats": 2}, (1, 2)),
    "distance_to_closest_record": (metrics.distance_to_closest_record, (REAL, GEN), {}, (0, 1)),
    "dcr_ratio": (metrics.dcr_ratio, (REAL, GEN), {"train": GEN[:5]}, (0, 1)),
    "memorisation_rate": (metrics.memorisation_rate, (REAL, GEN), {"train": GEN[:5]}, (0, 1)),
    "tstr_ratio": (metrics.tstr_ratio, (REAL, GEN), {"train": GEN[:5]}, (0, 1)),
    "tstr_class_ratio": (metrics.tstr_class_ratio, (REAL, GEN),
                         {"real_labels": np.arange(len(REAL)) % 2, "pred_labels": np.arange(len(GEN)) % 2,
                          "train": GEN, "train_labels": np.arange(len(GEN)) % 2}, (0, 1)),
}


def _scale(arr: np.ndarray) -> np.ndarray:
    return arr * 1e200


def _one(value: float):
    def corrupt(arr: np.ndarray) -> np.ndarray:
        out = np.array(arr, dtype=float)
        out.reshape(-1)[1] = value
        return out
    return corrupt


CORRUPTIONS = {"x1e200": _scale, "inf": _one(np.inf), "-inf": _one(-np.inf), "nan": _one(np.nan)}


def test_cases_cover_every_exported_metric():
    not_metrics = {"goal", "register_metric", "Metric", "MetricInputError"}
    exported = {getattr(metrics, n) for n in metrics.__all__ if callable(getattr(metrics, n))} - {
        getattr(metrics, n) for n in not_metrics}
    assert exported == {case[0] for case in CASES.values()}


@pytest.mark.parametrize("name", list(CASES))
def test_clean_input_is_scored(name):
    fn, args, kwargs, _ = CASES[name]
    result = fn(*args, **kwargs)
    assert np.all(np.isfinite(result)), name


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("name", list(CASES))
def test_bad_values_raise_the_named_error(name, corruption):
    fn, args, kwargs, positions = CASES[name]
    for pos in positions:
        bad = list(args)
        bad[pos] = CORRUPTIONS[corruption](args[pos])
        with pytest.raises(MetricInputError):
            fn(*bad, **kwargs)


def test_metric_input_error_is_a_value_error():
    # callers that catch ValueError (e.g. to report an undefined metric as a failed cell) keep working
    assert issubclass(MetricInputError, ValueError)


def test_finite_values_that_overflow_an_intermediate_raise():
    # below the input bound, but the covariance products of the Fréchet distance grow like the fourth power
    with pytest.raises(MetricInputError, match="overflow"):
        metrics.frechet_distance(REAL * 1e100, GEN * 1e100)


def test_values_up_to_the_bound_are_scored():
    # the bound leaves room for squares and their sums: these metrics stay finite right below it
    big_true, big_pred = Y_TRUE * 0.5 * MAX_ABS_VALUE, -Y_PRED * 0.5 * MAX_ABS_VALUE
    assert np.isfinite(metrics.rmse(big_true, big_pred))
    assert np.isfinite(metrics.mmd_rbf_paper(REAL * 1e149, GEN * 1e149))
    assert metrics.mmd_rbf_paper(REAL * 1e149, GEN * 1e149) == pytest.approx(metrics.mmd_rbf_paper(REAL, GEN),
                                                                            rel=1e-9)
    with pytest.raises(MetricInputError, match="overflow"):
        metrics.rmse(Y_TRUE * 2 * MAX_ABS_VALUE, Y_PRED)


def test_masked_out_entries_may_hold_anything():
    # only scored entries are checked: padding or hidden steps may be NaN (or huge)
    mask = np.ones(OBS.shape, dtype=bool)
    mask[0, 0] = False
    obs, ens = OBS.copy(), ENS.copy()
    obs[0, 0], ens[:, 0, 0] = np.nan, 1e300
    assert np.isfinite(metrics.crps_ensemble(obs, ens, mask=mask))
    assert np.isfinite(metrics.peak_load_error(obs, ens, mask=mask))
    assert np.isfinite(metrics.rmse(obs, ens[0], mask=mask))
    assert np.isfinite(metrics.peak_rmse(obs, ens[0], mask=mask))
    assert np.isfinite(metrics.mean_rmse(obs, ens[0], mask=mask))
