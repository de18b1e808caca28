"""The noise rule of the report: best marks, ranks and the papers' "same best model" never order by noise.

Rule (bench.report.tables.tied_within_noise): a and b tie when |a - b| <= sqrt(std_a^2 + std_b^2), boundary
included, a NaN std counts as 0. The expected outcomes below are worked out by hand from that formula.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.report import tables
from bench.report.agreement import rank_agreement


def _rows(cells: dict[str, tuple[float, float] | list[tuple[float, float]] | str], metric: str = "M"
          ) -> pd.DataFrame:
    """One (dataset, resolution) group: model -> (value, std) of one seed, a list of them (one per seed), or
    "failed"."""
    records = []
    for model, spec in cells.items():
        seeds = spec if isinstance(spec, list) else [spec]
        for seed, cell in enumerate(seeds):
            row = {"suite": "s", "task": "generation", "dataset": "d", "resolution": 60, "model": model,
                   "seed": seed, "metric": metric, "note": ""}
            if cell == "failed":
                row.update(value=math.nan, std=math.nan, status="failed", note="diverged")
            else:
                row.update(value=cell[0], std=cell[1], status="ok")
            records.append(row)
    return pd.DataFrame.from_records(records)


def _table(cells, goal: str = "lower") -> tables.TableData:
    return tables.summary_table(_rows(cells), {"M": goal})


def _flags(table: tables.TableData) -> tuple[list[bool], list[bool], list[float]]:
    return table.best["M"].tolist(), table.tied["M"].tolist(), table.ranks["M"].tolist()


def _markdown_column(table: tables.TableData) -> list[str]:
    lines = [line for line in tables.to_markdown(table, "t").splitlines() if line.startswith("|")][2:]
    return [line.strip("|").split("|")[3].strip() for line in lines]


# ------------------------------------------------------------------------------------------- the rule itself


def test_rule_on_the_worked_examples():
    assert tables.tied_within_noise(1.00, 0.10, 1.05, 0.10)  # 0.05 <= 0.141
    assert not tables.tied_within_noise(1.00, 0.01, 1.50, 0.01)  # 0.5 > 0.0141
    assert tables.tied_within_noise(-0.001, 0.01, 0.002, 0.01)  # a negative unbiased MMD is no better than 0.002
    assert not tables.tied_within_noise(-0.05, 0.001, 0.002, 0.001)  # ... unless the noise resolves it
    assert tables.tied_within_noise(1.05, 0.10, 1.00, 0.10)  # symmetric


def test_boundary_is_a_tie_and_just_beyond_is_not():
    # 0.375 and 0.5 are exact in binary and sqrt(0.375^2 + 0.5^2) = 0.625 exactly, as is 1.625 - 1.0
    assert tables.tied_within_noise(1.0, 0.375, 1.625, 0.5)
    assert not tables.tied_within_noise(1.0, 0.375, 1.625 + 1e-9, 0.5)
    # float rounding of the difference does not move the boundary: 1.1 - 1.0 = 0.10000000000000009
    assert tables.tied_within_noise(1.0, 0.1, 1.1, 0.0) and tables.tied_within_noise(1.0, 0.0, 0.9, 0.1)


def test_missing_or_zero_std_compares_exactly():
    assert not tables.tied_within_noise(1.0, math.nan, 1.0 + 1e-9, math.nan)
    assert not tables.tied_within_noise(1.0, 0.0, 1.0 + 1e-9, 0.0)
    assert tables.tied_within_noise(1.0, math.nan, 1.0, 0.0)
    assert tables.tied_within_noise(0.1 + 0.2, 0.0, 0.3, 0.0)  # float noise (12 significant digits) ties
    # one side without a std: the other's std is the whole noise
    assert tables.tied_within_noise(1.0, math.nan, 1.1, 0.1)
    assert not tables.tied_within_noise(1.0, math.nan, 1.1, 0.0999)


def test_rule_matches_the_squared_form_on_random_pairs():
    # independent formulation: (a - b)^2 <= sa^2 + sb^2; pairs within 1e-9 of the boundary are left out
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=2000), rng.normal(size=2000)
    sa, sb = rng.exponential(0.5, 2000), rng.exponential(0.5, 2000)
    margin = (a - b) ** 2 - (sa ** 2 + sb ** 2)
    keep = np.abs(margin) > 1e-9
    got = np.array([tables.tied_within_noise(*v) for v in zip(a, sa, b, sb)])
    np.testing.assert_array_equal(got[keep], (margin <= 0)[keep])
    assert got.any() and not got.all()


def test_rule_rejects_bad_input():
    with pytest.raises(ValueError, match="negative"):
        tables.tied_within_noise(1.0, -0.1, 1.0, 0.1)
    with pytest.raises(ValueError, match="finite"):
        tables.tied_within_noise(math.inf, 0.1, 1.0, 0.1)
    with pytest.raises(ValueError, match="goal"):
        tables.tie_groups([1.0, 2.0], [0.1, 0.1], "ignore")
    with pytest.raises(ValueError, match="stds"):
        tables.tie_groups([1.0, 2.0], [0.1], "lower")


# ----------------------------------------------------------------------------------------- summary tables


def test_within_noise_is_a_tie_without_bold():
    t = _table({"A": (1.00, 0.10), "B": (1.05, 0.10)})
    assert _flags(t) == ([False, False], [True, True], [1.5, 1.5])
    cells = _markdown_column(t)
    assert cells == ["1.000 ± 0.100 ≈", "1.050 ± 0.100 ≈"]
    assert "**" not in tables.to_markdown(t, "t").split("\n\n", 1)[1]


def test_beyond_noise_is_bold_alone():
    t = _table({"A": (1.00, 0.01), "B": (1.50, 0.01)})
    assert _flags(t) == ([True, False], [False, False], [1.0, 2.0])
    assert _markdown_column(t) == ["**1.000 ± 0.010**", "1.500 ± 0.010"]


def test_goal_higher_flips_the_winner():
    t = _table({"A": (1.00, 0.01), "B": (1.50, 0.01)}, goal="higher")
    assert _flags(t) == ([False, True], [False, False], [2.0, 1.0])
    tied = _table({"A": (1.00, 0.10), "B": (1.05, 0.10)}, goal="higher")
    assert _flags(tied) == ([False, False], [True, True], [1.5, 1.5])


def test_unranked_goal_marks_nothing():
    t = _table({"A": (1.00, 0.01), "B": (1.50, 0.01)}, goal="ignore")
    assert not t.best["M"].any() and not t.tied["M"].any() and t.ranks["M"].isna().all()


def test_negative_mmd_does_not_win_by_noise():
    t = _table({"A": (0.002, 0.01), "B": (-0.001, 0.01)})
    assert _flags(t) == ([False, False], [True, True], [1.5, 1.5])
    assert _markdown_column(t)[1].startswith("-0.001000 ± ")  # shown as it is
    # the rule alone decides: beyond noise a negative value is best like any other
    clear = _table({"A": (0.002, 0.001), "B": (-0.05, 0.001)})
    assert _flags(clear) == ([False, True], [False, False], [2.0, 1.0])


def test_boundary_pins_non_strict_rule_in_tables():
    assert _flags(_table({"A": (1.0, 0.375), "B": (1.625, 0.5)}))[1] == [True, True]
    assert _flags(_table({"A": (1.0, 0.375), "B": (1.626, 0.5)}))[0] == [True, False]


def test_deterministic_values_compare_exactly():
    t = _table({"A": (1.0, math.nan), "B": (1.0001, math.nan), "C": (1.0, 0.0)})
    assert _flags(t) == ([False, False, False], [True, False, True], [1.5, 3.0, 1.5])


def test_seed_std_is_the_noise_when_a_cell_has_several_seeds():
    # A: seeds 1.0 and 1.2 -> 1.1 ± 0.1414 (seed std, ddof 1; the tiny bootstrap stds play no part)
    a = [(1.0, 1e-6), (1.2, 1e-6)]
    t = _table({"A": a, "B": [(1.3, 1e-6), (1.3, 1e-6)]})  # 0.2 > sqrt(0.02): A best
    assert t.stds.loc[("d", 60, "A"), "M"] == pytest.approx(math.sqrt(0.02))
    assert _flags(t)[0] == [True, False]
    t = _table({"A": a, "B": [(1.2, 1e-6), (1.2, 1e-6)]})  # 0.1 <= 0.1414: tie
    assert _flags(t)[1] == [True, True]


def test_ranks_follow_tie_groups_from_the_best_down():
    # a ~ b (0.12 <= 0.141) and b ~ c (0.13 <= 0.141) but not a ~ c (0.25): groups {a, b}, {c}
    t = _table({"a": (1.0, 0.1), "b": (1.12, 0.1), "c": (1.25, 0.1), "d": "failed"})
    assert _flags(t) == ([False] * 4, [True, True, False, False], [1.5, 1.5, 3.0, 4.0])
    # a wide interval within noise of the leader ties for best even behind a narrower, resolved value
    t = _table({"lead": (1.0, 0.01), "narrow": (1.1, 0.01), "wide": (1.5, 1.0)})
    assert _flags(t) == ([False] * 3, [True, False, True], [1.5, 3.0, 1.5])
    # three-way tie: equal ranks, the mean of positions 1-3
    t = _table({"x": (0.50, 0.1), "y": (0.52, 0.1), "z": (0.55, 0.1), "w": (5.0, 0.1)})
    assert _flags(t)[2] == [2.0, 2.0, 2.0, 4.0]


def test_tie_groups_share_the_lead_between_equal_best_values():
    # two exact leaders: 1.3 is tied with the leader whose std is 0.5, so it joins the first group
    groups = tables.tie_groups([1.0, 1.0, 1.3, 2.0], [0.0, 0.5, 0.0, 0.0], "lower")
    assert groups == [[0, 1, 2], [3]]


def test_rank_summary_counts_ties_and_shares_their_rank():
    tied = _table({"A": (1.00, 0.10), "B": (1.05, 0.10)})
    clear = _table({"A": (1.00, 0.01), "B": (1.50, 0.01)})
    summary = tables.rank_summary({"one": tied, "two": clear})
    # (rank - 1) / (n - 1): tied 1.5 -> 0.5 each; clear 1 -> 0, 2 -> 1
    assert summary.loc["A", "one"] == pytest.approx(0.5) and summary.loc["B", "one"] == pytest.approx(0.5)
    assert summary["overall"].tolist() == pytest.approx([0.25, 0.75])
    assert summary["best"].tolist() == [1, 0] and summary["tied"].tolist() == [1, 1]
    assert "tied" in tables.rank_summary_markdown(summary).splitlines()[2]


def test_table_rejects_negative_std():
    rows = _rows({"A": (1.0, -0.1), "B": (2.0, 0.1)})
    with pytest.raises(ValueError, match="negative std"):
        tables.summary_table(rows, {"M": "lower"})


# ------------------------------------------------------------------------------- agreement with the papers


def _comparison(ours: dict[str, tuple[float, float]], paper: dict[str, tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"source": "energydiff", "table": "Table II", "dataset": "wpuq", "resolution": 60,
                          "setting": "", "model": m, "metric": "GFD", "ours": ours[m][0], "ours_std": ours[m][1],
                          "paper": paper[m][0], "paper_std": paper[m][1], "status": "ok"} for m in ours])


def test_same_best_uses_the_noise_rule_on_both_sides():
    paper = {"A": (2.0, math.nan), "B": (1.0, math.nan)}  # the paper prints no ±: exact, B best
    # ours cannot tell A from B within noise: both best, B among them -> same best
    out = rank_agreement(_comparison({"A": (1.00, 0.10), "B": (1.05, 0.10)}, paper), {"GFD": "lower"})
    assert out["ours_best"].iloc[0] == "A, B" and out["paper_best"].iloc[0] == "B"
    assert out["same_best"].iloc[0] == 1.0
    # resolved: A alone is our best, the paper's is B
    out = rank_agreement(_comparison({"A": (1.00, 0.01), "B": (1.50, 0.01)}, paper), {"GFD": "lower"})
    assert (out["ours_best"].iloc[0], out["same_best"].iloc[0]) == ("A", 0.0)
    # the paper's ± counts too: 2.0 ± 0.6 vs 1.0 ± 0.6 differ by 1.0 <= 0.849? no -> B alone; ± 0.8 -> both
    out = rank_agreement(_comparison({"A": (1.00, 0.01), "B": (1.50, 0.01)},
                                     {"A": (2.0, 0.6), "B": (1.0, 0.6)}), {"GFD": "lower"})
    assert out["paper_best"].iloc[0] == "B"
    out = rank_agreement(_comparison({"A": (1.00, 0.01), "B": (1.50, 0.01)},
                                     {"A": (2.0, 0.8), "B": (1.0, 0.8)}), {"GFD": "lower"})
    assert (out["paper_best"].iloc[0], out["same_best"].iloc[0]) == ("A, B", 1.0)
    # Kendall's tau-b reads the values only: -1 here whatever the stds
    assert out["kendall_tau"].iloc[0] == pytest.approx(-1.0)


def test_agreement_needs_the_stds():
    frame = _comparison({"A": (1.0, 0.1), "B": (2.0, 0.1)}, {"A": (1.0, 0.1), "B": (2.0, 0.1)})
    with pytest.raises(ValueError, match="ours_std"):
        rank_agreement(frame.drop(columns="ours_std"), {"GFD": "lower"})
