"""The published numbers file (bench/report/published.csv), its loader and the comparison with our rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.report.published import (
    COLUMNS,
    COMPARE_COLUMNS,
    compare,
    comparison_markdown,
    load_published,
    published_for,
    validate_published,
)


QUALITY_TABLES = ("Table II", "Table III", "Table IV", "Table V", "Table VI", "Table VII")
"""EnergyDiff's tables of generation quality (Tables VIII and IX give computation cost)."""


@pytest.fixture(scope="module")
def published() -> pd.DataFrame:
    return load_published()


def _one(published: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(published), dtype=bool)
    for column, value in where.items():
        mask &= (published[column] == value).to_numpy()
    hits = published[mask]
    assert len(hits) == 1, f"{where}: {len(hits)} rows"
    return hits.iloc[0]


# ---------------------------------------------------------------- the file

def test_csv_loads_with_the_expected_rows_per_table(published):
    assert tuple(published.columns) == COLUMNS
    counts = published.groupby(["paper", "table"]).agg(rows=("value", "size"),
                                                       numbers=("value", lambda v: int(v.notna().sum())))
    expected = {  # (rows, printed numbers): 6 models x 5 metrics per resolution; *** cells have no number
        ("energydiff", "Table II"): (120, 115), ("energydiff", "Table III"): (60, 60),
        ("energydiff", "Table IV"): (120, 115), ("energydiff", "Table V"): (120, 100),
        ("energydiff", "Table VI"): (120, 120), ("energydiff", "Table VII"): (120, 100),
        # 6 models x (training time, sampling time, convergence) at 1 min and 1 h; 2 foldings x 4 columns
        ("energydiff", "Table VIII"): (36, 36), ("energydiff", "Table IX"): (8, 8),
        ("unified", "Table II"): (48, 48),
        # numbers of the text: Table II restated (4), Fig. 5 (2 ratios x RMSE, MAPE), Fig. 6 (5 values and the
        # std of a MAPE whose mean is not printed), Fig. 7 (2 training times)
        ("unified", "Table II (text)"): (4, 4), ("unified", "Fig. 5 (text)"): (4, 4),
        ("unified", "Fig. 6 (text)"): (6, 5), ("unified", "Fig. 7 (text)"): (2, 2),
    }
    assert {k: (int(r.rows), int(r.numbers)) for k, r in counts.iterrows()} == expected
    # every number of EnergyDiff's quality tables carries its bootstrap std; the unified paper prints none, its
    # text gives one std (of a MAPE whose mean it does not give)
    ed = published[(published["paper"] == "energydiff") & published["table"].isin(QUALITY_TABLES)]
    assert (ed["value"].notna() == ed["std"].notna()).all()
    unified = published[published["paper"] == "unified"]
    with_std = unified[unified["std"].notna()]
    assert len(with_std) == 1 and with_std["note"].str.contains("standard deviation of MAPE").all()
    assert with_std["std"].iloc[0] == pytest.approx(0.0195, abs=1e-12) and with_std["value"].isna().all()
    missing = published[published["value"].isna()]
    assert len(missing) == 51
    t_copula = missing[missing["paper_model"] == "t-Copula"]
    assert len(t_copula) == 50 and t_copula["note"].str.contains("not converged").all()
    assert (missing.drop(t_copula.index)["table"] == "Fig. 6 (text)").all()


