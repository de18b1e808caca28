"""Paired tie rule of the tables: two models are compared repeat by repeat over the same bootstrap resamples, and
the seed variance of their difference counts (bench.report.tables.paired_difference / tied_cells).

Per seed s, d[s, r] = a[s, r] - b[s, r]; D = mean_s mean_r d; noise^2 = mean_s var_r(d, ddof 1) + var_s(mean_r d,
ddof 1) (the second term only with two or more seeds); tied iff |D| <= noise. Rows without repeats fall back to
the unpaired rule |a - b| <= sqrt(s_a^2 + s_b^2). Expected outcomes below are worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.report import tables
from bench.report.render import collect_rows, read_results_csv, write_results_csv
from tests.test_tie_rule import _flags, _markdown_column

# one seed's shared resample noise: the repeats of every model move with it (same resample, same direction)
SHARED = np.array([0.0, 0.4, -0.4, 0.2, -0.2])  # mean 0, var (ddof 1) 0.4 / 4 = 0.1, std 0.3162


def _rows(cells: dict[str, list], metric: str = "M", with_repeats: bool = True) -> pd.DataFrame:
    """One (dataset, resolution) group: model -> per-seed repeats (one list per seed); value and std are the
    mean and ddof-1 std of the repeats, as the tasks compute them."""
    records = []
    for model, seeds in cells.items():
        for seed, repeats in enumerate(seeds):
            repeats = None if repeats is None else np.asarray(repeats, dtype=float)
            records.append({"suite": "s", "task": "generation", "dataset": "d", "resolution": 60, "model": model,
                            "seed": seed, "metric": metric, "status": "ok", "note": "",
                            "value": float(repeats.mean()), "std": float(repeats.std(ddof=1)),
                            "repeats": tuple(repeats) if with_repeats else None})
    return pd.DataFrame.from_records(records)


# ------------------------------------------------------------------------------------------- hand computed


def test_noise_by_hand_on_a_tiny_example():
    a = {0: [1.0, 2.0, 3.0], 1: [2.0, 2.0, 5.0]}
    b = {0: [0.0, 2.0, 1.0], 1: [1.0, 1.0, 1.0]}
    # d0 = [1, 0, 2]: mean 1, var (0 + 1 + 1) / 2 = 1;  d1 = [1, 1, 4]: mean 2, var (1 + 1 + 4) / 2 = 3
    # D = (1 + 2) / 2 = 1.5; noise^2 = (1 + 3) / 2 + var([1, 2], ddof 1) = 2 + 0.5 = 2.5
    d, noise = tables.paired_difference(a, b)
    assert d == pytest.approx(1.5) and noise == pytest.approx(math.sqrt(2.5))
    assert tables.tied_paired(a, b)  # 1.5 <= 1.581
    # seed order does not matter, a list in seed order means the same, and the difference flips its sign
    assert tables.paired_difference({1: a[1], 0: a[0]}, b) == pytest.approx((1.5, math.sqrt(2.5)))
    assert tables.paired_difference([a[0], a[1]], [b[0], b[1]]) == pytest.approx((1.5, math.sqrt(2.5)))
    assert tables.paired_difference(b, a) == pytest.approx((-1.5, math.sqrt(2.5)))
    # one seed: no seed term; D = 1 and noise = sqrt(1) = 1 exactly, and the boundary is a tie
    assert tables.paired_difference({0: a[0]}, {0: b[0]}) == (1.0, 1.0)
    assert tables.tied_paired({0: a[0]}, {0: b[0]})
    # seed 1 alone: D = 2 > sqrt(3) = 1.732 -> beyond noise
    assert tables.paired_difference({1: a[1]}, {1: b[1]}) == pytest.approx((2.0, math.sqrt(3.0)))
    assert not tables.tied_paired({1: a[1]}, {1: b[1]})


def test_pairs_that_cannot_be_formed_give_none():
    assert tables.paired_difference({0: [1.0, 2.0]}, {1: [1.0, 2.0]}) is None  # other seeds
    assert tables.paired_difference({0: [1.0, 2.0]}, {0: [1.0, 2.0, 3.0]}) is None  # other repeat counts
    assert tables.paired_difference({0: [1.0]}, {0: [2.0]}) is None  # one repeat has no variance
    assert tables.tied_paired({0: [1.0, 2.0]}, {0: [1.0, 2.0, 3.0]}) is None


# ------------------------------------------------------------------------------------------ in the tables


def test_repeats_moving_together_resolve_what_the_unpaired_rule_calls_a_tie():
    # A and B share the resample noise (bootstrap std 0.316 each) and B is A + 0.05 on every repeat
    cells = {"A": [1.0 + SHARED], "B": [1.05 + SHARED]}
    # unpaired: 0.05 <= sqrt(0.1 + 0.1) = 0.447 -> tied for best
    unpaired = tables.summary_table(_rows(cells, with_repeats=False), {"M": "lower"})
    assert _flags(unpaired) == ([False, False], [True, True], [1.5, 1.5])
    # paired: d = -0.05 on every repeat, variance 0 -> |D| = 0.05 > 0: A best beyond noise
    paired = tables.summary_table(_rows(cells), {"M": "lower"})
    assert _flags(paired) == ([True, False], [False, False], [1.0, 2.0])
    assert _markdown_column(paired) == ["**1.000 ± 0.316**", "1.050 ± 0.316"]
    assert paired.has_repeats["M"].tolist() == [True, True]
    # the same values with the resample noise not shared (B's repeats in another order) stay a tie
    shuffled = {"A": [1.0 + SHARED], "B": [1.05 + SHARED[[1, 0, 3, 2, 4]]]}
    assert _flags(tables.summary_table(_rows(shuffled), {"M": "lower"}))[1] == [True, True]


def test_ranks_below_the_leader_use_the_paired_rule_too():
    cells = {"A": [1.0 + SHARED], "B": [1.05 + SHARED], "C": [1.1 + SHARED]}
    assert _flags(tables.summary_table(_rows(cells), {"M": "lower"}))[2] == [1.0, 2.0, 3.0]
    assert _flags(tables.summary_table(_rows(cells, with_repeats=False), {"M": "lower"}))[2] == [2.0, 2.0, 2.0]
    # higher is better: the order flips, still resolved
    assert _flags(tables.summary_table(_rows(cells), {"M": "higher"}))[2] == [3.0, 2.0, 1.0]


# seeds: A's per-seed means 1.0, 1.2, 1.1 and B's 1.38, 1.18, 1.28 move against each other; the bootstrap noise of
# each seed is small (std 0.018) and mostly shared
E_A = np.array([0.01, -0.01, 0.02, -0.02])
E_B = np.array([0.02, -0.02, 0.01, -0.01])
SEEDED = {"A": [1.0 + E_A, 1.2 + E_A, 1.1 + E_A], "B": [1.38 + E_B, 1.18 + E_B, 1.28 + E_B]}


def test_seed_variance_of_the_difference_makes_a_tie():
    # by hand: d per seed = (-0.38, 0.02, -0.18) + (-0.01, 0.01, 0.01, -0.01); D = -0.18;
    # mean var_r = 4e-4 / 3; var over seeds of (-0.38, 0.02, -0.18) = (0.04 + 0.04 + 0) / 2 = 0.04
    a = {s: v for s, v in enumerate(SEEDED["A"])}
    b = {s: v for s, v in enumerate(SEEDED["B"])}
    d, noise = tables.paired_difference(a, b)
    assert d == pytest.approx(-0.18) and noise == pytest.approx(math.sqrt(4e-4 / 3 + 0.04))
    # |D| = 0.18 <= 0.2003: tied, where the bootstrap noise alone (one seed: D = -0.38, noise 0.0115) is not
    table = tables.summary_table(_rows(SEEDED), {"M": "lower"})
    assert _flags(table) == ([False, False], [True, True], [1.5, 1.5])
    one_seed = tables.summary_table(_rows({m: v[:1] for m, v in SEEDED.items()}), {"M": "lower"})
    assert _flags(one_seed)[0] == [True, False]
    # unpaired, each cell's seed std is 0.1: 0.18 > sqrt(0.01 + 0.01) = 0.141 -> A best beyond noise
    unpaired = tables.summary_table(_rows(SEEDED, with_repeats=False), {"M": "lower"})
    assert _flags(unpaired)[0] == [True, False]


def test_several_seeds_show_the_seed_std_and_the_mean_bootstrap_std():
    table = tables.summary_table(_rows(SEEDED), {"M": "lower"})
    boot = float(np.std(E_A, ddof=1))  # 0.01826, the same on every seed
    assert table.stds.loc[("d", 60, "A"), "M"] == pytest.approx(0.1)
    assert table.boot_stds.loc[("d", 60, "A"), "M"] == pytest.approx(boot)
    assert _markdown_column(table) == ["1.100 ± 0.100 (0.018) ≈", "1.280 ± 0.100 (0.018) ≈"]
    text = tables.to_markdown(table, "t")
    caption = text.splitlines()[0]
    assert "std across seeds" in caption and "in parentheses is the mean over seeds of the bootstrap std" in caption
    assert "same bootstrap resamples" in caption and "variance across seeds" in caption
    latex = tables.to_latex(table, "t")
    assert r"1.100 $\pm$ 0.100 (0.018) $\approx$" in latex and "same bootstrap resamples" in latex
    # one seed: no parentheses, the ± is the bootstrap std itself
    one_seed = tables.summary_table(_rows({m: v[:1] for m, v in SEEDED.items()}), {"M": "lower"})
    assert "(" not in "".join(_markdown_column(one_seed))


def test_wide_csv_carries_the_mean_bootstrap_std(tmp_path):
    table = tables.summary_table(_rows(SEEDED), {"M": "lower"})
    back = pd.read_csv(tables.to_csv(table, tmp_path / "t.csv"), keep_default_na=False, na_values=[""])
    assert back["M_boot_std"].tolist() == pytest.approx([float(np.std(E_A, ddof=1))] * 2)
    assert back["M_std"].tolist() == pytest.approx([0.1, 0.1])


def test_missing_repeats_fall_back_to_the_unpaired_rule():
    cells = {"A": [1.0 + SHARED], "B": [1.05 + SHARED]}
    rows = _rows(cells)
    # B has no repeats (an old cache entry): unpaired, tied like the table without the column
    rows.at[1, "repeats"] = None
    table = tables.summary_table(rows, {"M": "lower"})
    assert _flags(table) == ([False, False], [True, True], [1.5, 1.5])
    assert table.has_repeats["M"].tolist() == [True, False]
    # so do NaN (a CSV's empty field), an empty text, a single repeat and repeat counts that differ
    # (six repeats against five: truncating to five would pair them and resolve A as best)
    for missing in (math.nan, "", (1.05,), tuple(1.05 + np.append(SHARED, 0.0))):
        rows.at[1, "repeats"] = missing
        if isinstance(missing, tuple):
            rows.at[1, "value"] = float(np.mean(missing))  # a value must be its repeats' mean
            rows.at[1, "std"] = float(np.std(missing, ddof=1)) if len(missing) > 1 else 0.0
        assert _flags(tables.summary_table(rows, {"M": "lower"}))[1] == [True, True], missing
    # a table without any repeats says that its comparison is unpaired
    plain = tables.summary_table(_rows(cells).drop(columns="repeats"), {"M": "lower"})
    assert "no per-repeat values" in tables.to_markdown(plain, "t").splitlines()[0]
    assert _flags(plain)[1] == [True, True]


def test_seeds_that_differ_fall_back_to_the_unpaired_rule():
    # A on seeds 0 and 1, B on seeds 0 and 2: nothing pairs up, so each cell's seed std decides
    # B = A + 0.1 on every seed and repeat: paired, d = -0.1 throughout with no variance -> A best
    rows = _rows({"A": [1.0 + E_A, 1.2 + E_A], "B": [1.1 + E_A, 1.3 + E_A]})
    assert _flags(tables.summary_table(rows, {"M": "lower"}))[0] == [True, False]
    rows.loc[rows["model"] == "B", "seed"] = [0, 2]
    # unpaired: seed stds 0.1414 each, 0.1 <= sqrt(0.02 + 0.02) = 0.2 -> tied
    assert _flags(tables.summary_table(rows, {"M": "lower"}))[1] == [True, True]


def test_repeats_that_do_not_average_to_the_value_are_an_error():
    rows = _rows({"A": [1.0 + SHARED], "B": [1.05 + SHARED]})
    rows.at[1, "value"] = 1.5
    with pytest.raises(ValueError, match="average to"):
        tables.summary_table(rows, {"M": "lower"})
    with pytest.raises(ValueError, match="space-separated"):
        tables.parse_repeats("0.1 x")


def test_tie_groups_take_a_pairwise_callback():
    values, stds = [1.0, 1.1, 1.2], [0.0, 0.0, 0.0]
    assert tables.tie_groups(values, stds, "lower") == [[0], [1], [2]]
    assert tables.tie_groups(values, stds, "lower", tied=lambda i, k: True) == [[0, 1, 2]]
    # 0 ~ 2 only: groups {0, 2}, {1}; a leader is in its own group even if the callback says otherwise
    pairs = {(0, 2), (2, 0)}
    assert tables.tie_groups(values, stds, "lower", tied=lambda i, k: (i, k) in pairs) == [[0, 2], [1]]
    assert tables.tie_groups(values, stds, "higher", tied=lambda i, k: (i, k) in pairs) == [[0, 2], [1]]


# ------------------------------------------------------------------------------------------- results.csv


def test_results_csv_round_trips_the_repeats(tmp_path):
    rows = _rows(SEEDED)
    odd = (1 / 3, 0.1, 1e-300, -2.5e17)
    rows.at[0, "repeats"], rows.at[0, "value"] = odd, float(np.mean(odd))
    rows.at[1, "repeats"] = None
    rows["setting"] = ""
    rows.loc[2, ["status", "value", "std", "note", "repeats"]] = ["n/a", math.nan, math.nan, "no capability", None]
    path = write_results_csv(rows, tmp_path / "results.csv")
    text = path.read_text()
    assert "0.3333333333333333 0.1 1e-300 -2.5e+17" in text
    back = read_results_csv(path)
    assert back["repeats"].iloc[0] == odd  # exact, as a tuple of floats
    assert back["repeats"].iloc[1] is None and back["repeats"].iloc[2] is None
    for i in range(3, len(rows)):
        assert back["repeats"].iloc[i] == rows["repeats"].iloc[i]
    assert back["status"].iloc[2] == "n/a" and back["setting"].iloc[0] == "" and back["note"].iloc[0] == ""
    np.testing.assert_array_equal(back["value"].to_numpy(), rows["value"].to_numpy(dtype=float))
    # the table from the rows read back decides as the one from the rows themselves
    rows2 = _rows(SEEDED)
    back2 = read_results_csv(write_results_csv(rows2, tmp_path / "r2.csv"))
    assert _flags(tables.summary_table(back2, {"M": "lower"})) == _flags(tables.summary_table(rows2, {"M": "lower"}))


def test_results_csv_without_the_column_still_reads(tmp_path):
    # a results.csv written before the column existed: a committed run's file without it
    committed = pd.read_csv("results/quick/results.csv", keep_default_na=False).drop(columns="repeats")
    committed.to_csv(tmp_path / "committed.csv", index=False)
    old = read_results_csv(tmp_path / "committed.csv")
    assert old["repeats"].map(lambda v: v is None).all() and len(old) > 0
    rows = _rows({"A": [1.0 + SHARED], "B": [1.05 + SHARED]}).drop(columns="repeats")
    rows.to_csv(tmp_path / "old.csv", index=False)
    back = read_results_csv(tmp_path / "old.csv")
    assert back["repeats"].tolist() == [None, None]
    assert _flags(tables.summary_table(back, {"M": "lower"}))[1] == [True, True]  # unpaired


def test_collect_rows_carries_the_repeats_from_the_cache(tmp_path):
    from bench.cache import CellCache

    cache = CellCache(tmp_path)
    row = {"setting": "", "metric": "M", "value": 1.0, "std": float(np.std(1.0 + SHARED, ddof=1)), "status": "ok",
           "note": ""}
    cache.save("with", {"rows": [{**row, "repeats": list(1.0 + SHARED)}], "status": "ok", "note": ""}, None)
    cache.save("without", {"rows": [row], "status": "ok", "note": ""}, None)  # an entry from before the key
    cells = [{"key": key, "suite": "s", "task": "generation", "dataset": "d", "resolution": 60, "model": key,
              "seed": 0} for key in ("with", "without")]
    rows = collect_rows(cells, cache)
    assert list(rows.columns)[-1] == "repeats"
    assert rows["repeats"].iloc[0] == pytest.approx(tuple(1.0 + SHARED)) and rows["repeats"].iloc[1] is None


# ------------------------------------------------------------------------------------------------ suites


def test_paper_suites_run_several_seeds():
    from bench.suite import load_suite

    assert load_suite("energydiff_paper").seeds == (0, 1, 2)
    assert load_suite("smartmeterfm_paper").seeds == (0, 1, 2)
    assert load_suite("unified_paper").seeds == (0, 1, 2, 3, 4)
