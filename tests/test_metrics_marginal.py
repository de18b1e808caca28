"""Pooled and per-time-step KL, Wasserstein and KS against scipy, sdmetrics and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sdmetrics.single_column import KSComplement

from metrics import kl_per_step, kl_pooled, ks_per_step, ks_pooled, wasserstein_per_step, wasserstein_pooled


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return rng.gamma(2.0, 0.3, size=(60, 8)), rng.gamma(2.5, 0.25, size=(70, 8))


def test_kl_matches_scipy_entropy_on_the_same_histograms(pair):
    gen, real = pair
    lo, hi = min(gen.min(), real.min()), max(gen.max(), real.max())
    p, _ = np.histogram(gen.ravel(), bins=200, range=(lo, hi))
    q, _ = np.histogram(real.ravel(), bins=200, range=(lo, hi))
    keep = (p > 0) & (q > 0)
    assert (~keep).any()  # the dropping rule is exercised
    assert kl_pooled(gen, real) == pytest.approx(stats.entropy(p[keep], q[keep]), rel=1e-12)


def test_kl_hand_computed():
    gen, real = np.array([[0.0, 0.0, 0.0, 1.0]]), np.array([[0.0, 1.0, 1.0, 1.0]])
    assert kl_pooled(gen, real, bins=2) == pytest.approx(0.5 * math.log(3))
    # middle bin empty in real: dropped, the rest renormalised (p = [2, 1] / 3, q = [1, 3] / 4)
    gen, real = np.array([[0.0, 0.0, 1.0, 2.0]]), np.array([[0.0, 2.0, 2.0, 2.0]])
    expected = 2 / 3 * math.log((2 / 3) / (1 / 4)) + 1 / 3 * math.log((1 / 3) / (3 / 4))
    assert kl_pooled(gen, real, bins=3) == pytest.approx(expected)
    # direction is KL(gen || real)
    assert kl_pooled(real, gen, bins=3) == pytest.approx(1 / 4 * math.log((1 / 4) / (2 / 3))
                                                         + 3 / 4 * math.log((3 / 4) / (1 / 3)))


def test_kl_edge_cases():
    assert kl_pooled(np.full((3, 2), 0.5), np.full((4, 2), 0.5)) == 0.0
    assert kl_pooled(np.zeros((3, 2)), np.ones((3, 2))) == math.inf
    with pytest.raises(ValueError, match="bins"):
        kl_pooled(np.zeros((3, 2)), np.ones((3, 2)), bins=0)


def test_kl_per_step_averages_the_steps():
    gen = np.array([[0.0, 5.0], [0.0, 5.0], [0.0, 5.0], [1.0, 5.0]])
    real = np.array([[0.0, 5.0], [1.0, 5.0], [1.0, 5.0], [1.0, 5.0]])
    # step 0 is the first hand case (0.5 ln 3), step 1 is one shared constant (0)
    assert kl_per_step(gen, real, bins=2) == pytest.approx(0.25 * math.log(3))
    # pooled over both steps is a different number
    assert kl_pooled(gen, real, bins=2) != pytest.approx(kl_per_step(gen, real, bins=2))


def test_wasserstein_against_scipy_and_point_masses(pair):
    gen, real = pair
    assert wasserstein_pooled(gen, real) == pytest.approx(stats.wasserstein_distance(gen.ravel(), real.ravel()),
                                                          rel=1e-12)
    per_step = np.mean([stats.wasserstein_distance(gen[:, t], real[:, t]) for t in range(gen.shape[1])])
    assert wasserstein_per_step(gen, real) == pytest.approx(per_step, rel=1e-12)
    assert wasserstein_pooled(np.zeros((3, 4)), np.full((5, 4), 3.0)) == pytest.approx(3.0)
    # half the mass moves by 2: distance 1
    assert wasserstein_pooled(np.array([[0.0, 0.0]]), np.array([[0.0, 2.0]])) == pytest.approx(1.0)


def test_ks_against_scipy_and_sdmetrics(pair):
    gen, real = pair
    assert ks_pooled(gen, real) == pytest.approx(stats.ks_2samp(gen.ravel(), real.ravel()).statistic, abs=1e-12)
    per_step = np.mean([stats.ks_2samp(gen[:, t], real[:, t]).statistic for t in range(gen.shape[1])])
    assert ks_per_step(gen, real) == pytest.approx(per_step, abs=1e-12)
    column_real, column_gen = pd.Series(real[:, 2]), pd.Series(gen[:, 2])
    complement = KSComplement.compute(real_data=column_real, synthetic_data=column_gen)
    assert complement == pytest.approx(1.0 - ks_pooled(gen[:, 2:3], real[:, 2:3]), abs=1e-12)
    assert ks_pooled(np.zeros((3, 2)), np.ones((3, 2))) == 1.0
    assert ks_pooled(gen, gen) == 0.0


@pytest.mark.parametrize("fn", [kl_pooled, kl_per_step, wasserstein_pooled, wasserstein_per_step, ks_pooled,
                                ks_per_step])
def test_marginals_reject_mismatched_lengths(fn):
    with pytest.raises(ValueError, match="differ in length"):
        fn(np.zeros((3, 4)), np.zeros((3, 5)))