def test_spot_checks_against_the_printed_tables(published):
    # (table, dataset, resolution, paper model, metric) -> (value, std) as printed in the EnergyDiff paper
    energydiff = {
        ("Table II", "wpuq", 1, "GMM", "KL"): (1.1469, 0.1437),
        ("Table II", "wpuq", 60, "E.Diff.C.", "MMD_paper"): (0.0006, 0.0001),
        ("Table III", "lcl", 30, "E.Diff.C.", "KS"): (0.0745, 0.0020),
        ("Table IV", "cossmic", 1, "GAN", "GFD"): (14.3728, 0.1089),
        ("Table V", "cossmic", 60, "E.Diff.C.", "KS"): (0.0213, 0.0029),
        ("Table VI", "wpuq", 1, "GAN", "GFD"): (177.8024, 4.9467),
        ("Table VII", "wpuq", 15, "E.Diff.C.", "MMD_paper"): (0.0009, 0.0001),
        ("Table VII", "wpuq", 30, "VAE", "WD"): (0.0180, 0.0010),
    }
    for (table, dataset, res, model, metric), (value, std) in energydiff.items():
        row = _one(published, paper="energydiff", table=table, dataset=dataset, resolution=res,
                   paper_model=model, metric=metric)
        assert row["value"] == pytest.approx(value, abs=1e-12), (table, res, model, metric)
        assert row["std"] == pytest.approx(std, abs=1e-12), (table, res, model, metric)
    # the unified paper's Table II; MAPE printed in percent, stored as a fraction
    unified = {
        ("forecasting", "day-ahead", "A1", "MAPE"): 0.104691,
        ("forecasting", "hour-ahead", "A3", "RMSE"): 0.1192,
        ("forecasting", "day-ahead", "Proposed", "MAE"): 0.2443,
        ("anomaly", "scaling", "Proposed", "Precision"): 0.9234,
        ("anomaly", "ramping", "B2", "Recall"): 0.7566,
    }
    for (task, setting, model, metric), value in unified.items():
        row = _one(published, paper="unified", table="Table II", task=task, setting=setting, paper_model=model,
                   metric=metric)
        assert row["value"] == pytest.approx(value, abs=1e-12), (task, setting, model, metric)
        assert row["dataset"] == "cer+lcl" and row["resolution"] == 30
    mape = published[published["metric"] == "MAPE"]
    assert len(mape) == 12 and mape["unit"].str.contains("percent").all()
    assert (mape["value"].dropna() < 1).all() and (mape["std"].dropna() < 1).all()


def test_t_copula_did_not_converge_at_one_minute_in_table_ii(published):
    rows = published[(published["table"] == "Table II") & (published["paper"] == "energydiff")
                     & (published["resolution"] == 1) & (published["paper_model"] == "t-Copula")]
    assert len(rows) == 5 and rows["value"].isna().all()


def test_names_are_meterbench_names(published):
    from bench.postprocess import split_model_name
    from bench.registry import list_models
    from bench.tasks import forecasting
    from bench.tasks.attacks import ATTACK_KINDS

    registered = {spec.name for spec in list_models()}
    for name in set(published["model"]) - {""}:
        base, _ = split_model_name(name)  # raises on an unknown post-processing suffix
        assert base in registered, name
    ours = published[published["model"] != ""]
    assert set(ours["model"]) == {"gmm", "t-copula", "vae", "gan", "energydiff", "energydiff+C", "unified",
                                  "unified-plain", "unified-no-moe", "unified-no-vib"}
    assert set(published.loc[published["task"] == "forecasting", "setting"]) <= set(forecasting.SETTINGS)
    assert set(published.loc[published["task"] == "anomaly", "setting"]) <= set(ATTACK_KINDS)
    quality = published["table"].isin(QUALITY_TABLES) & (published["paper"] == "energydiff")
    assert set(published.loc[quality, "metric"]) == {"MMD_paper", "GFD", "KL", "WD", "KS"}
    cost = published["table"].isin(["Table VIII", "Table IX"]) & (published["paper"] == "energydiff")
    assert set(published.loc[cost, "metric"]) == {"fit_seconds", "sample_seconds", "converged_fraction",
                                                  "forward_ms", "backward_ms", "total_ms", "peak_gpu_gib"}


def test_the_papers_gan_is_meterbench_gan_and_wgan_gp_has_no_counterpart(published):
    # EnergyDiff's GAN is trained without a gradient penalty (spectral-norm critic), as meterbench's gan
    gan = published[published["paper_model"] == "GAN"]
    assert len(gan) == 110 + 6 and (gan["model"] == "gan").all()  # Tables II-VII and VIII
    assert "wgan-gp" not in set(published["model"])
    assert gan["note"].str.contains("no gradient penalty").all()


