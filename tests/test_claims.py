"""The papers' claims, checked on hand-made rows with known verdicts."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.report.claims import check_claim, check_claims, claims_markdown, load_claims


def rows(task: str, metric: str, values: dict[str, tuple[float, float]], setting: str = "",
         groups: tuple = (("lcl", 30),)) -> pd.DataFrame:
    return pd.DataFrame([{"task": task, "dataset": d, "resolution": r, "setting": setting, "model": m,
                          "seed": 0, "metric": metric, "value": v, "std": s, "status": "ok", "note": ""}
                         for d, r in groups for m, (v, s) in values.items()])


def claim(**fields):
    base = {"id": "X", "paper": "p", "claim": "c", "evidence": "e", "task": "generation", "metric": "KL",
            "setting": "*", "left": "a", "op": "<", "right": "b", "factor": "1"}
    return pd.DataFrame([{**base, **fields}]).itertuples(index=False).__next__()


def test_the_shipped_claims_load_and_name_known_metrics():
    frame = load_claims()
    assert {"E1", "S1", "S3", "U1"} <= set(frame["id"])


def test_model_against_model_every_group():
    r = rows("generation", "KL", {"a": (0.1, 0.01), "b": (0.3, 0.01)}, groups=(("lcl", 30), ("lcl", 60)))
    assert check_claim(claim(), r).status == "holds"
    r.loc[(r.resolution == 60) & (r.model == "a"), "value"] = 0.5
    verdict = check_claim(claim(), r)
    assert verdict.status == "does not hold in 1 of 2" and "lcl @ 60 min: 0.5 vs 0.3 (b)" in verdict.numbers


def test_factor_best_other_number_and_goal():
    r = rows("imputation", "CRPS", {"a": (0.3, 0.0), "b": (0.5, 0.0)})
    assert check_claim(claim(task="imputation", metric="CRPS", op="<=", factor="0.5"), r).status == "does not hold in 1 of 1"
    r.loc[r.model == "a", "value"] = 0.25
    assert check_claim(claim(task="imputation", metric="CRPS", op="<=", factor="0.5"), r).status == "holds"
    acc = rows("anomaly", "Accuracy", {"a": (0.80, 0.0), "b": (0.82, 0.0), "c": (0.5, 0.0)})
    # higher is better: the best other is b
    assert check_claim(claim(task="anomaly", metric="Accuracy", op="best", right=""), acc).status.startswith("does not")
    assert check_claim(claim(task="anomaly", metric="Accuracy", op=">=", right="best-other", factor="0.97"),
                       acc).status == "holds"
    p = rows("conditional", "MMD_p", {"a": (0.3, 0.05)}, setting="conditional")
    assert check_claim(claim(task="conditional", metric="MMD_p", op=">", right="0.05", setting="conditional"),
                       p).status == "holds"


def test_excluded_references_are_not_competitors():
    r = rows("conditional", "PeakRMSE", {"a": (0.2, 0.0), "a-projected": (0.0, 0.0), "b": (0.3, 0.0)},
             setting="constrained")
    base = {"task": "conditional", "metric": "PeakRMSE", "setting": "constrained"}
    assert check_claim(claim(**base, op="<", right="best-other"), r).status == "does not hold in 1 of 1"
    verdict = check_claim(claim(**base, op="<", right="best-other", exclude="*-projected"), r)
    assert verdict.status == "holds" and "(b)" in verdict.numbers
    assert check_claim(claim(**base, op="best", right="", exclude="*-projected"), r).status == "holds"
    # every other model excluded: nothing to compare with
    assert check_claim(claim(**base, op="best", right="", exclude="*-projected b"), r).status == "not run"
    # the shipped file may leave the column out
    assert "exclude" in load_claims().columns


def test_not_run_noise_and_report():
    r = rows("generation", "KL", {"a": (0.100, 0.01), "b": (0.105, 0.01)})
    verdict = check_claim(claim(left="zzz"), r)
    assert verdict.status == "not run"
    verdict = check_claim(claim(), r)
    assert verdict.status == "holds" and verdict.within_noise
    verdicts = check_claims(r, pd.DataFrame([claim()._asdict()]))
    assert "(a decision within noise)" in claims_markdown(verdicts)


def test_bad_claims_file_is_a_clear_error(tmp_path):
    path = tmp_path / "claims.csv"
    frame = pd.DataFrame([claim(op="~")._asdict()])
    frame.to_csv(path, index=False)
    with pytest.raises(ValueError, match="line 2 .X.: op must be one of"):
        load_claims(path)
    frame.assign(op="<", metric="nope").to_csv(path, index=False)
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        load_claims(path)


def test_every_model_a_claim_names_is_registered():
    from bench.postprocess import split_model_name
    from bench.registry import MODELS

    frame = load_claims()
    named = set(frame["left"]) | {r for r in frame["right"] if r and r != "best-other" and not _is_number(r)}
    unknown = sorted(m for m in named if split_model_name(m)[0] not in MODELS)
    assert not unknown, unknown


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_a_metric_with_no_ok_row_is_not_run():
    r = rows("conditional", "PeakRMSE", {"a": (0.2, 0.0)}, setting="constrained").assign(status="n/a")
    assert check_claim(claim(task="conditional", metric="PeakRMSE", setting="constrained", op="best", right=""),
                       r).status == "not run"
