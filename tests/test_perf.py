"""The speed and memory benchmark measures what it says on small cases."""

from __future__ import annotations

import pytest

from bench.perf import measure_folding, measure_one, toy_profiles


def test_toy_profiles_are_seeded_and_scaled():
    a, b = toy_profiles(8, 24, seed=1), toy_profiles(8, 24, seed=1)
    assert a.shape == (8, 24) and (a == b).all() and a.min() >= -1 and a.max() <= 1


@pytest.mark.parametrize("model", ["vae", "wgan-gp", "energydiff"])
def test_measure_one_reports_rates_and_memory(model):
    row = measure_one(model, 60, profile="quick", device="cpu", steps=3, n_train=32, n_samples=8, overrides={})
    assert row["T"] == 24 and row["train_steps"] == 3
    assert row["train_steps_per_s"] > 0 and row["samples_per_s"] > 0 and row["peak_memory_mb"] > 0


def test_measure_folding_uses_the_requested_factors():
    rows = measure_folding(device="cpu", batch=2, length=96, folds=(1, 8), repeats=1)
    assert [r["fold"] for r in rows] == [1, 8]
    assert all(r["forward_ms"] > 0 and r["backward_ms"] > 0 for r in rows)