def test_lcl_note_says_what_the_paper_used_and_nothing_about_a_run(published):
    from bench.report.published import TABLE_SOURCES

    lcl = published[(published["paper"] == "energydiff") & (published["dataset"] == "lcl")]
    assert len(lcl) == 60
    assert lcl["note"].str.contains("the paper's code keeps only the Std-tariff households").all()
    # no loader setting is claimed for the run: the rows apply to any LCL run, filtered or not
    assert not lcl["note"].str.contains("tariff=").any()
    source = TABLE_SOURCES[("energydiff", "Table III")]
    assert source.loader_options == {} and "paper's code" in source.description
    assert len(published_for(published[published["dataset"] == "lcl"], "lcl")) == 60


def test_table_viii_spot_checks_and_units(published):
    t8 = published[(published["paper"] == "energydiff") & (published["table"] == "Table VIII")]
    assert set(t8["page"]) == {"Sec. V-D"} and set(t8["task"]) == {"generation"}
    # (resolution, paper model, metric) -> value: times stored in seconds, convergence as a fraction
    printed = {
        (1, "t-Copula", "fit_seconds"): 15 * 60, (1, "t-Copula", "sample_seconds"): 5 * 60,
        (1, "t-Copula", "converged_fraction"): 0.20, (60, "t-Copula", "converged_fraction"): 0.6667,
        (1, "GAN", "fit_seconds"): 3 * 3600, (60, "GAN", "converged_fraction"): 0.8333,
        (1, "E.Diff. (1000)", "sample_seconds"): 70 * 60, (1, "E.Diff. (100)", "sample_seconds"): 8 * 60,
        (60, "E.Diff. (100)", "sample_seconds"): 30, (60, "VAE", "fit_seconds"): 20 * 60,
        (60, "GMM", "fit_seconds"): 60,
    }
    for (res, model, metric), value in printed.items():
        row = _one(t8, resolution=res, paper_model=model, metric=metric)
        assert row["value"] == pytest.approx(value, abs=1e-12), (res, model, metric)
    assert set(t8["model"]) == {"gmm", "t-copula", "vae", "gan", "energydiff"}
    assert (t8.loc[t8["paper_model"].str.startswith("E.Diff."), "model"] == "energydiff").all()
    times = t8[t8["metric"].str.endswith("_seconds")]
    assert times["unit"].str.match(r"^s( \(printed in (min|h)\))?$").all()
    for _, row in times.iterrows():  # the unit says what was printed; the note repeats the printed number
        printed_unit = "s" if row["unit"] == "s" else row["unit"].split()[-1].rstrip(")")
        factor = {"s": 1, "min": 60, "h": 3600}[printed_unit]
        number = row["value"] / factor
        assert f"printed {'<' if 'upper bound' in row['note'] else ''}{number:g} {printed_unit}" in row["note"]
    # "<10 s" is a bound: stored as 10 with a note saying so (there is no bound column)
    bounds = t8[t8["note"].str.contains("upper bound")]
    assert len(bounds) == 6 and (bounds["metric"] == "sample_seconds").all() and (bounds["value"] == 10).all()
    assert set(bounds["paper_model"]) == {"GMM", "VAE", "GAN"}
    converged = t8[t8["metric"] == "converged_fraction"]
    assert converged["unit"].eq("fraction (printed in percent)").all() and converged["value"].between(0, 1).all()


