"""The batched set-metric kernels (metrics/sets.py) against independent references, and the resampled scoring
(bootstrap_set_metrics) against the one-repeat-at-a-time bootstrap with the same draws."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy import stats

import metrics
from metrics import METRICS
from metrics.bootstrap import bootstrap, bootstrap_set_metrics, subsample_indices, summarise
from metrics.errors import MetricInputError
from metrics.sets import SetPair, marginal_stats, metric_device, resolve_device, sort_joint


def _profiles(n: int, length: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, length, endpoint=False)
    x = rng.uniform(0.2, 0.8, (n, 1)) * np.sin(t + rng.uniform(0, 6, (n, 1))) + shift
    return (x + 0.1 * rng.standard_normal((n, length))).astype(np.float32)


@pytest.fixture(scope="module")
def sets():
    return _profiles(60, 24, 1), _profiles(50, 24, 2, shift=0.05)


def test_subsample_indices_are_the_draws_of_the_documented_stream():
    pred_index, real_index = subsample_indices(9, 7, n_repeats=3, frac=0.5, seed=4)
    rng = np.random.default_rng(4)
    for p, r in zip(pred_index, real_index):
        np.testing.assert_array_equal(p, rng.choice(7, size=3, replace=False))
        np.testing.assert_array_equal(r, rng.choice(9, size=4, replace=False))


def test_resampled_set_metrics_equal_the_one_at_a_time_bootstrap(sets):
    real, pred = sets
    bandwidth = metrics.rbf_bandwidth(real)
    names = ["MMD", "MMD_paper", "GFD", "KL", "WD", "KS", "KL_step", "MMD_p"]
    calls = {n: (METRICS[n].fn, {"bandwidth": bandwidth} if n in ("MMD", "MMD_p") else {}) for n in names}
    values = bootstrap_set_metrics(calls, real, pred, n_repeats=4, frac=0.6, seed=3)
    for name, (fn, kwargs) in calls.items():
        mean, std = bootstrap(lambda r, p, fn=fn, kwargs=kwargs: fn(r, p, **kwargs), real, pred, n_repeats=4,
                              frac=0.6, seed=3)
        assert values[name].shape == (4,)
        assert summarise(values[name]) == pytest.approx((mean, std), rel=1e-9, abs=1e-10), name


def test_a_bootstrap_repeat_equals_the_metric_on_its_subsets(sets):
    real, pred = sets
    values = bootstrap_set_metrics({"GFD": (metrics.frechet_distance, {}), "KS": (metrics.ks_pooled, {})},
                                   real, pred, n_repeats=3, frac=0.5, seed=11)
    pred_index, real_index = subsample_indices(len(real), len(pred), n_repeats=3, frac=0.5, seed=11)
    for r in range(3):
        sub_real, sub_pred = real[real_index[r]], pred[pred_index[r]]
        assert values["GFD"][r] == pytest.approx(_frechet_scipy(sub_real, sub_pred), rel=1e-8)
        assert values["KS"][r] == pytest.approx(stats.ks_2samp(sub_pred.ravel(), sub_real.ravel()).statistic,
                                                rel=1e-12)


def _frechet_scipy(real: np.ndarray, pred: np.ndarray) -> float:
    """The EnergyDiff convention with scipy's general matrix square root."""
    real, pred = real.astype(np.float64), pred.astype(np.float64)
    c_x = np.cov(pred, rowvar=False) + 1e-6 * np.eye(real.shape[1])
    c_y = np.cov(real, rowvar=False) + 1e-6 * np.eye(real.shape[1])
    root = scipy.linalg.sqrtm(c_x @ c_y).real
    diff = pred.mean(0) - real.mean(0)
    return float(diff @ diff + np.trace(c_x) + np.trace(c_y) - 2 * np.trace(root))


def test_frechet_falls_back_when_the_cholesky_factorisation_fails():
    # one generated profile repeated: C_x = 1e-6 I is positive definite, so give the kernel a singular one
    pair = SetPair(_profiles(5, 3, 0).astype(np.float64), _profiles(5, 3, 1).astype(np.float64))
    from metrics.sets import _trace_sqrt_product

    c_x = torch.tensor([[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]], dtype=torch.float64)
    c_y = torch.eye(3, dtype=torch.float64)[None] * 4.0
    # C_x has eigenvalues 2, 2, 0; C_x C_y = 4 C_x: tr sqrt = 2 (sqrt(2) + sqrt(2))
    assert float(_trace_sqrt_product(c_x, c_y)[0]) == pytest.approx(4 * np.sqrt(2), rel=1e-9)
    assert pair.frechet(*pair.all_rows()).shape == (1,)


