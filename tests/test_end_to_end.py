"""The command line end to end on the real LCL sample: run, cache, resume, report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import run_bench
from bench.runner import run_suite
from bench.suite import load_suite, override

MODELS = "resample-train,independent-marginals,gmm,t-copula"


def _args(lcl, tmp_path, models=MODELS):
    return ["--dataset", "lcl", "--data-dir", str(lcl), "--households", "8", "--resolution", "60",
            "--models", models, "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"), "--quiet"]


def test_run_then_cached_rerun_then_report(lcl_sample_dir, tmp_path, capsys):
    assert run_bench.main(_args(lcl_sample_dir, tmp_path)) == 0
    first = capsys.readouterr().out
    assert "4 cells computed, 0 from cache" in first
    assert "![" not in first and "figures in" in first and "report.html" in first  # no image links in a terminal
    run = tmp_path / "run"
    for name in ("results.csv", "tables.md", "tables.tex", "table_generation.csv", "config.json",
                 "environment.json", "plots/lcl-60min-samples.png", "plots/lcl-60min-histograms.png",
                 "plots/lcl-60min-correlation.png"):
        assert (run / name).is_file(), name
    rows = pd.read_csv(run / "results.csv")
    assert set(rows["model"]) == set(MODELS.split(","))
    assert set(rows["metric"]) == {"MMD", "GFD", "KL", "WD", "KS", "DCR_ratio", "Memorised", "TSTR"}
    # replaying training days is flagged as memorising; a model of the marginals is not
    notes = rows[rows["metric"] == "Memorised"].set_index("model")["note"]
    assert notes["resample-train"].startswith("memorising") and notes["independent-marginals"].startswith("not ")
    assert (rows["status"] == "ok").all()
    config = json.loads((run / "config.json").read_text())
    assert all(c["data_fingerprint"] and c["key"] for c in config["cells"])
    assert "household" in config["cells"][0]["split_rule"]
    env = json.loads((run / "environment.json").read_text())
    assert env["packages"]["numpy"]
    table = (run / "tables.md").read_text()

    assert run_bench.main(_args(lcl_sample_dir, tmp_path)) == 0
    second = capsys.readouterr().out
    assert "0 cells computed, 4 from cache" in second
    assert (run / "tables.md").read_text() == table

    (run / "tables.md").unlink()
    assert run_bench.main(["report", str(run), "--cache", str(tmp_path / "cache")]) == 0
    assert (run / "tables.md").read_text() == table
    for name in ("report.html", "rank_summary.csv", "plots/lcl-60min-pca.png"):
        assert (run / name).is_file(), name
    assert "## rank summary" in table and "![lcl, 60-minute" in table
    assert "## cost" in table and "Friedman test" in table and (run / "cost.csv").is_file()
    for name in ("pareto", "cd-generation", "privacy"):
        assert (run / f"plots/{name}.png").is_file(), name
    page = (run / "report.html").read_text()
    assert page.count("<table>") >= 2 and 'src="plots/lcl-60min-pca.png"' in page

    # no run directory: every run under --results, then the overview page
    assert run_bench.main(["report", "--results", str(tmp_path), "--cache", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert f"{run}: 4 cells from the cache" in out
    assert (run / "tables.md").read_text() == table
    overview = (tmp_path / "README.md").read_text()
    assert "| `run` " in overview and "[html](run/report.html)" in overview and "--households 8" in overview
    assert "`quick`: " in overview and "Run here on other data" in overview  # --dataset replaced the UCI data
    assert (tmp_path / "index.html").is_file()

    # a run whose cells left the cache is reported with the command that recomputes it, and left unchanged
    import shutil

    shutil.rmtree(tmp_path / "cache" / "cells")
    assert run_bench.main(["report", "--results", str(tmp_path), "--cache", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert "4 of 4 cells are not in the cache" in err and "python run_bench.py --dataset lcl" in err
    assert (run / "tables.md").read_text() == table


def test_interrupted_run_resumes_from_cache(lcl_sample_dir, tmp_path, monkeypatch):
    suite = override(load_suite("quick"), dataset="lcl", data_dir=str(lcl_sample_dir), resolutions=[60],
                     models=["resample-train", "independent-marginals", "gmm"], options={"households": 8})
    from baselines import gmm

    def interrupted(self, train, ctx):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(gmm.GMM, "fit", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_suite(suite, tmp_path / "run", tmp_path / "cache", progress=False, log=None)
    summary = run_suite(suite, tmp_path / "run", tmp_path / "cache", progress=False, log=None)
    assert (summary.computed, summary.cached) == (1, 2)


def test_list_commands(capsys):
    for what, expected in (("models", "t-copula"), ("datasets", "lcl"), ("tasks", "generation"),
                           ("suites", "quick")):
        assert run_bench.main(["list", what]) == 0
        assert expected in capsys.readouterr().out


def test_missing_data_dir_is_a_clear_error(tmp_path, capsys):
    code = run_bench.main(["--dataset", "lcl", "--data-dir", str(tmp_path / "nowhere"), "--out",
                           str(tmp_path / "run"), "--cache", str(tmp_path / "cache"), "--quiet"])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_postprocessed_model_reuses_base_samples(lcl_sample_dir, tmp_path):
    suite = override(load_suite("quick"), dataset="lcl", data_dir=str(lcl_sample_dir), resolutions=[60],
                     models=["gmm+C", "gmm"], options={"households": 8})
    summary = run_suite(suite, tmp_path / "run", tmp_path / "cache", progress=False, log=None)
    # gmm+C computes the base gmm cell on the way (no count of its own: the counts add up to the 2 cells);
    # the gmm row is then served from the cache, not trained again
    assert (summary.computed, summary.cached) == (1, 1)
    rows = summary.rows.pivot(index="model", columns="metric", values="value")
    assert rows.loc["gmm+C", "KS"] < rows.loc["gmm", "KS"]
    assert rows.loc["gmm+C", "WD"] < rows.loc["gmm", "WD"]


def test_unknown_postprocessing_suffix(tmp_path, capsys):
    code = run_bench.main(["--models", "gmm+Z", "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "c"),
                           "--quiet"])
    assert code == 2 and "+Z" in capsys.readouterr().err


def test_smartmeterfm_suite_tasks_end_to_end(lcl_sample_dir, tmp_path, capsys):
    """The three SmartMeterFM tasks through the command line with fast models: rows per setting, n/a rows
    for models without a task's capability, tables with the setting column."""
    models = "conditional-resample,linear-interp,hold-upsample,linear-upsample"
    args = ["--suite", "smartmeterfm", "--dataset", "lcl", "--data-dir", str(lcl_sample_dir), "--households", "8",
            "--resolution", "30", "--models", models, "--out", str(tmp_path / "run"), "--cache",
            str(tmp_path / "cache"), "--quiet"]
    assert run_bench.main(args) == 0
    capsys.readouterr()
    rows = pd.read_csv(tmp_path / "run" / "results.csv", keep_default_na=False)
    assert set(rows["task"]) == {"conditional", "imputation", "super_resolution"}
    imputation = rows[(rows["task"] == "imputation") & (rows["model"] == "linear-interp")]
    assert set(imputation["setting"]) == {f"{p}-{f}%" for p in ("random", "block") for f in (10, 30, 50)}
    assert (imputation["status"] == "ok").all()
    # 30-minute data only allows x2 (60 -> 30 min) super-resolution
    sr = rows[(rows["task"] == "super_resolution") & (rows["model"] == "hold-upsample")]
    assert set(sr["setting"]) == {"x2 (60->30 min)"} and (sr["status"] == "ok").all()
    # a model lacking a capability gets n/a rows, not errors
    assert (rows[(rows["task"] == "imputation") & (rows["model"] == "hold-upsample")]["status"] == "n/a").all()
    tables = (tmp_path / "run" / "tables.md").read_text()
    assert "## imputation" in tables and "setting" in tables
    # imputation examples for the first, middle and last missing setting (6 settings: indices 0, 3, 5)
    for setting in ("random-10pct", "block-10pct", "block-50pct"):
        assert (tmp_path / "run" / "plots" / f"lcl-30min-imputation-{setting}.png").is_file(), setting
    assert "### lcl @ 30 min, imputation" in tables
    # super-resolution examples beside the coarse input the models were given
    assert (tmp_path / "run" / "plots" / "lcl-30min-super-resolution-x2.png").is_file()
    assert "### lcl @ 30 min, super-resolution" in tables


