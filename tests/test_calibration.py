"""Marginal calibration: exact reference marginals, kept rank order, deterministic ties, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from bench.calibration import marginal_calibration, quantile_levels


def _pair(n: int, big_n: int, t: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.gamma(2.0, 0.3, (big_n, t)) - 0.8  # skewed like load data
    base = rng.standard_normal((n, 1))
    samples = 0.7 * base + 0.5 * rng.standard_normal((n, t))  # dependent steps, wrong marginals
    return samples.astype(np.float32), reference.astype(np.float32)


def test_equal_sizes_give_exactly_the_reference_marginals_and_keep_ranks():
    samples, reference = _pair(300, 300)
    out = marginal_calibration(samples, reference)
    assert out.shape == samples.shape and out.dtype == reference.dtype
    np.testing.assert_array_equal(np.sort(out, axis=0), np.sort(reference, axis=0))
    np.testing.assert_array_equal(np.argsort(out, axis=0, kind="stable"), np.argsort(samples, axis=0, kind="stable"))


@pytest.mark.parametrize("n, big_n", [(250, 1000), (1000, 250), (7, 3)])
def test_other_sizes_land_on_reference_quantiles_in_rank_order(n, big_n):
    samples, reference = _pair(n, big_n, seed=1)
    out = marginal_calibration(samples, reference)
    sorted_ref = np.sort(reference, axis=0)
    for t in range(samples.shape[1]):
        assert np.isin(out[:, t], reference[:, t]).all()
        order = np.argsort(samples[:, t], kind="stable")
        assert np.all(np.diff(out[order, t]) >= 0)  # monotone map: rank order kept (weakly)
        # the k-th smallest of n values takes the reference quantile at level k / n
        k = np.arange(1, n + 1)
        np.testing.assert_array_equal(out[order, t], sorted_ref[np.ceil(k * big_n / n).astype(int) - 1, t])


def test_identity_when_samples_are_the_reference():
    _, reference = _pair(5, 200, seed=2)
    np.testing.assert_array_equal(marginal_calibration(reference, reference), reference)


def test_calibrated_pooled_marginal_matches_reference_when_n_is_a_multiple():
    samples, reference = _pair(600, 200, seed=3)
    out = marginal_calibration(samples, reference)
    # every reference value is used exactly 3 times per step
    for t in range(samples.shape[1]):
        np.testing.assert_array_equal(np.sort(out[:, t]), np.repeat(np.sort(reference[:, t]), 3))


def test_ties_are_broken_deterministically_by_row():
    samples = np.array([[1.0], [0.0], [1.0], [1.0], [-1.0]])
    reference = np.array([[10.0], [20.0], [30.0], [40.0], [50.0]])
    np.testing.assert_array_equal(quantile_levels(samples)[:, 0], [3, 2, 4, 5, 1])
    out = marginal_calibration(samples, reference)
    # the tie at 1.0 is spread over the top three quantiles in row order, not piled onto the top one
    np.testing.assert_array_equal(out[:, 0], [30.0, 20.0, 40.0, 50.0, 10.0])
    np.testing.assert_array_equal(marginal_calibration(samples, reference), out)


def test_integer_reference_and_input_checks():
    out = marginal_calibration(np.array([[0.5, 2.0], [0.1, 3.0]]), np.array([[1, 2], [3, 4]]))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[3.0, 2.0], [1.0, 4.0]])
    with pytest.raises(ValueError, match="time steps"):
        marginal_calibration(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="finite"):
        marginal_calibration(np.array([[np.nan]]), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="2-D"):
        marginal_calibration(np.zeros(4), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="2-D"):
        marginal_calibration(np.zeros((3, 4)), np.zeros((0, 4)))
