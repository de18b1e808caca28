"""Cost beside quality: model size, peak memory, the Pareto front and the report's cost section."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bench.report.cost import cost_markdown, cost_summary, pareto_front
from bench.resources import count_numbers, measure_peak_memory, model_size


def test_pareto_front_by_hand():
    # (seconds, rank): a dominates c; b is faster than a but worse; d is NaN; e ties a exactly
    cost = np.array([10.0, 1.0, 20.0, np.nan, 10.0])
    quality = np.array([0.1, 0.5, 0.2, 0.0, 0.1])
    np.testing.assert_array_equal(pareto_front(cost, quality), [True, True, False, False, True])
    assert pareto_front(np.array([]), np.array([])).shape == (0,)


def test_count_numbers_of_nested_state_and_a_fitted_model():
    state = {"w": torch.zeros(3, 4), "b": np.zeros(5), "layers": [np.ones(2), (1.0, 2)], "name": "x",
             "net": torch.nn.Linear(3, 2)}
    assert count_numbers(state) == 12 + 5 + 2 + 2 + 8
    from baselines.naive import ResampleTrain
    from bench.context import RunContext
    from tests.model_contract import tiny_profiles

    model = ResampleTrain()
    profiles = tiny_profiles(n_households=2, n_days=5)
    model.fit(profiles, RunContext())
    # the copying reference keeps the whole training set: its size is what it memorises
    assert model_size(model) >= profiles.values.size


def test_peak_memory_grows_with_an_allocation():
    with measure_peak_memory() as small:
        np.ones(10)
    with measure_peak_memory() as large:
        block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
        block[::512] = 2.0
    assert small["rss_scope"] in ("cell", "process") and large["peak_rss_mb"] > 0
    if small["rss_scope"] == "cell":  # the counter was reset between the two blocks
        assert large["peak_rss_mb"] - small["peak_rss_mb"] > 40


def test_cost_summary_and_markdown():
    costs = pd.DataFrame({"task": ["generation"] * 3, "dataset": "d", "resolution": 60, "model": ["a", "b", "c"],
                          "seed": 0, "fit_seconds": [10.0, 1.0, 30.0], "sample_seconds": [1.0, 0.5, 1.0],
                          "model_numbers": [100, 10, 1000], "peak_rss_mb": [500.0, 300.0, 900.0],
                          "peak_gpu_mb": np.nan})
    ranks = pd.DataFrame({"generation": [0.0, 0.6, 0.3]}, index=pd.Index(["a", "b", "c"], name="model"))
    summary = cost_summary(costs, ranks).set_index("model")
    assert summary.loc["a", "seconds"] == pytest.approx(11.0)
    assert summary["pareto"].to_dict() == {"a": True, "b": True, "c": False}
    text = cost_markdown(summary.reset_index())
    assert "**a**" in text and "| c " in text and "Pareto" in text
