"""Report layer: summary tables (aggregation, best flags, ranks, renderers) and plots."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.report import plots, tables

GOALS = {"MMD": "lower", "GFD": "lower", "KL": "lower", "WD": "lower", "COV": "higher"}
METRICS = list(GOALS)
PD_REASON = "correlation matrix not positive definite"
SINGULAR = "singular covariance"

# (resolution, model) -> {metric: value, or ("failed", reason), or "n/a"}
CELLS = {
    (15, "A"): {"MMD": 0.0008, "GFD": 1.0, "KL": 0.5, "WD": 0.2, "COV": 0.90},
    (15, "B"): {"MMD": 0.0010, "GFD": 1.0, "KL": 0.3, "WD": 0.1, "COV": 0.95},
    (15, "C"): {m: ("failed", PD_REASON) for m in METRICS},
    (60, "A"): {"MMD": 0.0020, "GFD": 2.0, "KL": 0.1, "WD": 0.05, "COV": 0.80},
    (60, "B"): {m: "n/a" for m in METRICS},
    (60, "C"): {"MMD": 0.0010, "GFD": ("failed", SINGULAR), "KL": 0.1, "WD": 0.07, "COV": 0.85},
}
# Worked out by hand from CELLS, whose std is a tenth of the value (see _rows): lower is better except COV;
# two values tie when |a - b| <= sqrt(sa^2 + sb^2); failed never best. E.g. res 15 MMD: 0.0008 +- 0.00008 vs
# 0.0010 +- 0.0001 differ by 2e-4 > 1.28e-4, so A is best alone; res 15 COV: 0.90 +- 0.09 vs 0.95 +- 0.095 differ
# by 0.05 <= 0.131, so A and B tie; res 60 GFD: A is the only ok cell, so best.
BEST = {  # bold: best beyond noise
    (15, "A"): {"MMD"},
    (15, "B"): {"KL", "WD"},
    (15, "C"): set(),
    (60, "A"): {"GFD", "WD"},
    (60, "B"): set(),
    (60, "C"): {"MMD"},
}
TIED = {  # tied for best within noise
    (15, "A"): {"GFD", "COV"},
    (15, "B"): {"GFD", "COV"},
    (15, "C"): set(),
    (60, "A"): {"KL", "COV"},
    (60, "B"): set(),
    (60, "C"): {"KL", "COV"},
}
# res 15: A ranks 1, 1.5, 2, 2, 1.5; B 2, 1.5, 1, 1, 1.5; C (failed) 3 everywhere.
# res 60: A 2, 1, 1.5, 1, 1.5; C 1, 2 (failed GFD), 1.5, 2, 1.5; B is n/a, so unranked.
AVG_RANK = {(15, "A"): 1.6, (15, "B"): 1.4, (15, "C"): 3.0, (60, "A"): 1.4, (60, "B"): math.nan,
            (60, "C"): 1.6}


def _rows(cells=CELLS, dataset="toy", seed=0) -> pd.DataFrame:
    records = []
    for (res, model), metrics in cells.items():
        for metric, spec in metrics.items():
            row = {"suite": "test", "task": "generation", "dataset": dataset, "resolution": res, "model": model,
                   "seed": seed, "metric": metric}
            if spec == "n/a":
                row.update(value=np.nan, std=np.nan, status="n/a", note="model lacks this capability")
            elif isinstance(spec, tuple):
                row.update(value=np.nan, std=np.nan, status="failed", note=spec[1])
            else:
                row.update(value=spec, std=spec / 10, status="ok", note="")
            records.append(row)
    return pd.DataFrame.from_records(records)


@pytest.fixture
def table() -> tables.TableData:
    return tables.summary_table(_rows(), GOALS)


def _markdown_cells(text: str) -> dict[tuple[int, str], dict[str, str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    out = {}
    for line in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
        out[(int(cells["resolution"]), cells["model"])] = cells
    return out


def test_table_shape_status_and_notes(table):
    assert table.index_names == ["dataset", "resolution", "model"]
    assert table.metrics == METRICS
    assert table.group_levels == ["dataset", "resolution"]
    assert list(table.means.index) == [("toy", r, m) for r, m in CELLS]
    assert table.means.loc[("toy", 15, "A"), "MMD"] == pytest.approx(0.0008)
    assert table.stds.loc[("toy", 15, "A"), "MMD"] == pytest.approx(0.00008)
    assert table.status.loc[("toy", 15, "C"), "KL"] == "failed"
    assert table.notes.loc[("toy", 15, "C"), "KL"] == PD_REASON
    assert table.status.loc[("toy", 60, "B"), "WD"] == "n/a"
    assert table.notes.loc[("toy", 60, "B"), "WD"] == "model lacks this capability"
    assert math.isnan(table.means.loc[("toy", 60, "C"), "GFD"])


def test_best_flags_respect_goal_and_ties(table):
    for (res, model), best in BEST.items():
        flagged = {m for m in METRICS if table.best.loc[("toy", res, model), m]}
        assert flagged == best, (res, model)
        tied = {m for m in METRICS if table.tied.loc[("toy", res, model), m]}
        assert tied == TIED[(res, model)], (res, model)


def test_average_ranks_by_hand(table):
    assert table.ranks.loc[("toy", 15, "A")].tolist() == [1.0, 1.5, 2.0, 2.0, 1.5]
    assert table.ranks.loc[("toy", 15, "C")].tolist() == [3.0] * 5
    assert table.ranks.loc[("toy", 60, "C")].tolist() == [1.0, 2.0, 1.5, 2.0, 1.5]
    assert table.ranks.loc[("toy", 60, "B")].isna().all()
    for (res, model), expected in AVG_RANK.items():
        got = table.avg_rank.loc[("toy", res, model)]
        if math.isnan(expected):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(expected)


def test_several_failed_cells_share_the_last_ranks():
    cells = {(1, "A"): {"MMD": 0.5}, (1, "B"): {"MMD": ("failed", "x")}, (1, "C"): {"MMD": ("failed", "y")}}
    t = tables.summary_table(_rows(cells), {"MMD": "lower"})
    assert t.ranks["MMD"].tolist() == [1.0, 2.5, 2.5]


def test_seeds_mean_and_across_seed_std_and_partial_failure():
    rows = pd.concat([_rows({(1, "A"): {"MMD": 1.0}, (1, "B"): {"MMD": 3.0}}, seed=0),
                      _rows({(1, "A"): {"MMD": 2.0}, (1, "B"): {"MMD": ("failed", "diverged")}}, seed=1)])
    t = tables.summary_table(rows, {"MMD": "lower"})
    key = ("toy", 1, "A")
    assert t.means.loc[key, "MMD"] == pytest.approx(1.5)
    assert t.stds.loc[key, "MMD"] == pytest.approx(np.std([1.0, 2.0], ddof=1))
    assert t.n_seeds.loc[key, "MMD"] == 2
    assert t.status.loc[("toy", 1, "B"), "MMD"] == "failed"
    assert t.notes.loc[("toy", 1, "B"), "MMD"] == "failed on 1 of 2 seeds: diverged"
    assert "std across seeds" in tables.to_markdown(t, "caption")


def test_markdown_bold_exactly_at_best_failed_footnote_and_na(table):
    text = tables.to_markdown(table, "Generation on toy data.")
    assert text.startswith("Generation on toy data.")
    assert "bootstrap std" in text.splitlines()[0]
    cells = _markdown_cells(text)
    assert set(cells) == set(CELLS)
    for key, best in BEST.items():
        for metric in METRICS:
            column = f"{metric} {'↓' if GOALS[metric] == 'lower' else '↑'}"
            value = cells[key][column]
            assert value.startswith("**") == (metric in best), (key, metric, value)
            assert value.endswith(" ≈") == (metric in TIED[key]), (key, metric, value)
    assert cells[(15, "C")]["MMD ↓"] == "failed [1]"
    assert cells[(60, "C")]["GFD ↓"] == "failed [2]"
    assert cells[(60, "B")]["KL ↓"] == "n/a"
    assert cells[(15, "B")]["avg. rank"] == "1.40"
    assert "tied for best within noise" in text.splitlines()[0]
    assert cells[(60, "B")]["avg. rank"] == "–"
    assert f"- [1] failed: {PD_REASON} — C (dataset=toy, resolution=15)" in text
    assert f"- [2] failed: {SINGULAR} — C (dataset=toy, resolution=60)" in text
    assert "8.000e-04" in cells[(15, "A")]["MMD ↓"]  # tiny values keep their digits


def test_latex_bold_pm_and_footnotes(table):
    text = tables.to_latex(table, "Task `generation` on toy_data: mean ± std")
    n_best = sum(len(b) for b in BEST.values())
    assert text.count(r"\textbf{") == n_best
    n_tied = sum(len(t) for t in TIED.values())
    assert text.count(r" $\approx$ &") + text.count(r" $\approx$ \\") == n_tied  # cells end in the tie mark
    assert "≈" not in text and "²" not in text and "<=" not in text  # unicode and < escaped for LaTeX
    assert r"$\pm$" in text and "±" not in text
    assert r"\texttt{generation}" in text and r"toy\_data" in text
    assert r"failed$^{1}$" in text and PD_REASON in text
    assert text.startswith(r"\begin{table}") and r"\begin{tabular}" in text


def test_csv_round_trips_the_numbers(table, tmp_path):
    path = tables.to_csv(table, tmp_path / "sub" / "table.csv")
    # "n/a" is a status, not a missing value: only empty fields are missing
    back = pd.read_csv(path, float_precision="round_trip", keep_default_na=False, na_values=[""])
    assert list(back.columns[:3]) == ["dataset", "resolution", "model"]
    for metric in METRICS:
        np.testing.assert_array_equal(back[f"{metric}_mean"].to_numpy(), table.means[metric].to_numpy(float))
        np.testing.assert_array_equal(back[f"{metric}_std"].to_numpy(), table.stds[metric].to_numpy(float))
        assert back[f"{metric}_status"].tolist() == table.status[metric].tolist()
    np.testing.assert_array_equal(back["avg_rank"].to_numpy(), table.avg_rank.to_numpy())


def test_formatting_of_tiny_and_ordinary_values():
    assert tables.format_value(8e-4) == "8.000e-04"
    assert float(tables.format_value(8e-4)) == pytest.approx(8e-4)
    assert tables.format_value(0.0123) == "0.01230"
    assert tables.format_value(6.44404) == "6.444"
    assert tables.format_value(9.99996) == "10.00"
    assert tables.format_value(0.0) == "0"
    assert tables.format_mean_std(0.0123, 0.0004) == "0.01230 ± 0.00040"
    assert tables.format_mean_std(8e-4, 1e-4) == "8.000e-04 ± 1.0e-04"
    assert tables.format_mean_std(0.5, 2e-9) == "0.5000 ± 2.0e-09"  # a tiny std never prints as zero
    assert tables.format_mean_std(0.5, math.nan) == "0.5000"


def test_paper_layout_groups_by_resolution_then_model():
    cells = {(60, "A"): {m: 1.0 for m in tables.PAPER_METRICS}, (1, "A"): {m: 2.0 for m in tables.PAPER_METRICS},
             (1, "B"): {m: 1.0 for m in tables.PAPER_METRICS}}
    rows = pd.concat([_rows(cells, dataset="wpuq"), _rows(cells, dataset="lcl")])
    t = tables.paper_layout_table(rows, {m: "lower" for m in tables.PAPER_METRICS}, "wpuq")
    assert t.index_names == ["resolution", "model"]
    assert list(t.means.index) == [(1, "A"), (1, "B"), (60, "A")]
    assert t.best.loc[(60, "A")].all() and t.best.loc[(1, "B")].all() and not t.best.loc[(1, "A")].any()
    with pytest.raises(ValueError, match="no result rows for dataset"):
        tables.paper_layout_table(rows, GOALS, "cer")


def test_bad_input_is_a_clear_error():
    rows = _rows()
    with pytest.raises(ValueError, match="no goal given for metric"):
        tables.summary_table(rows, {"MMD": "lower"})
    with pytest.raises(ValueError, match="'lower', 'higher' or 'ignore'"):
        tables.summary_table(rows, {**GOALS, "KL": "smaller"})
    with pytest.raises(ValueError, match="share their"):
        tables.summary_table(pd.concat([rows, rows]), GOALS)
    with pytest.raises(ValueError, match="lack the column"):
        tables.summary_table(rows.drop(columns="status"), GOALS)
    with pytest.raises(ValueError, match="unknown status"):
        tables.summary_table(rows.assign(status="done"), GOALS)
    with pytest.raises(ValueError, match="not in the result rows"):
        tables.summary_table(rows, GOALS, metrics=["CRPS"])


# ------------------------------------------------------------------------------------------------- plots


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


@pytest.fixture
def profiles():
    rng = np.random.default_rng(0)
    hours = np.arange(24)
    real = 0.5 + 0.3 * np.sin(2 * np.pi * hours / 24) + 0.1 * rng.standard_normal((40, 24))
    real[:, 3] = 0.0  # a constant step: its correlations are undefined, not an error
    return real, {"good": real + 0.05 * rng.standard_normal(real.shape), "broken": None}


def test_plots_write_png_for_normal_and_failed_models(profiles, tmp_path):
    real, generated = profiles
    failures = {"broken": "did not converge"}
    out = [plots.plot_samples(real, generated, tmp_path / "a" / "samples.png", n_curves=10, resolution=60,
                              failures=failures),
           plots.plot_marginal_histograms(real, generated, tmp_path / "hist.png", bins=20, failures=failures),
           plots.plot_covariance(real, generated, tmp_path / "corr.png", failures=failures),
           plots.plot_samples(real, {"only-failed": None}, tmp_path / "failed.png")]
    for path in out:
        assert path.is_file() and _is_png(path), path


def test_correlation_matrix_matches_numpy_and_marks_constant_steps(profiles):
    real, _ = profiles
    corr = plots.correlation_matrix(real)
    assert np.isnan(corr[3]).all() and np.isnan(corr[:, 3]).all()
    keep = [i for i in range(real.shape[1]) if i != 3]
    expected = np.corrcoef(real[:, keep], rowvar=False)
    np.testing.assert_allclose(corr[np.ix_(keep, keep)], expected, atol=1e-12)


def test_plots_reject_mismatched_shapes(profiles, tmp_path):
    real, _ = profiles
    with pytest.raises(ValueError, match="steps"):
        plots.plot_samples(real, {"short": real[:, :12]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="2-D"):
        plots.plot_covariance(real[0], {}, tmp_path / "y.png")


def _setting_rows() -> pd.DataFrame:
    # two settings x two metrics; values chosen so the best model differs per column
    values = {("A", "day", "MAE"): 1.0, ("A", "day", "ACC"): 0.9, ("A", "hour", "MAE"): 3.0,
              ("A", "hour", "ACC"): 0.5, ("B", "day", "MAE"): 2.0, ("B", "day", "ACC"): 0.8,
              ("B", "hour", "MAE"): 1.0, ("B", "hour", "ACC"): 0.7}
    return pd.DataFrame([{"suite": "s", "task": "t", "dataset": "d", "resolution": 30, "setting": setting,
                          "model": model, "seed": 0, "metric": metric, "value": v, "std": 0.0, "status": "ok",
                          "note": ""} for (model, setting, metric), v in values.items()])


def test_settings_as_columns_puts_settings_side_by_side():
    table = tables.settings_as_columns(_setting_rows(), {"MAE": "lower", "ACC": "higher"}, ["MAE", "ACC"],
                                       settings=["day", "hour"])
    assert table.metrics == ["day · MAE", "day · ACC", "hour · MAE", "hour · ACC"]
    assert list(table.means.index.get_level_values("model")) == ["A", "B"]
    assert table.means.loc[("d", 30, "B"), "hour · MAE"] == 1.0
    # A best on both day columns, B on both hour columns: ranks 1,1,2,2 -> both average 1.5
    assert table.best.loc[("d", 30, "A")].tolist() == [True, True, False, False]
    assert table.avg_rank.tolist() == [1.5, 1.5]
    md = tables.to_markdown(table, "Table II layout")
    assert "day · MAE ↓" in md and "hour · ACC ↑" in md
    only_hour = tables.settings_as_columns(_setting_rows(), {"MAE": "lower", "ACC": "higher"}, ["MAE"],
                                           settings=["hour", "week"])
    assert only_hour.metrics == ["hour · MAE"]
    with pytest.raises(ValueError, match="none of the settings"):
        tables.settings_as_columns(_setting_rows(), {"MAE": "lower"}, ["MAE"], settings=["week"])


def test_diagnostics_render_expert_grid_once_per_fitted_model(tmp_path):
    from bench.cache import CellCache
    from bench.report.render import diagnostics_frame, diagnostics_markdown

    cache = CellCache(tmp_path)
    diag = {"expert_util/L0/E0": 0.75, "expert_util/L0/E1": 0.25, "expert_util/L1/E0": 0.5,
            "expert_util/L1/E1": 0.5, "pretrain_mse": 0.125}
    cells = []
    for task in ("imputation", "forecasting"):  # two tasks sharing one fitted model: reported once
        key = f"k-{task}"
        cache.save(key, {"rows": [], "status": "ok", "note": "", "diagnostics": diag}, None)
        cells.append({"key": key, "task": task, "dataset": "lcl", "resolution": 30, "model": "unified",
                      "seed": 0})
    cells.append({"key": None, "task": "imputation", "dataset": "lcl", "resolution": 30, "model": "x", "seed": 0})
    frame = diagnostics_frame(cells, cache)
    assert len(frame) == len(diag)
    text = "\n".join(diagnostics_markdown(frame))
    assert "| L0      | 0.750 | 0.250 |" in text and "| L1      | 0.500 | 0.500 |" in text
    assert "balanced = 0.500" in text and "pretrain_mse = 0.125" in text


def test_run_rendering_sets_results_beside_the_published_numbers():
    from bench.report.render import published_comparison

    row = {"suite": "s", "task": "forecasting", "dataset": "lcl", "resolution": 30, "setting": "day-ahead",
           "model": "unified", "seed": 0, "metric": "MAE", "value": 0.3, "std": 0.01, "status": "ok", "note": ""}
    rows = pd.DataFrame([row, {**row, "model": "seasonal-naive"}])
    config = {"suite": {"datasets": [{"name": "lcl", "options": {}}], "compare": {"lcl": "cer+lcl"}}}
    frame = published_comparison(config, rows)
    # the unified paper's Table II prints day-ahead MAE 0.2443 for its model; seasonal-naive is not in it
    assert len(frame) == 1 and frame["paper"].iloc[0] == pytest.approx(0.2443)
    assert frame["diff"].iloc[0] == pytest.approx(0.3 - 0.2443)
    # without the dataset pairing nothing matches (the paper's data are CER + LCL, not LCL alone)
    assert published_comparison({"suite": {"datasets": [{"name": "lcl"}]}}, rows).empty


def test_rank_summary_normalises_ranks_by_hand(table):
    # task 1 (the CELLS table): res 15 ranks three models ((r - 1) / 2), res 60 two (r - 1); B is n/a at 60
    # A: 0, .25, .5, .5, .25 | 1, 0, .5, 0, .5 -> 3.5 / 10;  B: .5, .25, 0, 0, .25 -> 1 / 5;
    # C: 1 x5 | 0, 1, .5, 1, .5 -> 8 / 10 (cells tied within noise share their rank, see TIED)
    norm = tables.normalised_ranks(table)
    assert norm.loc[("toy", 60, "A")].tolist() == [1.0, 0.0, 0.5, 0.0, 0.5]
    assert norm.loc[("toy", 60, "B")].isna().all()
    # task 2: only A and C at res 15, C failed everywhere -> A 0, C 1
    two = _rows({k: v for k, v in CELLS.items() if k in {(15, "A"), (15, "C")}})
    summary = tables.rank_summary({"one": table, "two": tables.summary_table(two, GOALS)})
    assert list(summary.index) == ["A", "B", "C"]
    assert summary.loc["A", "one"] == pytest.approx(0.35)
    assert summary.loc["B", "one"] == pytest.approx(0.2)
    assert summary.loc["C", "one"] == pytest.approx(0.8)
    assert math.isnan(summary.loc["B", "two"])
    assert summary["overall"].tolist() == pytest.approx([(0.35 + 0) / 2, 0.2, (0.8 + 1) / 2])
    assert summary["best"].tolist() == [3 + 5, 2, 1]  # task two: A is the only ok cell of every column
    assert summary["tied"].tolist() == [4, 2, 2]
    assert summary["ranked"].tolist() == [10 + 5, 5, 10 + 5]
    text = tables.rank_summary_markdown(summary)
    assert "| **A** " in text and "| B " in text


def test_html_report_keeps_tables_bold_and_figures(tmp_path):
    from bench.report.html import write_html

    text = "# title\n\n| model | MMD ↓ |\n|---|---|\n| A | **0.1 ± 0.01** |\n\n![a figure](plots/x.png)\n"
    page = write_html(text, tmp_path / "r.html", title="t <1>").read_text()
    assert "<table>" in page and "<strong>0.1 ± 0.01</strong>" in page
    assert '<img alt="a figure" src="plots/x.png"' in page
    assert "<title>t &lt;1&gt;</title>" in page


def test_rank_agreement_by_hand():
    from bench.report.agreement import agreement_markdown, rank_agreement

    def line(model, metric, ours, paper, resolution=30, status="ok"):
        # no std on either side: values compare exactly (the noise rule has its own tests in test_tie_rule.py)
        return {"source": "energydiff", "table": "Table III", "dataset": "lcl", "resolution": resolution,
                "setting": "", "model": model, "metric": metric, "ours": ours, "ours_std": float("nan"),
                "paper": paper, "paper_std": float("nan"), "status": status}

    frame = pd.DataFrame([
        # GFD: same order (a < b < c) on both sides -> tau 1, same best a
        line("a", "GFD", 0.1, 0.01), line("b", "GFD", 0.2, 0.02), line("c", "GFD", 0.9, 0.03),
        # KS: reversed -> tau -1, our best c, the paper's a
        line("a", "KS", 0.3, 0.1), line("b", "KS", 0.2, 0.2), line("c", "KS", 0.1, 0.3),
        # one swap of three pairs: tau = (2 - 1) / 3; a failed model is left out of the group
        line("a", "KL", 0.1, 0.1, 60), line("b", "KL", 0.3, 0.2, 60), line("c", "KL", 0.2, 0.3, 60),
        line("d", "KL", float("nan"), 0.05, 60, status="failed"),
    ])
    out = rank_agreement(frame, {"GFD": "lower", "KS": "lower", "KL": "lower"}).set_index("metric")
    assert out.loc["GFD", "kendall_tau"] == pytest.approx(1.0) and out.loc["GFD", "same_best"] == 1.0
    assert out.loc["KS", "kendall_tau"] == pytest.approx(-1.0) and out.loc["KS", "same_best"] == 0.0
    assert (out.loc["KS", "ours_best"], out.loc["KS", "paper_best"]) == ("c", "a")
    assert out.loc["KL", "kendall_tau"] == pytest.approx(1 / 3) and out.loc["KL", "n_models"] == 3
    text = agreement_markdown(out.reset_index())
    assert "same best model in 2 of 3" in text and "+0.33" in text


def test_rank_agreement_leaves_out_single_model_groups():
    from bench.report.agreement import agreement_markdown, rank_agreement

    frame = pd.DataFrame([{"source": "unified", "table": "Table II", "dataset": "lcl", "resolution": 30,
                           "setting": "day-ahead", "model": "unified", "metric": "MAE", "ours": 0.27,
                           "ours_std": 0.01, "paper": 0.2, "paper_std": float("nan"), "status": "ok"}])
    out = rank_agreement(frame, {"MAE": "lower"})
    assert out.empty and "kendall_tau" in out.columns
    assert "No group has two models" in agreement_markdown(out)


def test_models_identical_in_every_cell_are_shown_once():
    from bench.report.render import drop_identical_models

    base = {"task": "t", "dataset": "d", "resolution": 60, "setting": "", "seed": 0, "status": "ok", "note": ""}
    rows = pd.DataFrame([{**base, "model": m, "metric": k, "value": v, "std": 0.1}
                         for m, values in {"gmm": (1.0, 2.0), "gmm-pca": (1.0, 2.0), "vae": (1.0, 2.5)}.items()
                         for k, v in zip(("MMD", "KL"), values)])
    kept, duplicates = drop_identical_models(rows)
    assert duplicates == {"gmm-pca": "gmm"} and set(kept["model"]) == {"gmm", "vae"}
    # one differing std keeps both
    rows.loc[(rows.model == "gmm-pca") & (rows.metric == "KL"), "std"] = 0.2
    assert drop_identical_models(rows)[1] == {}