def test_unified_suite_end_to_end(lcl_sample_dir, tmp_path, capsys):
    """The unified-model paper's three tasks through the command line on 8 LCL households with a tiny unified
    model and fast references: rows for every setting, n/a for missing capabilities, the Table II layout and
    the expert-utilisation diagnostics in tables.md."""
    models = "unified,unified-no-moe,seasonal-naive,zscore-detector,linear-interp"
    args = ["--suite", "unified", "--data-dir", str(lcl_sample_dir), "--households", "8", "--models", models,
            "--set", "unified.train_steps=20", "--set", "unified.finetune_steps=10",
            "--set", "unified-no-moe.train_steps=20", "--set", "unified-no-moe.finetune_steps=10",
            "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"), "--quiet"]
    assert run_bench.main(args) == 0
    capsys.readouterr()
    rows = pd.read_csv(tmp_path / "run" / "results.csv", keep_default_na=False)
    assert set(rows["task"]) == {"forecasting", "anomaly", "imputation"}
    unified = rows[rows["model"] == "unified"]
    assert (unified["status"] == "ok").all(), unified[unified["status"] != "ok"][["task", "metric", "note"]]
    assert set(unified[unified["task"] == "forecasting"]["setting"]) == {"day-ahead", "hour-ahead"}
    assert set(unified[unified["task"] == "anomaly"]["setting"]) == {"scaling", "ramping"}
    assert set(unified[unified["task"] == "imputation"]["setting"]) == {f"random-{f}%" for f in (10, 20, 30, 40, 50)}
    # seasonal-naive forecasts points only: CRPS is n/a there, and it has no other capability
    naive = rows[(rows["model"] == "seasonal-naive") & (rows["task"] == "forecasting")]
    assert (naive[naive["metric"] == "CRPS"]["status"] == "n/a").all()
    assert (naive[naive["metric"] != "CRPS"]["status"] == "ok").all()
    assert (rows[(rows["model"] == "seasonal-naive") & (rows["task"] != "forecasting")]["status"] == "n/a").all()
    tables = (tmp_path / "run" / "tables.md").read_text()
    for heading in ("### forecasting in the paper's layout", "### anomaly in the paper's layout",
                    "### imputation in the paper's layout", "Expert utilisation of `unified`"):
        assert heading in tables
    assert "day-ahead · MAE ↓" in tables and "scaling · Accuracy ↑" in tables
    assert "Expert utilisation of `unified-no-moe`" not in tables  # no experts to report
    assert (tmp_path / "run" / "table_forecasting_paper.csv").is_file()