def test_marginal_stats_match_scipy_and_numpy_on_ties():
    rng = np.random.default_rng(5)
    pred = rng.integers(0, 6, size=(40, 3)).astype(np.float64)  # many ties
    real = rng.integers(1, 8, size=(30, 3)).astype(np.float64)
    values, from_pred = sort_joint(torch.from_numpy(pred), torch.from_numpy(real))
    kl, wd, ks = (t.numpy() for t in marginal_stats(values, from_pred))
    for t in range(3):
        assert ks[t] == pytest.approx(stats.ks_2samp(pred[:, t], real[:, t]).statistic, abs=1e-15)
        assert wd[t] == pytest.approx(stats.wasserstein_distance(pred[:, t], real[:, t]), rel=1e-12)
        edges = np.linspace(min(pred[:, t].min(), real[:, t].min()), max(pred[:, t].max(), real[:, t].max()), 200)
        p, q = np.histogram(pred[:, t], edges)[0], np.histogram(real[:, t], edges)[0]
        keep = (p > 0) & (q > 0)
        assert kl[t] == pytest.approx(stats.entropy(p[keep], q[keep]), rel=1e-12)


def test_chunked_batches_give_the_same_values(sets, monkeypatch):
    import metrics.sets as module

    real, pred = sets
    calls = {"GFD": (metrics.frechet_distance, {}), "WD": (metrics.wasserstein_pooled, {})}
    whole = bootstrap_set_metrics(calls, real, pred, n_repeats=5, seed=2)
    monkeypatch.setattr(module, "_MAX_BATCH_ELEMENTS", 1)  # one repeat per chunk
    chunked = bootstrap_set_metrics(calls, real, pred, n_repeats=5, seed=2)
    for name in calls:
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-12)


def test_metric_device_scopes_where_the_kernels_run(sets):
    assert resolve_device(None) == torch.device("cpu")
    with metric_device("cpu") as device:
        assert device == torch.device("cpu") and resolve_device(None) == device
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_values_equal_cpu_values(sets):
    real, pred = sets
    bandwidth = metrics.rbf_bandwidth(real)
    calls = {n: (METRICS[n].fn, {"bandwidth": bandwidth} if n == "MMD" else {})
             for n in ("MMD", "MMD_paper", "GFD", "KL", "WD", "KS")}
    cpu = bootstrap_set_metrics(calls, real, pred, seed=1, device="cpu")
    gpu = bootstrap_set_metrics(calls, real, pred, seed=1, device="cuda")
    for name in calls:
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=1e-9, atol=1e-12)


def test_resampled_scoring_refuses_bad_input(sets):
    real, pred = sets
    bad = pred.copy()
    bad[0, 0] = np.nan
    with pytest.raises(MetricInputError, match="non-finite"):
        bootstrap_set_metrics({"KS": (metrics.ks_pooled, {})}, real, bad)
    with pytest.raises(MetricInputError, match="n_repeats"):
        bootstrap_set_metrics({"KS": (metrics.ks_pooled, {})}, real, pred, n_repeats=1)
    with pytest.raises(MetricInputError, match="differ in length"):
        bootstrap_set_metrics({"GFD": (metrics.frechet_distance, {})}, real[:, :5], pred)
    # subsets of one row: the single-call metric's own check speaks
    with pytest.raises(MetricInputError, match="at least 2"):
        bootstrap_set_metrics({"MMD": (metrics.mmd_rbf, {"bandwidth": 1.0})}, real[:2], pred[:2], frac=0.5)


def test_value_row_sort_orders_negatives_zeros_and_ties():
    from metrics.sets import _sort_with_rows

    values = np.array([[0.5, -0.0, -2.0, 3.0], [0.0, -2.0, 1e-30, -1e30], [3.0, 3.0, -0.5, 0.5]], dtype=np.float32)
    sorted_values, rows = _sort_with_rows(values)
    np.testing.assert_array_equal(sorted_values, np.sort(values.reshape(-1)))
    # each value sits with a row that holds it, and every row keeps its four entries
    for v, r in zip(sorted_values, rows):
        assert v in values[r]
    assert np.bincount(rows).tolist() == [4, 4, 4]
