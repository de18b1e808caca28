"""Pooled and per-time-step KL, Wasserstein and KS against scipy, sdmetrics and hand-computed cases.

The values of the EnergyDiff code itself on fixed inputs are checked in ``tests/test_paper_fixtures.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sdmetrics.single_column import KSComplement

from metrics import (
    MetricInputError,
    kl_per_step,
    kl_pooled,
    ks_per_step,
    ks_pooled,
    wasserstein_per_step,
    wasserstein_pooled,
)


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return rng.gamma(2.0, 0.3, size=(60, 8)), rng.gamma(2.5, 0.25, size=(70, 8))


def test_kl_matches_scipy_entropy_on_the_same_histograms(pair):
    gen, real = pair
    lo, hi = min(gen.min(), real.min()), max(gen.max(), real.max())
    # default: 200 edges over the joint range = 199 bins
    p, _ = np.histogram(gen.ravel(), bins=199, range=(lo, hi))
    q, _ = np.histogram(real.ravel(), bins=199, range=(lo, hi))
    keep = (p > 0) & (q > 0)
    assert (~keep).any()  # the dropping rule is exercised
    assert kl_pooled(real, gen, round_float32=False) == pytest.approx(stats.entropy(p[keep], q[keep]), rel=1e-12)
    # the default rounds to float32 first (as the EnergyDiff code): the same histogram of the rounded values
    g32, r32 = gen.astype(np.float32).astype(float), real.astype(np.float32).astype(float)
    edges = np.linspace(min(g32.min(), r32.min()), max(g32.max(), r32.max()), 200)
    p32, q32 = np.histogram(g32.ravel(), edges)[0], np.histogram(r32.ravel(), edges)[0]
    keep32 = (p32 > 0) & (q32 > 0)
    assert kl_pooled(real, gen) == pytest.approx(stats.entropy(p32[keep32], q32[keep32]), rel=1e-12)


def test_kl_uses_199_bins_by_default():
    # Joint range [0, 199]: 200 edges are the integers 0..199, so the bins are [i, i + 1) (last one closed).
    # gen: 0, 0.999, 0.999 in bin 0 and 199 in bin 198; real: 0, 0.5 in bin 0 and 199, 199 in bin 198.
    # KL = 3/4 ln((3/4) / (1/2)) + 1/4 ln((1/4) / (1/2)). With 200 bins (width 0.995) 0.999 falls into bin 1, which
    # real leaves empty; after dropping it both sides are (1/2, 1/2) and the KL would be 0.
    gen = np.array([[0.0, 0.999, 0.999, 199.0]])
    real = np.array([[0.0, 0.5, 199.0, 199.0]])
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert kl_pooled(real, gen) == pytest.approx(expected, rel=1e-12)
    assert kl_pooled(real, gen, n_edges=200) == pytest.approx(expected, rel=1e-12)
    assert kl_pooled(real, gen, n_edges=201) == pytest.approx(0.0, abs=1e-15)
    # per step, the same rule on each step's own range
    assert kl_per_step(real.T, gen.T) == pytest.approx(expected, rel=1e-12)
    assert kl_per_step(real.T, gen.T, n_edges=201) == pytest.approx(0.0, abs=1e-15)


def test_kl_hand_computed():
    gen, real = np.array([[0.0, 0.0, 0.0, 1.0]]), np.array([[0.0, 1.0, 1.0, 1.0]])
    assert kl_pooled(real, gen, n_edges=3) == pytest.approx(0.5 * math.log(3))
    # middle bin empty in real: dropped, the rest renormalised (p = [2, 1] / 3, q = [1, 3] / 4)
    gen, real = np.array([[0.0, 0.0, 1.0, 2.0]]), np.array([[0.0, 2.0, 2.0, 2.0]])
    expected = 2 / 3 * math.log((2 / 3) / (1 / 4)) + 1 / 3 * math.log((1 / 3) / (3 / 4))
    assert kl_pooled(real, gen, n_edges=4) == pytest.approx(expected)
    # direction is KL(gen || real) with real first: swapping the arguments swaps the roles
    assert kl_pooled(gen, real, n_edges=4) == pytest.approx(1 / 4 * math.log((1 / 4) / (2 / 3))
                                                            + 3 / 4 * math.log((3 / 4) / (1 / 3)))


def test_kl_edge_cases():
    assert kl_pooled(np.full((4, 2), 0.5), np.full((3, 2), 0.5)) == 0.0
    assert kl_pooled(np.ones((3, 2)), np.zeros((3, 2))) == math.inf
    for bad in (1, 0, 2.5, "200"):
        with pytest.raises(MetricInputError, match="n_edges"):
            kl_pooled(np.ones((3, 2)), np.zeros((3, 2)), n_edges=bad)
        with pytest.raises(MetricInputError, match="n_edges"):
            kl_per_step(np.ones((3, 2)), np.zeros((3, 2)), n_edges=bad)


def test_kl_per_step_averages_the_steps():
    gen = np.array([[0.0, 5.0], [0.0, 5.0], [0.0, 5.0], [1.0, 5.0]])
    real = np.array([[0.0, 5.0], [1.0, 5.0], [1.0, 5.0], [1.0, 5.0]])
    # step 0 is the first hand case (0.5 ln 3), step 1 is one shared constant (0)
    assert kl_per_step(real, gen, n_edges=3) == pytest.approx(0.25 * math.log(3))
    # pooled over both steps is a different number
    assert kl_pooled(real, gen, n_edges=3) != pytest.approx(kl_per_step(real, gen, n_edges=3))


def test_float32_rounding_creates_ties_as_the_papers_code():
    # 0.1 + 1e-9 and 0.1 are different float64 numbers but one float32 number
    gen, real = np.array([[0.1 + 1e-9, 0.3]]), np.array([[0.1, 0.3]])
    assert ks_pooled(real, gen, round_float32=False) == 0.5
    assert ks_pooled(real, gen) == 0.0
    assert wasserstein_pooled(real, gen) == 0.0
    assert wasserstein_pooled(real, gen, round_float32=False) == pytest.approx(0.5e-9, rel=1e-6)
    # a value beyond the float32 range cannot be rounded as the code does
    huge, zero = np.array([[1e39, 2e39]]), np.array([[0.0, 1.0]])
    for fn in (ks_pooled, wasserstein_pooled, kl_pooled):
        with pytest.raises(MetricInputError, match="float32"):
            fn(huge, zero)
    assert ks_pooled(zero, huge, round_float32=False) == 1.0


def test_wasserstein_against_scipy_and_point_masses(pair):
    gen, real = pair
    assert wasserstein_pooled(real, gen, round_float32=False) == pytest.approx(
        stats.wasserstein_distance(gen.ravel(), real.ravel()), rel=1e-12)
    g32, r32 = gen.astype(np.float32).ravel(), real.astype(np.float32).ravel()
    assert wasserstein_pooled(real, gen) == pytest.approx(stats.wasserstein_distance(g32, r32), rel=1e-12)
    per_step = np.mean([stats.wasserstein_distance(gen[:, t], real[:, t]) for t in range(gen.shape[1])])
    assert wasserstein_per_step(real, gen) == pytest.approx(per_step, rel=1e-12)
    assert wasserstein_pooled(np.full((5, 4), 3.0), np.zeros((3, 4))) == pytest.approx(3.0)
    # half the mass moves by 2: distance 1
    assert wasserstein_pooled(np.array([[0.0, 2.0]]), np.array([[0.0, 0.0]])) == pytest.approx(1.0)


def test_ks_against_scipy_and_sdmetrics(pair):
    gen, real = pair
    assert ks_pooled(real, gen, round_float32=False) == pytest.approx(
        stats.ks_2samp(gen.ravel(), real.ravel()).statistic, abs=1e-12)
    g32, r32 = gen.astype(np.float32).ravel(), real.astype(np.float32).ravel()
    assert ks_pooled(real, gen) == pytest.approx(stats.ks_2samp(g32, r32).statistic, abs=1e-12)
    per_step = np.mean([stats.ks_2samp(gen[:, t], real[:, t]).statistic for t in range(gen.shape[1])])
    assert ks_per_step(real, gen) == pytest.approx(per_step, abs=1e-12)
    column_real, column_gen = pd.Series(real[:, 2]), pd.Series(gen[:, 2])
    complement = KSComplement.compute(real_data=column_real, synthetic_data=column_gen)
    assert complement == pytest.approx(1.0 - ks_pooled(real[:, 2:3], gen[:, 2:3]), abs=1e-12)
    assert ks_pooled(np.ones((3, 2)), np.zeros((3, 2))) == 1.0
    assert ks_pooled(gen, gen) == 0.0


@pytest.mark.parametrize("fn", [kl_pooled, kl_per_step, wasserstein_pooled, wasserstein_per_step, ks_pooled,
                                ks_per_step])
def test_marginals_reject_mismatched_lengths(fn):
    with pytest.raises(MetricInputError, match="differ in length"):
        fn(np.zeros((3, 4)), np.zeros((3, 5)))


@pytest.mark.parametrize("fn", [kl_pooled, kl_per_step, wasserstein_pooled, wasserstein_per_step, ks_pooled,
                                ks_per_step])
def test_marginals_take_real_first_and_no_mask(fn):
    rng = np.random.default_rng(1)
    real, pred = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    assert fn(real, pred, mask=None) >= 0.0  # (a per-step KL of so few profiles may be inf)
    with pytest.raises(MetricInputError, match="takes no mask"):
        fn(real, pred, mask=np.ones((6, 3), bool))
    with pytest.raises(MetricInputError, match="pred contains non-finite"):
        fn(real, np.full((4, 3), np.nan))
