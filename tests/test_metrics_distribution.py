"""MMD, its permutation test and the Gaussian Fréchet distance against independent references."""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
import pytest
from scipy import linalg, stats

from metrics import (
    MetricInputError,
    frechet_distance,
    mmd_p_value,
    mmd_pass,
    mmd_permutation_test,
    mmd_rbf,
    mmd_rbf_paper,
    rbf_bandwidth,
)
from metrics.sets import squared_distances


def _sq(a, b) -> float:
    return sum((ai - bi) ** 2 for ai, bi in zip(a, b))


def _k(a, b, bw) -> float:
    return math.exp(-_sq(a, b) / bw)


def _mmd_loops(x, y, bw, keep_diagonal: bool) -> float:
    """Pure-Python double loops over lists: the textbook estimators."""
    x, y = x.tolist(), y.tolist()
    n, m = len(x), len(y)
    sxx = sum(_k(x[i], x[j], bw) for i in range(n) for j in range(n) if keep_diagonal or i != j)
    syy = sum(_k(y[i], y[j], bw) for i in range(m) for j in range(m) if keep_diagonal or i != j)
    sxy = sum(_k(a, b, bw) for a in x for b in y)
    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * sxy / (n * m)


@pytest.fixture
def tiny():
    rng = np.random.default_rng(3)
    return rng.normal(size=(5, 3)), rng.normal(0.4, 1.2, size=(7, 3))


def test_bandwidth_is_mean_offdiagonal_squared_distance(tiny):
    _, y = tiny
    rows = y.tolist()
    pairs = [_sq(a, b) for i, a in enumerate(rows) for j, b in enumerate(rows) if i != j]
    assert rbf_bandwidth(y) == pytest.approx(sum(pairs) / len(pairs), rel=1e-12)