def test_table_viii_pools_the_datasets_of_tables_ii_to_vii(published):
    """The convergence column is the share of the quality tables at that resolution in which the model printed
    numbers (t-Copula's *** cells), and the dataset name lists those tables' datasets."""
    quality = published[(published["paper"] == "energydiff") & published["table"].isin(QUALITY_TABLES)]
    t8 = published[(published["paper"] == "energydiff") & (published["table"] == "Table VIII")]
    for res in (1, 60):
        tables = quality[quality["resolution"] == res]
        datasets = set(t8.loc[t8["resolution"] == res, "dataset"])
        assert len(datasets) == 1
        assert set(datasets.pop().split("+")) == set(tables["dataset"]), res
        for model in ("GMM", "t-Copula", "VAE", "E.Diff."):
            per_table = tables[tables["paper_model"] == model].groupby("table")["value"].apply(
                lambda v: bool(v.notna().all()))
            share = per_table.mean()
            names = [model] if model != "E.Diff." else ["E.Diff. (1000)", "E.Diff. (100)"]
            for name in names:
                row = _one(t8, resolution=res, paper_model=name, metric="converged_fraction")
                assert row["value"] == pytest.approx(share, abs=1e-4), (res, name, share)


def test_table_ix_spot_checks_and_sums(published):
    t9 = published[(published["paper"] == "energydiff") & (published["table"] == "Table IX")]
    assert set(t9["dataset"]) == {"wpuq"} and set(t9["resolution"]) == {1} and set(t9["model"]) == {"energydiff"}
    assert published_for(t9, "wpuq", kind="heatpump").equals(t9.reset_index(drop=True))
    assert published_for(t9, "wpuq", kind="transformer").empty
    cell = {(r["paper_model"], r["metric"]): (r["value"], r["std"]) for _, r in t9.iterrows()}
    assert cell[("No Folding", "forward_ms")] == pytest.approx((511.41, 28.28))
    assert cell[("r=8", "backward_ms")] == pytest.approx((157.17, 5.92))
    assert cell[("r=8", "total_ms")] == pytest.approx((565.00, 6.34))
    assert cell[("No Folding", "peak_gpu_gib")][0] == pytest.approx(28.76)
    assert math.isnan(cell[("r=8", "peak_gpu_gib")][1])
    # unfolded, forward + backward is the printed total; the text's "more than 34 %" saved follows the totals
    no_fold = cell[("No Folding", "forward_ms")][0] + cell[("No Folding", "backward_ms")][0]
    assert no_fold == pytest.approx(cell[("No Folding", "total_ms")][0], abs=0.005)
    assert 1 - cell[("r=8", "total_ms")][0] / cell[("No Folding", "total_ms")][0] > 0.34
    # folded, the printed parts sum to 568.07, not the printed 565.00: stored as printed, the note says so
    assert "568.07" in _one(t9, paper_model="r=8", metric="total_ms")["note"]


