"""CRPS, interval coverage and peak-load errors against brute-force formulas and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scoringrules
from scipy import stats

from metrics import (
    MetricInputError,
    coverage_error,
    crps_between_ensembles,
    crps_ensemble,
    crps_sets,
    interval_coverage,
    mean_rmse,
    peak_abs_error,
    peak_load_error,
    peak_load_error_sets,
    peak_rmse,
)


def _crps_loops(obs, ens, mask, fair: bool) -> float:
    """Energy form entry by entry with explicit member loops."""
    s = ens.shape[0]
    scores = []
    for idx in zip(*np.nonzero(mask)):
        y = obs[idx]
        members = [ens[(k, *idx)] for k in range(s)]
        e1 = sum(abs(x - y) for x in members) / s
        pair_sum = sum(abs(a - b) for a in members for b in members)
        scores.append(e1 - pair_sum / (2 * s * (s - 1) if fair else 2 * s * s))
    return float(np.mean(scores))


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(4, 6))
    ens = rng.normal(0.2, 1.1, size=(5, 4, 6))
    mask = rng.random((4, 6)) < 0.6
    return obs, ens, mask


def test_crps_matches_brute_force(small):
    obs, ens, mask = small
    assert crps_ensemble(obs, ens, mask=mask) == pytest.approx(_crps_loops(obs, ens, mask, fair=True), abs=1e-12)
    assert crps_ensemble(obs, ens, mask=mask, estimator="nrg") == pytest.approx(_crps_loops(obs, ens, mask, fair=False),
                                                                           abs=1e-12)
    full = np.ones_like(mask)
    assert crps_ensemble(obs, ens) == pytest.approx(_crps_loops(obs, ens, full, fair=True), abs=1e-12)


def test_crps_equals_scoringrules_fair_estimator(small):
    obs, ens, _ = small
    direct = scoringrules.crps_ensemble(obs, ens, m_axis=0, estimator="fair")
    assert crps_ensemble(obs, ens) == pytest.approx(float(np.mean(direct)), abs=1e-12)


def test_crps_masked_entries_may_be_nan(small):
    obs, ens, mask = small
    obs_nan = np.where(mask, obs, np.nan)
    ens_nan = np.where(mask, ens, np.nan)
    assert crps_ensemble(obs_nan, ens_nan, mask=mask) == pytest.approx(crps_ensemble(obs, ens, mask=mask), abs=1e-15)
    with pytest.raises(MetricInputError, match="non-finite"):
        crps_ensemble(obs_nan, ens)


def test_crps_perfect_and_shifted_ensembles(small):
    obs, ens, _ = small
    perfect = np.broadcast_to(obs, (5, *obs.shape))
    assert crps_ensemble(obs, perfect) == pytest.approx(0.0, abs=1e-15)
    centred = obs + 0.3 * np.random.default_rng(1).normal(size=(20, *obs.shape))
    assert crps_ensemble(obs, centred) < crps_ensemble(obs, centred + 1.0) < crps_ensemble(obs, centred + 2.0)


def test_crps_gaussian_closed_form():
    rng = np.random.default_rng(2)
    obs = np.linspace(-2.0, 2.0, 9).reshape(3, 3)
    ens = rng.normal(size=(4000, 3, 3))
    z = obs
    closed = z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi)
    assert crps_ensemble(obs, ens) == pytest.approx(float(closed.mean()), abs=0.01)
    # obs at the mean of N(0, 1): (2 - sqrt 2) / sqrt(2 pi) ... = 2 phi(0) - 1/sqrt(pi)
    at_zero = crps_ensemble(np.zeros((1, 1)), ens[:, :1, :1])
    assert at_zero == pytest.approx(2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi), abs=0.03)


def test_crps_rejects_bad_input(small):
    obs, ens, mask = small
    with pytest.raises(MetricInputError, match="shape"):
        crps_ensemble(obs, ens[:, :3])
    with pytest.raises(MetricInputError, match="boolean"):
        crps_ensemble(obs, ens, mask=mask.astype(int))
    with pytest.raises(MetricInputError, match="selects nothing"):
        crps_ensemble(obs, ens, mask=np.zeros_like(mask))
    with pytest.raises(MetricInputError, match="at least 2"):
        crps_ensemble(obs, ens[:1])
    with pytest.raises(MetricInputError, match="estimator"):
        crps_ensemble(obs, ens, estimator="pwm")


def test_crps_between_ensembles_matches_loops():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 3)), rng.normal(0.5, 2.0, size=(6, 3))
    expected = []
    for k in range(3):
        xs, ys = a[:, k].tolist(), b[:, k].tolist()
        cross = np.mean([abs(x - y) for x in xs for y in ys])
        self_a = np.mean([abs(x - x2) for x in xs for x2 in xs])
        self_b = np.mean([abs(y - y2) for y in ys for y2 in ys])
        expected.append(cross - 0.5 * (self_a + self_b))
    assert crps_between_ensembles(a, b) == pytest.approx(expected, abs=1e-12)
    assert crps_between_ensembles(b, a) == pytest.approx(expected, abs=1e-12)
    # one observation: the "nrg" ensemble CRPS
    nrg = scoringrules.crps_ensemble(a[0], b, m_axis=0, estimator="nrg")
    assert crps_between_ensembles(a[:1], b) == pytest.approx(nrg, abs=1e-12)


def test_crps_between_identical_ensembles_is_clipped_at_zero():
    # the differences of pair sums leave round-off on both sides of 0 for identical ensembles (-3.3e-16 in the
    # last column of this seeded case unclipped); the score of identical distributions is 0, never below
    a = np.random.default_rng(0).normal(size=(7, 5))
    out = crps_between_ensembles(a, a)
    assert (out >= 0.0).all()
    assert out == pytest.approx(np.zeros(5), abs=1e-15)


def test_set_scores_are_the_per_step_and_per_extreme_crps():
    rng = np.random.default_rng(7)
    gen, real = rng.gamma(2.0, 0.5, size=(9, 6)), rng.gamma(2.5, 0.4, size=(5, 6))
    per_step = []
    for t in range(6):
        xs, ys = gen[:, t].tolist(), real[:, t].tolist()
        cross = np.mean([abs(x - y) for x in xs for y in ys])
        per_step.append(cross - 0.5 * (np.mean([abs(x - x2) for x in xs for x2 in xs])
                                       + np.mean([abs(y - y2) for y in ys for y2 in ys])))
    assert crps_sets(real, gen) == pytest.approx(np.mean(per_step), abs=1e-12)
    assert crps_sets(gen, real) == pytest.approx(crps_sets(real, gen), abs=1e-15)
    assert crps_sets(gen, gen.copy()) == pytest.approx(0.0, abs=1e-15)
    # peaks: CRPS between the sets' maxima plus between their minima
    assert peak_load_error_sets(real, gen) == pytest.approx(_peak_loops(real[:, None], gen[:, None]), abs=1e-12)
    # hand case: maxima {3} vs {1}, minima {0} vs {0}: |3 - 1| + 0
    assert peak_load_error_sets(np.array([[1.0, 0.0]]), np.array([[0.0, 3.0]])) == pytest.approx(2.0)
    with pytest.raises(MetricInputError, match="2-D"):
        crps_sets(real[None], gen[None])
    with pytest.raises(MetricInputError, match="2-D"):
        peak_load_error_sets(real, gen[None])
    for fn in (crps_sets, peak_load_error_sets):
        with pytest.raises(MetricInputError, match="takes no mask"):
            fn(real, gen, mask=np.ones(real.shape, bool))


def test_interval_coverage_hand_case_and_calibration():
    members = np.arange(101, dtype=float).reshape(101, 1, 1) * np.ones((1, 1, 5))
    obs = np.array([[4.0, 5.0, 50.0, 95.0, 96.0]])
    # 90 % central interval of 0..100 is [5, 95], bounds included
    assert interval_coverage(obs, members, level=0.9) == pytest.approx(3 / 5)
    assert coverage_error(obs, members, level=0.9) == pytest.approx(0.3)
    mask = np.array([[True, False, True, False, True]])
    assert interval_coverage(obs, members, level=0.9, mask=mask) == pytest.approx(1 / 3)
    rng = np.random.default_rng(4)
    calibrated = interval_coverage(rng.normal(size=(50, 40)), rng.normal(size=(500, 50, 40)), level=0.8)
    assert calibrated == pytest.approx(0.8, abs=0.03)
    with pytest.raises(MetricInputError, match="level"):
        interval_coverage(obs, members, level=1.0)


def test_interval_coverage_uses_linear_quantiles():
    # members 0..9: the linear 5 % and 95 % quantiles sit at positions 0.05 * 9 = 0.45 and 8.55. Observations
    # just inside and just outside each bound; every other numpy quantile method ("lower", "higher", "nearest",
    # "midpoint", "hazen", "weibull", "median_unbiased", ...) puts at least one of them on the other side.
    members = np.arange(10, dtype=float).reshape(10, 1, 1) * np.ones((1, 1, 4))
    obs = np.array([[0.44, 0.46, 8.54, 8.56]])
    inside = [interval_coverage(obs, members, level=0.9, mask=np.eye(4, dtype=bool)[[k]]) for k in range(4)]
    assert inside == [0.0, 1.0, 1.0, 0.0]
    for method in ("lower", "higher", "nearest", "midpoint", "hazen", "weibull", "median_unbiased",
                   "normal_unbiased", "interpolated_inverted_cdf", "inverted_cdf"):
        lo, hi = np.quantile(np.arange(10.0), [0.05, 0.95], method=method)
        assert [float(lo <= v <= hi) for v in obs[0]] != inside, method


def test_interval_coverage_needs_two_members():
    obs = np.zeros((2, 3))
    for fn in (interval_coverage, coverage_error):
        with pytest.raises(MetricInputError, match="at least 2 ensemble members"):
            fn(obs, np.zeros((1, 2, 3)))


def _peak_loops(real, gen) -> float:
    """real [R, N, T], gen [S, N, T]: per case, ensemble CRPS of maxima and of minima via explicit loops."""
    total = 0.0
    for reduce in (np.max, np.min):
        per_case = []
        for n in range(real.shape[1]):
            xs = [reduce(p) for p in real[:, n]]
            ys = [reduce(p) for p in gen[:, n]]
            cross = np.mean([abs(x - y) for x in xs for y in ys])
            sx = np.mean([abs(x - x2) for x in xs for x2 in xs])
            sy = np.mean([abs(y - y2) for y in ys for y2 in ys])
            per_case.append(cross - 0.5 * (sx + sy))
        total += np.mean(per_case)
    return float(total)


def test_peak_load_error_matches_loops():
    rng = np.random.default_rng(5)
    real, gen = rng.gamma(2.0, 0.5, size=(3, 4, 12)), rng.gamma(2.0, 0.6, size=(7, 4, 12))
    assert peak_load_error(real, gen) == pytest.approx(_peak_loops(real, gen), abs=1e-12)
    # one real profile per case: ensemble CRPS of the generated extremes at the real extremes
    single = real[0]
    expected = (np.mean(scoringrules.crps_ensemble(single.max(1), gen.max(2), m_axis=0, estimator="nrg"))
                + np.mean(scoringrules.crps_ensemble(single.min(1), gen.min(2), m_axis=0, estimator="nrg")))
    assert peak_load_error(single, gen) == pytest.approx(expected, abs=1e-12)
    # single profiles on both sides: absolute errors of maxima and minima
    pred = gen[0]
    expected = np.mean(np.abs(single.max(1) - pred.max(1))) + np.mean(np.abs(single.min(1) - pred.min(1)))
    assert peak_load_error(single, pred) == pytest.approx(expected, abs=1e-12)
    assert peak_load_error(single, np.stack([single] * 3)) == pytest.approx(0.0, abs=1e-15)


def test_peak_errors_respect_the_mask():
    rng = np.random.default_rng(6)
    real, gen = rng.random((5, 10)), rng.random((4, 5, 10))
    mask = np.ones((5, 10), dtype=bool)
    mask[:, 7:] = False
    padded_real, padded_gen = real.copy(), gen.copy()
    padded_real[:, 7:], padded_gen[..., 7:] = 100.0, -100.0
    unpadded = peak_load_error(real[:, :7], gen[..., :7])
    assert peak_load_error(padded_real, padded_gen, mask=mask) == pytest.approx(unpadded)
    for fn in (peak_abs_error, peak_rmse, mean_rmse):
        assert fn(padded_real, padded_gen[0], mask=mask) == pytest.approx(fn(real[:, :7], gen[0, :, :7])), fn
    with pytest.raises(MetricInputError, match="valid step"):
        peak_load_error(real, gen, mask=np.zeros((5, 10), dtype=bool))


def test_peak_abs_error_hand_case():
    target = np.array([[1.0, 3.0, 2.0], [0.0, 0.5, 4.0]])
    pred = np.array([[2.5, 1.0, 0.0], [4.0, 0.0, 0.0]])
    assert peak_abs_error(target, pred) == pytest.approx((0.5 + 0.0) / 2)
    with pytest.raises(MetricInputError, match="one shape"):
        peak_abs_error(target, pred[:1])


def test_peak_and_mean_rmse_hand_case():
    # maxima 3, 4 vs 2.5, 4 -> errors -0.5, 0; means 2, 1.5 vs 7/6, 4/3 -> errors -5/6, -1/6
    real = np.array([[1.0, 3.0, 2.0], [0.0, 0.5, 4.0]])
    pred = np.array([[2.5, 1.0, 0.0], [4.0, 0.0, 0.0]])
    assert peak_rmse(real, pred) == pytest.approx(math.sqrt((0.25 + 0.0) / 2))
    assert mean_rmse(real, pred) == pytest.approx(math.sqrt(((5 / 6) ** 2 + (1 / 6) ** 2) / 2))
    # the valid steps only: the last step of the second profile left out (maxima 0.5 vs 4, means 0.25 vs 2)
    mask = np.array([[True, True, True], [True, True, False]])
    assert peak_rmse(real, pred, mask=mask) == pytest.approx(math.sqrt((0.25 + 3.5**2) / 2))
    assert mean_rmse(real, pred, mask=mask) == pytest.approx(math.sqrt(((5 / 6) ** 2 + 1.75**2) / 2))
    # a constant offset d moves every peak and mean by d: both RMSEs are |d|
    assert peak_rmse(real, real - 0.3) == pytest.approx(0.3) and mean_rmse(real, real + 0.3) == pytest.approx(0.3)
    for fn in (peak_rmse, mean_rmse):
        with pytest.raises(MetricInputError, match="one shape"):
            fn(real, pred[:1])
        with pytest.raises(MetricInputError, match="valid step"):
            fn(real, pred, mask=np.zeros((2, 3), bool))
        with pytest.raises(MetricInputError, match="pred"):
            fn(real, np.full((2, 3), np.nan))