def test_bandwidth_rejects_degenerate_real():
    with pytest.raises(ValueError, match="identical"):
        rbf_bandwidth(np.ones((4, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        rbf_bandwidth(np.ones((1, 3)))


def test_mmd_unbiased_matches_double_loop(tiny):
    x, y = tiny
    bw = rbf_bandwidth(y)
    assert mmd_rbf(y, x, bandwidth=bw) == pytest.approx(_mmd_loops(x, y, bw, keep_diagonal=False), abs=1e-13)
    assert mmd_rbf(y, x, bandwidth=0.7) == pytest.approx(_mmd_loops(x, y, 0.7, keep_diagonal=False), abs=1e-13)


def test_mmd_paper_variant_matches_its_formula(tiny):
    x, y = tiny
    bw = rbf_bandwidth(y)  # the code's bandwidth: from the real set y alone
    paper = mmd_rbf_paper(y, x)  # real first, generated second
    assert paper == pytest.approx(_mmd_loops(x, y, bw, keep_diagonal=True), abs=1e-13)
    assert paper == pytest.approx(mmd_rbf(y, x, bandwidth=bw) + 1 / (len(x) - 1) + 1 / (len(y) - 1), abs=1e-13)
    # the bandwidth follows the real argument: swapping the sets changes the kernel, not only the sign conventions
    assert mmd_rbf_paper(x, y) == pytest.approx(_mmd_loops(y, x, rbf_bandwidth(x), keep_diagonal=True), abs=1e-13)


def test_mmd_paper_hand_cases():
    # x = {0, 2}, y = {0, 1}: bandwidth = mean off-diagonal squared distance of y = 1 (pooled it would be 11/6).
    # XX = (2 + 2 e^-4) / 2, YY = (2 + 2 e^-1) / 2, 2 XY / 4 = (1 + 2 e^-1 + e^-4) / 2.
    x, y = np.array([[0.0], [2.0]]), np.array([[0.0], [1.0]])
    assert mmd_rbf_paper(y, x) == pytest.approx(1.5 + 0.5 * math.exp(-4.0), rel=1e-14)
    # n = 1: the code's normaliser n max(n - 1, 1) = 1; XX = 1, YY = 1 + e^-1, 2 XY / 2 = 1 + e^-1
    assert mmd_rbf_paper(y, np.array([[0.0]])) == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(MetricInputError, match="at least 2"):
        mmd_rbf_paper(y[:1], x)
    with pytest.raises(MetricInputError, match="identical"):
        mmd_rbf_paper(np.ones((3, 1)), x)
    assert "bandwidth" not in inspect.signature(mmd_rbf_paper).parameters


def test_unbiased_mmd_below_zero_is_reported_as_it_is():
    # two profiles at distance 1, bandwidth 1, against themselves: XX = YY = k = e^-1, 2 XY / 4 = 1 + k,
    # so MMD_u = 2 k - (1 + k) = e^-1 - 1 < 0
    x = np.array([[0.0], [1.0]])
    assert mmd_rbf(x, x, bandwidth=1.0) == pytest.approx(math.exp(-1.0) - 1.0, rel=1e-14)
    statistic, _ = mmd_permutation_test(x, x, bandwidth=1.0, n_permutations=5)
    assert statistic == pytest.approx(math.exp(-1.0) - 1.0, rel=1e-14)


def test_squared_distances_are_clipped_at_zero():
    # the Gram form leaves round-off below 0 on this seeded case (-1.4e-14 on the diagonal unclipped)
    a = np.random.default_rng(0).normal(3.0, 1.0, size=(6, 4))
    d = squared_distances(torch.from_numpy(a), torch.from_numpy(a.copy())).numpy()
    assert (d >= 0.0).all()
    assert d.min() == 0.0


def test_mmd_float32_input_is_computed_in_float64(tiny):
    x, y = tiny
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    expected = _mmd_loops(x32.astype(np.float64), y32.astype(np.float64), 1.3, keep_diagonal=False)
    assert mmd_rbf(y32, x32, bandwidth=1.3) == pytest.approx(expected, abs=1e-13)


def test_mmd_same_distribution_is_zero_in_expectation():
    values = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
        values.append(mmd_rbf(y, x, bandwidth=6.0))
    values = np.array(values)
    sem = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean()) < 3 * sem
    assert (values < 0).any()


def test_mmd_grows_with_mean_shift():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    bw = rbf_bandwidth(y)
    values = [mmd_rbf(y, x + shift, bandwidth=bw) for shift in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert np.all(np.diff(values) > 0)
    assert values[-1] > 0.1


@pytest.mark.parametrize("real, pred, bandwidth, match", [
    (np.zeros((4, 3)), np.zeros((4, 2)), 1.0, "differ in length"),
    (np.zeros((4, 3)), np.zeros((1, 3)), 1.0, "pred needs at least 2"),
    (np.zeros((4, 3)), np.zeros((4, 3)), 0.0, "bandwidth"),
    (np.zeros(4), np.zeros((4, 1)), 1.0, "real must be a 2-D"),
    (np.zeros((4, 3)), np.full((4, 3), np.nan), 1.0, "pred contains non-finite"),
])
def test_mmd_rejects_bad_input(real, pred, bandwidth, match):
    with pytest.raises(MetricInputError, match=match):
        mmd_rbf(real, pred, bandwidth=bandwidth)


@pytest.mark.parametrize("fn, kwargs", [(mmd_rbf, {"bandwidth": 1.0}), (mmd_rbf_paper, {}), (frechet_distance, {}),
                                        (mmd_p_value, {"bandwidth": 1.0}), (mmd_pass, {"bandwidth": 1.0})])
def test_set_metrics_take_no_mask(fn, kwargs):
    rng = np.random.default_rng(0)
    real, pred = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    assert np.isfinite(fn(real, pred, mask=None, **kwargs))
    with pytest.raises(MetricInputError, match="takes no mask"):
        fn(real, pred, mask=np.ones((4, 3), bool), **kwargs)
    with pytest.raises(TypeError):
        fn(real, pred, None, **kwargs)  # mask and the rest are keyword-only


def test_permutation_test_matches_explicit_loop():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(12, 3)), rng.normal(0.3, 1.0, size=(9, 3))
    bw, n_perm = 4.0, 60
    statistic, p = mmd_permutation_test(y, x, bandwidth=bw, n_permutations=n_perm, seed=11)  # x: generated
    observed = _mmd_loops(x, y, bw, keep_diagonal=False)
    joint = np.concatenate([x, y])
    perm_rng = np.random.default_rng(11)
    count = 0
    for _ in range(n_perm):
        order = perm_rng.permutation(len(joint))
        null = _mmd_loops(joint[order[:12]], joint[order[12:]], bw, keep_diagonal=False)
        count += null >= observed - 1e-12
    assert statistic == pytest.approx(observed, abs=1e-12)
    assert p == pytest.approx((1 + count) / (1 + n_perm))


def test_permutation_p_value_counts_ties_with_the_observed_statistic():
    # four vertices of a regular simplex: every split into two pairs has the same MMD (exactly, in floating point:
    # all off-diagonal kernel values are one number), so every null value ties with the observed one and
    # p = (1 + #{null >= observed}) / (1 + P) = 1
    corners = np.eye(4)
    x, y = corners[:2], corners[2:]
    statistic, p = mmd_permutation_test(y, x, bandwidth=1.0, n_permutations=50, seed=0)
    assert statistic == pytest.approx(_mmd_loops(x, y, 1.0, keep_diagonal=False), abs=1e-15)
    assert p == 1.0
    assert mmd_p_value(y, x, bandwidth=1.0, n_permutations=7) == 1.0


def test_permutation_p_value_never_zero():
    # two far-apart groups of 3 and 4 profiles: only the observed split itself reaches the observed statistic, so
    # p = (1 + #{draws that re-create the observed split}) / (1 + P), counted here with the documented draws
    x = np.zeros((3, 2))
    y = np.full((4, 2), 10.0)
    x[:, 0] += np.arange(3) * 0.1
    y[:, 0] += np.arange(4) * 0.1
    _, p = mmd_permutation_test(y, x, bandwidth=1.0, n_permutations=40, seed=1)  # x (3 rows) generated
    rng = np.random.default_rng(1)
    hits = sum(set(rng.permutation(7)[:3].tolist()) == {0, 1, 2} for _ in range(40))
    assert p == pytest.approx((1 + hits) / 41)
    assert p > 0


def test_permutation_test_is_seeded():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    kwargs = {"bandwidth": 3.0, "n_permutations": 200, "seed": 4}
    assert mmd_permutation_test(y, x, **kwargs) == mmd_permutation_test(y, x, **kwargs)
    assert mmd_p_value(y, x, **kwargs) == mmd_permutation_test(y, x, **kwargs)[1]


def test_permutation_test_detects_shift():
    rng = np.random.default_rng(2)
    x, y = rng.normal(1.0, 1.0, size=(50, 4)), rng.normal(size=(50, 4))
    statistic, p = mmd_permutation_test(y, x, bandwidth=rbf_bandwidth(y), n_permutations=300)
    assert statistic > 0
    assert p < 0.01
    assert p >= 1 / 301  # the observed split counts as one permutation


def test_permutation_p_values_are_roughly_uniform_under_the_null():
    ps = []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        x, y = rng.normal(size=(15, 2)), rng.normal(size=(15, 2))
        ps.append(mmd_p_value(y, x, bandwidth=4.0, n_permutations=99, seed=seed))
    ps = np.array(ps)
    assert 0.35 < ps.mean() < 0.65
    assert np.mean(ps <= 0.05) < 0.2
    assert stats.kstest(ps, "uniform").pvalue > 0.01


def _frechet_sqrtm(x, y) -> float:
    """The classic sqrtm form (as in FID code), real part kept."""
    mu1, mu2 = x.mean(0), y.mean(0)
    c1 = np.cov(x, rowvar=False) + 1e-6 * np.eye(x.shape[1])
    c2 = np.cov(y, rowvar=False) + 1e-6 * np.eye(y.shape[1])
    covmean = linalg.sqrtm(c1 @ c2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean))


def test_frechet_matches_sqrtm_formula():
    rng = np.random.default_rng(7)
    mix = rng.normal(size=(6, 6))
    x = rng.normal(size=(80, 6)) @ mix
    y = rng.normal(0.5, 1.0, size=(60, 6)) @ (mix + 0.3 * rng.normal(size=(6, 6)))
    assert frechet_distance(y, x) == pytest.approx(_frechet_sqrtm(x, y), abs=1e-8)
    assert frechet_distance(x, y) == pytest.approx(_frechet_sqrtm(x, y), abs=1e-8)  # symmetric


def test_frechet_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(8)
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.0, -1.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    x = mu1 + np.sqrt(s1) * rng.normal(size=(200_000, 3))
    y = mu2 + np.sqrt(s2) * rng.normal(size=(200_000, 3))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(y, x) == pytest.approx(expected, abs=0.03)


def test_frechet_is_clipped_at_zero():
    # identical sets: the unclipped formula gives -3.6e-15 on this seeded case; a distance is reported as 0
    x = np.random.default_rng(0).normal(size=(40, 5))
    assert frechet_distance(x, x.copy()) == 0.0


@pytest.mark.parametrize("scale", [1e3, 1e5])
def test_frechet_survives_round_off_below_zero_in_its_eigenvalues(scale):
    # fewer profiles than steps and large values: C_x (at 1e5) and C_x^1/2 C_y C_x^1/2 (at both scales) get
    # eigenvalues slightly below 0 by round-off; clipped to 0, the result scales like scale^2
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 30)), rng.normal(size=(6, 30))
    big = frechet_distance(scale * y, scale * x)
    assert np.isfinite(big)
    assert big == pytest.approx(scale**2 * frechet_distance(y, x), rel=1e-3)


