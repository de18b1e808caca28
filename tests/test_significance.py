"""Friedman's test and the critical-difference diagram against scipy, on rows with known ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import friedmanchisquare

from bench.report.significance import block_matrix, friedman, friedman_markdown, plot_cd


def rows(values: dict[str, list[float]], metric: str = "MMD") -> pd.DataFrame:
    return pd.DataFrame([{"task": "generation", "dataset": "d", "resolution": 60 + b, "setting": "", "model": m,
                          "seed": 0, "metric": metric, "value": v, "std": 0.0, "status": "ok", "note": ""}
                         for m, vs in values.items() for b, v in enumerate(vs)])


def test_friedman_p_value_is_scipys_and_ranks_follow_the_goal(tmp_path):
    rng = np.random.default_rng(0)
    values = {"a": list(rng.normal(0.0, 0.5, 8)), "b": list(rng.normal(1.0, 0.5, 8)), "c": list(rng.normal(3.0, 0.5, 8))}
    result, ranked = friedman("generation", rows(values), {"MMD": "lower"})
    assert result.pvalue == pytest.approx(friedmanchisquare(*values.values()).pvalue, rel=1e-9)
    assert result.mean_ranks.idxmin() == "a" and result.n_blocks == 8
    # a metric where higher is better flips the ranks
    flipped, _ = friedman("generation", rows(values, "Accuracy"), {"Accuracy": "higher"})
    assert flipped.mean_ranks.idxmin() == "c"
    figure = plot_cd(ranked, tmp_path / "cd.png", "generation")
    assert figure is not None and figure.stat().st_size > 1000
    text = friedman_markdown(result, "plots/cd.png")
    assert "p = " in text and "`a` 1." in text and "plots/cd.png" in text


def test_blocks_drop_ignored_metrics_incomplete_blocks_and_sparse_models():
    frame = pd.concat([rows({"a": [1, 2, 3], "b": [2, 3, 4], "c": [3, np.nan, 5], "d": [np.nan, np.nan, 1]}),
                       rows({"a": [0.9], "b": [0.8], "c": [0.7]}, "Cov90")])
    wide = block_matrix(frame, {"MMD": "lower", "Cov90": "ignore"})
    assert list(wide.columns) == ["a", "b", "c"] and len(wide) == 2  # d mostly missing; the NaN block dropped
    assert friedman("generation", frame, {"MMD": "lower", "Cov90": "ignore"}) is None  # 2 blocks are too few


def test_four_blocks_are_too_few_for_autorank():
    """autorank needs five blocks; with four the task gets no test (and the report no paragraph), not an error."""
    four = rows({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 3.0, 4.0, 5.0], "c": [3.0, 4.0, 5.0, 6.0]})
    assert friedman("generation", four, {"MMD": "lower"}) is None
    five = rows({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [2.0, 3.0, 4.0, 5.0, 6.0], "c": [3.0, 4.0, 5.0, 6.0, 7.0]})
    assert friedman("generation", five, {"MMD": "lower"}) is not None