def test_unified_text_numbers_against_the_paper(published):
    from bench.tasks.imputation import setting_specs

    unified = published[published["paper"] == "unified"]
    # (table, task, setting, paper model, metric) -> value as the text prints it (percent stored as a fraction)
    text = {
        ("Table II (text)", "forecasting", "day-ahead", "Proposed", "RMSE"): 0.18,
        ("Table II (text)", "forecasting", "day-ahead", "Proposed", "MAPE"): 0.099,
        ("Table II (text)", "anomaly", "scaling", "Proposed", "Accuracy"): 0.84,
        ("Table II (text)", "anomaly", "scaling", "Proposed", "Precision"): 0.92,
        ("Fig. 5 (text)", "imputation", "random-10%", "Proposed", "RMSE"): 0.3,
        ("Fig. 5 (text)", "imputation", "random-20%", "Proposed", "RMSE"): 0.4,
        ("Fig. 5 (text)", "imputation", "random-10%", "Proposed", "MAPE"): 0.128,
        ("Fig. 5 (text)", "imputation", "random-20%", "Proposed", "MAPE"): 0.146,
        ("Fig. 6 (text)", "imputation", "", "None", "RMSE"): 0.65,
        ("Fig. 6 (text)", "imputation", "", "Plus B", "RMSE"): 0.30,
        ("Fig. 6 (text)", "imputation", "", "Plus B", "MAE"): 0.22,
        ("Fig. 6 (text)", "imputation", "", "Plus A", "MAE"): 0.32,
        ("Fig. 6 (text)", "imputation", "", "Proposed", "RMSE"): 0.40,
        ("Fig. 7 (text)", "imputation", "", "Proposed (smallest d_P of Fig. 7)", "train_seconds_per_100"): 4.5,
        ("Fig. 7 (text)", "imputation", "", "Proposed (largest d_P of Fig. 7)", "train_seconds_per_100"): 2,
    }
    for (table, task, setting, model, metric), value in text.items():
        row = _one(unified, table=table, task=task, setting=setting, paper_model=model, metric=metric)
        assert row["value"] == pytest.approx(value, abs=1e-12), (table, setting, model, metric)
        assert row["dataset"] == "cer+lcl" and row["resolution"] == 30
    pages = unified.groupby("table")["page"].agg(set).to_dict()
    assert pages == {"Table II": {"Sec. IV-B"}, "Table II (text)": {"Sec. IV-B"}, "Fig. 5 (text)": {"Sec. IV-B"},
                     "Fig. 6 (text)": {"Sec. IV-C"}, "Fig. 7 (text)": {"Sec. IV-D"}}
    # the text's rounding of Table II agrees with the table, and those rows stay out of the comparison
    restated = unified[unified["table"] == "Table II (text)"]
    assert (restated["model"] == "").all()
    for _, row in restated.iterrows():
        exact = _one(unified, table="Table II", task=row["task"], setting=row["setting"], paper_model="Proposed",
                     metric=row["metric"])["value"]
        digits = 3 if row["metric"] == "MAPE" else 2  # 9.9 % of a fraction is three decimals
        assert round(exact, digits) == pytest.approx(row["value"], abs=1e-12), row["metric"]
    # imputation settings are meterbench's names; the figures of unstated missing ratio have none
    imputation = unified[unified["task"] == "imputation"]
    ratios = {name for name, _, _ in setting_specs({"patterns": ["random"], "fractions_missing": [0.1, 0.2]})}
    assert set(imputation.loc[imputation["table"] == "Fig. 5 (text)", "setting"]) == ratios
    assert set(imputation.loc[imputation["table"] != "Fig. 5 (text)", "setting"]) == {""}
    ablation = imputation[imputation["table"] == "Fig. 6 (text)"]
    assert dict(zip(ablation["paper_model"], ablation["model"])) == {
        "None": "unified-plain", "Plus A": "unified-no-moe", "Plus B": "unified-no-vib", "Proposed": "unified"}
    # "within 0.3 kW", "exceeds 0.32 kW", "less than 2 seconds": bounds, stored as the number with a note
    bounds = unified[unified["note"].str.contains("upper bound|lower bound")]
    assert sorted(zip(bounds["table"], bounds["value"])) == [("Fig. 5 (text)", 0.3), ("Fig. 5 (text)", 0.4),
                                                             ("Fig. 6 (text)", 0.32), ("Fig. 7 (text)", 2.0)]


def test_cost_numbers_and_unstated_settings_never_meet_a_result_row(published):
    from bench.report.published import EXTRA_METRICS
    from bench.suite import load_suite
    from bench.tasks import expected_rows, get_task, list_tasks
    from metrics.registry import METRICS

    assert not set(EXTRA_METRICS) & set(METRICS.names())  # a cost name never shadows a scored metric
    assert len(published[published["metric"].isin(list(EXTRA_METRICS))]) == 36 + 8 + 2
    for task in list_tasks():  # no task scores a cost name, so compare() cannot match one
        for res in (1, 30, 60):
            assert not {m for _, m in expected_rows(task.name, task.defaults, res)} & set(EXTRA_METRICS)
    # every row the unified suite scores, for every model it runs: the figure numbers of unstated missing
    # ratio (setting "") and the text's restatements of Table II (no model) meet none of them, Fig. 5 meets
    # the unified model's 10 % and 20 % cells, and no cell meets two tables
    suite = load_suite("unified")
    records = []
    for spec in suite.tasks:
        cfg = {**get_task(spec.name).defaults, **spec.config}
        for setting, metric in expected_rows(spec.name, cfg, 30):
            records += [(spec.name, "lcl", 30, setting, model, metric, 0.5, 0.01, "ok", 0) for model in spec.models]
    out = compare(_rows(records), published, datasets={"lcl": "cer+lcl"})
    assert out.groupby("table").size().to_dict() == {"Table II": 12, "Fig. 5 (text)": 4}
    fig5 = out[out["table"] == "Fig. 5 (text)"]
    assert set(zip(fig5["setting"], fig5["metric"])) == {(f"random-{p}%", m) for p in (10, 20)
                                                         for m in ("RMSE", "MAPE")}
    assert (fig5["model"] == "unified").all()
    assert fig5["paper_note"].str.contains("the paper does not say how the missing steps are placed").all()