def test_frechet_identical_sets_and_degenerate_covariances():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, 5))
    same = frechet_distance(x, x.copy())
    assert isinstance(same, float) and 0.0 <= same < 1e-6
    # fewer profiles than time steps: singular covariances, still a real non-negative number
    a, b = rng.normal(size=(5, 30)), rng.normal(size=(6, 30))
    value = frechet_distance(b, a)
    assert isinstance(value, float) and np.isfinite(value) and value >= 0.0
    assert frechet_distance(a, a) < 1e-6
    # one time step: the 1-D formula (mu1 - mu2)^2 + (s1 - s2)^2 on standard deviations
    u, v = rng.normal(size=(50, 1)), rng.normal(2.0, 3.0, size=(70, 1))
    s1, s2 = np.sqrt(u.var(ddof=1) + 1e-6), np.sqrt(v.var(ddof=1) + 1e-6)
    assert frechet_distance(v, u) == pytest.approx((u.mean() - v.mean()) ** 2 + (s1 - s2) ** 2, rel=1e-10)


def test_mmd_pass_is_the_permutation_test_at_level_alpha():
    rng = np.random.default_rng(2)
    real, same, shifted = rng.normal(size=(30, 3)), rng.normal(size=(30, 3)), rng.normal(1.5, 1.0, size=(30, 3))
    kwargs = {"bandwidth": rbf_bandwidth(real), "n_permutations": 99, "seed": 3}
    for pred in (same, shifted):
        p = mmd_p_value(real, pred, **kwargs)
        for alpha in (0.01, 0.05, 0.5, p):
            # strictly above alpha passes: a p-value equal to alpha fails
            assert mmd_pass(real, pred, alpha=alpha, **kwargs) == float(p > alpha)
    assert mmd_pass(real, same, **kwargs) == 1.0 and mmd_pass(real, shifted, **kwargs) == 0.0
    with pytest.raises(MetricInputError, match="alpha"):
        mmd_pass(real, same, alpha=1.0, **kwargs)