def test_counts_add_up_to_the_cells_with_post_processed_models(lcl_sample_dir, tmp_path):
    suite = override(load_suite("quick"), dataset="lcl", data_dir=str(lcl_sample_dir), resolutions=[60],
                     models=["independent-marginals", "independent-marginals+C", "resample-train+C"],
                     options={"households": 8})
    first = run_suite(suite, tmp_path / "run", tmp_path / "cache", progress=False, log=lambda *_: None)
    # resample-train+C computes its base's samples without the base being a cell of the suite
    assert (first.computed, first.cached) == (3, 0)
    again = run_suite(suite, tmp_path / "run", tmp_path / "cache", progress=False, log=lambda *_: None)
    assert (again.computed, again.cached) == (0, 3)


def test_imputation_figures_use_their_own_suites_masks(lcl_sample_dir, tmp_path):
    """Two suites imputing the same profiles under different missing settings share a cache: each run's
    figures read its own observed masks."""
    from dataclasses import replace

    from bench.suite import TaskSpec

    base = override(load_suite("quick"), dataset="lcl", data_dir=str(lcl_sample_dir), resolutions=[60],
                    options={"households": 8})
    runs = {}
    for name, fractions in (("one", [0.1]), ("three", [0.1, 0.3, 0.5])):
        task = TaskSpec("imputation", ("linear-interp",), {"patterns": ["random"], "fractions_missing": fractions})
        suite = replace(base, name=name, tasks=(task,))
        run_suite(suite, tmp_path / name, tmp_path / "cache", progress=False, log=lambda *_: None)
        runs[name] = json.loads((tmp_path / name / "config.json").read_text())["cells"][0]["observed_array"]
        pngs = sorted(p.name for p in (tmp_path / name / "plots").glob("*imputation*.png"))
        expected = [f"lcl-60min-imputation-random-{f}pct.png" for f in ((10,) if name == "one" else (10, 30, 50))]
        assert pngs == expected
    assert runs["one"] != runs["three"]


def test_labelled_copies_of_a_task_form_a_sweep(lcl_sample_dir, tmp_path):
    """One task listed twice with different model parameters and labels: rows kept apart by the label, one
    cell per parameter value, and the label stays out of the cache key (an unlabelled copy is served from
    the cache)."""
    suite = tmp_path / "sweep.toml"
    suite.write_text(f'''
name = "sweep"
seeds = [0]
[[datasets]]
name = "lcl"
resolutions = [60]
data_dir = "{lcl_sample_dir}"
[[tasks]]
name = "generation"
label = "n=1"
models = ["gmm"]
model_overrides = {{ gmm = {{ n_components = 1 }} }}
[[tasks]]
name = "generation"
label = "n=3"
models = ["gmm"]
model_overrides = {{ gmm = {{ n_components = 3 }} }}
[[tasks]]
name = "generation"
models = ["gmm"]
model_overrides = {{ gmm = {{ n_components = 3 }} }}
''')
    cache = tmp_path / "cache"
    summary = run_suite(override(load_suite(suite), options={"households": 4}), out_dir=tmp_path / "run",
                        cache_dir=cache, progress=False, log=lambda *a: None)
    rows = pd.read_csv(tmp_path / "run" / "results.csv", keep_default_na=False)
    assert set(rows["setting"]) == {"n=1", "n=3", ""}
    kl = rows[rows["metric"] == "KL"].set_index("setting")["value"]
    assert kl["n=1"] != kl["n=3"] and kl["n=3"] == kl[""]  # the same cell, labelled or not
    assert summary.computed == 2 and summary.cached == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert [c.get("task_label") for c in config["cells"]] == ["n=1", "n=3", None]