# ---------------------------------------------------------------- validation

def _frame(**changes) -> pd.DataFrame:
    base = {"paper": "energydiff", "table": "Table II", "page": "Sec. V-A1", "task": "generation",
            "dataset": "wpuq", "resolution": "15", "setting": "", "model": "gmm", "paper_model": "GMM",
            "metric": "KL", "value": "0.2107", "std": "0.0341", "unit": "dimensionless", "note": ""}
    return pd.DataFrame([{**base, **changes}])


@pytest.mark.parametrize("changes, message", [
    ({"paper": "energydif"}, "'paper' has 'energydif'"),
    ({"task": "forecast"}, "'task' has 'forecast'"),
    ({"metric": "MMD2"}, "'metric' has 'MMD2'"),
    ({"dataset": "london"}, "'dataset' has 'london'"),
    ({"value": "0.2l07"}, "'value' has '0.2l07'; expected a number"),
    ({"value": ""}, "a note saying why"),
    ({"std": "-0.1"}, "non-negative"),
    ({"resolution": "7.5"}, "positive whole number"),
    ({"page": ""}, "'page'"),
])
def test_validation_names_the_bad_cell(changes, message):
    with pytest.raises(ValueError, match=message):
        validate_published(_frame(**changes))


def test_validation_rejects_missing_columns_and_duplicates():
    with pytest.raises(ValueError, match=r"missing column\(s\) \['unit'\]"):
        validate_published(_frame().drop(columns=["unit"]))
    twice = pd.concat([_frame(), _frame(value="0.3")], ignore_index=True)
    with pytest.raises(ValueError, match="repeat the same published number"):
        validate_published(twice)
    # the same number under another table is no duplicate
    assert len(validate_published(pd.concat([_frame(), _frame(table="Table VI")], ignore_index=True))) == 2


def test_load_reports_csv_line_numbers(tmp_path):
    path = tmp_path / "pub.csv"
    pd.concat([_frame(), _frame(resolution="30", value="n/a")]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"row 3: column 'value' has 'n/a'"):
        load_published(path)
    with pytest.raises(FileNotFoundError):
        load_published(tmp_path / "absent.csv")


# ---------------------------------------------------------------- comparison

def _rows(records: list[tuple]) -> pd.DataFrame:
    cols = ["task", "dataset", "resolution", "setting", "model", "metric", "value", "std", "status", "seed"]
    return pd.DataFrame.from_records(records, columns=cols).assign(note="")


def test_compare_gives_the_differences_and_skips_unmatched_rows(published):
    heat = published_for(published, "wpuq", kind="heatpump")
    rows = _rows([
        ("generation", "wpuq", 15, "", "gmm", "KL", 0.3107, 0.01, "ok", 0),           # paper 0.2107
        ("generation", "wpuq", 15, "", "energydiff+C", "KS", 0.0515, 0.002, "ok", 0),  # paper 0.1030
        ("generation", "wpuq", 15, "", "gmm", "MMD", 0.001, 0.0, "ok", 0),            # unbiased MMD: not published
        ("generation", "wpuq", 5, "", "gmm", "KL", 0.3, 0.0, "ok", 0),                # no 5-min table
        ("generation", "wpuq", 15, "", "resample-train", "KL", 0.0, 0.0, "ok", 0),    # not in the papers
        ("generation", "uci", 15, "", "gmm", "KL", 0.3, 0.0, "ok", 0),                # no published uci
        ("generation", "wpuq", 1, "", "t-copula", "GFD", np.nan, np.nan, "failed", 0),  # paper: not converged
    ])
    out = compare(rows, heat)
    assert tuple(out.columns) == COMPARE_COLUMNS
    assert len(out) == 3 and set(out["table"]) == {"Table II"} and set(out["source"]) == {"energydiff"}
    gmm = out[out["model"] == "gmm"].iloc[0]
    assert gmm["paper"] == pytest.approx(0.2107) and gmm["paper_std"] == pytest.approx(0.0341)
    assert gmm["diff"] == pytest.approx(0.1) and gmm["rel_diff"] == pytest.approx(0.1 / 0.2107)
    assert gmm["ours_std"] == pytest.approx(0.01) and gmm["page"] == "Sec. V-A1"
    cal = out[out["model"] == "energydiff+C"].iloc[0]
    assert cal["diff"] == pytest.approx(0.0515 - 0.1030) and cal["rel_diff"] == pytest.approx(-0.5)
    failed = out[out["model"] == "t-copula"].iloc[0]
    assert failed["status"] == "failed" and math.isnan(failed["diff"]) and math.isnan(failed["paper"])


def test_compare_averages_seeds_like_the_summary_tables(published):
    rows = _rows([("generation", "lcl", 30, "", "vae", "WD", v, 0.001, "ok", s)
                  for s, v in enumerate([0.03, 0.04, 0.05])])
    out = compare(rows, published)
    assert len(out) == 1 and out["n_seeds"].iloc[0] == 3
    assert out["ours"].iloc[0] == pytest.approx(0.04)
    assert out["ours_std"].iloc[0] == pytest.approx(np.std([0.03, 0.04, 0.05], ddof=1))
    assert out["diff"].iloc[0] == pytest.approx(0.04 - 0.0289)
    with pytest.raises(ValueError, match="several result rows"):
        compare(pd.concat([rows, rows]), published)


def test_compare_refuses_rows_that_match_several_tables(published):
    rows = _rows([("generation", "wpuq", 60, "", "gmm", "GFD", 0.01, 0.0, "ok", 0)])
    with pytest.raises(ValueError, match="several published tables.*Table II.*Table VI"):
        compare(rows, published)
    assert compare(rows, published_for(published, "wpuq", kind="transformer"))["paper"].tolist() == [0.0104]
    assert compare(rows, published_for(published, "wpuq")).empty  # households: no published table
    with pytest.raises(ValueError, match="not options of the 'wpuq' loader"):
        published_for(published, "wpuq", feed="pv")


def test_published_for_keeps_table_vii_only_for_the_pv_kind(published):
    is_vii = (published["paper"] == "energydiff") & (published["table"] == "Table VII")
    pv = published_for(published, "wpuq", kind="pv")
    wpuq = pv[pv["dataset"] == "wpuq"]
    assert len(wpuq) == 120 and set(wpuq["table"]) == {"Table VII"} and set(wpuq["paper"]) == {"energydiff"}
    assert wpuq.reset_index(drop=True).equals(published[is_vii].reset_index(drop=True))
    assert len(pv) == len(published) - int(((published["dataset"] == "wpuq") & ~is_vii).sum())  # others kept
    for options in ({}, {"kind": "household"}, {"kind": "heatpump"}, {"kind": "transformer"}):
        kept = published_for(published, "wpuq", **options)
        assert "Table VII" not in set(kept.loc[kept["dataset"] == "wpuq", "table"]), options
    assert published.loc[is_vii, "note"].str.startswith("WPuQ transformer-level PV (read with the wpuq loader "
                                                        "option kind=pv)").all()
    rows = _rows([("generation", "wpuq", 60, "", "gmm", "GFD", 0.01, 0.0, "ok", 0)])
    assert compare(rows, pv)["paper"].tolist() == [0.0060] and set(compare(rows, pv)["table"]) == {"Table VII"}


def test_compare_maps_datasets_for_the_unified_paper(published):
    rows = _rows([("forecasting", "lcl", 30, "day-ahead", "unified", "MAPE", 0.12, 0.01, "ok", 0),
                  ("anomaly", "lcl", 30, "ramping", "unified", "Recall", 0.7, 0.02, "ok", 0),
                  ("forecasting", "lcl", 30, "day-ahead", "persistence", "MAE", 0.3, 0.0, "ok", 0)])
    assert compare(rows, published).empty  # lcl is not the paper's cer+lcl
    out = compare(rows, published, datasets={"lcl": "cer+lcl"})
    assert out["metric"].tolist() == ["MAPE", "Recall"]
    assert out["diff"].tolist() == pytest.approx([0.12 - 0.099329, 0.7 - 0.7567])
    assert (out["dataset"] == "lcl").all() and (out["paper_dataset"] == "cer+lcl").all()


def test_compare_reads_a_results_csv_with_empty_settings(published, tmp_path):
    path = tmp_path / "results.csv"
    _rows([("generation", "lcl", 60, "", "energydiff", "KL", 0.05, 0.002, "ok", 0)]).to_csv(path, index=False)
    rows = pd.read_csv(path)  # pandas defaults turn the empty setting into NaN
    out = compare(rows, published)
    assert out["paper"].tolist() == [0.0332] and out["diff"].iloc[0] == pytest.approx(0.05 - 0.0332)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['status'\]"):
        compare(rows.drop(columns=["status"]), published)


def test_markdown_has_one_line_per_number_and_a_caption(published):
    rows = _rows([("generation", "wpuq", 1, "", "t-copula", "KL", 0.01, 0.001, "ok", 0),
                  ("generation", "wpuq", 1, "", "gmm", "KL", 1.0, 0.1, "ok", 0),
                  ("forecasting", "lcl", 30, "hour-ahead", "unified", "RMSE", 0.15, 0.01, "ok", 0)])
    frame = compare(rows, published_for(published, "wpuq", kind="heatpump"), datasets={"lcl": "cer+lcl"})
    text = comparison_markdown(frame, note="Quick profile.")
    lines = text.strip().splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(frame) == 5
    caption = lines[0]
    for part in ("Table II (Sec. V-A1)", "Table II (Sec. IV-B)", "Not a reproduction", "ours on lcl",
                 "cer+lcl", "data size", "Quick profile."):
        assert part in caption, part
    assert "not converged" in text and "1.1469" in text and "-12.8%" in text  # gmm: (1 - 1.1469) / 1.1469
    empty = comparison_markdown(frame.iloc[:0])
    assert "No published number matches" in empty


def test_side_by_side_puts_ours_beside_the_paper_in_the_papers_layout():
    from bench.report.published import COMPARE_COLUMNS, side_by_side_markdown

    def line(model, metric, ours, paper, status="ok"):
        row = dict.fromkeys(COMPARE_COLUMNS, "")
        row.update(source="energydiff", table="Table III", task="generation", dataset="lcl", resolution=30,
                   model=model, metric=metric, ours=ours, paper=paper, status=status,
                   rel_diff=(ours - paper) / abs(paper) if status == "ok" else float("nan"))
        return row

    frame = pd.DataFrame([line("gmm", "GFD", 0.381, 0.0167), line("gmm", "KS", 0.2, 0.1),
                          line("vae", "GFD", float("nan"), 0.1421, status="failed")])
    text = side_by_side_markdown(frame)
    rows = {r.split("|")[3].strip(): [c.strip() for c in r.strip("|").split("|")]
            for r in text.splitlines() if r.startswith("| lcl")}
    assert rows["gmm"][3:] == ["0.381 / 0.0167 (+2181.4%)", "0.200 / 0.1 (+100.0%)"]
    assert rows["vae"][3:] == ["failed / 0.1421", ""]
    assert "Table III" in text and "setting" not in text.splitlines()[2]
